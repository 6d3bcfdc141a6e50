// Package embedded is switchyard's on-disk log: a durable, partitioned
// queue.Log in one data directory, built on the pebble key-value store, so one
// binary runs the whole pipeline on one machine without Kafka.
//
// One writer goroutine assigns offsets and writes every waiting Publish call
// in one batch (group commit); while that batch is committed and fsynced,
// the calls that come wait in one group, which becomes the next batch the
// moment the fsync returns, so many concurrent publishers share the cost of
// a sync. A call returns once its batch is durable, and only then can
// readers see its messages. Readers and subscriptions read pebble directly and wait for the
// writer's signal when they have caught up.
//
// One process owns the data directory; within it a consumer group has one
// member per topic, which gets every partition. The log remembers every
// group that subscribed, and retention keeps what a group has not committed
// up to hard limits (Config.RetentionHardAge, Config.RetentionHardBytes);
// what those delete before a group committed it is logged at WARN and
// counted per group.
//
// The log refuses appends with queue.ErrFull while its disk has less than
// Config.MinFreeBytes free, so a full disk does not fail a write of pebble's
// write-ahead log; appends resume when space returns. A write or sync of
// the write-ahead log that fails all the same (another process took the
// last bytes of the reserve) ends the process, as pebble cannot go on
// safely after one; nothing unsynced was acknowledged, and on restart Open
// recovers what was.
package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/waitlist"
	"github.com/switchyard/switchyard/queue"
)

// Log is the embedded queue.Log. Its methods are safe for concurrent use.
type Log struct {
	cfg Config
	log *zap.Logger
	db  *pebble.DB
	// lock is the data directory's lock, released after db closes.
	lock *pebble.Lock

	// dbMu guards closed. Everything that reads or writes db outside the
	// writer and retention goroutines holds it shared, so Close never closes
	// pebble under a running call.
	dbMu   sync.RWMutex
	closed bool

	// topicsMu guards topics and serializes topic creation.
	topicsMu sync.Mutex
	topics   map[string]*topic

	// membersMu guards members: the groups with a live subscription, per topic.
	membersMu sync.Mutex
	members   map[member]*Subscription

	// retentionMu is held by a retention run and by Subscribe while it
	// positions a new member, so retention never deletes what a member was
	// just positioned at.
	retentionMu sync.Mutex

	waiting   *waitlist.List[*publishRequest] // Publish calls not yet taken by the writer
	quit      chan struct{}                   // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // the writer and retention goroutines

	// failure is the first write error; once set the log takes no writes.
	failure atomic.Pointer[error]
	// stalled is set while pebble holds writes back to let compactions catch up.
	stalled atomic.Bool
	// space refuses appends while the disk is nearly full.
	space *spaceGuard
	// buffers holds the bytes of read messages, reused once released.
	buffers *readBuffers
}

// topic is an open topic and the state of its partitions.
type topic struct {
	name string

	// mu guards parts' fields and changed.
	mu    sync.Mutex
	parts []partition
	// changed is closed and replaced when a partition's high watermark moves,
	// waking readers that have caught up.
	changed chan struct{}
}

// partition is one partition's state. The writer alone moves high, lastTime
// and bytes; retention alone moves low.
type partition struct {
	// low is the first retained offset; high is the offset the next message
	// gets. Messages in [low, high) are durable and readable.
	low, high int64
	// lastTime is the append time of the newest message, unix nanoseconds.
	lastTime int64
	// bytes is the stored size of the partition through offset high-1,
	// counted since the partition began (see appendRecord).
	bytes int64
}

type member struct{ group, topic string }

// ErrGroupBusy is returned by Subscribe when the group already has a live
// subscription on the topic. In the embedded log one member of a group gets
// every partition, so a second member would only see duplicates.
var ErrGroupBusy = errors.New("embedded: group already has a member on this topic")

// Open opens or creates the log in cfg.Dir and returns it ready for use. It
// fails when cfg is invalid, when another process has the directory open,
// or, with an error wrapping queue.ErrFull, when the directory's disk has
// less free than Config.MinFreeBytes or than its write-ahead log holds
// (opening flushes it).
func Open(cfg Config, log *zap.Logger) (*Log, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("dir", cfg.Dir))

	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	lock, err := pebble.LockDirectory(cfg.Dir, cfg.fs)
	if err != nil {
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			return nil, fmt.Errorf("locking data dir %s: %w", cfg.Dir, err)
		}
		return nil, fmt.Errorf("data dir %s is in use by another process (or already open in this one): %w", cfg.Dir, err)
	}
	if err := checkSpaceToOpen(cfg); err != nil {
		lock.Close()
		return nil, fmt.Errorf("opening data dir %s: %w", cfg.Dir, err)
	}

	l := &Log{
		cfg:     cfg,
		log:     log,
		lock:    lock,
		topics:  map[string]*topic{},
		members: map[member]*Subscription{},
		waiting: waitlist.New[*publishRequest](),
		quit:    make(chan struct{}),
		buffers: newReadBuffers(),
		space: &spaceGuard{
			dir: cfg.Dir, min: cfg.MinFreeBytes, probe: cfg.freeSpace, now: cfg.Now,
			log: log, full: cfg.Metrics.diskFull.Set,
		},
	}
	backgroundErrors := &errorLimiter{
		log: log, interval: backgroundErrorInterval, now: cfg.Now,
		count: cfg.Metrics.backgroundErrors.Inc,
	}
	opts := &pebble.Options{
		FS:                 cfg.fs,
		FormatMajorVersion: pebble.FormatNewest,
		Lock:               lock,
		// Larger memtables mean fewer flushes; see Config.MemTableBytes.
		MemTableSize:                uint64(cfg.MemTableBytes),
		MemTableStopWritesThreshold: 4,
		CacheSize:                   cfg.BlockCacheBytes,
		Logger:                      pebbleLogger{log.Named("pebble")},
		EventListener: &pebble.EventListener{
			BackgroundError: backgroundErrors.report,
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				l.stalled.Store(true)
				log.Warn("writes stalled", zap.String("reason", info.Reason))
			},
			WriteStallEnd: func() {
				l.stalled.Store(false)
				log.Info("writes resumed")
			},
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				log.Error("data corruption", zap.String("path", info.Path), zap.Error(info.Details))
			},
			DiskSlow: func(info pebble.DiskSlowInfo) {
				log.Warn("disk slow", zap.String("path", info.Path), zap.Duration("duration", info.Duration))
			},
		},
	}
	// MinLZ (snappy on arm64, where it is faster) compresses the log's
	// JSON about as well as snappy for less CPU.
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	// Each table holds one partition's messages, so the tables of newer
	// messages overlap none of older ones and compactions move them down the
	// levels instead of rewriting them.
	opts.Experimental.SpanPolicyFunc = func(startKey []byte) (pebble.SpanPolicy, []byte, error) {
		return pebble.SpanPolicy{}, blockSpanEnd(startKey), nil
	}
	db, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("opening data dir %s: %w", cfg.Dir, err)
	}
	l.db = db
	cfg.Metrics.db.Store(db)
	if err := l.moveSingleMessages(); err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("recovering data dir %s: %w", cfg.Dir, err)
	}
	if err := l.loadTopics(); err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("recovering data dir %s: %w", cfg.Dir, err)
	}

	l.wg.Add(2)
	go l.writeLoop()
	go l.retentionLoop()
	log.Info("embedded log open", zap.Int("topics", len(l.topics)))
	return l, nil
}

// loadTopics reads every topic's metadata and recovers its partitions'
// watermarks from their first and last messages.
func (l *Log) loadTopics() error {
	lower, upper := topicKeyBounds()
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		name := string(it.Key()[len(lower):])
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("reading topic %s: %w", name, err)
		}
		if len(v) != 4 {
			return fmt.Errorf("topic %s has metadata of %d bytes, want 4", name, len(v))
		}
		t := &topic{name: name, parts: make([]partition, binary.BigEndian.Uint32(v)), changed: make(chan struct{})}
		for i := range t.parts {
			p, err := l.recoverPartition(name, i)
			if err != nil {
				return fmt.Errorf("recovering topic %s partition %d: %w", name, i, err)
			}
			t.parts[i] = p
		}
		l.topics[name] = t
	}
	return it.Error()
}

func (l *Log) recoverPartition(name string, i int) (partition, error) {
	var p partition
	lo, err := l.get(lowKey(name, i))
	if err != nil {
		return p, err
	}
	if lo != nil {
		p.low = int64(binary.BigEndian.Uint64(lo))
	}
	p.high = p.low

	it, err := l.partitionBlocks(name, i)
	if err != nil {
		return p, err
	}
	defer it.Close()
	if !it.First() {
		return p, it.Error()
	}
	first := offsetOfKey(it.Key())
	firstBlock, err := it.ValueAndErr()
	if err != nil {
		return p, err
	}
	firstCount, _, err := blockLast(firstBlock)
	if err != nil {
		return p, fmt.Errorf("decoding the block at offset %d: %w", first, err)
	}
	if first+firstCount <= p.low {
		// Retention recorded the new low watermark, then stopped before its
		// deletion was applied; the batch is atomic, so this means damage.
		return p, fmt.Errorf("the first block, offsets %d to %d, is below the low watermark %d", first, first+firstCount-1, p.low)
	}

	it.Last()
	last := offsetOfKey(it.Key())
	lastBlock, err := it.ValueAndErr()
	if err != nil {
		return p, err
	}
	lastCount, lastMsg, err := blockLast(lastBlock)
	if err != nil {
		return p, fmt.Errorf("decoding the block at offset %d: %w", last, err)
	}
	p.low, p.high = max(p.low, first), last+lastCount
	p.lastTime = lastMsg.time
	p.bytes = lastMsg.bytes
	return p, it.Error()
}

// get returns a copy of key's value, or nil when it does not exist.
func (l *Log) get(key []byte) ([]byte, error) {
	v, closer, err := l.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// acquire holds the database open for a call; release ends the hold. It
// fails with queue.ErrClosed once Close has begun closing pebble.
func (l *Log) acquire() error {
	l.dbMu.RLock()
	if l.closed {
		l.dbMu.RUnlock()
		return queue.ErrClosed
	}
	return nil
}

func (l *Log) release() { l.dbMu.RUnlock() }

// isClosing reports whether Close has been called.
func (l *Log) isClosing() bool {
	select {
	case <-l.quit:
		return true
	default:
		return false
	}
}

// topic returns the named topic, creating it with cfg.Partitions partitions
// when it does not exist.
func (l *Log) topic(name string) (*topic, error) {
	if err := validTopic(name); err != nil {
		return nil, err
	}
	l.topicsMu.Lock()
	defer l.topicsMu.Unlock()
	if t, ok := l.topics[name]; ok {
		return t, nil
	}
	if err := l.acquire(); err != nil {
		return nil, err
	}
	defer l.release()
	n := l.cfg.Partitions
	if err := l.db.Set(topicKey(name), binary.BigEndian.AppendUint32(nil, uint32(n)), pebble.Sync); err != nil {
		return nil, fmt.Errorf("creating topic %s: %w", name, err)
	}
	t := &topic{name: name, parts: make([]partition, n), changed: make(chan struct{})}
	l.topics[name] = t
	l.log.Info("topic created", zap.String("topic", name), zap.Int("partitions", n))
	return t, nil
}

// Partitions returns the topic's partition count, creating the topic with
// Config.Partitions partitions when it does not exist.
func (l *Log) Partitions(ctx context.Context, topic string) (int, error) {
	if l.isClosing() {
		return 0, queue.ErrClosed
	}
	t, err := l.topic(topic)
	if err != nil {
		return 0, err
	}
	return len(t.parts), nil
}

// Check returns nil when the log takes writes. After Close, after a write
// that pebble refused, while pebble stalls writes to let compactions catch
// up, or while the disk has less than Config.MinFreeBytes free (then the
// error wraps queue.ErrFull too), it returns an error wrapping
// queue.ErrUnavailable.
func (l *Log) Check(ctx context.Context) error {
	if l.isClosing() {
		return fmt.Errorf("%w: %w", queue.ErrUnavailable, queue.ErrClosed)
	}
	if err := l.failure.Load(); err != nil {
		return fmt.Errorf("%w: an earlier write failed: %w", queue.ErrUnavailable, *err)
	}
	if l.stalled.Load() {
		return fmt.Errorf("%w: writes are stalled while compactions catch up", queue.ErrUnavailable)
	}
	return l.space.check(0)
}

// Close stops the log: pending publishes fail with queue.ErrClosed, readers
// and subscriptions return queue.ErrClosed, and the data directory is
// released. A second Close returns queue.ErrClosed.
func (l *Log) Close() error {
	first := false
	l.closeOnce.Do(func() { first = true })
	if !first {
		return queue.ErrClosed
	}
	close(l.quit)
	l.wg.Wait()

	l.dbMu.Lock()
	l.closed = true
	l.dbMu.Unlock()

	l.cfg.Metrics.db.CompareAndSwap(l.db, nil)
	var errs []error
	if err := l.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing pebble: %w", err))
	}
	if err := l.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("unlocking data dir: %w", err))
	}
	l.log.Info("embedded log closed")
	return errors.Join(errs...)
}

// pebbleLogger sends pebble's own log lines to zap at debug level, and its
// errors at warn.
type pebbleLogger struct{ log *zap.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if ce := p.log.Check(zap.DebugLevel, "pebble"); ce != nil {
		ce.Write(zap.String("message", fmt.Sprintf(format, args...)))
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.log.Warn(fmt.Sprintf(format, args...))
}

// Fatalf is called by pebble when it cannot go on safely, for example when
// writing or syncing the write-ahead log failed: what is in memory is no
// longer known to be on disk. Like pebble's default logger it ends the
// process, even if the zap logger was built not to; on restart, Open
// recovers what was durable.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.log.Error(fmt.Sprintf(format, args...))
	_ = p.log.Sync()
	os.Exit(1)
}

var _ queue.Log = (*Log)(nil)
