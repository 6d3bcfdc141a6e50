package embedded

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/internal/config"
)

// Config configures the embedded log. The zero value of every field but Dir
// means its default. The yaml keys are those of the log section of the
// config file.
type Config struct {
	// Dir is the data directory. It is created when missing and locked while
	// the log is open, so one process at a time owns it. Required.
	Dir string `yaml:"-"`

	// Partitions is how many partitions a topic gets when it is created. A
	// topic keeps the count it was created with. Default 8.
	Partitions int `yaml:"partitions"`

	// RetentionAge is how long a message is kept after it was appended.
	// A message that a consumer group of its topic has not committed is
	// kept longer, up to RetentionHardAge. Default 168h (7 days).
	RetentionAge config.Duration `yaml:"retention_age"`

	// RetentionBytes caps each partition's size, counted as the bytes of its
	// messages' keys and values plus 32 bytes of overhead per message, before
	// compression; the oldest messages beyond it are deleted, except those
	// a consumer group of the topic has not committed, which are kept up to
	// RetentionHardBytes. 0 means no size limit. Default 0.
	RetentionBytes int64 `yaml:"retention_bytes"`

	// RetentionHardAge is how long a message is kept at most, whatever the
	// consumer groups have committed. A message deleted at this age before
	// a group committed it is lost to that group: retention logs it at WARN
	// and counts it in switchyard_log_retention_lost_total{group,topic}.
	// It must be at least RetentionAge. Default 720h (30 days), or
	// RetentionAge when that is longer.
	RetentionHardAge config.Duration `yaml:"retention_hard_age"`

	// RetentionHardBytes caps each partition's size, counted like
	// RetentionBytes, whatever the consumer groups have committed; messages
	// deleted for it before a group committed them are logged and counted
	// like those of RetentionHardAge. When RetentionBytes is set it must be
	// at least RetentionBytes. 0 means no hard size limit. Default 0.
	RetentionHardBytes int64 `yaml:"retention_hard_bytes"`

	// RetentionCheckInterval is how often retention runs. Default 1m.
	RetentionCheckInterval config.Duration `yaml:"retention_check_interval"`

	// MaxBatchMessages caps how many messages one group commit (one batch,
	// made durable by one fsync, which it may share with another batch)
	// carries. Publish calls waiting together are committed together up to
	// this many messages; a single call larger than it is still committed
	// whole. Default 4096.
	MaxBatchMessages int `yaml:"max_batch_messages"`

	// MinFreeBytes is the free space, in bytes, the file system of Dir must
	// keep: while less is free, Publish refuses with an error wrapping
	// queue.ErrFull (the gateway answers 503) and Check reports it. The
	// reserve leaves room for pebble to flush its memtable and compact, and
	// for consumer groups to commit, so a full disk never fails a write of
	// pebble's write-ahead log. Appends resume by themselves once space is
	// freed. Free space is read at most every 250ms (what the log appends in
	// between is deducted), and pebble takes more than the appends: a flush
	// writes up to a memtable's size, and each new write-ahead log file is
	// preallocated to 1.1 memtables, with up to five of them while flushes
	// catch up. So the reserve must be at least about seven memtables (224
	// MiB at the default 32 MiB), or a write of the write-ahead log can meet
	// a full disk, which pebble treats as fatal. Open refuses a disk with
	// less free than this or than its write-ahead log holds. Default 256
	// MiB.
	MinFreeBytes int64 `yaml:"min_free_bytes"`

	// MemTableBytes is the size of pebble's memtable: appends collect in
	// memory up to this size, then are flushed to a table on disk. Up to
	// four memtables may wait for their flush, and one flushed memtable is
	// kept for reuse, so the log holds two to three of them while appends
	// flow and at most five. Memtables live in the Go heap (switchyard is
	// built without cgo), which the garbage collector lets grow to about
	// twice what is live unless GOMEMLIMIT caps it. Larger means fewer
	// flushes and less CPU per message; smaller, less memory. Measured by
	// BenchmarkPublish (32 callers of 100 messages of 650 bytes): 16 MiB
	// peaks at about 235 MB RSS, 32 MiB at 375 MB for a fifth less CPU,
	// 64 MiB at 555 MB. At least 1 MiB. Default 32 MiB.
	MemTableBytes int64 `yaml:"memtable_bytes"`

	// BlockCacheBytes is the size of pebble's block cache, which keeps
	// recently read blocks of the log's tables in memory. Consumers read
	// the newest messages, mostly still in the memtable, so a small cache
	// serves them. At least 1 MiB. Default 8 MiB.
	BlockCacheBytes int64 `yaml:"block_cache_bytes"`

	// Now is the clock used for append times and retention. Default time.Now.
	Now func() time.Time `yaml:"-"`

	// Metrics counts what retention deleted before a consumer group
	// committed it. Default: metrics registered nowhere.
	Metrics *Metrics `yaml:"-"`

	// fs is the file system under pebble; tests inject failures through it.
	// Default vfs.Default.
	fs vfs.FS
	// freeSpace returns the bytes free to unprivileged users on the file
	// system of dir; tests inject full disks through it. Default statfs.
	freeSpace func(dir string) (uint64, error)
}

// Defaults of Config.
const (
	DefaultPartitions             = 8
	DefaultRetentionAge           = 168 * time.Hour
	DefaultRetentionHardAge       = 720 * time.Hour
	DefaultRetentionCheckInterval = time.Minute
	DefaultMaxBatchMessages       = 4096
	DefaultMinFreeBytes           = 256 << 20
	DefaultMemTableBytes          = 32 << 20
	DefaultBlockCacheBytes        = 8 << 20
)

// withDefaults returns cfg with defaults filled in, or an error naming the
// first field that is wrong.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Dir == "" {
		return cfg, errors.New("embedded: Dir is required")
	}
	if cfg.Partitions < 0 {
		return cfg, fmt.Errorf("embedded: Partitions is %d, want at least 1 (or 0 for the default %d)", cfg.Partitions, DefaultPartitions)
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = DefaultPartitions
	}
	if cfg.RetentionAge < 0 {
		return cfg, fmt.Errorf("embedded: RetentionAge is %s, want a positive duration (or 0 for the default %s)", cfg.RetentionAge, DefaultRetentionAge)
	}
	if cfg.RetentionAge == 0 {
		cfg.RetentionAge = config.Duration(DefaultRetentionAge)
	}
	if cfg.RetentionBytes < 0 {
		return cfg, fmt.Errorf("embedded: RetentionBytes is %d, want 0 (no limit) or more", cfg.RetentionBytes)
	}
	if cfg.RetentionHardAge < 0 {
		return cfg, fmt.Errorf("embedded: RetentionHardAge is %s, want a positive duration (or 0 for the default %s)", cfg.RetentionHardAge, DefaultRetentionHardAge)
	}
	if cfg.RetentionHardAge == 0 {
		cfg.RetentionHardAge = max(config.Duration(DefaultRetentionHardAge), cfg.RetentionAge)
	}
	if cfg.RetentionHardAge < cfg.RetentionAge {
		return cfg, fmt.Errorf("embedded: RetentionHardAge is %s, shorter than RetentionAge %s", cfg.RetentionHardAge, cfg.RetentionAge)
	}
	if cfg.RetentionHardBytes < 0 {
		return cfg, fmt.Errorf("embedded: RetentionHardBytes is %d, want 0 (no limit) or more", cfg.RetentionHardBytes)
	}
	if cfg.RetentionHardBytes > 0 && cfg.RetentionHardBytes < cfg.RetentionBytes {
		return cfg, fmt.Errorf("embedded: RetentionHardBytes is %d, less than RetentionBytes %d", cfg.RetentionHardBytes, cfg.RetentionBytes)
	}
	if cfg.RetentionCheckInterval < 0 {
		return cfg, fmt.Errorf("embedded: RetentionCheckInterval is %s, want a positive duration (or 0 for the default %s)", cfg.RetentionCheckInterval, DefaultRetentionCheckInterval)
	}
	if cfg.RetentionCheckInterval == 0 {
		cfg.RetentionCheckInterval = config.Duration(DefaultRetentionCheckInterval)
	}
	if cfg.MaxBatchMessages < 0 {
		return cfg, fmt.Errorf("embedded: MaxBatchMessages is %d, want at least 1 (or 0 for the default %d)", cfg.MaxBatchMessages, DefaultMaxBatchMessages)
	}
	if cfg.MaxBatchMessages == 0 {
		cfg.MaxBatchMessages = DefaultMaxBatchMessages
	}
	if cfg.MinFreeBytes < 0 {
		return cfg, fmt.Errorf("embedded: MinFreeBytes is %d, want 1 or more (or 0 for the default %d)", cfg.MinFreeBytes, DefaultMinFreeBytes)
	}
	if cfg.MinFreeBytes == 0 {
		cfg.MinFreeBytes = DefaultMinFreeBytes
	}
	if cfg.MemTableBytes != 0 && cfg.MemTableBytes < 1<<20 {
		return cfg, fmt.Errorf("embedded: MemTableBytes is %d, want at least 1 MiB (1048576), or 0 for the default %d", cfg.MemTableBytes, DefaultMemTableBytes)
	}
	if cfg.MemTableBytes == 0 {
		cfg.MemTableBytes = DefaultMemTableBytes
	}
	if cfg.BlockCacheBytes != 0 && cfg.BlockCacheBytes < 1<<20 {
		return cfg, fmt.Errorf("embedded: BlockCacheBytes is %d, want at least 1 MiB (1048576), or 0 for the default %d", cfg.BlockCacheBytes, DefaultBlockCacheBytes)
	}
	if cfg.BlockCacheBytes == 0 {
		cfg.BlockCacheBytes = DefaultBlockCacheBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		m, err := NewMetrics(prometheus.NewRegistry())
		if err != nil {
			return cfg, err
		}
		cfg.Metrics = m
	}
	if cfg.fs == nil {
		cfg.fs = vfs.Default
	}
	if cfg.freeSpace == nil {
		cfg.freeSpace = statfsFree
	}
	return cfg, nil
}
