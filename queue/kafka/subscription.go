package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
)

// Subscribe implements queue.Log with a kafka-go consumer group Reader.
// Commits are synchronous: Commit returns once the group coordinator has
// stored the offsets.
//
// kafka-go starts a partition the group has never committed at the first or
// the last offset only. For queue.AtOffset and queue.AtTime, Subscribe
// therefore looks up the group's committed offsets before joining and, for
// every partition without one, commits the offset the position resolves to,
// as a member-less commit (generation -1) that the coordinator accepts only
// while the group has no members. If members are active, they already own
// the group's positions and that commit is skipped; a partition still without
// an offset then starts at the first retained message.
func (l *Log) Subscribe(ctx context.Context, cfg queue.SubscribeConfig) (queue.Subscription, error) {
	if l.isClosed() {
		return nil, queue.ErrClosed
	}
	if cfg.Group == "" {
		return nil, errors.New("subscribing: Group is required")
	}
	n, err := l.ensureTopic(ctx, cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("subscribing group %s to %s: %w", cfg.Group, cfg.Topic, err)
	}

	start := kafkago.FirstOffset
	switch cfg.Start.Kind {
	case queue.First:
	case queue.Last:
		start = kafkago.LastOffset
	case queue.AtOffset, queue.AtTime:
		if err := l.initGroupOffsets(ctx, cfg, n); err != nil {
			return nil, fmt.Errorf("subscribing group %s to %s: %w", cfg.Group, cfg.Topic, err)
		}
	default:
		return nil, fmt.Errorf("subscribing group %s to %s: unknown position kind %d", cfg.Group, cfg.Topic, cfg.Start.Kind)
	}

	// Each member gets its own client id, by which Owned finds its
	// assignment in the group's description.
	dialer := *l.dialer
	dialer.ClientID = l.cfg.ClientID + "-" + strconv.FormatUint(rand.Uint64(), 36)
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           l.cfg.Brokers,
		GroupID:           cfg.Group,
		Topic:             cfg.Topic,
		Dialer:            &dialer,
		MinBytes:          1,
		MaxBytes:          maxBytes,
		MaxWait:           maxWait,
		StartOffset:       start,
		CommitInterval:    0, // synchronous commits
		HeartbeatInterval: time.Duration(l.cfg.HeartbeatInterval),
		SessionTimeout:    time.Duration(l.cfg.SessionTimeout),
		JoinGroupBackoff:  joinGroupBackoff,
		Logger:            l.kafkaLogger(false),
		ErrorLogger:       l.kafkaLogger(true),
	})
	return &subscription{
		l:          l,
		group:      cfg.Group,
		topic:      cfg.Topic,
		partitions: n,
		clientID:   dialer.ClientID,
		r:          r,
		committed:  make(map[int]int64),
	}, nil
}

// initGroupOffsets commits, for every partition of cfg.Topic that cfg.Group
// has no offset for, the offset cfg.Start resolves to.
func (l *Log) initGroupOffsets(ctx context.Context, cfg queue.SubscribeConfig, n int) error {
	committed, err := l.committedOffsets(ctx, cfg.Group, cfg.Topic, n)
	if err != nil {
		return err
	}
	missing := make(map[int]bool)
	for p, off := range committed {
		if off < 0 {
			missing[p] = true
		}
	}
	if len(missing) == 0 {
		return nil
	}

	start, err := l.startOffsets(ctx, cfg.Topic, n, cfg.Start)
	if err != nil {
		return err
	}
	var commits []kafkago.OffsetCommit
	for p := range n {
		if missing[p] {
			commits = append(commits, kafkago.OffsetCommit{Partition: p, Offset: start[p]})
		}
	}
	cres, err := l.client.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{
		GroupID:      cfg.Group,
		GenerationID: -1,
		Topics:       map[string][]kafkago.OffsetCommit{cfg.Topic: commits},
	})
	if err != nil {
		return fmt.Errorf("committing start offsets: %w", classify(err))
	}
	for _, pc := range cres.Topics[cfg.Topic] {
		switch {
		case pc.Error == nil:
		case errors.Is(pc.Error, kafkago.UnknownMemberId),
			errors.Is(pc.Error, kafkago.IllegalGeneration),
			errors.Is(pc.Error, kafkago.RebalanceInProgress):
			l.log.Debug("group has members; not committing its start offset",
				zap.String("group", cfg.Group), zap.String("topic", cfg.Topic),
				zap.Int("partition", pc.Partition), zap.Error(pc.Error))
		default:
			return fmt.Errorf("committing start offset of partition %d: %w", pc.Partition, classify(pc.Error))
		}
	}
	return nil
}

// committedOffsets asks the coordinator of group for its committed offsets
// in the n partitions of topic: per partition, the offset of the next
// message the group consumes, or -1 when it never committed there.
func (l *Log) committedOffsets(ctx context.Context, group, topic string, n int) ([]int64, error) {
	res, err := l.client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{
		GroupID: group,
		Topics:  map[string][]int{topic: partitionIDs(n)},
	})
	if err != nil {
		return nil, fmt.Errorf("fetching committed offsets: %w", classify(err))
	}
	if res.Error != nil {
		return nil, fmt.Errorf("fetching committed offsets: %w", classify(res.Error))
	}
	committed := make([]int64, n)
	for p := range committed {
		committed[p] = -1
	}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("fetching committed offset of partition %d: %w", po.Partition, classify(po.Error))
		}
		if po.Partition >= 0 && po.Partition < n && po.CommittedOffset >= 0 {
			committed[po.Partition] = po.CommittedOffset
		}
	}
	return committed, nil
}

// Owned implements queue.Subscription: it asks the group coordinator for the
// group's members and returns the partitions of the one with this
// subscription's client id.
func (s *subscription) Owned(ctx context.Context) ([]int, int, error) {
	if s.isClosed() {
		return nil, 0, queue.ErrClosed
	}
	res, err := s.l.client.DescribeGroups(ctx, &kafkago.DescribeGroupsRequest{GroupIDs: []string{s.group}})
	if err != nil {
		return nil, 0, fmt.Errorf("describing group %s: %w", s.group, classify(err))
	}
	var owned []int
	for _, g := range res.Groups {
		if g.Error != nil {
			return nil, 0, fmt.Errorf("describing group %s: %w", s.group, classify(g.Error))
		}
		for _, m := range g.Members {
			if m.ClientID != s.clientID {
				continue
			}
			for _, t := range m.MemberAssignments.Topics {
				if t.Topic == s.topic {
					owned = append(owned, t.Partitions...)
				}
			}
		}
	}
	slices.Sort(owned)
	return owned, s.partitions, nil
}

// subscription is a queue.Subscription over a kafka-go consumer group Reader.
type subscription struct {
	l          *Log
	group      string
	topic      string
	partitions int // of the topic when Subscribe was called
	clientID   string
	r          *kafkago.Reader

	closeMu sync.Mutex
	closed  bool

	// commitMu serializes commits, so a lower offset never overtakes a
	// higher one on its way to the coordinator.
	commitMu  sync.Mutex
	committed map[int]int64 // per partition, the highest message offset committed
}

func (s *subscription) isClosed() bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	return s.closed
}

// Fetch implements queue.Subscription.
func (s *subscription) Fetch(ctx context.Context) (queue.Message, error) {
	if s.isClosed() {
		return queue.Message{}, queue.ErrClosed
	}
	m, err := s.r.FetchMessage(ctx)
	if err != nil {
		if s.isClosed() || errors.Is(err, io.EOF) {
			return queue.Message{}, queue.ErrClosed
		}
		if ctx.Err() != nil {
			return queue.Message{}, ctx.Err()
		}
		return queue.Message{}, fmt.Errorf("fetching from %s: %w", s.topic, classify(err))
	}
	return fromKafka(m), nil
}

// Commit implements queue.Subscription. For each partition it commits the
// highest offset among msgs, and only when that is above what this
// subscription committed before: kafka-go would otherwise move the group
// back.
func (s *subscription) Commit(ctx context.Context, msgs ...queue.Message) error {
	if s.isClosed() {
		return queue.ErrClosed
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()

	highest := make(map[int]int64)
	for _, m := range msgs {
		if m.Topic != s.topic {
			return fmt.Errorf("committing: message of topic %q in a subscription to %q", m.Topic, s.topic)
		}
		if off, ok := highest[m.Partition]; !ok || m.Offset > off {
			highest[m.Partition] = m.Offset
		}
	}
	var commits []kafkago.Message
	for p, off := range highest {
		if c, ok := s.committed[p]; ok && off <= c {
			continue
		}
		commits = append(commits, kafkago.Message{Topic: s.topic, Partition: p, Offset: off})
	}
	if len(commits) == 0 {
		return nil
	}
	if err := s.r.CommitMessages(ctx, commits...); err != nil {
		if s.isClosed() || errors.Is(err, io.ErrClosedPipe) {
			return queue.ErrClosed
		}
		return fmt.Errorf("committing offsets of %s: %w", s.topic, classify(err))
	}
	for _, m := range commits {
		s.committed[m.Partition] = m.Offset
	}
	return nil
}

// Lag implements queue.Subscription the way kafka-consumer-groups.sh
// computes lag: per partition, the log end offset less the group's committed
// offset, read from the group coordinator (OffsetFetch) and the partition
// leaders (ListOffsets). A partition the group never committed counts from
// its log start offset. Like kafka-consumer-groups.sh, a committed offset
// that retention has since passed is not clamped to the log start, so Lag
// then also counts the removed messages the group never consumed. Commits of
// every member of the group count, not only this one's.
func (s *subscription) Lag(ctx context.Context) (int64, error) {
	if s.isClosed() {
		return 0, queue.ErrClosed
	}
	n := s.partitions
	committed, err := s.l.committedOffsets(ctx, s.group, s.topic, n)
	if err != nil {
		return 0, fmt.Errorf("getting lag of group %s on %s: %w", s.group, s.topic, err)
	}
	last, err := s.l.listOffsets(ctx, s.topic, n, kafkago.LastOffset)
	if err != nil {
		return 0, fmt.Errorf("getting lag of group %s on %s: %w", s.group, s.topic, err)
	}
	var first []int64
	var lag int64
	for p := range n {
		from := committed[p]
		if from < 0 {
			if first == nil {
				if first, err = s.l.listOffsets(ctx, s.topic, n, kafkago.FirstOffset); err != nil {
					return 0, fmt.Errorf("getting lag of group %s on %s: %w", s.group, s.topic, err)
				}
			}
			from = first[p]
		}
		lag += max(0, last[p]-from)
	}
	return lag, nil
}

// Close implements queue.Subscription. It leaves the group, so the other
// members take over its partitions at once.
func (s *subscription) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return queue.ErrClosed
	}
	s.closed = true
	s.closeMu.Unlock()
	if err := s.r.Close(); err != nil {
		return fmt.Errorf("closing group reader of %s: %w", s.topic, err)
	}
	return nil
}

var (
	_ queue.Subscription   = (*subscription)(nil)
	_ queue.Lagger         = (*subscription)(nil)
	_ queue.PartitionOwner = (*subscription)(nil)
)
