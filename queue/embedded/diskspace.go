package embedded

import (
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
)

// freeSpaceTTL is how long a free-space reading is reused, so a stream of
// Publish calls costs one statfs every freeSpaceTTL.
const freeSpaceTTL = 250 * time.Millisecond

// statfsFree returns the bytes free to unprivileged users on dir's file
// system.
func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// spaceGuard refuses appends while the data directory's file system has
// less than Config.MinFreeBytes free. Between two readings of the free
// space it deducts what it let through, so a burst of appends within one
// reading cannot eat into the reserve.
type spaceGuard struct {
	dir   string
	min   int64
	probe func(dir string) (uint64, error)
	now   func() time.Time
	log   *zap.Logger
	// full is set to 1 while appends are refused, 0 otherwise.
	full func(float64)

	mu      sync.Mutex
	checked time.Time
	// free is the last reading less what was let through since; known is
	// false when the reading failed.
	free        int64
	known       bool
	probeFailed bool
	isFull      bool
}

// resumeMargin is how far above Config.MinFreeBytes the free space must
// be for a full log to take appends again, so that appends near the
// reserve do not flip the log between full and not full (twice the
// gateway's largest batch).
const resumeMargin = 1 << 20

// check returns nil when n more bytes can be appended and leave
// Config.MinFreeBytes free, else an error wrapping queue.ErrUnavailable and
// queue.ErrFull that says how much is free. Once it refused, it refuses
// until the free space is resumeMargin above the reserve. It reads the free
// space at most once per freeSpaceTTL, and logs when the disk becomes full
// and when space returns.
func (g *spaceGuard) check(n int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if age := now.Sub(g.checked); g.checked.IsZero() || age < 0 || age >= freeSpaceTTL {
		g.checked = now
		free, err := g.probe(g.dir)
		if err != nil && !g.probeFailed {
			g.log.Warn("cannot read the data dir's free space; appends go on unchecked", zap.Error(err))
		}
		g.probeFailed, g.known = err != nil, err == nil
		g.free = int64(min(free, 1<<62))
		// An unreadable free space is no reason to refuse writes: pebble
		// reports a real failure itself.
		switch {
		case !g.known || g.isFull && g.free >= g.min+resumeMargin:
			g.setFull(false)
		case g.free < g.min:
			g.setFull(true)
		}
	}
	if g.known && !g.isFull && g.free-n < g.min {
		g.setFull(true)
	}
	if g.isFull {
		return fmt.Errorf("%w: %w: the data dir's disk has %d bytes free, under min_free_bytes %d (+%d to resume); free space to resume",
			queue.ErrUnavailable, queue.ErrFull, g.free, g.min, resumeMargin)
	}
	g.free -= n
	return nil
}

// setFull records whether appends are refused, logging a change.
func (g *spaceGuard) setFull(full bool) {
	if full == g.isFull {
		return
	}
	g.isFull = full
	if full {
		g.log.Error("disk full: refusing appends until space is freed", zap.Int64("free_bytes", g.free), zap.Int64("min_free_bytes", g.min))
		g.full(1)
		return
	}
	g.log.Info("disk space freed: taking appends again", zap.Int64("free_bytes", g.free), zap.Int64("min_free_bytes", g.min))
	g.full(0)
}

// checkSpaceToOpen returns an error wrapping queue.ErrFull when cfg.Dir's
// disk has less free than Config.MinFreeBytes or than its write-ahead log
// files hold: pebble.Open flushes what those hold before it returns, and
// on a disk without room for that it would retry the flush for ever.
func checkSpaceToOpen(cfg Config) error {
	free, err := cfg.freeSpace(cfg.Dir)
	if err != nil {
		return nil // as in spaceGuard.check: pebble reports real failures
	}
	names, err := cfg.fs.List(cfg.Dir)
	if err != nil {
		return fmt.Errorf("listing data dir %s: %w", cfg.Dir, err)
	}
	var wal int64
	for _, name := range names {
		if filepath.Ext(name) != ".log" {
			continue
		}
		info, err := cfg.fs.Stat(cfg.fs.PathJoin(cfg.Dir, name))
		if err != nil {
			return fmt.Errorf("reading data dir %s: %w", cfg.Dir, err)
		}
		wal += info.Size()
	}
	if need := max(cfg.MinFreeBytes, wal); free < uint64(need) {
		return fmt.Errorf("%w: %w: the data dir's disk has %d bytes free; opening the log needs %d (min_free_bytes %d, write-ahead log to flush %d bytes): free space and start again",
			queue.ErrUnavailable, queue.ErrFull, free, need, cfg.MinFreeBytes, wal)
	}
	return nil
}

// backgroundErrorInterval is how often pebble's background errors (a flush
// or compaction that failed, retried by pebble) are logged at most.
const backgroundErrorInterval = 10 * time.Second

// errorLimiter logs the first error and then at most one per interval,
// with how many it did not log; every error is counted in a metric.
type errorLimiter struct {
	log      *zap.Logger
	interval time.Duration
	now      func() time.Time
	count    func()

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (e *errorLimiter) report(err error) {
	e.count()
	e.mu.Lock()
	now := e.now()
	if age := now.Sub(e.last); !e.last.IsZero() && age >= 0 && age < e.interval {
		e.suppressed++
		e.mu.Unlock()
		return
	}
	e.last = now
	suppressed := e.suppressed
	e.suppressed = 0
	e.mu.Unlock()
	// err.Error() alone: pebble's errors carry stack traces that zap.Error
	// would write in full.
	e.log.Error("pebble background error; pebble retries it",
		zap.String("error", err.Error()), zap.Int("not_logged_since_last", suppressed),
		zap.Duration("log_interval", e.interval))
}
