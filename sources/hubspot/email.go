package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/transforms/hubspotemail"
	"github.com/switchyard/switchyard/transforms/hubspotsource"
)

// emailCheckpointName is the checkpoint of the email events emitted.
const emailCheckpointName = "email-events"

const (
	// emailPageLimit is the most events one page of the email events API
	// holds (HubSpot's maximum).
	emailPageLimit = 1000
	// emailHoldLimit is the most events a poll holds at once: a time window
	// with more is split.
	emailHoldLimit = 10000
	// emailAppendBatch is the most calls appended before the checkpoint is
	// stored.
	emailAppendBatch = 500
	// emailFirstLookback is how far back the first poll (no checkpoint
	// yet) reads: HubSpot keeps years of email events and reading them all
	// is slow within the rate limits, so, as Segment's HubSpot source does,
	// the first poll reads the last month.
	emailFirstLookback = 30 * 24 * time.Hour
)

// EmailPoller polls HubSpot's marketing email events and appends a track
// call for each event whose recipient is a known user. It reads the events
// created since its checkpoint, oldest first, and stores the checkpoint
// after each append, so each event is appended once across polls and
// restarts.
type EmailPoller struct {
	cfg     Config
	log     queue.Log
	client  *api.Client
	dir     *Directory
	metrics *Metrics
	logger  *zap.Logger

	// pageSize is the limit of each request; holdLimit the most events of a
	// multi-millisecond window held at once.
	pageSize, holdLimit int
	// held is the most events a poll has held at once.
	held int

	// mu makes polls one at a time.
	mu sync.Mutex
}

// emailCheckpoint is how far the emitted email events go: the newest
// created time (epoch ms) and the ids of the events of that millisecond
// already handled, as HubSpot may hold several events of one millisecond
// and a page may end among them.
type emailCheckpoint struct {
	Created int64    `json:"created"`
	IDs     []string `json:"ids"`
}

// emailPosition is a checkpoint with its ids as a set.
type emailPosition struct {
	created int64
	ids     []string
	seen    map[string]bool
}

func (p *emailPosition) done(id string, created int64) bool {
	return created < p.created || created == p.created && p.seen[id]
}

func (p *emailPosition) add(id string, created int64) {
	if created > p.created {
		p.created, p.ids, p.seen = created, nil, map[string]bool{}
	}
	p.ids = append(p.ids, id)
	p.seen[id] = true
}

func (p *emailPosition) checkpoint() emailCheckpoint {
	return emailCheckpoint{Created: p.created, IDs: append([]string{}, p.ids...)}
}

// NewEmailPoller returns the email events poller of source cfg, which must
// have email_events on, reading HubSpot with client (the token's shared
// client), matching recipients to users with dir and keeping its
// checkpoint there.
func NewEmailPoller(cfg Config, log queue.Log, client *api.Client, dir *Directory, m *Metrics, logger *zap.Logger) (*EmailPoller, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case !cfg.EmailEvents:
		return nil, fmt.Errorf("hubspot.email_events: is off for source %s; set it to true to poll email events", cfg.Name)
	case log == nil:
		return nil, errors.New("the email events poller needs a log")
	case client == nil:
		return nil, errNoClient
	case dir == nil:
		return nil, errors.New("the email events poller needs the source's directory")
	case m == nil:
		return nil, errors.New("the email events poller needs the sources' metrics")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	return &EmailPoller{
		cfg: cfg, log: log, client: client, dir: dir, metrics: m,
		logger:   logger.With(zap.String("source", cfg.Name), zap.String("component", "email-events")),
		pageSize: emailPageLimit, holdLimit: emailHoldLimit,
	}, nil
}

// Run polls every EmailEventsInterval, the first time at once, until ctx
// ends, and then returns nil. A failed poll is logged, counted and tried
// again after a pause that grows from a second to the interval; what it
// appended before failing stays appended.
func (e *EmailPoller) Run(ctx context.Context) error {
	interval := time.Duration(e.cfg.EmailEventsInterval)
	pause := time.Second
	for {
		wait := interval
		n, err := e.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			e.metrics.emailPolls.WithLabelValues(e.cfg.Name, "failed").Inc()
			wait, pause = min(pause, interval), min(2*pause, interval)
			e.logger.Warn("polling HubSpot email events; trying again", zap.Int("appended", n), zap.Duration("in", wait), zap.Error(err))
		} else {
			e.metrics.emailPolls.WithLabelValues(e.cfg.Name, "ok").Inc()
			pause = time.Second
			e.logger.Debug("polled HubSpot email events", zap.Int("appended", n))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Poll reads the email events created since the checkpoint up to now,
// oldest first, appends a track (transforms/hubspotemail.Track) for each
// event whose recipient is a known user, counts the others, stores the
// checkpoint after each append and returns how many calls it appended.
//
// HubSpot returns events newest first, so a time window is read whole
// before it is processed. A window with more than the poller holds is
// split by time; one millisecond is never split, its events being
// processed page by page.
func (e *EmailPoller) Poll(ctx context.Context) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	hi := e.cfg.Now().UnixMilli()
	var cp emailCheckpoint
	found, err := e.dir.Checkpoint(emailCheckpointName, &cp)
	if err != nil {
		return 0, err
	}
	if !found {
		cp.Created = max(0, hi-emailFirstLookback.Milliseconds())
	}
	pos := &emailPosition{created: cp.Created, ids: cp.IDs, seen: map[string]bool{}}
	for _, id := range cp.IDs {
		pos.seen[id] = true
	}
	appended := 0
	for lo, span := cp.Created, hi-cp.Created; lo <= hi; {
		end := min(hi, lo+span)
		var events []gjson.Result
		complete, err := e.read(ctx, lo, end, func(page []gjson.Result) (bool, error) {
			if lo == end {
				// One millisecond: its events are equally old.
				n, err := e.emit(ctx, pos, oldestFirst(page))
				appended += n
				return err == nil, err
			}
			events = append(events, page...)
			e.held = max(e.held, len(events))
			return len(events) <= e.holdLimit, nil
		})
		if err != nil {
			return appended, err
		}
		if !complete {
			// [oldest, end] alone holds more than holdLimit events.
			oldest := events[len(events)-1].Get("created").Int()
			span = max(0, (oldest-lo)/2)
			continue
		}
		n, err := e.emit(ctx, pos, oldestFirst(events))
		appended += n
		if err != nil {
			return appended, err
		}
		if len(events) <= e.holdLimit/2 {
			// Widen a window that held at most half of what may be held
			// (an empty one always, however small holdLimit is).
			span = min(2*span+1, hi)
		}
		lo = end + 1
	}
	return appended, nil
}

// read reads the events created from start to end (inclusive), newest
// first, handing each page to page, until there are no more or page
// returns false; it reports whether it read them all.
func (e *EmailPoller) read(ctx context.Context, start, end int64, page func([]gjson.Result) (bool, error)) (bool, error) {
	q := url.Values{}
	q.Set("startTimestamp", strconv.FormatInt(start, 10))
	q.Set("endTimestamp", strconv.FormatInt(end, 10))
	q.Set("limit", strconv.Itoa(e.pageSize))
	for {
		resp, err := e.client.Do(ctx, api.Standard, http.MethodGet, "/email/public/v1/events?"+q.Encode(), nil)
		if err != nil {
			return false, fmt.Errorf("reading email events: %w", err)
		}
		body := gjson.ParseBytes(resp.Body)
		events := body.Get("events")
		if !events.IsArray() {
			return false, fmt.Errorf("reading email events: the answer has no events array: %.200s", resp.Body)
		}
		more, err := page(events.Array())
		if err != nil || !more {
			return false, err
		}
		if !body.Get("hasMore").Bool() {
			return true, nil
		}
		offset := body.Get("offset").String()
		if offset == "" {
			return false, errors.New("reading email events: hasMore without an offset")
		}
		q.Set("offset", offset)
	}
}

// oldestFirst returns events, which HubSpot gives newest first, oldest
// first.
func oldestFirst(events []gjson.Result) []gjson.Result {
	out := make([]gjson.Result, len(events))
	for i, ev := range events {
		out[len(events)-1-i] = ev
	}
	return out
}

// emit appends the calls of events, oldest first, leaving out those the
// position has passed, emailAppendBatch at a time, and stores the position
// after each append.
func (e *EmailPoller) emit(ctx context.Context, pos *emailPosition, events []gjson.Result) (int, error) {
	appended := 0
	for start := 0; start < len(events); start += emailAppendBatch {
		var msgs []queue.Message
		outcomes := map[string]int{}
		moved := false
		for _, ev := range events[start:min(start+emailAppendBatch, len(events))] {
			id := ev.Get("id")
			created, err := strconv.ParseInt(ev.Get("created").Raw, 10, 64)
			if id.Type != gjson.String || id.Str == "" || err != nil {
				outcomes["invalid"]++
				e.logger.Warn("an email event without its id or created time; leaving it out", zap.String("event", emailExcerpt(ev.Raw)))
				continue
			}
			if pos.done(id.Str, created) {
				continue
			}
			pos.add(id.Str, created)
			moved = true
			userID, ok := e.dir.UserByEmail(ev.Get("recipient").String())
			if !ok {
				outcomes["unknown_user"]++
				continue
			}
			value, err := e.track(ev, userID)
			if err != nil {
				outcomes["invalid"]++
				e.logger.Warn("an email event does not make a track; leaving it out", zap.String("id", id.Str), zap.Error(err))
				continue
			}
			msgs = append(msgs, queue.Message{Topic: e.cfg.EventsTopic, Key: []byte(userID), Value: value})
		}
		if len(msgs) > 0 {
			if err := e.log.Publish(ctx, msgs...); err != nil {
				return appended, fmt.Errorf("appending to %s: %w", e.cfg.EventsTopic, err)
			}
		}
		// Counted once appended, so a count never leads the log.
		appended += len(msgs)
		outcomes["emitted"] = len(msgs)
		for outcome, n := range outcomes {
			e.metrics.emailEvents.WithLabelValues(e.cfg.Name, outcome).Add(float64(n))
		}
		e.metrics.calls.WithLabelValues(e.cfg.Name, "track").Add(float64(len(msgs)))
		if !moved {
			continue
		}
		if err := e.dir.SetCheckpoint(emailCheckpointName, pos.checkpoint()); err != nil {
			return appended, err
		}
		e.metrics.emailCheckpoint.WithLabelValues(e.cfg.Name).Set(float64(pos.created) / 1000)
	}
	return appended, nil
}

// track is the track call of an email event for userID, carrying, as every
// call of the source does, its receivedAt and _switchyard.source, and
// _switchyard.hubspot (the portal it came from, objectType email_events and
// the event's id), so it is never written back to that portal.
func (e *EmailPoller) track(ev gjson.Result, userID string) ([]byte, error) {
	call, err := hubspotemail.Track(ev, userID)
	if err != nil {
		return nil, err
	}
	var extra struct {
		ReceivedAt string `json:"receivedAt"`
		Switchyard struct {
			Source  string `json:"source"`
			HubSpot struct {
				HubID      int64  `json:"hubId"`
				ObjectType string `json:"objectType"`
				ObjectID   string `json:"objectId"`
			} `json:"hubspot"`
		} `json:"_switchyard"`
	}
	extra.ReceivedAt = e.cfg.Now().UTC().Format(hubspotsource.TimeLayout)
	extra.Switchyard.Source = e.cfg.Name
	extra.Switchyard.HubSpot.HubID = ev.Get("portalId").Int()
	extra.Switchyard.HubSpot.ObjectType = "email_events"
	extra.Switchyard.HubSpot.ObjectID = ev.Get("id").String()
	raw, err := json.Marshal(extra)
	if err != nil {
		return nil, err
	}
	// Both are JSON objects: join their members.
	return append(append(call[:len(call)-1:len(call)-1], ','), raw[1:]...), nil
}

// emailExcerpt cuts an event's JSON short for a log line.
func emailExcerpt(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
