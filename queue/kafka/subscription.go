package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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

	cg, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                cfg.Group,
		Brokers:           l.cfg.Brokers,
		Dialer:            l.dialer,
		Topics:            []string{cfg.Topic},
		HeartbeatInterval: time.Duration(l.cfg.HeartbeatInterval),
		SessionTimeout:    time.Duration(l.cfg.SessionTimeout),
		JoinGroupBackoff:  joinGroupBackoff,
		StartOffset:       start,
		Logger:            l.kafkaLogger(false),
		ErrorLogger:       l.kafkaLogger(true),
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing group %s to %s: %w", cfg.Group, cfg.Topic, err)
	}
	s := &subscription{
		l:          l,
		group:      cfg.Group,
		topic:      cfg.Topic,
		partitions: n,
		cg:         cg,
		msgs:       make(chan generationMessage),
		rebalanced: make(chan struct{}, 1),
		revoking:   make(chan queue.Revocation),
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
		owned:      make(map[int]int64),
		committed:  make(map[int]int64),
	}
	go s.run()
	return s, nil
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

// subscription is a queue.Subscription over a kafka-go ConsumerGroup. Each
// generation of the group runs one partition Reader per partition assigned
// to this member, starting at the group's committed offset; the generation
// ends at the next rebalance, and its readers with it.
type subscription struct {
	l          *Log
	group      string
	topic      string
	partitions int // of the topic when Subscribe was called
	cg         *kafkago.ConsumerGroup

	// msgs carries the partition readers' messages, with their generation.
	msgs       chan generationMessage
	rebalanced chan struct{}
	revoking   chan queue.Revocation
	closing    chan struct{} // closed when Close begins
	done       chan struct{} // closed when run returns

	mu sync.Mutex
	// gen is the current generation, nil before the first.
	gen *kafkago.Generation
	// owned maps each partition of gen to the generation since which
	// this member has owned it without a break.
	owned  map[int]int64
	closed bool
	// revocations is set once Revoking has been called: the end of each
	// generation then waits for the member to commit.
	revocations bool

	// commitMu serializes commits, so a lower offset never overtakes a
	// higher one on its way to the coordinator.
	commitMu  sync.Mutex
	committed map[int]int64 // per owned partition, the highest message offset committed
}

type generationMessage struct {
	generation int32
	msg        kafkago.Message
}

// run joins each generation of the group in turn until the group is closed.
func (s *subscription) run() {
	defer close(s.done)
	for {
		gen, err := s.cg.Next(context.Background())
		if errors.Is(err, kafkago.ErrGroupClosed) {
			return
		}
		if err != nil {
			// The group retries the join itself, after a backoff.
			s.l.log.Debug("joining consumer group", zap.String("group", s.group), zap.Error(err))
			continue
		}
		s.startGeneration(gen)
	}
}

// startGeneration makes gen the current generation and starts a reader for
// each partition it assigns to this member.
func (s *subscription) startGeneration(gen *kafkago.Generation) {
	assigned := gen.Assignments[s.topic]
	s.mu.Lock()
	// A partition owned in the generation just before stayed with this
	// member; after a gap, another member may have owned it.
	continued := s.gen != nil && gen.ID == s.gen.ID+1
	owned := make(map[int]int64, len(assigned))
	for _, a := range assigned {
		since, ok := s.owned[a.ID]
		if !ok || !continued {
			since = int64(gen.ID)
		}
		owned[a.ID] = since
	}
	s.commitMu.Lock()
	for p := range s.committed {
		if since, ok := owned[p]; !ok || since != s.owned[p] {
			delete(s.committed, p)
		}
	}
	s.commitMu.Unlock()
	s.gen, s.owned = gen, owned
	s.mu.Unlock()
	select {
	case s.rebalanced <- struct{}{}:
	default:
	}
	s.l.log.Debug("consumer group generation", zap.String("group", s.group), zap.String("topic", s.topic),
		zap.Int32("generation", gen.ID), zap.Any("partitions", owned))

	for _, a := range assigned {
		gen.Start(func(ctx context.Context) { s.readPartition(ctx, gen.ID, a) })
	}
	// kafka-go rejoins the group only once every function of the
	// generation has returned, and the coordinator still takes commits of
	// the ending generation until then.
	gen.Start(func(ctx context.Context) {
		<-ctx.Done()
		s.revoke(gen.ID)
	})
}

// revoke tells the member that the generation has ended and waits, up to
// RevocationTimeout, until it has committed what it finished, unless the
// member never asked to be told or the subscription is closing.
func (s *subscription) revoke(generation int32) {
	s.mu.Lock()
	wanted := s.revocations
	s.mu.Unlock()
	if !wanted {
		return
	}
	timeout := time.Duration(s.l.cfg.RevocationTimeout)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	answered := make(chan struct{})
	var once sync.Once
	rv := queue.Revocation{Deadline: time.Now().Add(timeout), Done: func() { once.Do(func() { close(answered) }) }}
	select {
	case s.revoking <- rv:
	case <-deadline.C:
		s.l.log.Warn("the group member did not take the end of the generation in time; its finished offsets may be delivered again",
			zap.String("group", s.group), zap.Int32("generation", generation), zap.Duration("timeout", timeout))
		return
	case <-s.closing:
		return
	}
	select {
	case <-answered:
	case <-deadline.C:
		s.l.log.Warn("the group member did not commit before the end of the generation in time; its finished offsets may be delivered again",
			zap.String("group", s.group), zap.Int32("generation", generation), zap.Duration("timeout", timeout))
	case <-s.closing:
	}
}

// readPartition hands the messages of one assigned partition to Fetch until
// the generation ends.
func (s *subscription) readPartition(ctx context.Context, generation int32, a kafkago.PartitionAssignment) {
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:     s.l.cfg.Brokers,
		Topic:       s.topic,
		Partition:   a.ID,
		Dialer:      s.l.dialer,
		MinBytes:    1,
		MaxBytes:    maxBytes,
		MaxWait:     maxWait,
		Logger:      s.l.kafkaLogger(false),
		ErrorLogger: s.l.kafkaLogger(true),
	})
	defer r.Close()
	if err := r.SetOffset(a.Offset); err != nil {
		s.l.log.Warn("starting a partition reader", zap.String("topic", s.topic), zap.Int("partition", a.ID), zap.Error(err))
		return
	}
	for {
		m, err := r.FetchMessage(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// kafka-go retries what it can; ending the generation makes
			// the member rejoin and start afresh.
			s.l.log.Warn("reading a partition", zap.String("topic", s.topic), zap.Int("partition", a.ID), zap.Error(err))
			return
		}
		select {
		case s.msgs <- generationMessage{generation: generation, msg: m}:
		case <-ctx.Done():
			return
		}
	}
}

// Assignment implements queue.Rebalancer.
func (s *subscription) Assignment() map[int]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	owned := make(map[int]int64, len(s.owned))
	for p, since := range s.owned {
		owned[p] = since
	}
	return owned
}

// Rebalanced implements queue.Rebalancer.
func (s *subscription) Rebalanced() <-chan struct{} { return s.rebalanced }

// Revoking implements queue.Revoker. From the first call on, the end of
// every generation waits, up to RevocationTimeout, for the member to
// commit.
func (s *subscription) Revoking() <-chan queue.Revocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revocations = true
	return s.revoking
}

// Owned implements queue.Subscription: the partitions of the current
// generation's assignment.
func (s *subscription) Owned(ctx context.Context) ([]int, int, error) {
	if s.isClosed() {
		return nil, 0, queue.ErrClosed
	}
	owned := slices.Sorted(maps.Keys(s.Assignment()))
	return owned, s.partitions, nil
}

func (s *subscription) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// currentGeneration returns the current generation's id, or -1 before the
// first.
func (s *subscription) currentGeneration() int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == nil {
		return -1
	}
	return s.gen.ID
}

// Fetch implements queue.Subscription. Messages read in a generation that
// has since ended are dropped: the next generation delivers their
// partitions again from the committed offset.
func (s *subscription) Fetch(ctx context.Context) (queue.Message, error) {
	for {
		if s.isClosed() {
			return queue.Message{}, queue.ErrClosed
		}
		select {
		case <-ctx.Done():
			return queue.Message{}, ctx.Err()
		case <-s.done:
			return queue.Message{}, queue.ErrClosed
		case m := <-s.msgs:
			if m.generation == s.currentGeneration() {
				return fromKafka(m.msg), nil
			}
		}
	}
}

// Commit implements queue.Subscription. For each partition it commits the
// highest offset among msgs, and only when that is above what this
// subscription committed before, so the group never moves back. It commits
// in the current generation and skips partitions this member does not own
// in it.
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
	s.mu.Lock()
	gen, owned := s.gen, s.owned
	s.mu.Unlock()
	if gen == nil {
		return nil
	}
	commits := make(map[int]int64)
	for p, off := range highest {
		if _, ok := owned[p]; !ok {
			continue
		}
		if c, ok := s.committed[p]; ok && off <= c {
			continue
		}
		commits[p] = off + 1 // Kafka stores the offset of the next message to read
	}
	if len(commits) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{s.topic: commits}); err != nil {
		if s.isClosed() {
			return queue.ErrClosed
		}
		return fmt.Errorf("committing offsets of %s in generation %d: %w", s.topic, gen.ID, classify(err))
	}
	for p, next := range commits {
		s.committed[p] = next - 1
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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return queue.ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	close(s.closing)
	err := s.cg.Close()
	<-s.done
	if err != nil {
		return fmt.Errorf("leaving group %s: %w", s.group, err)
	}
	return nil
}

var (
	_ queue.Subscription   = (*subscription)(nil)
	_ queue.Lagger         = (*subscription)(nil)
	_ queue.PartitionOwner = (*subscription)(nil)
	_ queue.Rebalancer     = (*subscription)(nil)
	_ queue.Revoker        = (*subscription)(nil)
)
