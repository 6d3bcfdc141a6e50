// Package kafka is the Kafka implementation of queue.Log, built on
// segmentio/kafka-go.
//
// Publish writes with acks=all: one goroutine sends every Publish call
// waiting at the moment in one produce request per partition leader, on
// kafka-go's Transport, with keys placed by queue.PartitionFor as on the
// embedded log. Subscribe is a
// kafka-go consumer group Reader with synchronous commits. Read merges one
// kafka-go partition Reader per partition. Topics that do not exist are
// created with Config.Partitions partitions the first time Publish, Subscribe,
// Read or Partitions uses them; the broker's own automatic topic creation is
// never relied on.
//
// Message.Time is the Kafka record timestamp: with the default
// message.timestamp.type=CreateTime it is set by Publish when the record is
// written, so it never decreases within a partition as long as the clocks of
// the publishing processes agree.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/waitlist"
	"github.com/switchyard/switchyard/queue"
)

// Config configures a Log. The zero value of every field but Brokers selects
// its default. The yaml keys are those of the kafka section of the config
// file; Partitions is set there by log.partitions.
type Config struct {
	// Brokers lists the bootstrap brokers as host:port. Required.
	Brokers []string `yaml:"brokers"`

	// Partitions is the partition count of topics created because they were
	// missing. Existing topics keep theirs. Default 8.
	Partitions int `yaml:"-"`

	// ReplicationFactor is the replica count of created topics. Default 1,
	// which suits a single broker; production clusters want 3.
	ReplicationFactor int `yaml:"replication_factor"`

	// Compression of written batches: "none", "gzip", "snappy", "lz4" or
	// "zstd". Default "lz4": with the gateway and a broker on one 2-vCPU
	// machine it took 7% more batch events/s than snappy, whose encoder in
	// kafka-go is the slower "better" one, and the broker spent a quarter
	// less CPU validating it.
	Compression string `yaml:"compression"`

	// BatchTimeout is how long a round of writes waits, after its first
	// Publish call, for more calls to join it. Default 0: a round goes as
	// soon as the one before it is answered, with every call that came
	// meanwhile, so batches grow with the load and a lone call never waits.
	BatchTimeout config.Duration `yaml:"batch_timeout"`

	// BatchSize is the most messages one partition's record batch holds in
	// a round; calls past it (or past 1 MiB of keys and values) go in the
	// next round. Default 1000.
	BatchSize int `yaml:"batch_size"`

	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout config.Duration `yaml:"write_timeout"`

	// ClientID names this process to the brokers, in their logs and quotas.
	// Default "switchyard".
	ClientID string `yaml:"client_id"`

	// DialTimeout bounds connecting to a broker; Check also finishes within
	// it. Default 5s.
	DialTimeout config.Duration `yaml:"dial_timeout"`

	// SessionTimeout is how long a group member may go without a heartbeat
	// before the group coordinator removes it and hands its partitions to
	// others. Must lie within the broker's group.min.session.timeout.ms and
	// group.max.session.timeout.ms (6s and 30m by default). Default 10s.
	SessionTimeout config.Duration `yaml:"session_timeout"`

	// HeartbeatInterval is how often a group member heartbeats, which is also
	// how soon it learns of a rebalance. Default 1s.
	HeartbeatInterval config.Duration `yaml:"heartbeat_interval"`

	// RevocationTimeout bounds how long a group member that asked to be told
	// of revocations (queue.Revoker) may take, when a generation ends, to
	// commit what it finished before it rejoins the group. The rebalance
	// waits for it. Default 2s.
	RevocationTimeout config.Duration `yaml:"revocation_timeout"`
}

const (
	defaultPartitions        = 8
	defaultReplicationFactor = 1
	defaultCompression       = "lz4"
	defaultBatchSize         = 1000
	defaultWriteTimeout      = 10 * time.Second
	defaultClientID          = "switchyard"
	defaultDialTimeout       = 5 * time.Second
	defaultSessionTimeout    = 10 * time.Second
	defaultHeartbeatInterval = 1 * time.Second
	defaultRevocationTimeout = 2 * time.Second

	// maxWait bounds how long one fetch request waits on the broker for new
	// messages, so a reader notices closing and new partitions promptly.
	maxWait = 250 * time.Millisecond
	// maxBytes bounds one fetch response per partition.
	maxBytes = 10 << 20
	// joinGroupBackoff is the pause before a group member retries a failed join.
	joinGroupBackoff = 500 * time.Millisecond
	// writeAttempts bounds how often Publish tries a batch on errors that
	// mean the cluster cannot take it now (a leader moving, for example).
	// The router owns retrying beyond that.
	writeAttempts = 3
)

var compressions = map[string]kafkago.Compression{
	"none":   0,
	"gzip":   kafkago.Gzip,
	"snappy": kafkago.Snappy,
	"lz4":    kafkago.Lz4,
	"zstd":   kafkago.Zstd,
}

// withDefaults returns c with every unset field set to its default.
func (c Config) withDefaults() Config {
	if c.Partitions == 0 {
		c.Partitions = defaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = defaultReplicationFactor
	}
	if c.Compression == "" {
		c.Compression = defaultCompression
	}
	if c.BatchSize == 0 {
		c.BatchSize = defaultBatchSize
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = config.Duration(defaultWriteTimeout)
	}
	if c.ClientID == "" {
		c.ClientID = defaultClientID
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = config.Duration(defaultDialTimeout)
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = config.Duration(defaultSessionTimeout)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = config.Duration(defaultHeartbeatInterval)
	}
	if c.RevocationTimeout == 0 {
		c.RevocationTimeout = config.Duration(defaultRevocationTimeout)
	}
	return c
}

// validate reports the first invalid field of a Config with defaults applied.
func (c Config) validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: Brokers is required")
	}
	for _, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("kafka: Brokers: %q is not host:port", b)
		}
	}
	if c.Partitions < 0 {
		return fmt.Errorf("kafka: Partitions must be positive, got %d", c.Partitions)
	}
	if c.ReplicationFactor < 0 || c.ReplicationFactor > 32767 {
		return fmt.Errorf("kafka: ReplicationFactor must be between 1 and 32767, got %d", c.ReplicationFactor)
	}
	if _, ok := compressions[c.Compression]; !ok {
		return fmt.Errorf("kafka: Compression %q is not one of none, gzip, snappy, lz4, zstd", c.Compression)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"BatchTimeout", time.Duration(c.BatchTimeout)},
		{"WriteTimeout", time.Duration(c.WriteTimeout)},
		{"DialTimeout", time.Duration(c.DialTimeout)},
		{"SessionTimeout", time.Duration(c.SessionTimeout)},
		{"HeartbeatInterval", time.Duration(c.HeartbeatInterval)},
		{"RevocationTimeout", time.Duration(c.RevocationTimeout)},
	} {
		if d.v < 0 {
			return fmt.Errorf("kafka: %s must be positive, got %v", d.name, d.v)
		}
	}
	if c.BatchSize < 0 {
		return fmt.Errorf("kafka: BatchSize must be positive, got %d", c.BatchSize)
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		return fmt.Errorf("kafka: HeartbeatInterval (%v) must be shorter than SessionTimeout (%v)", c.HeartbeatInterval, c.SessionTimeout)
	}
	return nil
}

// Log is a queue.Log on a Kafka cluster. It is safe for concurrent use.
type Log struct {
	cfg       Config
	log       *zap.Logger
	transport *kafkago.Transport
	client    *kafkago.Client
	dialer    *kafkago.Dialer

	waiting *waitlist.List[*produceCall] // Publish calls produceLoop has not taken
	quit    chan struct{}                // closed by Close
	wg      sync.WaitGroup               // produceLoop

	mu     sync.Mutex
	closed bool
	topics map[string]int // partition counts of topics known to exist
}

// New returns a Log writing to and reading from cfg.Brokers. It does not
// contact the brokers: Check tells whether they can be reached.
func New(cfg Config, log *zap.Logger) (*Log, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("log", "kafka"))

	transport := &kafkago.Transport{
		DialTimeout: time.Duration(cfg.DialTimeout),
		ClientID:    cfg.ClientID,
	}
	l := &Log{
		cfg:       cfg,
		log:       log,
		transport: transport,
		client: &kafkago.Client{
			Addr:      kafkago.TCP(cfg.Brokers...),
			Transport: transport,
			Timeout:   time.Duration(cfg.WriteTimeout),
		},
		dialer: &kafkago.Dialer{
			ClientID:  cfg.ClientID,
			Timeout:   time.Duration(cfg.DialTimeout),
			DualStack: true,
		},
		topics:  make(map[string]int),
		waiting: waitlist.New[*produceCall](),
		quit:    make(chan struct{}),
	}
	l.wg.Add(1)
	go l.produceLoop()
	return l, nil
}

// kafkaLogger writes kafka-go's log lines as debug entries. kafka-go reports
// transient errors it retries itself through its error logger, so those are
// debug entries too, marked with kafka_error.
func (l *Log) kafkaLogger(isError bool) kafkago.Logger {
	log := l.log.Named("kafka-go")
	if isError {
		log = log.With(zap.Bool("kafka_error", true))
	}
	return kafkago.LoggerFunc(func(msg string, args ...any) {
		if ce := log.Check(zap.DebugLevel, "kafka-go"); ce != nil {
			ce.Message = fmt.Sprintf(msg, args...)
			ce.Write()
		}
	})
}

func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Publish implements queue.Log. It returns after every message is
// acknowledged by all in-sync replicas. Errors that mean the cluster cannot
// take writes now (brokers unreachable, too few in-sync replicas, timeouts)
// wrap queue.ErrUnavailable. If ctx ends first Publish returns ctx.Err(),
// and the messages may or may not have been written.
func (l *Log) Publish(ctx context.Context, msgs ...queue.Message) error {
	if l.isClosed() {
		return queue.ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	for i, m := range msgs {
		if m.Topic == "" {
			return fmt.Errorf("publishing message %d: topic is empty", i)
		}
		if i == 0 || m.Topic != msgs[i-1].Topic {
			if _, err := l.ensureTopic(ctx, m.Topic); err != nil {
				return fmt.Errorf("publishing to %s: %w", m.Topic, err)
			}
		}
	}
	parts := make([]topicPartition, len(msgs))
	for i, m := range msgs {
		parts[i] = l.partitionOf(m)
	}
	// A call larger than one round's batches allow is sent in parts, one
	// after the other, so its messages keep their order.
	for len(msgs) > 0 {
		n := l.fittingPrefix(msgs, parts)
		if err := l.submit(ctx, msgs[:n], parts[:n]); err != nil {
			return err
		}
		msgs, parts = msgs[n:], parts[n:]
	}
	return nil
}

// fittingPrefix is how many of msgs, at least one, fit in one round
// without a partition's batch going past BatchSize messages or
// maxBatchBytes; parts[i] is the partition of msgs[i].
func (l *Log) fittingPrefix(msgs []queue.Message, parts []topicPartition) int {
	loads := map[topicPartition]batchLoad{}
	for i, m := range msgs {
		tp := parts[i]
		loads[tp] = loads[tp].plus(m)
		if i > 0 && l.tooLarge(loads[tp]) {
			return i
		}
	}
	return len(msgs)
}

// submit hands a copy of msgs, whose partitions are parts, to produceLoop
// and waits for its answer.
func (l *Log) submit(ctx context.Context, msgs []queue.Message, parts []topicPartition) error {
	size, headers := 0, 0
	for _, m := range msgs {
		size += len(m.Key) + len(m.Value)
		for _, h := range m.Headers {
			size += len(h.Value)
		}
		headers += len(m.Headers)
	}
	c := callPool.Get().(*produceCall)
	c.parts = parts
	if cap(c.copies) < size {
		c.copies = make([]byte, 0, size)
	}
	buf := c.copies[:0]
	copied := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		buf = append(buf, b...)
		return buf[len(buf)-len(b) : len(buf) : len(buf)]
	}
	hs := slices.Grow(c.headers[:0], headers)
	c.msgs = slices.Grow(c.msgs[:0], len(msgs))[:len(msgs)]
	for i, m := range msgs {
		c.msgs[i] = queue.Message{Topic: m.Topic, Key: copied(m.Key), Value: copied(m.Value)}
		if len(m.Headers) > 0 {
			start := len(hs)
			for _, h := range m.Headers {
				hs = append(hs, queue.Header{Key: h.Key, Value: copied(h.Value)})
			}
			c.msgs[i].Headers = hs[start:len(hs):len(hs)]
		}
	}
	c.copies, c.headers = buf, hs
	if !l.waiting.Add(c) {
		c.release()
		return queue.ErrClosed
	}
	select {
	case err := <-c.done:
		c.release()
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Partitions implements queue.Log.
func (l *Log) Partitions(ctx context.Context, topic string) (int, error) {
	if l.isClosed() {
		return 0, queue.ErrClosed
	}
	return l.ensureTopic(ctx, topic)
}

// ensureTopic returns the partition count of topic, creating the topic with
// the configured partitions and replication factor when it does not exist.
// Counts are cached: the first call per topic costs a round trip to the
// controller, later ones none.
func (l *Log) ensureTopic(ctx context.Context, topic string) (int, error) {
	l.mu.Lock()
	n, ok := l.topics[topic]
	l.mu.Unlock()
	if ok {
		return n, nil
	}

	// CreateTopics answers "already exists" for an existing topic, which is
	// the cheapest way to learn that without risking the broker creating it
	// with its own defaults (metadata requests may do that).
	res, err := l.client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{
		Topics: []kafkago.TopicConfig{{
			Topic:             topic,
			NumPartitions:     l.cfg.Partitions,
			ReplicationFactor: l.cfg.ReplicationFactor,
		}},
	})
	if err != nil {
		return 0, fmt.Errorf("creating topic %s: %w", topic, classify(err))
	}
	switch err := res.Errors[topic]; {
	case err == nil:
		l.log.Info("created topic", zap.String("topic", topic),
			zap.Int("partitions", l.cfg.Partitions), zap.Int("replication_factor", l.cfg.ReplicationFactor))
	case errors.Is(err, kafkago.TopicAlreadyExists):
	default:
		return 0, fmt.Errorf("creating topic %s: %w", topic, classify(err))
	}

	n, err = l.readPartitions(ctx, topic)
	if err != nil {
		return 0, err
	}
	if err := l.waitLeaders(ctx, topic, n); err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.topics[topic] = n
	l.mu.Unlock()
	return n, nil
}

// readPartitions returns the partition count of an existing topic once every
// partition has a leader, from the transport's metadata, which Publish
// and the Client route by.
func (l *Log) readPartitions(ctx context.Context, topic string) (int, error) {
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		// The topic exists, so allowing creation cannot create it; it makes
		// the transport refresh its cached metadata when the topic is not in
		// it yet (created by another process since the last refresh).
		res, err := l.transport.RoundTrip(ctx, l.client.Addr, &metadata.Request{
			TopicNames:             []string{topic},
			AllowAutoTopicCreation: true,
		})
		if err != nil {
			return 0, fmt.Errorf("reading metadata of topic %s: %w", topic, classify(err))
		}
		var terr error = kafkago.UnknownTopicOrPartition
		for _, t := range res.(*metadata.Response).Topics {
			if t.Name != topic {
				continue
			}
			terr = nil
			if t.ErrorCode != 0 {
				terr = kafkago.Error(t.ErrorCode)
				break
			}
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					terr = kafkago.Error(p.ErrorCode)
					break
				}
				if p.LeaderID < 0 {
					terr = kafkago.LeaderNotAvailable
					break
				}
			}
			if terr == nil {
				return len(t.Partitions), nil
			}
		}
		var kerr kafkago.Error
		if errors.As(terr, &kerr) && !kerr.Temporary() {
			return 0, fmt.Errorf("reading metadata of topic %s: %w", topic, terr)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for topic %s: %w: %w", topic, queue.ErrUnavailable, errors.Join(ctx.Err(), terr))
		case <-time.After(delay):
		}
	}
}

// waitLeaders returns once the leader of every partition of topic answers
// for it. A partition's leader shows in the metadata a moment before the
// broker serves it, and a new topic's first reads and writes would
// otherwise fail with "not leader".
func (l *Log) waitLeaders(ctx context.Context, topic string, n int) error {
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		_, err := l.listOffsets(ctx, topic, n, kafkago.LastOffset)
		if err == nil {
			return nil
		}
		var kerr kafkago.Error
		if !errors.As(err, &kerr) || !kerr.Temporary() {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the leaders of %s: %w: %w", topic, queue.ErrUnavailable, errors.Join(ctx.Err(), err))
		case <-time.After(delay):
		}
	}
}

// Check implements queue.Log: it connects to the brokers in turn and asks
// the first that answers for the cluster's controller, a metadata request
// that does not touch the transport's cache. It returns within DialTimeout.
func (l *Log) Check(ctx context.Context) error {
	if l.isClosed() {
		return queue.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(l.cfg.DialTimeout))
	defer cancel()

	var errs []error
	for _, broker := range l.cfg.Brokers {
		err := l.checkBroker(ctx, broker)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("checking brokers %s: %w: %w", strings.Join(l.cfg.Brokers, ","), queue.ErrUnavailable, errors.Join(errs...))
}

func (l *Log) checkBroker(ctx context.Context, broker string) error {
	conn, err := l.dialer.DialContext(ctx, "tcp", broker)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", broker, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			return fmt.Errorf("setting deadline on %s: %w", broker, err)
		}
	}
	controller, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("asking %s for the controller: %w", broker, err)
	}
	if controller.Host == "" {
		return fmt.Errorf("asking %s for the controller: cluster has no active controller", broker)
	}
	return nil
}

// Close implements queue.Log. It waits for pending writes and closes the
// connections of Publish; Readers and Subscriptions are closed by their
// owners.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return queue.ErrClosed
	}
	l.closed = true
	l.mu.Unlock()

	close(l.quit)
	l.wg.Wait()
	l.transport.CloseIdleConnections()
	return nil
}

// classify wraps err in queue.ErrUnavailable when it means the cluster cannot
// serve the request now: a broker unreachable or gone, a timeout, too few
// in-sync replicas, a leader or coordinator not available. A canceled
// context and permanent errors (a message too large, an invalid topic) are
// returned unchanged.
func classify(err error) error {
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", queue.ErrUnavailable, err)
	}
	return err
}

func isUnavailable(err error) bool {
	if err == nil || errors.Is(err, queue.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var werrs kafkago.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil && isUnavailable(e) {
				return true
			}
		}
		return false
	}
	var kerr kafkago.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary() || kerr.Timeout() || kerr == kafkago.BrokerNotAvailable
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return true
	}
	return errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// partitionIDs returns 0, 1, ..., n-1.
func partitionIDs(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

var _ queue.Log = (*Log)(nil)
