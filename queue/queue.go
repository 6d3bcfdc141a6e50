// Package queue is switchyard's durable log: an append-only, partitioned record of
// messages that the gateway writes and the router reads. Two implementations sit
// behind the Log interface: Kafka (queue/kafka) and an embedded on-disk log
// (queue/embedded). Both pass the same conformance suite (queue/queuetest).
package queue

import (
	"context"
	"errors"
	"hash/fnv"
	"time"
)

// Message is one record of a topic.
type Message struct {
	// Topic names the log the message belongs to. Required by Publish.
	Topic string
	// Key decides the partition: messages with equal keys land in one partition,
	// in the order they were published. The gateway uses userId, else anonymousId.
	Key []byte
	// Value is the message body, kept byte for byte.
	Value []byte
	// Headers are kept with the message, in order, byte for byte. The
	// gateway gives each event's schemas.EventHeader in one.
	Headers []Header

	// Partition, Offset and Time are set by the log; Publish ignores them.
	Partition int
	Offset    int64
	// Time is when the log appended the message. Within a partition it never
	// decreases, so reading from a time is a search over offsets.
	Time time.Time
	// Buffer, set by a log that reuses the bytes it reads into, holds Key,
	// Value and Headers' bytes; see Release.
	Buffer *Buffer
}

// Header is a named value carried beside a message's value, as Kafka's
// record headers are.
type Header struct {
	Key   string
	Value []byte
}

// HeaderValue returns the value of the first of headers named key.
func HeaderValue(headers []Header, key string) ([]byte, bool) {
	for _, h := range headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// BatchFetcher is implemented by a Subscription or Reader that can hand
// over several messages at once, which costs less per message than a Fetch
// each.
type BatchFetcher interface {
	// FetchBatch appends to dst up to max messages (at least 1), in the
	// order Fetch would return them, waiting as Fetch does while there are
	// none, and returns dst. On an error it appends nothing.
	FetchBatch(ctx context.Context, dst []Message, max int) ([]Message, error)
}

// Log is a durable, partitioned, append-only log of topics.
type Log interface {
	// Publish appends msgs and returns nil only once every one of them is
	// durable (fsynced, or acknowledged by all in-sync replicas). On error, none,
	// some or all may have been stored: the caller must treat them as not stored
	// and may publish them again. Once it has returned nil, Publish holds
	// nothing of msgs: the caller may reuse their keys' and values' bytes.
	Publish(ctx context.Context, msgs ...Message) error

	// Subscribe joins a consumer group on one topic. A group resumes from its
	// committed offsets; a partition the group has never committed starts at
	// cfg.Start.
	Subscribe(ctx context.Context, cfg SubscribeConfig) (Subscription, error)

	// Read reads every partition of a topic without a consumer group, starting
	// at from, and commits nothing.
	Read(ctx context.Context, topic string, from Position) (Reader, error)

	// Offsets resolves at, now, to an offset in each partition of the topic
	// (index = partition): the offset of the first message a Read from at
	// returns there, or the partition's end when there is none yet. It creates
	// the topic when it does not exist. ReadRange is built on it.
	Offsets(ctx context.Context, topic string, at Position) ([]int64, error)

	// Partitions returns how many partitions the topic has, creating the topic
	// with the configured count when it does not exist.
	Partitions(ctx context.Context, topic string) (int, error)

	// Check returns nil when the log can take writes now. /readyz uses it.
	Check(ctx context.Context) error

	// Close releases the log. Publish and Subscribe fail after it.
	Close() error
}

// SubscribeConfig selects a group and a topic.
type SubscribeConfig struct {
	Group string
	Topic string
	// Start is where partitions with no committed offset begin. The zero value
	// is the first retained message.
	Start Position
}

// Subscription delivers a group's share of a topic's messages.
type Subscription interface {
	// Fetch blocks until the next message of a partition this member owns
	// is available or ctx ends. Messages of one partition come in offset order.
	Fetch(ctx context.Context) (Message, error)
	// Commit marks, for the partition of each message given, that message and
	// every earlier one as done: the group resumes after the highest offset
	// committed. Callers commit only a fully acknowledged prefix.
	Commit(ctx context.Context, msgs ...Message) error
	// Lag is the group's lag and Owned this member's partitions.
	Lagger
	PartitionOwner
	// Close leaves the group. Uncommitted messages are delivered again later.
	Close() error
}

// Lagger is implemented by a Subscription, and by any other input the
// router reads that can tell how far behind its group is.
type Lagger interface {
	// Lag returns how many messages of the topic lie past the group's
	// committed offsets, summed over every partition of the topic (a
	// partition the group never committed counts from its first retained
	// message). It is what kafka-consumer-groups.sh reports as the group's
	// lag.
	Lag(ctx context.Context) (int64, error)
}

// PartitionOwner is implemented by a Subscription, and by any other input the
// router reads that is one member of a consumer group.
type PartitionOwner interface {
	// Owned returns the partitions of the topic assigned to this member now
	// and the topic's partition count. Before the member has joined its
	// group, owned is empty. Several processes sharing one budget (a
	// HubSpot token) split it by this share.
	Owned(ctx context.Context) (owned []int, total int, err error)
}

// Rebalancer is implemented by a Subscription whose partitions move between
// the members of its group. After every rebalance the log delivers each
// partition the member keeps or gains again from the group's committed
// offset; a member must stop committing, and may drop what it holds of, the
// partitions it lost.
type Rebalancer interface {
	// Assignment returns the partitions this member owns now, each with
	// the group generation since which the member has owned it without a
	// break. A partition whose generation changed between two calls was
	// owned by another member in between. Before the member has joined its
	// group, the assignment is empty.
	Assignment() map[int]int64
	// Rebalanced returns a channel that receives a value after the
	// assignment changes, before Fetch returns any message fetched under
	// the new assignment. Changes that follow one another before the value
	// is received are signalled once.
	Rebalanced() <-chan struct{}
}

// Revoker is implemented by a Rebalancer whose group lets a member commit
// before its partitions go to other members: when the group's generation
// ends, the member is told, and its next owners start from what the member
// commits before it answers.
type Revoker interface {
	// Revoking returns a channel that receives a Revocation each time the
	// group's generation ends, before this member gives up its partitions.
	// Only a member that has called Revoking is waited for.
	Revoking() <-chan Revocation
}

// Revocation is the end of a group generation, as a Revoker announces it.
// Until Done is called or Deadline passes, Commit still commits in the
// ending generation, for every partition the member owned in it.
type Revocation struct {
	// Deadline is when the member's partitions go to their next owners
	// whether or not it has answered.
	Deadline time.Time
	// Done tells the Revoker that the member has committed what it
	// finished. Calling it more than once is harmless.
	Done func()
}

// Reader delivers the messages of every partition of a topic.
type Reader interface {
	// Fetch blocks until the next message is available or ctx ends. Messages
	// of one partition come in offset order; partitions are interleaved.
	Fetch(ctx context.Context) (Message, error)
	// Lag returns how many messages are available but not yet fetched, summed
	// over partitions, as of now. Zero means the reader has caught up.
	Lag(ctx context.Context) (int64, error)
	Close() error
}

// PositionKind says how a Position is read.
type PositionKind int

const (
	// First is the oldest retained message of each partition.
	First PositionKind = iota
	// Last is the end of each partition: only messages published later.
	Last
	// AtOffset is the same offset in every partition (clamped to what is retained).
	AtOffset
	// AtTime is, in each partition, the first message appended at or after Time.
	AtTime
)

// Position is a place in each partition of a topic: where a read begins,
// or where a range ends (see ReadRange).
type Position struct {
	Kind   PositionKind
	Offset int64
	Time   time.Time
}

// ErrClosed is returned by calls on a closed Log, Subscription or Reader.
var ErrClosed = errors.New("queue: closed")

// ErrUnavailable wraps errors that mean the log cannot take writes right now;
// the gateway answers 503 for them.
var ErrUnavailable = errors.New("queue: unavailable")

// ErrFull wraps errors that mean the log refuses writes because its storage
// is (nearly) full; such errors wrap ErrUnavailable too. Writes succeed
// again once space is freed.
var ErrFull = errors.New("queue: storage full")

// PartitionFor maps a key to a partition the way the hash balancer of
// segmentio/kafka-go (and Sarama) does: FNV-1a 32-bit read as a signed
// integer, modulo the count, sign dropped. A key lands in the same partition
// on both backends.
func PartitionFor(key []byte, partitions int) int {
	h := fnv.New32a()
	h.Write(key)
	p := int32(h.Sum32()) % int32(partitions)
	if p < 0 {
		p = -p
	}
	return int(p)
}
