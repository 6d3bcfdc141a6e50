package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/router"
	"github.com/switchyard/switchyard/schemas"
	"github.com/switchyard/switchyard/ui"
)

// replay delivers a range of the events topic, or the dead letters, to one
// destination again, through a router of its own that commits nothing, so
// the live routers are undisturbed.
func replay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", stderr)
	destName := fs.String("destination", "", "`name` of the destination to deliver to (required)")
	from := fs.String("from", "", "start: an RFC 3339 `time` or an offset (the same in every partition)")
	to := fs.String("to", "", "end, inclusive: an RFC 3339 `time` or an offset; default: the end of the log")
	dlq := fs.Bool("dlq", false, "deliver the destination's dead letters again instead of a range of events")
	dryRun := fs.Bool("dry-run", false, "print the events that would be delivered, one JSON per line, and send nothing")
	cfg, logger, err := setUp(fs, args, stderr)
	if err != nil {
		return err
	}
	if *destName == "" {
		return errors.New("--destination is required")
	}
	if !*dlq && *from == "" {
		return errors.New("--from is required (or --dlq)")
	}
	start := queue.Position{Kind: queue.First}
	if *from != "" {
		p, err := parsePosition("--from", *from)
		if err != nil {
			return err
		}
		start = p
	}
	end := queue.Position{Kind: queue.Last}
	if *to != "" {
		p, err := parsePosition("--to", *to)
		if err != nil {
			return err
		}
		end = p
	}
	index, dc, err := findDestination(cfg, *destName)
	if err != nil {
		return err
	}
	log, _, err := openLog(cfg, logger, nil)
	if err != nil {
		return err
	}
	defer log.Close()

	topic := cfg.eventsTopic()
	if *dlq {
		topic = cfg.dlqTopic()
	}
	events, err := queue.ReadRange(ctx, log, topic, start, end)
	if err != nil {
		return fmt.Errorf("reading %s: %w", topic, err)
	}
	defer events.Close()
	total := events.Total()
	src := &replayInput{events: events}
	if *dlq {
		src.deadLettersOf = dc.Name
	}

	displayName := dc.Router.DisplayName
	if displayName == "" {
		displayName = dc.Name
	}
	if *dryRun {
		return printReplay(ctx, src, dc.Name, displayName, stdout)
	}
	clients := newHubSpotClients(logger)
	defer clients.Close()
	progress := newProgress("replay", "events", "at most ", total, stderr)
	defer progress.finish()
	if err := deliverAgain(ctx, cfg, log, logger, clients, index, dc, nil, src, progress.add, nil); err != nil {
		return err
	}
	progress.finish()
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted after %d of %d events", progress.done.Load(), total)
	}
	logger.Info("replay finished", zap.String("destination", dc.Name), zap.Int64("events", progress.done.Load()),
		zap.Int64("read", src.read.Load()))
	return nil
}

// deliverAgain delivers what src hands on to the destination dc (the
// index-th of cfg) through a router of its own that commits nothing;
// onFinish is called for each event finished, and observer, when set, told
// every outcome. The destination is live, the one this process's router
// delivers to, or, when live is nil, built afresh from the current config.
// It returns once src is read to its end and every event is finished, or
// ctx ends.
func deliverAgain(ctx context.Context, cfg config, log queue.Log, logger *zap.Logger, clients *hubspotClients,
	index int, dc destinationConfig, live destinations.Destination, src *replayInput, onFinish func(), observer router.Observer) error {
	dest := live
	if dest == nil {
		built, err := buildDestination(index, dc, destinationDeps{logger: logger, dataDir: cfg.DataDir, hubspot: clients})
		if err != nil {
			return err
		}
		if c, ok := built.(destinations.Closer); ok {
			defer c.Close()
		}
		dest = built
	}
	rcfg := cfg.routerConfig(dc)
	rcfg.OnFinish = onFinish
	rcfg.Observer = observer
	r, err := router.New(rcfg, dest, log, logger, mustMetrics())
	if err != nil {
		return err
	}
	return r.Run(ctx, src)
}

// replayDeadLetters delivers the dead letters of the destination named
// destination that pick chooses again, as replay --dlq does, over the
// process's own log: the dead letters on the topic now, the dead-letter
// message of each handed to pick. progress, when set, is called with how far
// the replay is each time an event is finished; observer, when set, is told
// every outcome. live holds the destinations this process's routers deliver
// to, by name: a replay to one of them goes through it, since its state (a
// HubSpot destination's) is held by it; the others are built afresh.
func replayDeadLetters(ctx context.Context, cfg config, log queue.Log, logger *zap.Logger, clients *hubspotClients,
	live map[string]destinations.Destination, observer router.Observer, destination string, pick func(queue.Message) bool, progress func(ui.ReplayProgress)) error {
	index, dc, err := findDestination(cfg, destination)
	if err != nil {
		return err
	}
	events, err := queue.ReadRange(ctx, log, cfg.dlqTopic(), queue.Position{Kind: queue.First}, queue.Position{Kind: queue.Last})
	if err != nil {
		return fmt.Errorf("reading %s: %w", cfg.dlqTopic(), err)
	}
	defer events.Close()
	src := &replayInput{events: events, deadLettersOf: dc.Name, pick: pick}
	tally := &replayTally{src: src, next: observer, progress: progress}
	if err := deliverAgain(ctx, cfg, log, logger, clients, index, dc, live[dc.Name], src, tally.finished, tally); err != nil {
		return err
	}
	p := tally.report()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted after %d of %d events: %w", p.Delivered+p.Refused+p.Skipped, p.Picked, err)
	}
	logger.Info("replay finished", zap.String("destination", dc.Name), zap.Int64("delivered", p.Delivered),
		zap.Int64("refused", p.Refused), zap.Int64("skipped", p.Skipped), zap.Int64("read", src.read.Load()))
	return nil
}

// replayTally counts a replay's events by what became of them, as a router
// observes them, passing each outcome on to next, and tells progress how
// far the replay is each time an event is finished.
type replayTally struct {
	src      *replayInput
	next     router.Observer
	progress func(ui.ReplayProgress)

	mu       sync.Mutex
	finals   ui.ReplayProgress // Delivered, Refused and Reasons
	finishes int64
}

// Observe counts the outcomes that finish an event: a delivery or a dead
// letter. Skips are counted as the finished events that are neither, for a
// router skips an event it delivered already without telling an outcome.
func (t *replayTally) Observe(outcomes ...router.Outcome) {
	if t.next != nil {
		t.next.Observe(outcomes...)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, oc := range outcomes {
		switch oc.Result {
		case router.ResultDelivered:
			t.finals.Delivered++
		case router.ResultDeadLettered:
			t.finals.Refused++
			t.finals.AddReason(oc.Reason)
		}
	}
}

// finished counts an event finished, after its outcome was observed, and
// reports.
func (t *replayTally) finished() {
	t.mu.Lock()
	t.finishes++
	t.mu.Unlock()
	t.report()
}

// report tells progress, if set, how far the replay is, and returns it.
func (t *replayTally) report() ui.ReplayProgress {
	t.mu.Lock()
	p := t.finals
	p.Reasons = slices.Clone(p.Reasons)
	// A batch's outcomes are observed before its events are finished: until
	// they are, the finished may lag the outcomes.
	p.Skipped = max(t.finishes-p.Delivered-p.Refused, 0)
	t.mu.Unlock()
	p.Picked = t.src.picked.Load()
	if t.progress != nil {
		t.progress(p)
	}
	return p
}

func mustMetrics() *router.Metrics {
	m, err := router.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		panic(err) // a fresh registry has no conflicts
	}
	return m
}

// parsePosition reads an RFC 3339 time or an offset.
func parsePosition(flag, v string) (queue.Position, error) {
	if off, err := strconv.ParseInt(v, 10, 64); err == nil {
		if off < 0 {
			return queue.Position{}, fmt.Errorf("%s: offset %d must not be negative", flag, off)
		}
		return queue.Position{Kind: queue.AtOffset, Offset: off}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return queue.Position{}, fmt.Errorf("%s: %q is neither an RFC 3339 time (2026-11-22T10:00:00Z) nor an offset", flag, v)
	}
	return queue.Position{Kind: queue.AtTime, Time: t}, nil
}

// replayInput hands a range of a topic to a router and reports io.EOF at
// its end. With deadLettersOf set the range is of dead letters, and it hands
// on the original messages of those that destination gave up on; the dead
// letters the replay writes lie past the range, so it never reads them back.
// Commits are dropped: a replay keeps no position. pick, when set, chooses
// among the dead letters by their message on the dead-letter topic; picked
// counts those handed on.
type replayInput struct {
	events        *queue.Range
	deadLettersOf string
	pick          func(queue.Message) bool
	read          atomic.Int64
	picked        atomic.Int64
}

func (s *replayInput) Fetch(ctx context.Context) (queue.Message, error) {
	for {
		msg, err := s.events.Fetch(ctx)
		if err != nil {
			return queue.Message{}, err
		}
		s.read.Add(1)
		if s.deadLettersOf != "" {
			dl := gjson.ParseBytes(msg.Value)
			if dl.Get("stage").String() != s.deadLettersOf || !dl.Get("message").IsObject() {
				continue
			}
			if s.pick != nil && !s.pick(msg) {
				continue
			}
			msg.Value = []byte(dl.Get("message").Raw)
		}
		s.picked.Add(1)
		return msg, nil
	}
}

func (s *replayInput) Commit(context.Context, ...queue.Message) error { return nil }

// printReplay prints what a replay would deliver.
func printReplay(ctx context.Context, src *replayInput, name, displayName string, stdout io.Writer) error {
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	for {
		msg, err := src.Fetch(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !router.Wanted(schemas.NewEvent(msg.Value), displayName) {
			continue
		}
		line, err := json.Marshal(struct {
			Destination string          `json:"destination"`
			Partition   int             `json:"partition"`
			Offset      int64           `json:"offset"`
			Event       json.RawMessage `json:"event"`
		}{name, msg.Partition, msg.Offset, msg.Value})
		if err != nil {
			return err
		}
		out.Write(line)
		out.WriteByte('\n')
	}
}

// progress shows what a command has done of a total, its rate and the time
// left: a bar on a terminal, plain lines every few seconds otherwise.
type progress struct {
	// label starts each line; unit names what is counted; bound words the
	// total ("at most " for a replay, whose range may hold events that
	// are not delivered).
	label, unit, bound string
	total              atomic.Int64
	done               atomic.Int64
	// base is the count first set, and the rate counts from then: a
	// resumed full sync's counts include the run it resumed.
	base    int64
	isSet   bool
	bar     *progressbar.ProgressBar
	w       io.Writer
	started time.Time
	last    time.Time
	closed  bool
}

func newProgress(label, unit, bound string, total int64, w io.Writer) *progress {
	p := &progress{label: label, unit: unit, bound: bound, w: w, started: time.Now(), last: time.Now()}
	p.total.Store(total)
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		max := total
		if max == 0 {
			max = -1 // a spinner until the total is known
		}
		p.bar = progressbar.NewOptions64(max, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(label),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond))
	}
	return p
}

// add counts one more done.
func (p *progress) add() {
	n := p.done.Add(1)
	if p.bar != nil {
		p.bar.Add64(1)
		return
	}
	p.maybeLine(n)
}

// set shows done of total (0: unknown), as a sync reports them.
func (p *progress) set(done, total int64) {
	if !p.isSet {
		p.isSet, p.base, p.started = true, done, time.Now()
	}
	p.done.Store(done)
	if p.total.Swap(total) != total && p.bar != nil && total > 0 {
		p.bar.ChangeMax64(total)
	}
	if p.bar != nil {
		p.bar.Set64(done) //nolint:errcheck // a bar that cannot draw draws nothing
		return
	}
	p.maybeLine(done)
}

func (p *progress) maybeLine(n int64) {
	if time.Since(p.last) >= 2*time.Second {
		p.last = time.Now()
		p.line(n)
	}
}

func (p *progress) line(n int64) {
	elapsed := time.Since(p.started).Seconds()
	rate := float64(n-p.base) / max(elapsed, 0.001)
	total := p.total.Load()
	if total <= 0 {
		fmt.Fprintf(p.w, "%s: %d %s, %.0f/s\n", p.label, n, p.unit, rate)
		return
	}
	left := "unknown"
	if rate > 0 && total >= n {
		left = (time.Duration(float64(total-n)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "%s: %d of %s%d %s, %.0f/s, about %s left\n", p.label, n, p.bound, total, p.unit, rate, left)
}

func (p *progress) finish() {
	if p.closed {
		return
	}
	p.closed = true
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.w)
		return
	}
	p.line(p.done.Load())
}
