package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/schemas"
)

// DeadLetters is where the dead-letter panel reads and how it replays. The
// zero value means the process has no dead letters to show.
type DeadLetters struct {
	// Log holds the dead-letter topic.
	Log queue.Log
	// Topic is the dead-letter topic.
	Topic string
	// Replay delivers dead letters again. Nil means the panel only shows.
	Replay ReplayFunc
}

// ReplayFunc delivers again, as switchyard replay --dlq does, the dead
// letters of the named destination that pick chooses: pick is handed each
// dead letter on the topic as it was when the replay began (its message on
// the dead-letter topic). progress, when set, is called with how far the
// replay is each time an event is finished. It returns once every picked
// one is finished, or ctx ends.
type ReplayFunc func(ctx context.Context, destination string, pick func(queue.Message) bool, progress func(ReplayProgress)) error

// MaxRefusalReasons is how many distinct reasons a ReplayProgress keeps.
const MaxRefusalReasons = 3

// ReplayProgress is how far a replay is: the dead letters picked so far and
// what became of the events finished.
type ReplayProgress struct {
	// Picked counts the dead letters picked.
	Picked int64
	// Delivered, Refused (dead-lettered again) and Skipped count the
	// events finished, by outcome.
	Delivered, Refused, Skipped int64
	// Reasons are the distinct reasons of the refusals, in the order first
	// met, at most MaxRefusalReasons of them.
	Reasons []string
}

// AddReason keeps reason among p's reasons unless it is there or p holds
// MaxRefusalReasons already.
func (p *ReplayProgress) AddReason(reason string) {
	if len(p.Reasons) < MaxRefusalReasons && !slices.Contains(p.Reasons, reason) {
		p.Reasons = append(p.Reasons, reason)
	}
}

// plus is p followed by q: their counts summed, their reasons merged.
func (p ReplayProgress) plus(q ReplayProgress) ReplayProgress {
	sum := ReplayProgress{Picked: p.Picked + q.Picked, Delivered: p.Delivered + q.Delivered,
		Refused: p.Refused + q.Refused, Skipped: p.Skipped + q.Skipped, Reasons: slices.Clone(p.Reasons)}
	for _, r := range q.Reasons {
		sum.AddReason(r)
	}
	return sum
}

const (
	// deadLetterPage is how many dead letters a page shows unless asked.
	deadLetterPage = 50
	// deadLetterPageMax is the most a page shows.
	deadLetterPageMax = 500
	// deadLetterChunk is how many offsets of each partition one read covers.
	deadLetterChunk = 256
	// deadLetterScan is how many dead letters one page reads at most; a
	// filter that matches few stops there and offers the next page.
	deadLetterScan = 20000
	// replayHistory is how many replays the panel remembers.
	replayHistory = 10
)

// deadLetterFilter selects dead letters: every field set must match.
type deadLetterFilter struct {
	// Destination is the stage exactly: a destination's name, or "gateway".
	Destination string
	// Class is the class exactly.
	Class string
	// Reason is a part of the reason, in any case.
	Reason string
}

func filterFrom(q url.Values) deadLetterFilter {
	return deadLetterFilter{
		Destination: strings.TrimSpace(q.Get("destination")),
		Class:       strings.TrimSpace(q.Get("class")),
		Reason:      strings.TrimSpace(q.Get("reason")),
	}
}

func (f deadLetterFilter) matches(dl *queue.DeadLetter) bool {
	return (f.Destination == "" || dl.Stage == f.Destination) &&
		(f.Class == "" || dl.Class == f.Class) &&
		(f.Reason == "" || strings.Contains(strings.ToLower(dl.Reason), strings.ToLower(f.Reason)))
}

func (f deadLetterFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"destination": f.Destination, "class": f.Class, "reason": f.Reason} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func (f deadLetterFilter) String() string {
	var parts []string
	if f.Destination != "" {
		parts = append(parts, "destination "+f.Destination)
	}
	if f.Class != "" {
		parts = append(parts, "class "+f.Class)
	}
	if f.Reason != "" {
		parts = append(parts, fmt.Sprintf("reason containing %q", f.Reason))
	}
	if len(parts) == 0 {
		return "every dead letter"
	}
	return strings.Join(parts, ", ")
}

// deadLetterRow is one dead letter as the list shows it.
type deadLetterRow struct {
	Partition  int
	Offset     int64
	LogTime    time.Time
	FailedAt   string
	Stage      string
	Class      string
	Reason     string
	Source     string
	Attempts   int
	LastStatus int
	MessageID  string
	UserID     string
	Type       string
	Event      string
}

// Key names the row in a replay's selection: its place on the topic.
func (r deadLetterRow) Key() string {
	return strconv.Itoa(r.Partition) + "/" + strconv.FormatInt(r.Offset, 10)
}

// Replayable says whether the row can be replayed: gateway refusals have
// no destination.
func (r deadLetterRow) Replayable() bool { return r.Stage != "" && r.Stage != "gateway" }

func decodeDeadLetter(m queue.Message) (*queue.DeadLetter, error) {
	var dl queue.DeadLetter
	if err := json.Unmarshal(m.Value, &dl); err != nil {
		return nil, fmt.Errorf("dead letter %d/%d is not a dead letter: %w", m.Partition, m.Offset, err)
	}
	return &dl, nil
}

func rowOf(m queue.Message, dl *queue.DeadLetter) deadLetterRow {
	ev := schemas.NewEvent(dl.Message)
	r := deadLetterRow{
		Partition: m.Partition, Offset: m.Offset, LogTime: m.Time,
		Stage: dl.Stage, Class: dl.Class, Reason: dl.Reason, Source: dl.Source,
		Attempts: dl.Attempts, LastStatus: dl.LastStatus,
		MessageID: ev.MessageID(), UserID: ev.UserID(),
		Type: ev.Type(), Event: gjson.GetBytes(dl.Message, "event").String(),
	}
	if !dl.FailedAt.IsZero() {
		r.FailedAt = dl.FailedAt.UTC().Format(time.RFC3339)
	}
	return r
}

// cursor is, per partition, the offset just past the dead letters still to
// show: a page shows those before it, newest first.
type cursor []int64

func (c cursor) String() string {
	s := make([]string, len(c))
	for i, o := range c {
		s[i] = strconv.FormatInt(o, 10)
	}
	return strings.Join(s, ",")
}

func parseCursor(v string, partitions int) (cursor, error) {
	parts := strings.Split(v, ",")
	if len(parts) != partitions {
		return nil, fmt.Errorf("before: %q has %d offsets; the dead-letter topic has %d partitions", v, len(parts), partitions)
	}
	c := make(cursor, len(parts))
	for i, p := range parts {
		o, err := strconv.ParseInt(p, 10, 64)
		if err != nil || o < 0 {
			return nil, fmt.Errorf("before: %q is not a list of offsets", v)
		}
		c[i] = o
	}
	return c, nil
}

// deadLetterPageOf is one page of the list.
type deadLetterPageOf struct {
	Rows []deadLetterRow
	// Next is where the next page begins; More says whether there is one.
	Next cursor
	More bool
	// Scanned is how many dead letters the page read.
	Scanned int
}

// page reads, newest first by the log's time, up to n dead letters matching
// f before c (nil: the end of the topic now). It reads the topic backwards
// in windows of deadLetterChunk offsets, merging the partitions, and holds
// at most what it read of one window per partition beyond the page.
func (d DeadLetters) page(ctx context.Context, f deadLetterFilter, c cursor, n int) (deadLetterPageOf, error) {
	first, err := d.Log.Offsets(ctx, d.Topic, queue.Position{Kind: queue.First})
	if err != nil {
		return deadLetterPageOf{}, err
	}
	if c == nil {
		if c, err = d.Log.Offsets(ctx, d.Topic, queue.Position{Kind: queue.Last}); err != nil {
			return deadLetterPageOf{}, err
		}
	}
	if len(c) != len(first) {
		return deadLetterPageOf{}, fmt.Errorf("the cursor has %d partitions; the dead-letter topic has %d", len(c), len(first))
	}
	// low[p]: every offset of p from low[p] up to the cursor is read;
	// buf[p]: what matched there and is not shown yet, newest first.
	low := slices.Clone(c)
	buf := make([][]deadLetterRow, len(c))
	var pg deadLetterPageOf
	for len(pg.Rows) < n {
		hi := int64(-1)
		for p := range low {
			if len(buf[p]) == 0 && low[p] > first[p] {
				hi = max(hi, low[p]-1)
			}
		}
		if hi >= 0 {
			if pg.Scanned >= deadLetterScan {
				break
			}
			lo := max(hi-deadLetterChunk+1, 0)
			got, scanned, err := d.window(ctx, f, lo, hi, low)
			pg.Scanned += scanned
			if err != nil {
				return pg, err
			}
			for p := range low {
				if low[p]-1 >= lo && low[p]-1 <= hi {
					slices.Reverse(got[p])
					buf[p] = append(buf[p], got[p]...)
					low[p] = max(lo, first[p])
				}
			}
			continue
		}
		best := -1
		for p := range buf {
			if len(buf[p]) > 0 && (best < 0 || buf[p][0].LogTime.After(buf[best][0].LogTime)) {
				best = p
			}
		}
		if best < 0 {
			break
		}
		pg.Rows = append(pg.Rows, buf[best][0])
		buf[best] = buf[best][1:]
	}
	pg.Next = make(cursor, len(c))
	for p := range c {
		pg.Next[p] = low[p]
		if len(buf[p]) > 0 {
			pg.Next[p] = buf[p][0].Offset + 1
		}
		if pg.Next[p] > first[p] {
			pg.More = true
		}
	}
	return pg, nil
}

// window reads the offsets lo through hi of every partition and returns,
// per partition, the dead letters below low[p] that match f, oldest first.
func (d DeadLetters) window(ctx context.Context, f deadLetterFilter, lo, hi int64, low cursor) ([][]deadLetterRow, int, error) {
	rng, err := queue.ReadRange(ctx, d.Log, d.Topic, queue.Position{Kind: queue.AtOffset, Offset: lo}, queue.Position{Kind: queue.AtOffset, Offset: hi})
	if err != nil {
		return nil, 0, err
	}
	defer rng.Close()
	got := make([][]deadLetterRow, len(low))
	scanned := 0
	for {
		m, err := rng.Fetch(ctx)
		if errors.Is(err, io.EOF) {
			return got, scanned, nil
		}
		if err != nil {
			return nil, scanned, err
		}
		if m.Partition < 0 || m.Partition >= len(low) || m.Offset < lo || m.Offset >= low[m.Partition] {
			continue
		}
		scanned++
		dl, err := decodeDeadLetter(m)
		if err != nil || !f.matches(dl) {
			continue
		}
		got[m.Partition] = append(got[m.Partition], rowOf(m, dl))
	}
}

// one reads the dead letter at offset of partition.
func (d DeadLetters) one(ctx context.Context, partition int, offset int64) (queue.Message, *queue.DeadLetter, error) {
	n, err := d.Log.Partitions(ctx, d.Topic)
	if err != nil {
		return queue.Message{}, nil, err
	}
	if partition < 0 || partition >= n || offset < 0 {
		return queue.Message{}, nil, errNoDeadLetter
	}
	rng, err := queue.ReadRange(ctx, d.Log, d.Topic, queue.Position{Kind: queue.AtOffset, Offset: offset}, queue.Position{Kind: queue.AtOffset, Offset: offset})
	if err != nil {
		return queue.Message{}, nil, err
	}
	defer rng.Close()
	for {
		m, err := rng.Fetch(ctx)
		if errors.Is(err, io.EOF) {
			return queue.Message{}, nil, errNoDeadLetter
		}
		if err != nil {
			return queue.Message{}, nil, err
		}
		if m.Partition == partition && m.Offset == offset {
			dl, err := decodeDeadLetter(m)
			return m, dl, err
		}
	}
}

var errNoDeadLetter = errors.New("no such dead letter: it was never written, or retention removed it")

// replayJob is one replay the panel started.
type replayJob struct {
	ID          int64
	What        string
	Destination string
	Started     time.Time
	mu          sync.Mutex
	progress    ReplayProgress
	finished    bool
	err         error
	ended       time.Time
}

// replayView is a replay as the panel shows it.
type replayView struct {
	ID                 int64
	What, Destinations string
	Started, Ended     string
	Progress           ReplayProgress
	Finished           bool
	Err                string
}

// Refusals is the reasons of the refusals, for a person.
func (v replayView) Refusals() string { return strings.Join(v.Progress.Reasons, "; ") }

func (j *replayJob) view() replayView {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := replayView{ID: j.ID, What: j.What, Destinations: j.Destination, Started: j.Started.UTC().Format(time.RFC3339),
		Progress: j.progress, Finished: j.finished}
	if j.finished {
		v.Ended = j.ended.UTC().Format(time.RFC3339)
	}
	if j.err != nil {
		v.Err = j.err.Error()
	}
	return v
}

// replays runs the panel's replays, one at a time, and remembers the last.
type replays struct {
	mu     sync.Mutex
	nextID int64
	jobs   []*replayJob // newest last
}

func (rs *replays) running() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.jobs) == 0 {
		return false
	}
	j := rs.jobs[len(rs.jobs)-1]
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.finished
}

func (rs *replays) views() []replayView {
	rs.mu.Lock()
	jobs := slices.Clone(rs.jobs)
	rs.mu.Unlock()
	views := make([]replayView, 0, len(jobs))
	for i := len(jobs) - 1; i >= 0; i-- {
		views = append(views, jobs[i].view())
	}
	return views
}

// replayPlan is what one replay action delivers: per destination, the pick.
type replayPlan struct {
	what  string
	dests []string
	picks map[string]func(queue.Message) bool
}

// start runs plan in the background, under ctx, unless a replay runs.
func (rs *replays) start(ctx context.Context, replay ReplayFunc, plan replayPlan, now time.Time) (*replayJob, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if n := len(rs.jobs); n > 0 {
		last := rs.jobs[n-1]
		last.mu.Lock()
		busy := !last.finished
		last.mu.Unlock()
		if busy {
			return nil, errors.New("a replay is running; wait for it to finish")
		}
	}
	rs.nextID++
	j := &replayJob{ID: rs.nextID, What: plan.what, Destination: strings.Join(plan.dests, ", "), Started: now}
	rs.jobs = append(rs.jobs, j)
	if len(rs.jobs) > replayHistory {
		rs.jobs = rs.jobs[len(rs.jobs)-replayHistory:]
	}
	go func() {
		var err error
		var before ReplayProgress
		for _, dest := range plan.dests {
			err = replay(ctx, dest, plan.picks[dest], func(p ReplayProgress) {
				j.mu.Lock()
				j.progress = before.plus(p)
				j.mu.Unlock()
			})
			j.mu.Lock()
			before = j.progress
			j.mu.Unlock()
			if err != nil {
				err = fmt.Errorf("replaying to %s: %w", dest, err)
				break
			}
		}
		j.mu.Lock()
		j.finished, j.err, j.ended = true, err, time.Now()
		j.mu.Unlock()
	}()
	return j, nil
}

// deadLettersView is the dead-letter page's data.
type deadLettersView struct {
	CSRF      string
	NoToken   bool
	CanReplay bool
	Filter    deadLetterFilter
	Query     string // the filter as a query string
	Page      deadLetterPageOf
	NextURL   string
	Stages    []string
	Classes   []string
	Replays   []replayView
	Running   bool
	Problem   string
}

func (h *Handler) serveDeadLetters(w http.ResponseWriter, r *http.Request, s session) {
	v := deadLettersView{NoToken: h.cfg.AdminToken == "", CanReplay: h.cfg.DeadLetters.Replay != nil,
		Replays: h.replays.views(), Running: h.replays.running()}
	if s.expires.After(time.Time{}) {
		v.CSRF = h.auth.csrfToken(s)
	}
	d := h.cfg.DeadLetters
	if d.Log == nil {
		http.Error(w, "this process has no dead-letter topic", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	v.Filter = filterFrom(q)
	v.Query = v.Filter.query().Encode()
	n := deadLetterPage
	if l := q.Get("limit"); l != "" {
		var err error
		if n, err = strconv.Atoi(l); err != nil || n < 1 || n > deadLetterPageMax {
			http.Error(w, fmt.Sprintf("limit: %q must be a number from 1 to %d", l, deadLetterPageMax), http.StatusBadRequest)
			return
		}
	}
	var c cursor
	if b := q.Get("before"); b != "" {
		parts, err := d.Log.Partitions(r.Context(), d.Topic)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if c, err = parseCursor(b, parts); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	pg, err := d.page(r.Context(), v.Filter, c, n)
	if err != nil {
		v.Problem = "Reading the dead letters failed: " + err.Error()
	}
	v.Page = pg
	if pg.More {
		next := v.Filter.query()
		next.Set("before", pg.Next.String())
		if n != deadLetterPage {
			next.Set("limit", strconv.Itoa(n))
		}
		v.NextURL = "/ui/deadletters?" + next.Encode()
	}
	for _, row := range pg.Rows {
		if !slices.Contains(v.Stages, row.Stage) {
			v.Stages = append(v.Stages, row.Stage)
		}
		if row.Class != "" && !slices.Contains(v.Classes, row.Class) {
			v.Classes = append(v.Classes, row.Class)
		}
	}
	slices.Sort(v.Stages)
	slices.Sort(v.Classes)
	h.writePage(w, r, http.StatusOK, "deadletters", v)
}

// deadLetterView is one dead letter's page.
type deadLetterView struct {
	CSRF         string
	CanReplay    bool
	Row          deadLetterRow
	LastResponse string
	Event        string
}

func (h *Handler) serveDeadLetter(w http.ResponseWriter, r *http.Request, s session) {
	d := h.cfg.DeadLetters
	if d.Log == nil {
		http.Error(w, "this process has no dead-letter topic", http.StatusNotFound)
		return
	}
	partition, err1 := strconv.Atoi(r.PathValue("partition"))
	offset, err2 := strconv.ParseInt(r.PathValue("offset"), 10, 64)
	if err1 != nil || err2 != nil {
		http.Error(w, "a dead letter is named by its partition and offset, both numbers", http.StatusBadRequest)
		return
	}
	m, dl, err := d.one(r.Context(), partition, offset)
	switch {
	case errors.Is(err, errNoDeadLetter):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	v := deadLetterView{CanReplay: d.Replay != nil, Row: rowOf(m, dl), LastResponse: dl.LastResponse, Event: showEvent(dl.Message)}
	if s.expires.After(time.Time{}) {
		v.CSRF = h.auth.csrfToken(s)
	}
	h.writePage(w, r, http.StatusOK, "deadletter", v)
}

// showEvent indents an event for reading, without a writeKey should one be
// in it.
func showEvent(raw json.RawMessage) string {
	if gjson.GetBytes(raw, "writeKey").Exists() {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) == nil {
			delete(m, "writeKey")
			raw, _ = json.Marshal(m)
		}
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// serveReplay starts a replay: of the dead letters selected (form values
// "pick", each "destination/partition/offset"), or with all=1 of every one
// matching the filter, at most max of them.
func (h *Handler) serveReplay(w http.ResponseWriter, r *http.Request) {
	d := h.cfg.DeadLetters
	if d.Log == nil || d.Replay == nil {
		http.Error(w, "this process cannot replay dead letters", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	plan, err := replayPlanFrom(r.PostForm)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := h.replays.start(h.cfg.Context, d.Replay, plan, h.cfg.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	back := "/ui/deadletters"
	if q := filterFrom(r.PostForm).query().Encode(); q != "" {
		back += "?" + q
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func replayPlanFrom(form url.Values) (replayPlan, error) {
	plan := replayPlan{picks: map[string]func(queue.Message) bool{}}
	if form.Get("all") == "1" {
		f := filterFrom(form)
		if f.Destination == "" || f.Destination == "gateway" {
			return plan, errors.New("to replay every dead letter matching a filter, filter by a destination")
		}
		limit := int64(-1)
		if m := form.Get("max"); m != "" {
			n, err := strconv.ParseInt(m, 10, 64)
			if err != nil || n < 1 {
				return plan, fmt.Errorf("max: %q must be a positive number", m)
			}
			limit = n
		}
		var picked atomic.Int64
		plan.what, plan.dests = f.String(), []string{f.Destination}
		if limit > 0 {
			plan.what += fmt.Sprintf(", at most %d", limit)
		}
		plan.picks[f.Destination] = func(m queue.Message) bool {
			dl, err := decodeDeadLetter(m)
			if err != nil || !f.matches(dl) {
				return false
			}
			return limit < 0 || picked.Add(1) <= limit
		}
		return plan, nil
	}
	picks := form["pick"]
	if len(picks) == 0 {
		return plan, errors.New("select the dead letters to replay, or replay every one matching the filter")
	}
	chosen := map[string]map[[2]int64]bool{}
	for _, p := range picks {
		dest, place, ok1 := strings.Cut(p, "/")
		part, off, ok2 := strings.Cut(place, "/")
		pn, err1 := strconv.Atoi(part)
		on, err2 := strconv.ParseInt(off, 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || dest == "" || pn < 0 || on < 0 {
			return plan, fmt.Errorf("pick: %q is not destination/partition/offset", p)
		}
		if dest == "gateway" {
			return plan, fmt.Errorf("pick: %d/%d was refused by the gateway and has no destination to replay to", pn, on)
		}
		if chosen[dest] == nil {
			chosen[dest] = map[[2]int64]bool{}
			plan.dests = append(plan.dests, dest)
		}
		chosen[dest][[2]int64{int64(pn), on}] = true
	}
	slices.Sort(plan.dests)
	for _, dest := range plan.dests {
		set := chosen[dest]
		plan.picks[dest] = func(m queue.Message) bool { return set[[2]int64{int64(m.Partition), m.Offset}] }
	}
	plan.what = fmt.Sprintf("%d selected", len(picks))
	return plan, nil
}

// serveReplays is the replays fragment, which polls itself while one runs.
func (h *Handler) serveReplays(w http.ResponseWriter, r *http.Request) {
	body, err := h.render("replays", deadLettersView{Replays: h.replays.views(), Running: h.replays.running()})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(body))
}
