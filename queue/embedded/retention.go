package embedded

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// retentionLoop enforces retention every RetentionCheckInterval until Close.
func (l *Log) retentionLoop() {
	defer l.wg.Done()
	tick := time.NewTicker(time.Duration(l.cfg.RetentionCheckInterval))
	defer tick.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-tick.C:
			if err := l.enforceRetention(); err != nil {
				l.log.Error("enforcing retention", zap.Error(err))
			}
		}
	}
}

// enforceRetention deletes, in every partition, the messages older than
// RetentionAge and the oldest ones beyond RetentionBytes, but none that a
// consumer group of the topic has not committed, unless they are older than
// RetentionHardAge or beyond RetentionHardBytes. Each message deleted before
// a group committed it is logged at WARN and counted as lost to that group.
func (l *Log) enforceRetention() error {
	l.retentionMu.Lock()
	defer l.retentionMu.Unlock()
	l.topicsMu.Lock()
	topics := make([]*topic, 0, len(l.topics))
	for _, t := range l.topics {
		topics = append(topics, t)
	}
	l.topicsMu.Unlock()

	needs, err := l.groupNeeds()
	if err != nil {
		return fmt.Errorf("enforcing retention: %w", err)
	}
	now := l.cfg.Now()
	cutoffs := retentionCutoffs{
		soft: now.Add(time.Duration(-l.cfg.RetentionAge)).UnixNano(),
		hard: now.Add(time.Duration(-l.cfg.RetentionHardAge)).UnixNano(),
	}
	for _, t := range topics {
		for i := range t.parts {
			if l.isClosing() {
				return nil
			}
			if err := l.retainPartition(t, i, cutoffs, needs[t.name]); err != nil {
				return fmt.Errorf("enforcing retention on topic %s partition %d: %w", t.name, i, err)
			}
		}
	}
	return nil
}

// retentionCutoffs are the append times, unix nanoseconds, before which
// messages go: soft for RetentionAge, hard for RetentionHardAge.
type retentionCutoffs struct{ soft, hard int64 }

// groupNeeds returns, by topic and group, the first offset the group needs
// in each partition, or -1 where it needs every retained message: its
// committed offset, else the offset its live member began at, else -1 for
// a group that joined the topic or committed in another partition.
func (l *Log) groupNeeds() (map[string]map[string][]int64, error) {
	needs := map[string]map[string][]int64{}
	l.topicsMu.Lock()
	partitions := make(map[string]int, len(l.topics))
	for name, t := range l.topics {
		partitions[name] = len(t.parts)
	}
	l.topicsMu.Unlock()
	group := func(group, topic string) []int64 {
		n, ok := partitions[topic]
		if !ok {
			return nil
		}
		if needs[topic] == nil {
			needs[topic] = map[string][]int64{}
		}
		if needs[topic][group] == nil {
			offsets := make([]int64, n)
			for i := range offsets {
				offsets[i] = -1
			}
			needs[topic][group] = offsets
		}
		return needs[topic][group]
	}

	for _, prefix := range []byte{prefixJoined, prefixGroup} {
		it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
		if err != nil {
			return nil, fmt.Errorf("listing consumer groups: %w", err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			g, topic, rest, err := parseGroupTopicKey(it.Key())
			if err != nil {
				it.Close()
				return nil, err
			}
			offsets := group(g, topic)
			if prefix == prefixJoined || offsets == nil {
				continue
			}
			v, err := it.ValueAndErr()
			if err != nil {
				it.Close()
				return nil, fmt.Errorf("reading the offsets of group %q: %w", g, err)
			}
			if len(rest) != 4 || len(v) != 8 {
				it.Close()
				return nil, fmt.Errorf("group %q has a committed offset in topic %s with a key of %d bytes after the topic and a value of %d bytes, want 4 and 8", g, topic, len(rest), len(v))
			}
			if p := int(binary.BigEndian.Uint32(rest)); p < len(offsets) {
				offsets[p] = int64(binary.BigEndian.Uint64(v))
			}
		}
		err = it.Error()
		it.Close()
		if err != nil {
			return nil, fmt.Errorf("listing consumer groups: %w", err)
		}
	}

	l.membersMu.Lock()
	defer l.membersMu.Unlock()
	for m, s := range l.members {
		offsets := group(m.group, m.topic)
		for i, start := range s.start {
			if offsets[i] < 0 {
				offsets[i] = start
			}
		}
	}
	return needs, nil
}

// retainPartition applies retention to partition i of t, given what each
// group of the topic needs there.
func (l *Log) retainPartition(t *topic, i int, cutoffs retentionCutoffs, needs map[string][]int64) error {
	t.mu.Lock()
	p := t.parts[i]
	t.mu.Unlock()
	if p.low >= p.high {
		return nil
	}

	soft, err := l.retainedFrom(t.name, i, p, cutoffs.soft, l.cfg.RetentionBytes)
	if err != nil {
		return err
	}
	hard, err := l.retainedFrom(t.name, i, p, cutoffs.hard, l.cfg.RetentionHardBytes)
	if err != nil {
		return err
	}
	// What the slowest group needs stays, unless the hard limits take it.
	low := soft
	for _, offsets := range needs {
		low = min(low, max(offsets[i], p.low))
	}
	low = max(low, hard)
	if low <= p.low {
		return nil
	}

	// The new low watermark and the deletion commit together. The blocks
	// wholly before low go; the one holding low stays, and readers skip its
	// messages before low.
	cut, err := l.blockStart(t.name, i, low)
	if err != nil {
		return err
	}
	b := l.db.NewBatch()
	defer b.Close()
	if err := b.Set(lowKey(t.name, i), binary.BigEndian.AppendUint64(nil, uint64(low)), nil); err != nil {
		return fmt.Errorf("building deletion: %w", err)
	}
	if err := b.DeleteRange(blockKey(t.name, i, 0), blockKey(t.name, i, cut), nil); err != nil {
		return fmt.Errorf("building deletion: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("deleting offsets %d to %d: %w", p.low, low-1, err)
	}

	t.mu.Lock()
	t.parts[i].low = low
	t.mu.Unlock()
	// Readers waiting on a partition whose messages went must look again.
	t.wake()
	l.log.Info("retention deleted messages",
		zap.String("topic", t.name), zap.Int("partition", i),
		zap.Int64("count", low-p.low), zap.Int64("low", low))
	for group, offsets := range needs {
		from := max(offsets[i], p.low)
		if from >= low {
			continue
		}
		l.cfg.Metrics.lost.WithLabelValues(group, t.name).Add(float64(low - from))
		l.log.Warn("retention deleted messages a consumer group had not committed: they are lost to it",
			zap.String("group", group), zap.String("topic", t.name), zap.Int("partition", i),
			zap.Int64("count", low-from), zap.Int64("from", from), zap.Int64("to", low-1),
			zap.Duration("retention_hard_age", time.Duration(l.cfg.RetentionHardAge)),
			zap.Int64("retention_hard_bytes", l.cfg.RetentionHardBytes))
	}
	return nil
}

// retainedFrom returns the first offset of partition i that an age cutoff
// (unix nanoseconds) and a size limit in bytes (0: none) keep.
func (l *Log) retainedFrom(topic string, i int, p partition, cutoff, limit int64) (int64, error) {
	// Messages appended before the cutoff go.
	low, err := l.searchOffsets(topic, i, p.low, p.high, func(r record) bool {
		return r.time >= cutoff
	})
	if err != nil {
		return 0, err
	}
	// Then the oldest, until what is left fits in limit: the first offset
	// kept is the first whose earlier messages hold at least p.bytes - limit.
	if limit > 0 && low < p.high {
		low, err = l.searchOffsets(topic, i, low, p.high, func(r record) bool {
			before := r.bytes - r.storedSize()
			return p.bytes-before <= limit
		})
	}
	return low, err
}

// blockStart returns the first offset of the block of partition i holding
// offset, or offset itself when no block holds it (it is the partition's
// high watermark).
func (l *Log) blockStart(topic string, i int, offset int64) (int64, error) {
	it, err := l.partitionBlocks(topic, i)
	if err != nil {
		return 0, fmt.Errorf("reading topic %s partition %d: %w", topic, i, err)
	}
	defer it.Close()
	if !it.SeekLT(blockKey(topic, i, offset+1)) {
		return offset, it.Error()
	}
	first := offsetOfKey(it.Key())
	block, err := it.ValueAndErr()
	if err != nil {
		return 0, fmt.Errorf("reading topic %s partition %d offset %d: %w", topic, i, first, err)
	}
	n, _, err := blockLast(block)
	if err != nil {
		return 0, fmt.Errorf("decoding topic %s partition %d offset %d: %w", topic, i, first, err)
	}
	if first+n > offset {
		return first, nil
	}
	return offset, nil
}
