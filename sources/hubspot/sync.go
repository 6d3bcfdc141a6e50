package hubspot

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/internal/hubspot/ratelimit"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Sync kinds, as Progress.Kind and the metrics name them.
const (
	kindCatchUp = "catch-up"
	kindFull    = "full"
)

// searchLimit is the most records one search page returns.
const searchLimit = 200

// searchResultsCap is how many results one search query pages through.
const searchResultsCap = 10000

// searchPropertiesMax bounds the length of the property list a search
// asks for (comma-joined), under HubSpot's 3,000-character body limit;
// with more, the catch-up searches for the ids and batch-reads the records.
const searchPropertiesMax = 2000

// Syncer runs a source's catch-up and full syncs, one at a time, through
// its processor.
type Syncer struct {
	p      *Processor
	dir    *Directory
	logger *zap.Logger
	// searchCap is HubSpot's search results cap; tests shrink it.
	searchCap int
	// retryPause is the first pause before a failed scheduled catch-up is
	// tried again; it doubles up to the interval.
	retryPause time.Duration

	mu       sync.Mutex
	running  bool
	progress Progress
	ran      bool
	// hubID is the portal's id, read once.
	hubID int64
}

// NewSyncer returns the syncer of p's source, keeping its checkpoints in dir.
func NewSyncer(p *Processor, dir *Directory, logger *zap.Logger) *Syncer {
	return &Syncer{
		p: p, dir: dir, searchCap: searchResultsCap, retryPause: time.Minute,
		logger: logger.With(zap.String("source", p.cfg.Name), zap.String("component", "sync")),
	}
}

// catchUpCheckpoint is the checkpoint catch-up/{objectType}.
type catchUpCheckpoint struct {
	// Modified is the newest modification the catch-up has read, epoch ms.
	Modified int64 `json:"modified"`
	// Checked is when the catch-up stored it.
	Checked time.Time `json:"checked"`
}

// fullCheckpoint is the checkpoint full: where an unfinished full sync is.
// A type is read from both ends at once, upwards through the list of
// every record and downwards by search on the ids, until the two meet;
// the records between UpID and DownID are the ones left to read.
type fullCheckpoint struct {
	Started time.Time `json:"started"`
	// ObjectType is the type being read; "" when no full sync is unfinished.
	ObjectType string `json:"object_type,omitempty"`
	// UpID is the highest id of ObjectType read upwards whose page's
	// calls are appended, and UpAfter the list's cursor after it.
	UpID    int64  `json:"up_id,omitempty"`
	UpAfter string `json:"up_after,omitempty"`
	// DownID is the lowest id of ObjectType read downwards whose page's
	// calls are appended; 0 while none is.
	DownID int64 `json:"down_id,omitempty"`
	// AfterID is the place an earlier full sync, which read upwards
	// only, stored: the last id whose page's calls are appended. It is
	// read as UpID.
	AfterID int64 `json:"after_id,omitempty"`
	// Done counts the records read, per type.
	Done map[string]int64 `json:"done,omitempty"`
}

// upgrade moves a place stored as AfterID to the upward end: HubSpot's
// list cursor is the id the next page starts at, and ids not above UpID
// are not emitted again.
func (cp *fullCheckpoint) upgrade() {
	if cp.AfterID != 0 && cp.UpID == 0 && cp.UpAfter == "" {
		cp.UpID, cp.UpAfter = cp.AfterID, strconv.FormatInt(cp.AfterID, 10)
	}
	cp.AfterID = 0
}

// errSinceWithFull refuses a full sync asked to start at a time.
var errSinceWithFull = errors.New("since applies to the catch-up; a full sync reads every record")

// Run runs one sync to its end, calling report (may be nil) after each
// page and at the end. One sync at a time per Syncer: ErrSyncRunning
// otherwise. ctx ending stops it with state "interrupted", its checkpoint
// kept, and returns ctx's error; a sync that reached its end first is done.
func (s *Syncer) Run(ctx context.Context, req SyncRequest, report func(Progress)) error {
	if req.Full && !req.Since.IsZero() {
		return errSinceWithFull
	}
	kind := kindCatchUp
	if req.Full {
		kind = kindFull
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrSyncRunning
	}
	now := s.p.cfg.Now()
	s.running, s.ran = true, true
	s.progress = Progress{Source: s.p.cfg.Name, Kind: kind, State: SyncRunning, Started: now, Updated: now}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	r := &run{s: s, kind: kind, report: report}
	r.update(func(*Progress) {})

	var err error
	if req.Full {
		err = s.full(ctx, r)
	} else {
		err = s.catchUp(ctx, r, req.Since)
	}
	state := SyncDone
	switch {
	case err == nil:
		// Done, though ctx may have ended as the last page was taken.
	case ctx.Err() != nil:
		state, err = SyncInterrupted, ctx.Err()
	default:
		state = SyncFailed
	}
	s.p.metrics.syncRuns.WithLabelValues(s.p.cfg.Name, kind, state).Inc()
	r.update(func(pr *Progress) {
		pr.State = state
		if err != nil {
			pr.Error = err.Error()
		}
	})
	if err != nil {
		s.logger.Warn("sync ended", zap.String("kind", kind), zap.String("state", state), zap.Error(err))
	} else {
		s.logger.Info("sync done", zap.String("kind", kind), zap.Int64("records", r.last.Done), zap.Int64("emitted", r.last.Emitted))
	}
	return err
}

// Progress returns the running sync's progress, or the last one's; false
// when none ran in this process.
func (s *Syncer) Progress() (Progress, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progress, s.ran
}

// RunSchedule runs the catch-up every CatchUpInterval until ctx ends; the
// first at once when the newest checkpoint is older than the interval (or
// there is none). Failures are logged and counted, then tried again
// sooner, after a pause that doubles up to the interval. Returns nil when
// ctx ends.
func (s *Syncer) RunSchedule(ctx context.Context) error {
	interval := time.Duration(s.p.cfg.CatchUpInterval)
	wait := time.Duration(0)
	if last, err := s.lastCatchUp(); err != nil {
		s.logger.Warn("reading the catch-up checkpoints; catching up now", zap.Error(err))
	} else if !last.IsZero() {
		wait = max(0, interval-s.p.cfg.Now().Sub(last))
	}
	pause := s.retryPause
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		err := s.Run(ctx, SyncRequest{}, nil)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			wait, pause = interval, s.retryPause
		default:
			// Failures are logged by Run; a sync asked for by hand is
			// running: look again after the same pause.
			wait, pause = min(pause, interval), min(2*pause, interval)
		}
	}
}

// lastCatchUp returns when the catch-up of a mapped type last stored its
// checkpoint, the newest of them; zero when none has.
func (s *Syncer) lastCatchUp() (time.Time, error) {
	var last time.Time
	for _, typ := range s.types() {
		var cp catchUpCheckpoint
		if _, err := s.dir.Checkpoint("catch-up/"+typ, &cp); err != nil {
			return time.Time{}, err
		}
		if cp.Checked.After(last) {
			last = cp.Checked
		}
	}
	return last, nil
}

// types are the mapped object types, in the order syncs read them.
func (s *Syncer) types() []string {
	var out []string
	for _, typ := range objectTypes {
		if !s.p.mapping(typ).Empty() {
			out = append(out, typ)
		}
	}
	return out
}

// portal returns the portal's id, read once.
func (s *Syncer) portal(ctx context.Context) (int64, error) {
	s.mu.Lock()
	id := s.hubID
	s.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	id, err := s.p.hubspot.portalID(ctx)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.hubID = id
	s.mu.Unlock()
	return id, nil
}

// run is one sync's progress reporting.
type run struct {
	s      *Syncer
	kind   string
	report func(Progress)
	last   Progress
}

// update changes the sync's progress and reports it.
func (r *run) update(change func(*Progress)) {
	r.s.mu.Lock()
	change(&r.s.progress)
	r.s.progress.Updated = r.s.p.cfg.Now()
	r.last = r.s.progress
	r.s.mu.Unlock()
	if r.report != nil {
		r.report(r.last)
	}
}

// page records one page's records read and calls appended.
func (r *run) page(objectType string, read, emitted int) {
	r.s.p.metrics.syncRecords.WithLabelValues(r.s.p.cfg.Name, r.kind, objectType).Add(float64(read))
	r.update(func(pr *Progress) {
		pr.ObjectType = objectType
		pr.Done += int64(read)
		pr.Emitted += int64(emitted)
	})
}

// emit emits records of objectType as changes of the portal hubID.
func (s *Syncer) emit(ctx context.Context, objectType string, recs []Record, hubID int64) (int, error) {
	changes := make([]Change, len(recs))
	for i, rec := range recs {
		changes[i] = Change{ObjectType: objectType, ObjectID: rec.ID, PortalID: hubID}
	}
	return s.p.emitRecords(ctx, objectType, recs, changes)
}

// lastModified is the property holding objectType's last modification,
// which search filters and sorts on.
func lastModified(objectType string) string {
	if objectType == "contacts" {
		return "lastmodifieddate"
	}
	return "hs_lastmodifieddate"
}

// catchUp searches each mapped type for the records modified since its
// checkpoint (or since), emitting those not emitted at that modification.
func (s *Syncer) catchUp(ctx context.Context, r *run, since time.Time) error {
	hubID, err := s.portal(ctx)
	if err != nil {
		return err
	}
	for _, typ := range s.types() {
		if err := s.catchUpType(ctx, r, typ, since, hubID); err != nil {
			return err
		}
	}
	return nil
}

// window is one search query of the catch-up: the records modified at or
// after from (after it, with strict); or, to page through more records
// modified at the same instant than one query returns, those modified at
// from with an id above afterID (tie).
type window struct {
	from    int64
	strict  bool
	tie     bool
	afterID int64
}

// body is the search request of w's page after, asking for props.
func (w window) body(objectType string, after string, props []string) map[string]any {
	lm := lastModified(objectType)
	ms := strconv.FormatInt(w.from, 10)
	var filters []map[string]string
	sortBy := lm
	switch {
	case w.tie:
		filters = []map[string]string{
			{"propertyName": lm, "operator": "EQ", "value": ms},
			{"propertyName": "hs_object_id", "operator": "GT", "value": strconv.FormatInt(w.afterID, 10)},
		}
		sortBy = "hs_object_id"
	case w.strict:
		filters = []map[string]string{{"propertyName": lm, "operator": "GT", "value": ms}}
	default:
		filters = []map[string]string{{"propertyName": lm, "operator": "GTE", "value": ms}}
	}
	body := map[string]any{
		"filterGroups": []map[string]any{{"filters": filters}},
		"sorts":        []map[string]string{{"propertyName": sortBy, "direction": "ASCENDING"}},
		"properties":   props,
		"limit":        searchLimit,
	}
	if after != "" {
		body["after"] = after
	}
	return body
}

func (s *Syncer) catchUpType(ctx context.Context, r *run, typ string, since time.Time, hubID int64) error {
	name := "catch-up/" + typ
	var cp catchUpCheckpoint
	has, err := s.dir.Checkpoint(name, &cp)
	if err != nil {
		return err
	}
	now := s.p.cfg.Now()
	var from int64
	switch {
	case !since.IsZero():
		from = since.UnixMilli()
	case has:
		from = cp.Modified - time.Duration(s.p.cfg.CatchUpOverlap).Milliseconds()
	default:
		// A new source: the last interval's changes.
		from = now.Add(-time.Duration(s.p.cfg.CatchUpInterval)).UnixMilli()
		cp.Modified = from
	}
	props, _, err := s.p.properties(ctx, typ)
	if err != nil {
		return err
	}
	searchProps := props
	reread := len(strings.Join(props, ",")) > searchPropertiesMax
	if reread {
		searchProps = []string{lastModified(typ)}
	}
	r.update(func(pr *Progress) { pr.ObjectType = typ })
	w := window{from: max(from, 0)}
	after := ""
	first := true
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		pg, err := s.p.hubspot.search(ctx, typ, w.body(typ, after, searchProps))
		if err != nil {
			return err
		}
		if first {
			r.update(func(pr *Progress) { pr.Total += pg.Total })
			first = false
		}
		var fresh []Record
		var lastTS, lastID int64
		for _, rec := range pg.Records {
			ms := rec.UpdatedAt.UnixMilli()
			lastTS = max(lastTS, ms)
			if id, err := strconv.ParseInt(rec.ID, 10, 64); err == nil {
				lastID = max(lastID, id)
			}
			if ms > s.dir.Emitted(typ, rec.ID) {
				fresh = append(fresh, rec)
			}
		}
		if reread && len(fresh) > 0 {
			if fresh, err = s.reread(ctx, typ, fresh, props); err != nil {
				return err
			}
		}
		emitted, err := s.emit(ctx, typ, fresh, hubID)
		if err != nil {
			return err
		}
		cp.Modified = max(cp.Modified, lastTS)
		cp.Checked = s.p.cfg.Now()
		if err := s.dir.SetCheckpoint(name, cp); err != nil {
			return err
		}
		s.p.metrics.catchUpCheckpoint.WithLabelValues(s.p.cfg.Name, typ).Set(float64(cp.Modified) / 1000)
		r.page(typ, len(pg.Records), emitted)

		next, _ := strconv.Atoi(pg.Next)
		switch {
		case pg.Next == "" && w.tie:
			// Every record modified at w.from is read: go on after it.
			w, after = window{from: w.from, strict: true}, ""
		case pg.Next == "":
			return nil
		case next < s.searchCap:
			after = pg.Next
		case w.tie:
			w.afterID, after = lastID, ""
		case lastTS > w.from:
			// At the results cap: a new query from the last time seen.
			w, after = window{from: lastTS}, ""
		default:
			// More records modified at one instant than a query returns.
			w, after = window{from: w.from, tie: true}, ""
		}
	}
}

// reread batch-reads recs with props: the records as they are now.
func (s *Syncer) reread(ctx context.Context, typ string, recs []Record, props []string) ([]Record, error) {
	recIDs := make([]string, len(recs))
	for i, rec := range recs {
		recIDs[i] = rec.ID
	}
	return s.p.hubspot.read(ctx, typ, recIDs, props)
}

// full reads every record of the mapped types, resuming an unfinished
// full sync.
func (s *Syncer) full(ctx context.Context, r *run) error {
	hubID, err := s.portal(ctx)
	if err != nil {
		return err
	}
	types := s.types()
	var cp fullCheckpoint
	if _, err := s.dir.Checkpoint("full", &cp); err != nil {
		return err
	}
	if cp.ObjectType == "" || !slices.Contains(types, cp.ObjectType) {
		cp = fullCheckpoint{Started: s.p.cfg.Now(), ObjectType: types[0]}
	}
	cp.upgrade()
	if cp.Done == nil {
		cp.Done = map[string]int64{}
	}
	var total, done int64
	for _, typ := range types {
		pg, err := s.p.hubspot.search(ctx, typ, map[string]any{"limit": 1})
		if err != nil {
			return err
		}
		total += pg.Total
		done += cp.Done[typ]
	}
	r.update(func(pr *Progress) { pr.Total, pr.Done, pr.ObjectType = total, done, cp.ObjectType })
	for i := slices.Index(types, cp.ObjectType); i < len(types); i++ {
		next := ""
		if i+1 < len(types) {
			next = types[i+1]
		}
		if err := s.fullType(ctx, r, &cp, next, hubID); err != nil {
			return err
		}
	}
	return nil
}

// fullReadsInFlight bounds the batch reads the downward side of a full
// sync has in flight: enough to keep the token's budget busy while each
// waits for HubSpot's answer.
const fullReadsInFlight = 4

// fullPage is one batch read of the downward side of a full sync: up to
// 100 records, the last (lowest) of ids down to lastID.
type fullPage struct {
	lastID int64
	recs   []Record
	err    error
}

// fullType reads every record of cp.ObjectType between cp.UpID and
// cp.DownID from both ends at once: upwards through the list of every
// record, one page in flight (each cursor comes from the answer before),
// and downwards by search on the ids in descending order with their
// batch reads several in flight, which fill what the list leaves of the
// budget. The two sides meet: neither emits an id the other has (see
// fullMeeting). Once they meet, or either runs out of records, it moves
// on to type next, or, with none, clears the checkpoint so that the next
// full sync starts over.
func (s *Syncer) fullType(ctx context.Context, r *run, cp *fullCheckpoint, next string, hubID int64) error {
	typ := cp.ObjectType
	props, _, err := s.p.properties(ctx, typ)
	if err != nil {
		return err
	}
	r.update(func(pr *Progress) { pr.ObjectType = typ })
	m := &fullMeeting{s: s, r: r, ctx: ctx, typ: typ, next: next, hubID: hubID, cp: cp}
	sidesCtx, stop := context.WithCancel(ctx)
	defer stop()
	var sides errgroup.Group
	sides.Go(func() error { defer stop(); return m.readUp(sidesCtx, props) })
	sides.Go(func() error { defer stop(); return m.readDown(sidesCtx, props) })
	err = sides.Wait()
	if m.met {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err == nil {
		err = errors.New("the full sync's sides ended before they met")
	}
	return err
}

// fullMeeting is the meeting of the two sides of a full sync of one type.
// The upward side emits only ids below cp.DownID (once it is set), the
// downward side only ids above cp.UpID; each moves its own end after each
// page. A page's calls are appended, and the checkpoint stored, under mu,
// so that the two ends stored are always those of the calls appended.
type fullMeeting struct {
	s     *Syncer
	r     *run
	ctx   context.Context
	typ   string
	next  string
	hubID int64

	mu sync.Mutex
	cp *fullCheckpoint
	// met is set once the sides met or one ran out of records: the type
	// is read and the checkpoint is at type next.
	met bool
}

// readUp lists the records from cp.UpAfter, one page at a time, until the
// list reaches the downward side or its end.
func (m *fullMeeting) readUp(ctx context.Context, props []string) error {
	for {
		m.mu.Lock()
		after, met := m.cp.UpAfter, m.met
		m.mu.Unlock()
		if met {
			return nil
		}
		pg, err := retry(ctx, func() (recordPage, error) { return m.s.p.hubspot.list(ctx, m.typ, after, props) })
		if err != nil {
			return err
		}
		var last int64
		for _, rec := range pg.Records {
			id := recordID(rec)
			if id <= last {
				return fmt.Errorf("listing %s: the answer's ids do not ascend at %q", m.typ, rec.ID)
			}
			last = id
		}
		if met, err := m.page(true, pg.Records, last, pg.Next == "", pg.Next); met || err != nil {
			return err
		}
	}
}

// readDown searches the ids below cp.DownID in descending order and
// batch-reads them, until it reaches the upward side or the lowest id.
func (m *fullMeeting) readDown(ctx context.Context, props []string) error {
	m.mu.Lock()
	below := m.cp.DownID
	m.mu.Unlock()
	if below == 0 {
		below = math.MaxInt64
	}
	ctx, cancel := context.WithCancel(ctx)
	var reads sync.WaitGroup
	pages := make(chan chan fullPage, fullReadsInFlight)
	reads.Add(1)
	go func() {
		defer reads.Done()
		defer close(pages)
		m.s.readFull(ctx, m.typ, below, props, pages, &reads)
	}()
	defer func() {
		cancel()
		for range pages {
		}
		reads.Wait()
	}()
	for res := range pages {
		f := <-res
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.err != nil {
			return f.err
		}
		if met, err := m.page(false, f.recs, f.lastID, false, ""); met || err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := m.page(false, nil, 0, true, "")
	return err
}

// page takes one page of a side (up, or down): it emits the records recs
// read that lie between the two ends, then moves the side's end to
// farthest, the page's last id in the side's order, with the list's
// cursor after for the upward side, and stores the checkpoint. When the
// page reaches the other side's end, or is the side's last, the type is
// read: the checkpoint moves to the next type and page returns true, as
// it does once the other side did so.
func (m *fullMeeting) page(up bool, recs []Record, farthest int64, last bool, after string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.met {
		return true, nil
	}
	if err := m.ctx.Err(); err != nil {
		return false, err
	}
	cp := m.cp
	between := func(id int64) bool { return id > cp.UpID && (cp.DownID == 0 || id < cp.DownID) }
	var fresh []Record
	for _, rec := range recs {
		if between(recordID(rec)) {
			fresh = append(fresh, rec)
		}
	}
	emitted, err := m.s.emit(m.ctx, m.typ, fresh, m.hubID)
	if err != nil {
		return false, err
	}
	var reached bool
	if up {
		reached = cp.DownID != 0 && farthest >= cp.DownID
	} else {
		reached = farthest != 0 && farthest <= cp.UpID
	}
	switch {
	case reached || last:
	case up:
		cp.UpID, cp.UpAfter = max(cp.UpID, farthest), after
	default:
		cp.DownID = farthest
	}
	cp.Done[m.typ] += int64(len(fresh))
	stored := *cp
	if reached || last {
		m.met = true
		cp.ObjectType, cp.UpID, cp.UpAfter, cp.DownID = m.next, 0, "", 0
		stored = *cp
		if m.next == "" {
			stored = fullCheckpoint{}
		}
	}
	if err := m.s.dir.SetCheckpoint("full", stored); err != nil {
		return false, fmt.Errorf("storing the full sync's place: %w", err)
	}
	m.r.page(m.typ, len(fresh), emitted)
	return m.met, nil
}

// readFull searches the ids of typ below below in descending order and
// batch-reads them with props, 100 per read and at most fullReadsInFlight
// reads in flight. Each read's answer comes on its own channel, sent to
// pages in id order; a failed search comes as a page with its error, and
// ends the reading, as ctx ending does. Each read is counted in reads.
func (s *Syncer) readFull(ctx context.Context, typ string, below int64, props []string, pages chan<- chan fullPage, reads *sync.WaitGroup) {
	inFlight := make(chan struct{}, fullReadsInFlight)
	// start starts reading recs; false when ctx ended first.
	start := func(recs []Record) bool {
		select {
		case inFlight <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		res := make(chan fullPage, 1)
		select {
		case pages <- res:
		case <-ctx.Done():
			return false
		}
		last := recordID(recs[len(recs)-1])
		reads.Add(1)
		go func() {
			defer reads.Done()
			read, err := retry(ctx, func() ([]Record, error) { return s.reread(ctx, typ, recs, props) })
			<-inFlight
			res <- fullPage{lastID: last, recs: read, err: err}
		}()
		return true
	}
	var pending []Record
	err := s.searchFull(ctx, typ, below, func(found []Record) bool {
		pending = append(pending, found...)
		for len(pending) >= batchReadLimit {
			chunk := slices.Clone(pending[:batchReadLimit])
			pending = pending[batchReadLimit:]
			if !start(chunk) {
				return false
			}
		}
		return true
	})
	switch {
	case err != nil:
		res := make(chan fullPage, 1)
		res <- fullPage{err: err}
		select {
		case pages <- res:
		case <-ctx.Done():
		}
	case len(pending) > 0:
		start(pending)
	}
}

// fullSearchesInFlight is how many pages of an id search the full sync has
// in flight: one at a time, each waiting for HubSpot's answer, would not
// find ids as fast as the budget reads them.
const fullSearchesInFlight = 3

// fullSearchPace is the least time between a full sync's searches: HubSpot's
// per-second search limit with a guard of 5%, wider than the budget's own,
// because searches in flight together may arrive closer together than they
// were sent, and a refused one pauses the token's calls for a second.
const fullSearchPace = time.Second * 105 / 100 / ratelimit.SearchPerSecond

// searchFull passes the records of typ with an id below below (their ids
// only; math.MaxInt64 for every record) to found, in descending id order,
// until found returns false (ctx ended) or none is left.
func (s *Syncer) searchFull(ctx context.Context, typ string, below int64, found func([]Record) bool) error {
	for {
		last, more, err := s.searchQuery(ctx, typ, below, found)
		if err != nil || !more {
			return err
		}
		below = last
	}
}

// searchQuery pages through one search of the records of typ with an id
// below below, in descending id order, fullSearchesInFlight pages in
// flight, passing each page's new records to found. Each page after the
// first starts one record before its place in the order, so that it
// overlaps the page before; a page that does not reach back to it (records
// deleted meanwhile moved it) ends the query, as the results cap does, and
// so none is skipped. It returns the last id passed and whether records
// may follow it.
func (s *Syncer) searchQuery(ctx context.Context, typ string, below int64, found func([]Record) bool) (last int64, more bool, err error) {
	type answer struct {
		page recordPage
		err  error
	}
	var searches sync.WaitGroup
	defer searches.Wait()
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan chan answer, fullSearchesInFlight-1)
	searches.Add(1)
	go func() {
		defer searches.Done()
		defer close(answers)
		var started time.Time
		for offset := 0; offset == 0 || offset+searchLimit <= s.searchCap; offset += searchLimit - 1 {
			if wait := time.Until(started.Add(fullSearchPace)); wait > 0 {
				timer := time.NewTimer(wait)
				select {
				case <-timer.C:
				case <-qctx.Done():
					timer.Stop()
					return
				}
			}
			// Each answer channel sent gets its answer.
			res := make(chan answer, 1)
			select {
			case answers <- res:
			case <-qctx.Done():
				return
			}
			started = time.Now()
			searches.Add(1)
			go func() {
				defer searches.Done()
				pg, err := s.searchIDPage(qctx, typ, below, offset)
				res <- answer{pg, err}
			}()
		}
	}()
	defer func() {
		cancel()
		for range answers {
		}
	}()
	last = below
	first := true
	for res := range answers {
		a := <-res
		if a.err != nil {
			return last, false, a.err
		}
		recs := a.page.Records
		if !first && (len(recs) == 0 || recordID(recs[0]) < last) {
			return last, true, nil
		}
		first = false
		var fresh []Record
		for _, rec := range recs {
			if id := recordID(rec); id < last {
				fresh, last = append(fresh, rec), id
			}
		}
		if len(fresh) > 0 && !found(fresh) {
			return last, false, ctx.Err()
		}
		if a.page.Next == "" {
			return last, false, nil
		}
	}
	// At the results cap: a new query from the last id.
	return last, true, nil
}

// searchIDPage searches the records of typ with an id below below
// (math.MaxInt64: every record) in descending id order, the page at
// offset, checking that its ids descend below it.
func (s *Syncer) searchIDPage(ctx context.Context, typ string, below int64, offset int) (recordPage, error) {
	body := map[string]any{
		"sorts":      []map[string]string{{"propertyName": "hs_object_id", "direction": "DESCENDING"}},
		"properties": []string{"hs_object_id"},
		"limit":      searchLimit,
	}
	if below != math.MaxInt64 {
		body["filterGroups"] = []map[string]any{{"filters": []map[string]string{
			{"propertyName": "hs_object_id", "operator": "LT", "value": strconv.FormatInt(below, 10)},
		}}}
	}
	if offset > 0 {
		body["after"] = strconv.Itoa(offset)
	}
	pg, err := retry(ctx, func() (recordPage, error) { return s.p.hubspot.search(ctx, typ, body) })
	if err != nil {
		return recordPage{}, err
	}
	prev := below
	for _, rec := range pg.Records {
		id := recordID(rec)
		if id >= prev {
			return recordPage{}, fmt.Errorf("searching %s ids below %d: the answer's ids do not descend below it at %q", typ, below, rec.ID)
		}
		prev = id
	}
	return pg, nil
}

// recordID is rec's id as a number; 0 when it is not one.
func recordID(rec Record) int64 {
	id, _ := strconv.ParseInt(rec.ID, 10, 64)
	return id
}

// syncRetries is how many times a full sync tries again a call that HubSpot
// refused for its rate limit or that failed in passing.
const syncRetries = 5

// retryWaitMax is the longest wait retry waits for: a budget paused longer
// (HubSpot's daily limit) fails the sync, which resumes when run again.
const retryWaitMax = time.Minute

// retry returns call's answer, calling it again after the wait the failure
// asks for when HubSpot refused it for the per-second or 10-second rate
// limit, it failed in passing (a timeout, a 5xx) or the budget is paused
// for at most retryWaitMax, up to syncRetries
// times: several calls in flight may now and then arrive closer together
// than the budget sent them.
func retry[T any](ctx context.Context, call func() (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		v, err := call()
		if err == nil || attempt == syncRetries || ctx.Err() != nil {
			return v, err
		}
		var limited *api.RateLimitError
		var transient *api.TransientError
		var wait time.Duration
		switch {
		case errors.As(err, &limited) && limited.Policy != "DAILY":
			wait = limited.RetryAfter
		case errors.As(err, &transient) && transient.RetryAfter <= retryWaitMax:
			wait = max(transient.RetryAfter, 100*time.Millisecond)
		default:
			return v, err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return v, ctx.Err()
		case <-timer.C:
		}
	}
}
