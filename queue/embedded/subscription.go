package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/switchyard/switchyard/queue"
)

// Subscribe joins cfg.Group on cfg.Topic, creating the topic when it does
// not exist. The member gets every partition: each resumes at the group's
// committed offset, or at cfg.Start when the group never committed in it.
// While the subscription is open, a second Subscribe with the same group and
// topic fails with ErrGroupBusy. From then on the log knows the group:
// retention keeps what it has not committed (see Config.RetentionHardAge).
func (l *Log) Subscribe(ctx context.Context, cfg queue.SubscribeConfig) (queue.Subscription, error) {
	if l.isClosing() {
		return nil, queue.ErrClosed
	}
	if cfg.Group == "" {
		return nil, errors.New("subscribing: Group is required")
	}
	if len(cfg.Group) > maxGroupLen {
		return nil, fmt.Errorf("subscribing: Group is %d bytes, want at most %d", len(cfg.Group), maxGroupLen)
	}
	t, err := l.topic(cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("subscribing to topic %q: %w", cfg.Topic, err)
	}

	// Retention waits while the member is positioned and registered.
	l.retentionMu.Lock()
	defer l.retentionMu.Unlock()
	key := member{cfg.Group, cfg.Topic}
	l.membersMu.Lock()
	_, busy := l.members[key]
	l.membersMu.Unlock()
	if busy {
		return nil, fmt.Errorf("subscribing group %q to topic %q: %w", cfg.Group, cfg.Topic, ErrGroupBusy)
	}

	s := &Subscription{group: cfg.Group, committed: make([]int64, len(t.parts)), start: make([]int64, len(t.parts))}
	s.c, err = l.newCursor(t, func(i int) (int64, error) {
		committed, ok, err := l.committed(cfg.Group, cfg.Topic, i)
		if err != nil {
			return 0, err
		}
		if !ok {
			s.committed[i] = -1
			s.start[i], err = l.startOffset(t, i, cfg.Start)
			return s.start[i], err
		}
		s.committed[i] = committed
		t.mu.Lock()
		p := t.parts[i]
		t.mu.Unlock()
		s.start[i] = min(max(committed, p.low), p.high)
		return s.start[i], nil
	})
	if err == nil {
		err = l.join(cfg.Group, cfg.Topic)
	}
	if err != nil {
		return nil, fmt.Errorf("subscribing group %q to topic %q: %w", cfg.Group, cfg.Topic, err)
	}
	l.membersMu.Lock()
	l.members[key] = s
	l.membersMu.Unlock()
	return s, nil
}

// join records, once, that group subscribed to topic.
func (l *Log) join(group, topic string) error {
	if err := l.acquire(); err != nil {
		return err
	}
	defer l.release()
	key := joinedKey(group, topic)
	_, closer, err := l.db.Get(key)
	if err == nil {
		return closer.Close()
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("reading group membership: %w", err)
	}
	if err := l.db.Set(key, nil, pebble.Sync); err != nil {
		return fmt.Errorf("recording group membership: %w", err)
	}
	return nil
}

// committed returns the group's next offset in a partition, and whether the
// group ever committed there.
func (l *Log) committed(group, topic string, partition int) (int64, bool, error) {
	if err := l.acquire(); err != nil {
		return 0, false, err
	}
	defer l.release()
	v, err := l.get(groupKey(group, topic, partition))
	if err != nil {
		return 0, false, fmt.Errorf("reading committed offset: %w", err)
	}
	if v == nil {
		return 0, false, nil
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("committed offset has %d bytes, want 8", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

func (l *Log) leave(m member) {
	l.membersMu.Lock()
	delete(l.members, m)
	l.membersMu.Unlock()
}

// Subscription is a group's member on one topic, owning every partition.
type Subscription struct {
	c     *cursor
	group string

	// commitMu guards committed: per partition, the group's stored next
	// offset, or -1 when it has none.
	commitMu  sync.Mutex
	committed []int64
	// start is, per partition, the offset this member began reading at.
	start []int64
}

// Fetch returns the next message, waiting until one is published or ctx
// ends. Partitions take turns; each comes in offset order.
func (s *Subscription) Fetch(ctx context.Context) (queue.Message, error) {
	return s.c.fetch(ctx)
}

// FetchBatch implements queue.BatchFetcher.
func (s *Subscription) FetchBatch(ctx context.Context, dst []queue.Message, max int) ([]queue.Message, error) {
	return s.c.fetchBatch(ctx, dst, max)
}

// Commit stores, for the partition of each message, that the group resumes
// after it: committing an offset commits every earlier one in the partition.
// A commit never moves a partition back. Commits are fsynced.
func (s *Subscription) Commit(ctx context.Context, msgs ...queue.Message) error {
	if err := s.c.err(); err != nil {
		return err
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()

	next := map[int]int64{}
	for _, m := range msgs {
		if m.Topic != s.c.t.name {
			return fmt.Errorf("committing a message of topic %q on a subscription to %q", m.Topic, s.c.t.name)
		}
		if m.Partition < 0 || m.Partition >= len(s.committed) {
			return fmt.Errorf("committing partition %d of topic %q, which has %d", m.Partition, m.Topic, len(s.committed))
		}
		if o := m.Offset + 1; o > s.committed[m.Partition] && o > next[m.Partition] {
			next[m.Partition] = o
		}
	}
	if len(next) == 0 {
		return nil
	}

	l := s.c.l
	if err := l.acquire(); err != nil {
		return err
	}
	defer l.release()
	b := l.db.NewBatch()
	defer b.Close()
	for p, o := range next {
		if err := b.Set(groupKey(s.group, s.c.t.name, p), binary.BigEndian.AppendUint64(nil, uint64(o)), nil); err != nil {
			return fmt.Errorf("building commit: %w", err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("committing offsets of group %q: %w", s.group, err)
	}
	for p, o := range next {
		s.committed[p] = o
	}
	return nil
}

// Owned implements queue.Subscription: the one member of an embedded
// group owns every partition.
func (s *Subscription) Owned(ctx context.Context) ([]int, int, error) {
	if err := s.c.err(); err != nil {
		return nil, 0, err
	}
	s.c.t.mu.Lock()
	n := len(s.c.t.parts)
	s.c.t.mu.Unlock()
	owned := make([]int, n)
	for i := range owned {
		owned[i] = i
	}
	return owned, n, nil
}

// Assignment implements queue.Rebalancer: the one member of an embedded
// group owns every partition from its first generation on.
func (s *Subscription) Assignment() map[int]int64 {
	s.c.t.mu.Lock()
	n := len(s.c.t.parts)
	s.c.t.mu.Unlock()
	owned := make(map[int]int64, n)
	for i := range n {
		owned[i] = 1
	}
	return owned
}

// Rebalanced implements queue.Rebalancer. An embedded group never
// rebalances: the channel never receives.
func (s *Subscription) Rebalanced() <-chan struct{} { return nil }

// Lag returns how many retained messages lie past the group's committed
// offsets, summed over the topic's partitions: in each, the high watermark
// less the committed offset, or less the low watermark when the group never
// committed there or retention removed messages it had not committed. What
// this member fetched but did not commit counts. It costs one point read of
// the group's stored offset per partition.
func (s *Subscription) Lag(ctx context.Context) (int64, error) {
	if err := s.c.err(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l, t := s.c.l, s.c.t
	// A commit in flight is counted whole or not at all.
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	committed := make([]int64, len(t.parts))
	for i := range committed {
		c, ok, err := l.committed(s.group, t.name, i)
		if err != nil {
			return 0, fmt.Errorf("getting lag of group %q on topic %q: %w", s.group, t.name, err)
		}
		if !ok {
			c = -1
		}
		committed[i] = c
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var lag int64
	for i, p := range t.parts {
		from := max(committed[i], p.low)
		lag += max(0, p.high-from)
	}
	return lag, nil
}

// Close leaves the group; a Fetch waiting in another goroutine returns
// queue.ErrClosed. Uncommitted messages are fetched again by the group's next
// subscription.
func (s *Subscription) Close() error {
	s.c.closeOnce.Do(func() {
		close(s.c.closed)
		s.c.l.leave(member{s.group, s.c.t.name})
	})
	return nil
}

var (
	_ queue.Subscription   = (*Subscription)(nil)
	_ queue.Lagger         = (*Subscription)(nil)
	_ queue.PartitionOwner = (*Subscription)(nil)
	_ queue.Rebalancer     = (*Subscription)(nil)
)
