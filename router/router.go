package router

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/internal/dedupe"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/schemas"
)

// Input is what a router reads: a consumer group's subscription for live
// delivery, or a bounded range for replay. Fetch returns io.EOF when a
// bounded input is exhausted. An input that is also a queue.Lagger has its
// lag exported as a metric, one that is a queue.PartitionOwner gives a
// destinations.Sharer destination its share, and one that is a queue.Revoker
// has the router commit what it finished before each rebalance moves its
// partitions.
type Input interface {
	Fetch(ctx context.Context) (queue.Message, error)
	Commit(ctx context.Context, msgs ...queue.Message) error
}

// Router delivers one input's events to one destination.
type Router struct {
	cfg    Config
	dest   destinations.Destination
	policy destinations.Policy
	log    queue.Log
	logger *zap.Logger
	seen   *dedupe.Set
	// displayPath is DisplayName as a gjson path.
	displayPath string

	delivered, retried, deadLettered, skipped prometheus.Counter
	redeliveredHeld, redeliveredDelivered     prometheus.Counter
	revokedInFlight                           prometheus.Counter
	dead                                      *prometheus.CounterVec
	batchSize, latency                        prometheus.Observer
	inFlightGauge, pendingGauge, lagGauge     prometheus.Gauge
}

// New builds a router for dest. Dead letters are written to log.
func New(cfg Config, dest destinations.Destination, log queue.Log, logger *zap.Logger, m *Metrics) (*Router, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	policy := dest.Policy()
	if err := policy.Validate(); err != nil {
		return nil, fmt.Errorf("destinations.%s: %w", cfg.Destination, err)
	}
	seen, err := dedupe.New(cfg.DedupeEntries, time.Duration(cfg.DedupeWindow))
	if err != nil {
		return nil, err
	}
	name := cfg.Destination
	return &Router{
		cfg: cfg, dest: dest, policy: policy, log: log, seen: seen,
		displayPath:  gjson.Escape(cfg.DisplayName),
		logger:       logger.With(zap.String("destination", name)),
		delivered:    m.events.WithLabelValues(name, "delivered"),
		retried:      m.events.WithLabelValues(name, "retried"),
		deadLettered: m.events.WithLabelValues(name, "dead_lettered"),
		skipped:      m.events.WithLabelValues(name, "skipped"),

		redeliveredHeld:      m.redelivered.WithLabelValues(name, "held"),
		redeliveredDelivered: m.redelivered.WithLabelValues(name, "already_delivered"),
		revokedInFlight:      m.redelivered.WithLabelValues(name, "revoked_in_flight"),
		dead:                 m.dead.MustCurryWith(prometheus.Labels{"destination": name}),
		batchSize:            m.batchSize.WithLabelValues(name),
		latency:              m.latency.WithLabelValues(name),
		inFlightGauge:        m.inFlight.WithLabelValues(name),
		pendingGauge:         m.pending.WithLabelValues(name),
		lagGauge:             m.lag.WithLabelValues(name),
	}, nil
}

// Group is the consumer group live delivery uses.
func (r *Router) Group() string { return r.cfg.Group }

// groupWatchInterval is how often the consumer group's lag and ownership
// are read.
const groupWatchInterval = 2 * time.Second

// delivery is one event on its way, owned by the run loop.
type delivery struct {
	msg queue.Message
	// messageID and receivedAt are the event's, read once.
	messageID  string
	receivedAt time.Time
	// seenKey is the event's dedupe key, remembered once it is delivered.
	seenKey      dedupe.Key
	attempt      int
	firstAttempt time.Time
	retryAt      time.Time
	// retrying says the last attempt's outcome was Retry.
	retrying bool
	// batch is the batch the event is in while it is collected or sent.
	batch *batch
}

// keyState holds one user's events in log order. While any is in a batch or
// waiting to be retried, the rest wait behind it.
type keyState struct {
	key    string
	events []*delivery
	busy   bool // events of this key are in a batch being collected or sent
	queued bool // the key is in the ready queue
	// first holds events' first entry, so a key with one event at a time,
	// the usual case, needs no array of its own.
	first [1]*delivery
}

// batch is a group of events being collected or sent.
type batch struct {
	items  []*delivery
	keys   []*keyState
	bytes  int
	opened time.Time
	// events and firsts are the items' events as sent and their first
	// attempts' times, kept for the batch's next use.
	events []destinations.Event
	firsts []time.Time
}

type batchResult struct {
	b        *batch
	outcomes []destinations.Outcome
}

// Run delivers until ctx ends or a bounded input is exhausted and every
// event is finished. On ctx's end it stops fetching, waits up to
// ShutdownTimeout for batches in flight, commits what is finished and
// returns nil. Events not finished are delivered again by the next run.
func (r *Router) Run(ctx context.Context, src Input) error {
	s := &runState{
		r:       r,
		src:     src,
		keys:    make(map[string]*keyState),
		tracker: newTracker(),
		results: make(chan batchResult),
		inbox:   newInbox(r.cfg.MaxPending),
		retryAt: &retryHeap{},
		// About as many deliveries as a router has on their way under a
		// steady load, and a batch more than may be in flight.
		spareDeliveries: spares[delivery]{max: 16384},
		spareBatches:    spares[batch]{max: r.policy.MaxInFlight + 1},
	}
	if rb, ok := src.(queue.Rebalancer); ok {
		s.rebalancer = rb
		s.owned = rb.Assignment()
	}
	return s.run(ctx)
}

type runState struct {
	r   *Router
	src Input

	keys       map[string]*keyState
	ready      []*keyState
	collecting *batch
	inFlight   int
	tracker    *tracker
	pending    int
	retryAt    *retryHeap

	results chan batchResult
	inbox   *inbox
	sendCtx context.Context

	// fetched is the inbox's last batch, kept as its next buffer.
	fetched []fetchResult
	// accepted holds, while a batch of fetched messages is accepted, those
	// left to check against the dedupe set, with their keys.
	accepted   []acceptedMessage
	acceptKeys []dedupe.Key
	// deliveredKeys holds, while a batch's outcomes are applied, the keys
	// of its delivered events.
	deliveredKeys []dedupe.Key
	// spareDeliveries and spareBatches hold finished deliveries and
	// batches, emptied, for the events to come.
	spareDeliveries spares[delivery]
	spareBatches    spares[batch]
	// released counts the messages finished since their slots were last
	// given back to the inbox, and observed the outcomes not yet told to
	// the Observer; flush passes both on.
	released int
	observed []Outcome

	sourceDone bool
	// topic is the topic of the fetched messages, for commits.
	topic string

	// rebalancer is the input as a queue.Rebalancer, or nil when it is not
	// one: then every partition is this router's.
	rebalancer queue.Rebalancer
	// owned is the assignment last applied: the partitions this router
	// owns, each with the generation since which it has owned it.
	owned map[int]int64
	// handedOver is set from the end of a group generation until the
	// next change of assignment is signalled: nothing is sent meanwhile, as
	// the partitions' next owners start after what was committed.
	handedOver bool
}

func (s *runState) run(ctx context.Context) error {
	r := s.r
	fetchCtx, stopFetching := context.WithCancel(ctx)
	defer stopFetching()
	// Batches get their own context: on shutdown they may finish within
	// ShutdownTimeout after ctx has ended.
	sendCtx, abandonSends := context.WithCancel(context.WithoutCancel(ctx))
	defer abandonSends()
	s.sendCtx = sendCtx
	fetcherDone := make(chan struct{})
	go func() {
		defer close(fetcherDone)
		s.fetch(fetchCtx)
	}()
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		r.watchGroup(fetchCtx, s.src)
	}()
	var rebalanced <-chan struct{}
	if s.rebalancer != nil {
		rebalanced = s.rebalancer.Rebalanced()
	}
	var revoking <-chan queue.Revocation
	if rv, ok := s.src.(queue.Revoker); ok {
		revoking = rv.Revoking()
	}

	commitTicker := time.NewTicker(time.Duration(r.cfg.CommitInterval))
	defer commitTicker.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	var runErr error
	for ctx.Err() == nil && runErr == nil {
		s.dispatch()
		if s.sourceDone && s.pending == 0 && s.inFlight == 0 {
			break
		}
		timer.Reset(s.nextWake(r.cfg.Now())) // since Go 1.23 a reset timer delivers no stale tick
		select {
		case <-ctx.Done():
		case <-s.inbox.ready:
			runErr = s.acceptFetched()
		case res := <-s.results:
			s.finish(res)
		case <-rebalanced:
			s.handedOver = false
			s.applyAssignment()
		case rv := <-revoking:
			s.handOver(ctx, rv)
		case <-timer.C:
		case <-commitTicker.C:
			if err := s.commit(ctx); err != nil {
				r.logger.Warn("committing offsets", zap.Error(err))
			}
		}
	}

	// Stop fetching; drain batches in flight within the shutdown timeout.
	stopFetching()
	deadline := time.NewTimer(time.Duration(r.cfg.ShutdownTimeout))
	defer deadline.Stop()
	abandoned := false
	for s.inFlight > 0 {
		select {
		case res := <-s.results:
			s.finish(res)
		case <-deadline.C:
			if !abandoned {
				r.logger.Warn("abandoning batches in flight", zap.Int("batches", s.inFlight))
				abandonSends()
				abandoned = true
			} else {
				r.logger.Warn("waiting for abandoned batches to return", zap.Int("batches", s.inFlight))
			}
			deadline.Reset(time.Duration(r.cfg.ShutdownTimeout))
		}
	}
	// What was fetched after the stop is left for the next run.
	<-fetcherDone
	<-watcherDone
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.commit(commitCtx); err != nil {
		r.logger.Warn("committing offsets at shutdown", zap.Error(err))
	}
	r.pendingGauge.Set(0)
	return runErr
}

// handOver answers the end of a group generation before the member gives up
// its partitions: it waits for the batches in flight until three quarters
// of the time left, then commits everything finished, so that the
// partitions' next owners start after it. Nothing more is sent until the
// next assignment is applied.
func (s *runState) handOver(ctx context.Context, rv queue.Revocation) {
	defer rv.Done()
	r := s.r
	if s.rebalancer != nil {
		// A change of assignment signalled before this end is an older one.
		select {
		case <-s.rebalancer.Rebalanced():
			s.applyAssignment()
		default:
		}
	}
	s.handedOver = true
	wait := time.NewTimer(time.Until(rv.Deadline) * 3 / 4)
	defer wait.Stop()
	for waiting := true; waiting && s.inFlight > 0; {
		select {
		case res := <-s.results:
			s.finish(res)
		case <-wait.C:
			waiting = false
		case <-ctx.Done():
			waiting = false
		}
	}
	commitCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), rv.Deadline)
	defer cancel()
	if err := s.commit(commitCtx); err != nil {
		r.logger.Warn("committing offsets at the end of a group generation", zap.Error(err))
		return
	}
	r.logger.Debug("committed at the end of a group generation", zap.Int("batchesInFlight", s.inFlight))
}

// watchGroup reads, every 2 seconds, the consumer group's lag for the
// metric and, for a Sharer destination, the partitions this member owns.
func (r *Router) watchGroup(ctx context.Context, src Input) {
	lagger, hasLag := src.(queue.Lagger)
	owner, hasOwned := src.(queue.PartitionOwner)
	sharer, isSharer := r.dest.(destinations.Sharer)
	if !hasLag && !(hasOwned && isSharer) {
		return
	}
	ticker := time.NewTicker(groupWatchInterval)
	defer ticker.Stop()
	lastOwned, lastTotal := -1, -1
	for {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if hasLag {
			if lag, err := lagger.Lag(callCtx); err == nil {
				r.lagGauge.Set(float64(lag))
			}
		}
		if hasOwned && isSharer {
			if owned, total, err := owner.Owned(callCtx); err == nil && len(owned) > 0 && (len(owned) != lastOwned || total != lastTotal) {
				lastOwned, lastTotal = len(owned), total
				sharer.SetShare(len(owned), total)
				r.logger.Info("budget share", zap.Int("partitions", len(owned)), zap.Int("of", total))
			}
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// maxFetchBatch is the most messages the fetcher takes from an input that
// fetches in batches at once.
const maxFetchBatch = 512

// fetch reads the source while there is room for more pending events, in
// batches when the source can fetch them.
func (s *runState) fetch(ctx context.Context) {
	if batcher, ok := s.src.(queue.BatchFetcher); ok {
		s.fetchBatches(ctx, batcher)
		return
	}
	for s.inbox.acquire(ctx) {
		msg, err := s.src.Fetch(ctx)
		if err != nil && ctx.Err() != nil {
			return
		}
		s.inbox.put(fetchResult{msg: msg, err: err})
		if err != nil {
			return
		}
	}
}

// fetchBatches is fetch for a source that fetches in batches.
func (s *runState) fetchBatches(ctx context.Context, src queue.BatchFetcher) {
	var buf []queue.Message
	for {
		n := s.inbox.acquireUpTo(ctx, maxFetchBatch)
		if n == 0 {
			return
		}
		var err error
		buf, err = src.FetchBatch(ctx, buf[:0], n)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.inbox.release(n - 1)
			s.inbox.put(fetchResult{err: err})
			return
		}
		s.inbox.release(n - len(buf))
		s.inbox.putAll(buf)
		clear(buf)
	}
}

// acceptedMessage is a fetched message for this destination, to be checked
// against the dedupe set.
type acceptedMessage struct {
	msg queue.Message
	h   header
}

// acceptFetched takes what the fetcher handed over: each message is
// skipped, or queued behind its key. The dedupe set is asked once for all
// of them. A fetch error ends the batch: a bounded input's io.EOF marks the
// source done, any other error is returned.
func (s *runState) acceptFetched() error {
	r := s.r
	// Batches already answered are finished first, so the dedupe set knows
	// what they delivered before a copy of one of their events is taken.
	for answered := true; answered; {
		select {
		case res := <-s.results:
			s.finish(res)
		default:
			answered = false
		}
	}
	s.fetched = s.inbox.take(s.fetched)
	defer s.flush()
	var fetchErr error
	now := r.cfg.Now()
	skipped, held := 0, 0
	for i := range s.fetched {
		f := &s.fetched[i]
		if f.err != nil {
			if errors.Is(f.err, io.EOF) {
				s.sourceDone = true
			} else {
				fetchErr = fmt.Errorf("fetching: %w", f.err)
			}
			break
		}
		msg := f.msg
		if !s.owns(msg.Partition) {
			// Read before the partition was revoked: its new owner delivers it.
			s.released++
			msg.Release()
			continue
		}
		s.topic = msg.Topic
		if !s.tracker.fetched(msg.Partition, msg.Offset) {
			// Delivered again after a rebalance while this router still holds
			// it: in flight, pending, or finished and not yet committed.
			held++
			s.released++
			msg.Release()
			continue
		}
		s.pending++
		h := headerOf(msg)
		if !wantedBy(h.integrations, r.displayPath) {
			s.observe(msg, h.messageID, now, Outcome{Result: ResultSkipped, Reason: "the event's integrations object leaves this destination out"})
			skipped++
			s.done(msg)
			msg.Release()
			continue
		}
		s.accepted = append(s.accepted, acceptedMessage{msg: msg, h: h})
		s.acceptKeys = append(s.acceptKeys, dedupe.KeyOf(h.source, h.messageID))
	}
	clear(s.fetched)
	r.redeliveredHeld.Add(float64(held))
	if len(s.accepted) == 0 {
		r.skipped.Add(float64(skipped))
		return fetchErr
	}
	seen := r.seen.Seen(s.acceptKeys, now)
	delivered := 0
	for i := range s.accepted {
		a := &s.accepted[i]
		if seen[i] {
			delivered++
			s.done(a.msg)
			a.msg.Release()
			continue
		}
		// A new delivery is cleared: only the fields an event starts with
		// are set.
		d := s.spareDeliveries.take()
		d.msg, d.seenKey, d.messageID, d.receivedAt = a.msg, s.acceptKeys[i], a.h.messageID, a.h.receivedAt
		s.queue(d, a.h.key)
	}
	clear(s.accepted)
	s.accepted, s.acceptKeys = s.accepted[:0], s.acceptKeys[:0]
	r.redeliveredDelivered.Add(float64(delivered))
	r.skipped.Add(float64(skipped + delivered))
	return fetchErr
}

// spares keeps finished values of one kind, emptied by the caller, for
// reuse: a delivery per event and a batch per call are the router's largest
// allocations. It keeps at most max.
type spares[T any] struct {
	free []*T
	max  int
}

// take returns a kept value, or a new one when none is.
func (sp *spares[T]) take() *T {
	n := len(sp.free)
	if n == 0 {
		return new(T)
	}
	v := sp.free[n-1]
	sp.free[n-1] = nil
	sp.free = sp.free[:n-1]
	return v
}

// full tells whether keep would drop its value.
func (sp *spares[T]) full() bool { return len(sp.free) >= sp.max }

// keep keeps v for take, unless max are kept.
func (sp *spares[T]) keep(v *T) {
	if !sp.full() {
		sp.free = append(sp.free, v)
	}
}

// recycle releases the bytes of d's event, which is finished and which
// nothing refers to any more, and keeps d, cleared, for the events to come.
func (s *runState) recycle(d *delivery) {
	d.msg.Release()
	if !s.spareDeliveries.full() {
		*d = delivery{}
		s.spareDeliveries.keep(d)
	}
}

// queue puts d behind the events of its key.
func (s *runState) queue(d *delivery, key []byte) {
	ks := s.keys[string(key)]
	if ks == nil {
		ks = &keyState{key: string(key)}
		ks.events = ks.first[:0]
		s.keys[ks.key] = ks
	}
	ks.events = append(ks.events, d)
	if c := s.collecting; c != nil && len(ks.events) > 1 && ks.events[len(ks.events)-2].batch == c && s.fits(c, d) {
		// The key's earlier events are all in the batch being collected:
		// this one can follow them in it.
		s.addToBatch(c, d)
		return
	}
	if !ks.busy && len(ks.events) == 1 {
		s.markReady(ks)
	}
}

// done finishes an offset; flush frees its pending slot.
func (s *runState) done(msg queue.Message) {
	s.tracker.done(msg.Partition, msg.Offset)
	s.pending--
	s.released++
	if s.r.cfg.OnFinish != nil {
		s.r.cfg.OnFinish()
	}
}

// flush passes on what the run loop did with a batch of events: it gives
// the finished events' slots back to the inbox, sets the pending gauge and
// tells the Observer the outcomes.
func (s *runState) flush() {
	s.inbox.release(s.released)
	s.released = 0
	s.r.pendingGauge.Set(float64(s.pending))
	if len(s.observed) > 0 {
		s.r.cfg.Observer.Observe(s.observed...)
		clear(s.observed)
		s.observed = s.observed[:0]
	}
}

func (s *runState) markReady(ks *keyState) {
	if !ks.queued {
		ks.queued = true
		s.ready = append(s.ready, ks)
	}
}

// dispatch moves ready events into the batch being collected and sends
// batches that are full or have waited MaxWait, while the in-flight cap
// allows.
func (s *runState) dispatch() {
	r := s.r
	now := r.cfg.Now()
	s.promoteRetries(now)
	if s.handedOver {
		return
	}
	if p, ok := r.dest.(destinations.Pauser); ok && p.PausedUntil().After(now) {
		return
	}
	for s.inFlight < r.policy.MaxInFlight {
		if s.collecting == nil {
			if len(s.ready) == 0 {
				return
			}
			s.collecting = s.spareBatches.take()
			s.collecting.opened = now
		}
		c := s.collecting
		for len(s.ready) > 0 && !s.full(c) {
			ks := s.ready[0]
			s.ready = s.ready[1:]
			ks.queued = false
			ks.busy = true
			c.keys = append(c.keys, ks)
			for _, d := range ks.events {
				if len(c.items) > 0 && !s.fits(c, d) {
					break
				}
				s.addToBatch(c, d)
			}
		}
		if !s.full(c) && now.Sub(c.opened) < r.policy.MaxWait {
			return
		}
		s.send(c)
		s.collecting = nil
	}
}

func (s *runState) full(c *batch) bool {
	p := s.r.policy
	return len(c.items) >= p.MaxItems || (p.MaxBytes > 0 && c.bytes >= p.MaxBytes) ||
		(p.MaxKeys > 0 && len(c.keys) >= p.MaxKeys)
}

func (s *runState) fits(c *batch, d *delivery) bool {
	p := s.r.policy
	return len(c.items) < p.MaxItems && (p.MaxBytes == 0 || c.bytes+len(d.msg.Value) <= p.MaxBytes)
}

func (s *runState) addToBatch(c *batch, d *delivery) {
	d.batch = c
	c.items = append(c.items, d)
	c.bytes += len(d.msg.Value)
}

// send hands a batch to the destination on its own goroutine.
func (s *runState) send(b *batch) {
	r := s.r
	now := r.cfg.Now()
	events := slices.Grow(b.events[:0], len(b.items))[:len(b.items)]
	firsts := slices.Grow(b.firsts[:0], len(b.items))[:len(b.items)]
	b.events, b.firsts = events, firsts
	for i, d := range b.items {
		d.attempt++
		if d.firstAttempt.IsZero() {
			d.firstAttempt = now
		}
		events[i] = destinations.Event{Event: schemas.NewEvent(d.msg.Value), Attempt: d.attempt}
		firsts[i] = d.firstAttempt
	}
	s.inFlight++
	r.inFlightGauge.Set(float64(s.inFlight))
	r.batchSize.Observe(float64(len(events)))
	go func() {
		outcomes := r.dest.Send(s.sendCtx, events)
		if len(outcomes) != len(events) {
			r.logger.Error("destination returned the wrong number of outcomes; retrying the batch",
				zap.Int("events", len(events)), zap.Int("outcomes", len(outcomes)))
			outcomes = make([]destinations.Outcome, len(events))
			for i := range outcomes {
				outcomes[i] = destinations.RetryLater("internal", "the destination returned no outcome for this event", 0)
			}
		}
		r.expireRetries(events, firsts, outcomes)
		r.writeDeadLetters(s.sendCtx, events, outcomes)
		s.results <- batchResult{b: b, outcomes: outcomes}
	}()
}

// expireRetries turns a Retry into a DeadLetter once the event has been
// failing for the whole retry window.
func (r *Router) expireRetries(events []destinations.Event, firsts []time.Time, outcomes []destinations.Outcome) {
	now := r.cfg.Now()
	for i := range outcomes {
		if outcomes[i].Result == destinations.Retry && now.Sub(firsts[i]) >= time.Duration(r.cfg.RetryWindow) {
			o := outcomes[i]
			o.Result = destinations.DeadLetter
			o.Reason = fmt.Sprintf("still failing after the %s retry window, %d attempts: %s", r.cfg.RetryWindow, events[i].Attempt, o.Reason)
			o.Class = "retry_window"
			outcomes[i] = o
		}
	}
}

// writeDeadLetters publishes the batch's dead letters. If the log cannot
// take them, those events are retried instead: nothing is dropped without
// a dead letter.
func (r *Router) writeDeadLetters(ctx context.Context, events []destinations.Event, outcomes []destinations.Outcome) {
	var msgs []queue.Message
	var idx []int
	for i, o := range outcomes {
		if o.Result != destinations.DeadLetter {
			continue
		}
		value, err := json.Marshal(queue.DeadLetter{
			Reason:       o.Reason,
			Stage:        r.cfg.Destination,
			Class:        o.Class,
			Source:       events[i].Source(),
			Attempts:     events[i].Attempt,
			LastStatus:   o.Status,
			LastResponse: o.Response,
			FailedAt:     r.cfg.Now().UTC(),
			Message:      events[i].Raw(),
		})
		if err != nil {
			// The message is valid JSON from the log; this cannot fail.
			r.logger.Error("encoding a dead letter", zap.Error(err))
			outcomes[i] = destinations.RetryLater("internal", "encoding the dead letter failed: "+err.Error(), 0)
			continue
		}
		msgs = append(msgs, queue.Message{Topic: r.cfg.DLQTopic, Key: []byte(events[i].Key()), Value: value})
		idx = append(idx, i)
	}
	if len(msgs) == 0 {
		return
	}
	if err := r.log.Publish(ctx, msgs...); err != nil {
		r.logger.Warn("writing dead letters; retrying those events", zap.Int("events", len(msgs)), zap.Error(err))
		for _, i := range idx {
			outcomes[i] = destinations.RetryLater("dead_letter_write", "writing the dead letter failed: "+err.Error(), 0)
		}
	}
}

// finish applies a batch's outcomes.
func (s *runState) finish(res batchResult) {
	r := s.r
	defer s.flush()
	s.inFlight--
	r.inFlightGauge.Set(float64(s.inFlight))
	now := r.cfg.Now()
	deliveredKeys := s.deliveredKeys[:0]
	retried, deadLettered := 0, 0
	for i, d := range res.b.items {
		o := res.outcomes[i]
		d.retrying = o.Result == destinations.Retry
		s.observe(d.msg, d.messageID, now, Outcome{Result: resultName(o.Result), Attempt: d.attempt, Reason: o.Reason, Class: o.Class, Status: o.Status, Response: o.Response})
		switch o.Result {
		case destinations.Delivered:
			if !d.receivedAt.IsZero() {
				r.latency.Observe(now.Sub(d.receivedAt).Seconds())
			}
			deliveredKeys = append(deliveredKeys, d.seenKey)
		case destinations.DeadLetter:
			deadLettered++
			r.dead.WithLabelValues(o.Class).Inc()
			if ce := r.logger.Check(zap.InfoLevel, "dead-lettered"); ce != nil {
				ce.Write(zap.String("messageId", d.messageID), zap.Int("attempts", d.attempt), zap.String("reason", o.Reason))
			}
		case destinations.Retry:
			retried++
			d.retryAt = now.Add(r.backoff(d.attempt, o.RetryAfter))
			if ce := r.logger.Check(zap.DebugLevel, "retrying"); ce != nil {
				ce.Write(zap.String("messageId", d.messageID), zap.Int("attempt", d.attempt),
					zap.Time("retryAt", d.retryAt), zap.String("reason", o.Reason))
			}
		}
	}
	r.delivered.Add(float64(len(deliveredKeys)))
	r.deadLettered.Add(float64(deadLettered))
	r.retried.Add(float64(retried))
	r.seen.Add(deliveredKeys, now)
	s.deliveredKeys = deliveredKeys[:0]
	for _, ks := range res.b.keys {
		ks.busy = false
		kept := ks.events[:0]
		for _, d := range ks.events {
			if d.batch == res.b {
				d.batch = nil
				if !d.retrying {
					s.done(d.msg)
					s.recycle(d)
					continue
				}
			}
			kept = append(kept, d)
		}
		clear(ks.events[len(kept):])
		ks.events = kept
		switch {
		case len(ks.events) == 0:
			delete(s.keys, ks.key)
		case !ks.events[0].retryAt.IsZero() && ks.events[0].retryAt.After(now):
			heap.Push(s.retryAt, retryEntry{at: ks.events[0].retryAt, ks: ks})
		default:
			s.markReady(ks)
		}
	}
	s.recycleBatch(res.b)
}

// recycleBatch empties b, whose outcomes are applied and which nothing
// refers to any more, keeping its arrays, for the batches to come.
func (s *runState) recycleBatch(b *batch) {
	if s.spareBatches.full() {
		return
	}
	clear(b.items)
	clear(b.keys)
	clear(b.events)
	b.items, b.keys, b.events, b.firsts, b.bytes = b.items[:0], b.keys[:0], b.events[:0], b.firsts[:0], 0
	s.spareBatches.keep(b)
}

// observe keeps, for the Observer if there is one, the outcome oc at now
// of the event read as msg; flush tells it.
func (s *runState) observe(msg queue.Message, messageID string, now time.Time, oc Outcome) {
	if s.r.cfg.Observer == nil {
		return
	}
	oc.Destination = s.r.cfg.Destination
	oc.Topic, oc.Partition, oc.Offset = msg.Topic, msg.Partition, msg.Offset
	oc.MessageID = messageID
	oc.At = now
	s.observed = append(s.observed, oc)
}

// owns reports whether the partition is this router's. A change of
// assignment is signalled before the input hands out any message fetched
// under it, so a pending signal is applied first.
func (s *runState) owns(partition int) bool {
	if s.rebalancer == nil {
		return true
	}
	select {
	case <-s.rebalancer.Rebalanced():
		s.handedOver = false
		s.applyAssignment()
	default:
	}
	_, ok := s.owned[partition]
	return ok
}

// applyAssignment takes the input's current assignment and revokes every
// partition that is no longer this router's, or was another member's since
// it was last applied.
func (s *runState) applyAssignment() {
	assigned := s.rebalancer.Assignment()
	for p, since := range s.owned {
		if now, ok := assigned[p]; !ok || now != since {
			s.revoke(p)
		}
	}
	s.owned = assigned
}

// revoke drops what the router holds of a partition it no longer owns: its
// tracked offsets, so nothing of it is committed, and its events not yet
// sent. Events being sent finish, uncommitted: the partition's new owner
// delivers them again.
func (s *runState) revoke(partition int) {
	s.tracker.revoke(partition)
	var unbusied []*keyState
	if c := s.collecting; c != nil {
		unbusied = s.dropFromBatch(c, partition)
	}
	dropped, inFlight := 0, 0
	for key, ks := range s.keys {
		kept := ks.events[:0]
		for _, d := range ks.events {
			if d.msg.Partition != partition {
				kept = append(kept, d)
			} else if d.batch == nil {
				dropped++
				s.recycle(d)
			} else {
				inFlight++
				kept = append(kept, d)
			}
		}
		clear(ks.events[len(kept):])
		ks.events = kept
		if len(ks.events) == 0 && !ks.busy {
			delete(s.keys, key)
		}
	}
	for _, ks := range unbusied {
		if len(ks.events) > 0 {
			s.markReady(ks)
		}
	}
	s.ready = slices.DeleteFunc(s.ready, func(ks *keyState) bool {
		if len(ks.events) > 0 {
			return false
		}
		ks.queued = false
		return true
	})
	s.pending -= dropped
	s.released += dropped
	s.flush()
	s.r.revokedInFlight.Add(float64(inFlight))
	s.r.logger.Info("partition revoked", zap.Int("partition", partition),
		zap.Int("dropped", dropped), zap.Int("inFlight", inFlight))
}

// dropFromBatch takes a partition's events out of the batch being
// collected and returns the keys left with no event in it.
func (s *runState) dropFromBatch(c *batch, partition int) []*keyState {
	items := c.items[:0]
	c.bytes = 0
	for _, d := range c.items {
		if d.msg.Partition == partition {
			d.batch = nil
			continue
		}
		items = append(items, d)
		c.bytes += len(d.msg.Value)
	}
	clear(c.items[len(items):])
	c.items = items
	var unbusied []*keyState
	c.keys = slices.DeleteFunc(c.keys, func(ks *keyState) bool {
		for _, d := range ks.events {
			if d.batch == c {
				return false
			}
		}
		ks.busy = false
		unbusied = append(unbusied, ks)
		return true
	})
	if len(c.items) == 0 {
		s.collecting = nil
	}
	return unbusied
}

// promoteRetries makes keys whose retry time has come ready again.
func (s *runState) promoteRetries(now time.Time) {
	for s.retryAt.Len() > 0 && !(*s.retryAt)[0].at.After(now) {
		e := heap.Pop(s.retryAt).(retryEntry)
		if len(e.ks.events) > 0 && !e.ks.busy {
			s.markReady(e.ks)
		}
	}
}

// nextWake is when the loop must look again without any input: the next
// retry, or the collecting batch's MaxWait.
func (s *runState) nextWake(now time.Time) time.Duration {
	wake := time.Hour
	if s.retryAt.Len() > 0 {
		wake = min(wake, (*s.retryAt)[0].at.Sub(now))
	}
	if s.collecting != nil {
		wake = min(wake, s.collecting.opened.Add(s.r.policy.MaxWait).Sub(now))
	}
	if p, ok := s.r.dest.(destinations.Pauser); ok {
		if until := p.PausedUntil(); until.After(now) {
			wake = min(wake, until.Sub(now))
		}
	}
	return max(wake, time.Millisecond)
}

func (s *runState) commit(ctx context.Context) error {
	if s.rebalancer != nil {
		s.applyAssignment()
	}
	offsets := s.tracker.toCommit()
	if len(offsets) == 0 {
		return nil
	}
	msgs := make([]queue.Message, 0, len(offsets))
	for p, off := range offsets {
		msgs = append(msgs, queue.Message{Topic: s.topic, Partition: p, Offset: off})
	}
	if err := s.src.Commit(ctx, msgs...); err != nil {
		return err
	}
	s.tracker.markCommitted(offsets)
	return nil
}

// backoff is the wait before attempt+1: exponential from BackoffMin, capped
// at BackoffMax, with ±50% jitter; a Retry-After from the service wins.
func (r *Router) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	d := r.cfg.BackoffMin
	for i := 1; i < attempt && d < r.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.cfg.BackoffMax)
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// Wanted applies the message's integrations object for the destination
// whose display name is given: its own key if present, else "All", else
// true; any value but false enables.
func Wanted(ev schemas.Event, displayName string) bool {
	return wantedBy(ev.Get("integrations"), gjson.Escape(displayName))
}

// wantedBy applies an integrations object for the destination whose
// display name, as a gjson path, is given.
func wantedBy(integrations gjson.Result, displayPath string) bool {
	if !integrations.IsObject() {
		return true
	}
	v := integrations.Get(displayPath)
	if !v.Exists() {
		v = integrations.Get("All")
	}
	return v.Type != gjson.False
}

type retryEntry struct {
	at time.Time
	ks *keyState
}

type retryHeap []retryEntry

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(retryEntry)) }
func (h *retryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
