package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/config"

	kafkago "github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/kafka"
	"github.com/switchyard/switchyard/queue/kafka/kafkatest"
	"github.com/switchyard/switchyard/queue/queuetest"
)

func open(t *testing.T, cfg kafka.Config) *kafka.Log {
	t.Helper()
	if cfg.Brokers == nil {
		cfg.Brokers = kafkatest.Brokers(t)
	}
	l, err := kafka.New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	if err != nil {
		t.Fatalf("opening kafka log: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestConformance(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	queuetest.Run(t, func(t *testing.T) queue.Log {
		l, err := kafka.New(kafka.Config{Brokers: brokers}, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
		if err != nil {
			t.Fatalf("opening kafka log: %v", err)
		}
		return l
	})
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   kafka.Config
		field string // named in the error; empty when the config is valid
	}{
		{"a config with only brokers is valid", kafka.Config{Brokers: []string{"127.0.0.1:9092"}}, ""},
		{"a config without brokers is refused", kafka.Config{}, "Brokers"},
		{"a broker without a port is refused", kafka.Config{Brokers: []string{"localhost"}}, "Brokers"},
		{"negative partitions are refused", kafka.Config{Brokers: []string{"h:1"}, Partitions: -1}, "Partitions"},
		{"a negative replication factor is refused", kafka.Config{Brokers: []string{"h:1"}, ReplicationFactor: -2}, "ReplicationFactor"},
		{"an unknown compression is refused", kafka.Config{Brokers: []string{"h:1"}, Compression: "brotli"}, "Compression"},
		{"every known compression is accepted", kafka.Config{Brokers: []string{"h:1"}, Compression: "zstd"}, ""},
		{"a negative batch timeout is refused", kafka.Config{Brokers: []string{"h:1"}, BatchTimeout: config.Duration(-time.Second)}, "BatchTimeout"},
		{"a negative batch size is refused", kafka.Config{Brokers: []string{"h:1"}, BatchSize: -1}, "BatchSize"},
		{"a negative write timeout is refused", kafka.Config{Brokers: []string{"h:1"}, WriteTimeout: -1}, "WriteTimeout"},
		{"a heartbeat no shorter than the session timeout is refused",
			kafka.Config{Brokers: []string{"h:1"}, HeartbeatInterval: config.Duration(10 * time.Second), SessionTimeout: config.Duration(10 * time.Second)}, "HeartbeatInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := kafka.New(tt.cfg, zap.NewNop())
			if tt.field == "" {
				if err != nil {
					t.Fatalf("New = %v, want no error", err)
				}
				l.Close()
				return
			}
			if err == nil {
				l.Close()
				t.Fatalf("New succeeded, want an error naming %s", tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("New = %q, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestKeysLandInThePartitionOfPartitionFor(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, partitions := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("%d partitions", partitions), func(t *testing.T) {
			l := open(t, kafka.Config{Partitions: partitions})
			topic := queuetest.Topic(t)
			var msgs []queue.Message
			for i := range 200 {
				// Keys of every shape: user ids, anonymous ids, empty, binary.
				key := fmt.Appendf(nil, "user-%d", i)
				switch i % 4 {
				case 1:
					key = fmt.Appendf(nil, "anon-%08x-%04x", i*7919, i)
				case 2:
					key = []byte{byte(i), 0, byte(255 - i)}
				}
				msgs = append(msgs, queue.Message{Topic: topic, Key: key, Value: fmt.Appendf(nil, "%d", i)})
			}
			msgs = append(msgs, queue.Message{Topic: topic, Key: []byte{}, Value: []byte("empty key")})
			if err := l.Publish(ctx, msgs...); err != nil {
				t.Fatalf("publishing: %v", err)
			}
			n, err := l.Partitions(ctx, topic)
			if err != nil || n != partitions {
				t.Fatalf("Partitions = %d, %v; want %d", n, err, partitions)
			}
			r, err := l.Read(ctx, topic, queue.Position{Kind: queue.First})
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			defer r.Close()
			used := map[int]bool{}
			for range msgs {
				m, err := r.Fetch(ctx)
				if err != nil {
					t.Fatalf("fetching: %v", err)
				}
				used[m.Partition] = true
				if want := queue.PartitionFor(m.Key, partitions); m.Partition != want {
					t.Errorf("key %q: partition %d, queue.PartitionFor says %d", m.Key, m.Partition, want)
				}
			}
			if len(used) != partitions {
				t.Errorf("200 keys used %d of %d partitions", len(used), partitions)
			}
		})
	}
}

func TestPartitionsCreatesMissingTopicsWithTheConfiguredCount(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	a := open(t, kafka.Config{Partitions: 3})
	topic := queuetest.Topic(t)
	n, err := a.Partitions(ctx, topic)
	if err != nil || n != 3 {
		t.Fatalf("Partitions of a new topic = %d, %v; want 3", n, err)
	}
	// Another log, configured differently, finds the existing topic as it is.
	b := open(t, kafka.Config{Partitions: 5})
	n, err = b.Partitions(ctx, topic)
	if err != nil || n != 3 {
		t.Fatalf("Partitions of an existing topic = %d, %v; want 3", n, err)
	}
}

func TestPublishToATopicCreatedByAnotherProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// b has fetched the cluster's metadata before the topic exists.
	b := open(t, kafka.Config{})
	if err := b.Publish(ctx, queue.Message{Topic: queuetest.Topic(t), Key: []byte("k"), Value: []byte("warm")}); err != nil {
		t.Fatalf("warming up: %v", err)
	}
	a := open(t, kafka.Config{Partitions: 2})
	topic := queuetest.Topic(t)
	if _, err := a.Partitions(ctx, topic); err != nil {
		t.Fatalf("creating topic: %v", err)
	}

	start := time.Now()
	if err := b.Publish(ctx, queue.Message{Topic: topic, Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("publishing to a topic created elsewhere: %v", err)
	}
	t.Logf("first publish took %v", time.Since(start))
	if n, err := b.Partitions(ctx, topic); err != nil || n != 2 {
		t.Fatalf("Partitions = %d, %v; want 2", n, err)
	}
}

func TestGroupResumesInANewProcessAfterItsCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	topic := queuetest.Topic(t)
	group := topic + "-group"

	l := open(t, kafka.Config{Partitions: 4})
	var msgs []queue.Message
	for i := range 20 {
		msgs = append(msgs, queue.Message{Topic: topic, Key: fmt.Appendf(nil, "user-%d", i%5), Value: fmt.Appendf(nil, "v-%d", i)})
	}
	if err := l.Publish(ctx, msgs...); err != nil {
		t.Fatalf("publishing: %v", err)
	}

	s, err := l.Subscribe(ctx, queue.SubscribeConfig{Group: group, Topic: topic})
	if err != nil {
		t.Fatalf("subscribing: %v", err)
	}
	seen := map[string]bool{}
	for range msgs {
		m, err := s.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetching: %v", err)
		}
		seen[string(m.Value)] = true
		if err := s.Commit(ctx, m); err != nil {
			t.Fatalf("committing: %v", err)
		}
	}
	if len(seen) != len(msgs) {
		t.Fatalf("fetched %d distinct messages, want %d", len(seen), len(msgs))
	}
	if err := s.Close(); err != nil {
		t.Fatalf("closing subscription: %v", err)
	}

	// A new log, as a restarted router would open, sees only what came after.
	l2 := open(t, kafka.Config{Partitions: 4})
	if err := l2.Publish(ctx, queue.Message{Topic: topic, Key: []byte("user-1"), Value: []byte("after")}); err != nil {
		t.Fatalf("publishing: %v", err)
	}
	s2, err := l2.Subscribe(ctx, queue.SubscribeConfig{Group: group, Topic: topic})
	if err != nil {
		t.Fatalf("subscribing again: %v", err)
	}
	defer s2.Close()
	m, err := s2.Fetch(ctx)
	if err != nil {
		t.Fatalf("fetching after resume: %v", err)
	}
	if string(m.Value) != "after" {
		t.Fatalf("resumed group fetched %q, want after", m.Value)
	}
}

func TestTwoGroupMembersSplitThePartitionsAndSeeEveryMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const partitions, total = 6, 120
	topic := queuetest.Topic(t)
	group := topic + "-group"
	l := open(t, kafka.Config{Partitions: partitions})
	if _, err := l.Partitions(ctx, topic); err != nil {
		t.Fatalf("creating topic: %v", err)
	}

	// Both members join before anything is published, so the group settles
	// on two members and each message goes to exactly one of them.
	members := make([]queue.Subscription, 2)
	for i := range members {
		s, err := open(t, kafka.Config{}).Subscribe(ctx, queue.SubscribeConfig{Group: group, Topic: topic})
		if err != nil {
			t.Fatalf("subscribing member %d: %v", i, err)
		}
		defer s.Close()
		members[i] = s
	}

	waitStable(t, ctx, group, 2)

	type got struct {
		member int
		msg    queue.Message
	}
	results := make(chan got)
	fetchCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for i, s := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := s.Fetch(fetchCtx)
				if err != nil {
					return
				}
				if err := s.Commit(fetchCtx, m); err != nil {
					return
				}
				select {
				case results <- got{i, m}:
				case <-fetchCtx.Done():
					return
				}
			}
		}()
	}

	var msgs []queue.Message
	for i := range total {
		msgs = append(msgs, queue.Message{Topic: topic, Key: fmt.Appendf(nil, "user-%d", i), Value: fmt.Appendf(nil, "v-%d", i)})
	}
	if err := l.Publish(ctx, msgs...); err != nil {
		t.Fatalf("publishing: %v", err)
	}
	owner := map[int]int{} // partition -> member
	seen := map[string]int{}
	for len(seen) < total {
		select {
		case g := <-results:
			seen[string(g.msg.Value)]++
			if o, ok := owner[g.msg.Partition]; ok && o != g.member {
				t.Errorf("partition %d fetched by members %d and %d", g.msg.Partition, o, g.member)
			}
			owner[g.msg.Partition] = g.member
		case <-ctx.Done():
			t.Fatalf("saw %d of %d messages: %v", len(seen), total, ctx.Err())
		}
	}
	stop()
	wg.Wait()

	for v, n := range seen {
		if n != 1 {
			t.Errorf("message %s fetched %d times", v, n)
		}
	}
	perMember := map[int]int{}
	for _, m := range owner {
		perMember[m]++
	}
	if len(owner) != partitions || perMember[0] == 0 || perMember[1] == 0 {
		t.Fatalf("partitions per member = %v over %d partitions, want both members to own some of all %d", perMember, len(owner), partitions)
	}
}

func TestNewGroupStartsAtAnOffsetOrATime(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	l := open(t, kafka.Config{Partitions: 2})
	topic := queuetest.Topic(t)
	publish := func(prefix string) []queue.Message {
		var msgs []queue.Message
		for i := range 5 {
			msgs = append(msgs, queue.Message{Topic: topic, Key: []byte("user-1"), Value: fmt.Appendf(nil, "%s-%d", prefix, i)})
		}
		if err := l.Publish(ctx, msgs...); err != nil {
			t.Fatalf("publishing: %v", err)
		}
		return msgs
	}
	publish("a")
	r, err := l.Read(ctx, topic, queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	defer r.Close()
	var a []queue.Message
	for range 5 {
		m, err := r.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetching: %v", err)
		}
		a = append(a, m)
	}
	between := a[4].Time.Add(time.Millisecond)
	time.Sleep(20 * time.Millisecond) // separates the two batches' timestamps
	publish("b")

	first := func(t *testing.T, group string, start queue.Position) string {
		t.Helper()
		s, err := l.Subscribe(ctx, queue.SubscribeConfig{Group: group, Topic: topic, Start: start})
		if err != nil {
			t.Fatalf("subscribing: %v", err)
		}
		defer s.Close()
		m, err := s.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetching: %v", err)
		}
		if err := s.Commit(ctx, m); err != nil {
			t.Fatalf("committing: %v", err)
		}
		return string(m.Value)
	}

	tests := []struct {
		name        string
		start       queue.Position
		first, next string
	}{
		{"a group starting at an offset begins at that offset", queue.Position{Kind: queue.AtOffset, Offset: a[3].Offset}, "a-3", "a-4"},
		{"a group starting at a time begins at the first message at or after it", queue.Position{Kind: queue.AtTime, Time: between}, "b-0", "b-1"},
		{"a group starting before the oldest offset begins at the oldest", queue.Position{Kind: queue.AtOffset, Offset: -100}, "a-0", "a-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := queuetest.Topic(t)
			if got := first(t, group, tt.start); got != tt.first {
				t.Fatalf("first message = %s, want %s", got, tt.first)
			}
			// Once it has committed, the group resumes after its commit
			// whatever Start says.
			if got := first(t, group, queue.Position{Kind: queue.AtOffset, Offset: 0}); got != tt.next {
				t.Fatalf("after a commit the group fetched %s, want %s", got, tt.next)
			}
		})
	}
}

func TestUnreachableBrokersAreUnavailableQuickly(t *testing.T) {
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	l, err := kafka.New(kafka.Config{Brokers: []string{addr}, DialTimeout: config.Duration(time.Second)}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	start := time.Now()
	err = l.Check(t.Context())
	if !errors.Is(err, queue.ErrUnavailable) {
		t.Fatalf("Check = %v, want queue.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Check took %v, want at most DialTimeout (1s)", d)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	err = l.Publish(ctx, queue.Message{Topic: "unreachable", Key: []byte("k"), Value: []byte("v")})
	if !errors.Is(err, queue.ErrUnavailable) {
		t.Fatalf("Publish = %v, want queue.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Check and Publish took %v, want them bounded by their deadlines", d)
	}
}

func TestCheckPassesOnTheRealBroker(t *testing.T) {
	l := open(t, kafka.Config{})
	if err := l.Check(t.Context()); err != nil {
		t.Fatalf("Check = %v, want nil", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("closing: %v", err)
	}
	if err := l.Check(t.Context()); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Check after Close = %v, want queue.ErrClosed", err)
	}
}

// waitStable waits until group is stable with the given number of members,
// each assigned some partitions.
func waitStable(t *testing.T, ctx context.Context, group string, members int) {
	t.Helper()
	client := &kafkago.Client{Addr: kafkago.TCP(kafkatest.Brokers(t)...)}
	var state string
	for {
		res, err := client.DescribeGroups(ctx, &kafkago.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err == nil && len(res.Groups) == 1 {
			g := res.Groups[0]
			assigned := 0
			for _, m := range g.Members {
				if len(m.MemberAssignments.Topics) > 0 {
					assigned++
				}
			}
			state = fmt.Sprintf("%s with %d members, %d assigned", g.GroupState, len(g.Members), assigned)
			if g.GroupState == "Stable" && len(g.Members) == members && assigned == members {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s not stable with %d members: last seen %s, error %v", group, members, state, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestOnePublishWritesToSeveralTopics(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	l := open(t, kafka.Config{Partitions: 2})
	topics := []string{queuetest.Topic(t), queuetest.Topic(t)}
	var msgs []queue.Message
	for i := range 10 {
		topic := topics[i%2]
		msgs = append(msgs, queue.Message{Topic: topic, Key: []byte("user-1"), Value: fmt.Appendf(nil, "%s/%d", topic, i)})
	}
	if err := l.Publish(ctx, msgs...); err != nil {
		t.Fatalf("publishing: %v", err)
	}
	for _, topic := range topics {
		r, err := l.Read(ctx, topic, queue.Position{Kind: queue.First})
		if err != nil {
			t.Fatalf("reading %s: %v", topic, err)
		}
		var got []string
		for range 5 {
			m, err := r.Fetch(ctx)
			if err != nil {
				t.Fatalf("fetching from %s: %v", topic, err)
			}
			got = append(got, string(m.Value))
		}
		r.Close()
		var want []string
		for _, m := range msgs {
			if m.Topic == topic {
				want = append(want, string(m.Value))
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: got %q, want %q", topic, got, want)
		}
	}
}

// TestAMemberCommitsAtTheEndOfAGenerationBeforeItsPartitionsMove: a member
// that has fetched everything without committing is told, when a second
// member joins, that its generation is ending; what it commits then is
// where the second member starts, so nothing is fetched twice.
func TestAMemberCommitsAtTheEndOfAGenerationBeforeItsPartitionsMove(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const partitions, perPartition = 4, 5
	topic := queuetest.Topic(t)
	group := topic + "-group"
	l := open(t, kafka.Config{Partitions: partitions})
	if _, err := l.Partitions(ctx, topic); err != nil {
		t.Fatalf("creating topic: %v", err)
	}
	// keys[p] lands in partition p.
	keys := make([][]byte, partitions)
	for i, found := 0, 0; found < partitions; i++ {
		k := fmt.Appendf(nil, "user-%d", i)
		if p := queue.PartitionFor(k, partitions); keys[p] == nil {
			keys[p] = k
			found++
		}
	}
	var msgs []queue.Message
	for p := range partitions {
		for i := range perPartition {
			msgs = append(msgs, queue.Message{Topic: topic, Key: keys[p], Value: fmt.Appendf(nil, "before-%d-%d", p, i)})
		}
	}
	if err := l.Publish(ctx, msgs...); err != nil {
		t.Fatalf("publishing: %v", err)
	}

	first, err := open(t, kafka.Config{}).Subscribe(ctx, queue.SubscribeConfig{Group: group, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	revoking := first.(queue.Revoker).Revoking()
	var fetched []queue.Message
	for len(fetched) < len(msgs) {
		m, err := first.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetched %d of %d: %v", len(fetched), len(msgs), err)
		}
		fetched = append(fetched, m)
	}

	second, err := open(t, kafka.Config{}).Subscribe(ctx, queue.SubscribeConfig{Group: group, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	var rv queue.Revocation
	select {
	case rv = <-revoking:
	case <-ctx.Done():
		t.Fatal("the first member was not told that its generation is ending")
	}
	if left := time.Until(rv.Deadline); left <= 0 || left > 2*time.Second {
		t.Errorf("revocation deadline %v away, want within the default 2s", left)
	}
	// The member takes a while, as one waiting for batches in flight does:
	// the group waits for it.
	time.Sleep(time.Second)
	if err := first.Commit(ctx, fetched...); err != nil {
		t.Fatalf("committing at the end of the generation: %v", err)
	}
	rv.Done()
	rv.Done()

	waitStable(t, ctx, group, 2)
	owned, _, err := second.Owned(ctx)
	if err != nil || len(owned) == 0 {
		t.Fatalf("the second member owns %v (%v), want some partitions", owned, err)
	}
	var markers []queue.Message
	for p := range partitions {
		markers = append(markers, queue.Message{Topic: topic, Key: keys[p], Value: fmt.Appendf(nil, "after-%d", p)})
	}
	if err := l.Publish(ctx, markers...); err != nil {
		t.Fatalf("publishing: %v", err)
	}
	for range owned {
		m, err := second.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("after-%d", m.Partition); string(m.Value) != want {
			t.Fatalf("the second member fetched %q at %d/%d, want %q: it did not start after the first member's commit",
				m.Value, m.Partition, m.Offset, want)
		}
	}
}
