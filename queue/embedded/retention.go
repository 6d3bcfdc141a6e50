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
// RetentionAge and the oldest ones beyond RetentionBytes.
func (l *Log) enforceRetention() error {
	l.topicsMu.Lock()
	topics := make([]*topic, 0, len(l.topics))
	for _, t := range l.topics {
		topics = append(topics, t)
	}
	l.topicsMu.Unlock()

	cutoff := l.cfg.Now().Add(time.Duration(-l.cfg.RetentionAge)).UnixNano()
	for _, t := range topics {
		for i := range t.parts {
			if l.isClosing() {
				return nil
			}
			if err := l.retainPartition(t, i, cutoff); err != nil {
				return fmt.Errorf("enforcing retention on topic %s partition %d: %w", t.name, i, err)
			}
		}
	}
	return nil
}

func (l *Log) retainPartition(t *topic, i int, cutoff int64) error {
	t.mu.Lock()
	p := t.parts[i]
	t.mu.Unlock()
	if p.low >= p.high {
		return nil
	}

	// Messages appended before the cutoff go.
	low, err := l.searchOffsets(t.name, i, p.low, p.high, func(s storedValue) bool {
		return s.time >= cutoff
	})
	if err != nil {
		return err
	}
	// Then the oldest, until what is left fits in RetentionBytes: the first
	// offset kept is the first whose earlier messages hold at least
	// p.bytes - RetentionBytes.
	if limit := l.cfg.RetentionBytes; limit > 0 && low < p.high {
		low, err = l.searchOffsets(t.name, i, low, p.high, func(s storedValue) bool {
			before := s.bytes - storedSize(len(s.key), len(s.value))
			return p.bytes-before <= limit
		})
		if err != nil {
			return err
		}
	}
	if low <= p.low {
		return nil
	}

	// The new low watermark and the deletion commit together.
	b := l.db.NewBatch()
	defer b.Close()
	if err := b.Set(lowKey(t.name, i), binary.BigEndian.AppendUint64(nil, uint64(low)), nil); err != nil {
		return fmt.Errorf("building deletion: %w", err)
	}
	if err := b.DeleteRange(messageKey(t.name, i, 0), messageKey(t.name, i, low), nil); err != nil {
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
	return nil
}
