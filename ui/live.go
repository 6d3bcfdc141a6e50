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
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/router"
	"github.com/switchyard/switchyard/schemas"
	"github.com/tidwall/gjson"
)

// LiveConfig is what the live events panel reads: the events topic, read
// without a consumer group from its end, and what became of each event.
// With no Log the panel says it has nothing to show.
type LiveConfig struct {
	// Log holds the topics. The panel only reads it.
	Log queue.Log
	// Topic is the events topic and DLQTopic the dead-letter topic.
	Topic    string
	DLQTopic string
	// Outcomes tells what this process's routers did with recent events;
	// nil when the process runs no router.
	Outcomes OutcomeLookup
	// Buffer is how many events a viewer may fall behind before the tap
	// drops events for it (and the page says how many); 0 means 256.
	Buffer int
}

// OutcomeLookup is what the routers of this process did with recent
// events (router.Outcomes is one).
type OutcomeLookup interface {
	// Destinations names the destinations the routers deliver to.
	Destinations() []string
	// Of returns the outcomes kept for the event at topic, partition and
	// offset, oldest first.
	Of(topic string, partition int, offset int64) []router.Outcome
}

// dlqScanLimit bounds the dead letters read to find an event's.
const dlqScanLimit = 10_000

// liveFilter selects the events a viewer sees; an empty field matches all.
type liveFilter struct {
	Source, Type, UserID, Event string
}

func parseLiveFilter(q url.Values) liveFilter {
	return liveFilter{Source: q.Get("source"), Type: q.Get("type"), UserID: q.Get("userId"), Event: q.Get("event")}
}

func (f liveFilter) matches(e liveEvent) bool {
	return (f.Source == "" || f.Source == e.Source) && (f.Type == "" || f.Type == e.Type) &&
		(f.UserID == "" || f.UserID == e.UserID) && (f.Event == "" || f.Event == e.Event)
}

// query is the filter as URL query parameters, empty ones left out.
func (f liveFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"source": f.Source, "type": f.Type, "userId": f.UserID, "event": f.Event} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// liveEvent is one row of the live list.
type liveEvent struct {
	Partition   int    `json:"partition"`
	Offset      int64  `json:"offset"`
	Time        string `json:"time"`
	Type        string `json:"type"`
	Event       string `json:"event,omitempty"`
	UserID      string `json:"userId,omitempty"`
	AnonymousID string `json:"anonymousId,omitempty"`
	Source      string `json:"source"`
	MessageID   string `json:"messageId"`
}

// newLiveEvent reads m's row in one pass over its top-level fields: the tap
// reads every event the gateway takes in, so each Get would cost a pass.
// The fields read as schemas.Event's accessors read them.
func newLiveEvent(m queue.Message) liveEvent {
	e := liveEvent{Partition: m.Partition, Offset: m.Offset, Time: m.Time.UTC().Format(time.RFC3339Nano)}
	var typ, event, userID, anonymousID, messageID, switchyard gjson.Result
	// first keeps a repeated key's first value, as gjson's Get reads it.
	first := func(dst *gjson.Result, v gjson.Result) {
		if !dst.Exists() {
			*dst = v
		}
	}
	gjson.ParseBytes(m.Value).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			first(&typ, v)
		case "event":
			first(&event, v)
		case "userId":
			first(&userID, v)
		case "anonymousId":
			first(&anonymousID, v)
		case "messageId":
			first(&messageID, v)
		case "_switchyard":
			first(&switchyard, v)
		}
		return true
	})
	e.Type, e.Event, e.MessageID, e.Source = typ.String(), event.String(), messageID.String(), switchyard.Get("source").String()
	e.UserID, e.AnonymousID = schemas.IDString(userID), schemas.IDString(anonymousID)
	return e
}

// tap reads the events topic from its end while anyone watches and offers
// each event to the viewers whose filter it matches, never waiting for one.
type tap struct {
	cfg LiveConfig
	ctx context.Context

	mu      sync.Mutex
	viewers map[*tapViewer]struct{}
	stop    context.CancelFunc // ends the running read; nil when none runs
}

type tapViewer struct {
	filter  liveFilter
	ch      chan liveEvent
	dropped atomic.Int64
}

func newTap(cfg LiveConfig, ctx context.Context) *tap {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	return &tap{cfg: cfg, ctx: ctx, viewers: map[*tapViewer]struct{}{}}
}

// subscribe adds a viewer, starting the read at the topic's end when it is
// the first: the viewer sees the events published after subscribe returns.
func (t *tap) subscribe(f liveFilter) (*tapViewer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop == nil {
		ctx, stop := context.WithCancel(t.ctx)
		rd, err := t.cfg.Log.Read(ctx, t.cfg.Topic, queue.Position{Kind: queue.Last})
		if err != nil {
			stop()
			return nil, fmt.Errorf("reading %s: %w", t.cfg.Topic, err)
		}
		t.stop = stop
		go t.read(ctx, rd)
	}
	v := &tapViewer{filter: f, ch: make(chan liveEvent, t.cfg.Buffer)}
	t.viewers[v] = struct{}{}
	return v, nil
}

// unsubscribe removes a viewer; the read stops with the last one.
func (t *tap) unsubscribe(v *tapViewer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.viewers, v)
	if len(t.viewers) == 0 && t.stop != nil {
		t.stop()
		t.stop = nil
	}
}

func (t *tap) read(ctx context.Context, rd queue.Reader) {
	defer rd.Close()
	for {
		m, err := rd.Fetch(ctx)
		if err != nil {
			t.mu.Lock()
			if ctx.Err() == nil {
				// The log failed: the next viewer starts a new read.
				t.stop()
				t.stop = nil
			}
			t.mu.Unlock()
			return
		}
		t.offer(newLiveEvent(m))
	}
}

// offer hands e to every viewer it matches; a viewer whose buffer is full
// misses it and counts the miss.
func (t *tap) offer(e liveEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for v := range t.viewers {
		if !v.filter.matches(e) {
			continue
		}
		select {
		case v.ch <- e:
		default:
			v.dropped.Add(1)
		}
	}
}

// maxTapBatch caps the events written to a stream in one write.
const maxTapBatch = 100

// runTap writes v's events to a stream as "tap" events, and before them a
// "tap-dropped" event with the running count whenever events were dropped,
// until ctx or the page's Context ends or a write fails.
func (h *Handler) runTap(ctx context.Context, v *tapViewer, send func([]byte) error) error {
	heartbeat := time.NewTicker(h.cfg.Heartbeat)
	defer heartbeat.Stop()
	var buf bytes.Buffer
	var dropped int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.cfg.Context.Done():
			return nil
		case <-heartbeat.C:
			if err := send([]byte(": ping\n\n")); err != nil {
				return err
			}
		case e := <-v.ch:
			buf.Reset()
			for n := 0; ; n++ {
				p, _ := json.Marshal(e)
				sseEvent(&buf, "tap", 0, string(p))
				if n+1 == maxTapBatch || len(v.ch) == 0 {
					break
				}
				e = <-v.ch
			}
			if n := v.dropped.Swap(0); n > 0 {
				dropped += n
				sseEvent(&buf, "tap-dropped", 0, fmt.Sprintf(`{"dropped":%d}`, dropped))
			}
			if err := send(buf.Bytes()); err != nil {
				return err
			}
		}
	}
}

// liveView is the live page's data.
type liveView struct {
	CSRF      string
	NoToken   bool
	Available bool
	Filter    liveFilter
	Types     []string
	Stream    string // the stream's URL, filter included
}

func (h *Handler) serveLive(w http.ResponseWriter, r *http.Request, s session) {
	f := parseLiveFilter(r.URL.Query())
	q := f.query()
	q.Set("live", "1")
	v := liveView{
		NoToken:   h.cfg.AdminToken == "",
		Available: h.cfg.Live.Log != nil,
		Filter:    f,
		Types:     []string{"identify", "track", "page", "screen", "group", "alias"},
		Stream:    "/ui/stream?" + q.Encode(),
	}
	if s.expires.After(time.Time{}) {
		v.CSRF = h.auth.csrfToken(s)
	}
	h.writePage(w, r, http.StatusOK, "live", v)
}

// eventView is an opened event: its stored JSON and, per destination, what
// became of it.
type eventView struct {
	Partition    int
	Offset       int64
	MessageID    string
	Time         string
	JSON         string
	NoRouter     bool
	Destinations []destOutcomes
}

// destOutcomes is what one destination did with the event: the attempts
// its router kept, else the dead letter found in the dead-letter topic,
// else nothing recorded; then what replays of its dead letters did.
type destOutcomes struct {
	Destination string
	Outcomes    []router.Outcome
	DeadLetter  *queue.DeadLetter
	// Replayed are the outcomes kept of the replays of the event's dead
	// letters, oldest first.
	Replayed []router.Outcome
}

// Final is the destination's last known outcome: a router result name, or
// "not recorded".
func (d destOutcomes) Final() string {
	switch {
	case len(d.Replayed) > 0:
		return d.Replayed[len(d.Replayed)-1].Result
	case len(d.Outcomes) > 0:
		return d.Outcomes[len(d.Outcomes)-1].Result
	case d.DeadLetter != nil:
		return router.ResultDeadLettered
	default:
		return "not recorded"
	}
}

func (h *Handler) serveLiveEvent(w http.ResponseWriter, r *http.Request) {
	live := h.cfg.Live
	if live.Log == nil {
		http.Error(w, "this process reads no log", http.StatusNotFound)
		return
	}
	partition, err1 := strconv.Atoi(r.URL.Query().Get("partition"))
	offset, err2 := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err1 != nil || err2 != nil || partition < 0 || offset < 0 {
		http.Error(w, "partition and offset must be non-negative integers", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	m, err := readAt(ctx, live.Log, live.Topic, partition, offset)
	if errors.Is(err, io.EOF) {
		http.Error(w, fmt.Sprintf("no event at partition %d, offset %d of %s (never written, or removed by retention)", partition, offset, live.Topic), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	ev := schemas.NewEvent(m.Value)
	v := eventView{Partition: partition, Offset: offset, MessageID: ev.MessageID(), Time: m.Time.UTC().Format(time.RFC3339Nano), NoRouter: live.Outcomes == nil}
	var pretty bytes.Buffer
	if json.Indent(&pretty, m.Value, "", "  ") == nil {
		v.JSON = pretty.String()
	} else {
		v.JSON = string(m.Value)
	}
	byDest := map[string]*destOutcomes{}
	var order []string
	dest := func(name string) *destOutcomes {
		if byDest[name] == nil {
			byDest[name] = &destOutcomes{Destination: name}
			order = append(order, name)
		}
		return byDest[name]
	}
	if live.Outcomes != nil {
		for _, name := range live.Outcomes.Destinations() {
			dest(name)
		}
		for _, oc := range live.Outcomes.Of(live.Topic, partition, offset) {
			d := dest(oc.Destination)
			d.Outcomes = append(d.Outcomes, oc)
		}
	}
	// The dead letters are read when a destination's outcomes are not kept,
	// or end in a dead letter, which a replay may have delivered since.
	lookUp := live.Outcomes == nil
	for _, d := range byDest {
		lookUp = lookUp || d.Final() == "not recorded" || d.Final() == router.ResultDeadLettered
	}
	if lookUp && live.DLQTopic != "" && v.MessageID != "" {
		dls, err := findDeadLetters(ctx, live.Log, live.DLQTopic, v.MessageID, m.Time)
		if err != nil {
			http.Error(w, "reading the dead letters: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		for _, dl := range dls {
			if d := dest(dl.Stage); len(d.Outcomes) == 0 {
				d.DeadLetter = &dl.DeadLetter
			}
			// A replay reads the dead letter, so its router keeps its
			// outcomes under the dead letter's place.
			if live.Outcomes != nil {
				for _, oc := range live.Outcomes.Of(live.DLQTopic, dl.Partition, dl.Offset) {
					d := dest(oc.Destination)
					d.Replayed = append(d.Replayed, oc)
				}
			}
		}
		for _, d := range byDest {
			slices.SortStableFunc(d.Replayed, func(a, b router.Outcome) int { return a.At.Compare(b.At) })
		}
	}
	for _, name := range order {
		v.Destinations = append(v.Destinations, *byDest[name])
	}
	body, err := h.render("live-event", v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(body))
}

// readAt reads the message at partition and offset of topic, or io.EOF
// when there is none.
func readAt(ctx context.Context, l queue.Log, topic string, partition int, offset int64) (queue.Message, error) {
	at := queue.Position{Kind: queue.AtOffset, Offset: offset}
	rg, err := queue.ReadRange(ctx, l, topic, at, at)
	if err != nil {
		return queue.Message{}, err
	}
	defer rg.Close()
	for {
		m, err := rg.Fetch(ctx)
		if err != nil {
			return queue.Message{}, err
		}
		if m.Partition == partition && m.Offset == offset {
			return m, nil
		}
	}
}

// placedDeadLetter is a dead letter and its place on the dead-letter topic.
type placedDeadLetter struct {
	queue.DeadLetter
	Partition int
	Offset    int64
}

// findDeadLetters reads the dead letters written since the event was
// appended (at most dlqScanLimit of them) for those of messageID, oldest
// first in each partition.
func findDeadLetters(ctx context.Context, l queue.Log, topic, messageID string, since time.Time) ([]placedDeadLetter, error) {
	rg, err := queue.ReadRange(ctx, l, topic, queue.Position{Kind: queue.AtTime, Time: since}, queue.Position{Kind: queue.Last})
	if err != nil {
		return nil, err
	}
	defer rg.Close()
	var found []placedDeadLetter
	for range dlqScanLimit {
		m, err := rg.Fetch(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		var dl queue.DeadLetter
		if json.Unmarshal(m.Value, &dl) != nil || schemas.NewEvent(dl.Message).MessageID() != messageID {
			continue
		}
		found = append(found, placedDeadLetter{DeadLetter: dl, Partition: m.Partition, Offset: m.Offset})
	}
	return found, nil
}
