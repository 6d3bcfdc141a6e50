package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/switchyard/switchyard/queue"
)

// Read implements queue.Log. It resolves from to an offset in every
// partition, then runs one kafka-go partition Reader per partition; Fetch
// returns their messages as they arrive. Read creates the topic when it does
// not exist.
func (l *Log) Read(ctx context.Context, topic string, from queue.Position) (queue.Reader, error) {
	if l.isClosed() {
		return nil, queue.ErrClosed
	}
	n, err := l.ensureTopic(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", topic, err)
	}
	start, err := l.startOffsets(ctx, topic, n, from)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", topic, err)
	}

	// The partition readers live until Close, not until ctx ends.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &reader{
		l:      l,
		topic:  topic,
		msgs:   make(chan fetched),
		done:   make(chan struct{}),
		cancel: cancel,
		next:   start,
	}
	for p := range n {
		pr := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers:     l.cfg.Brokers,
			Topic:       topic,
			Partition:   p,
			Dialer:      l.dialer,
			MinBytes:    1,
			MaxBytes:    maxBytes,
			MaxWait:     maxWait,
			Logger:      l.kafkaLogger(false),
			ErrorLogger: l.kafkaLogger(true),
		})
		if err := pr.SetOffset(start[p]); err != nil {
			pr.Close()
			r.Close()
			return nil, fmt.Errorf("reading %s: setting offset of partition %d: %w", topic, p, err)
		}
		r.parts = append(r.parts, pr)
	}
	for _, pr := range r.parts {
		r.wg.Add(1)
		go r.run(rctx, pr)
	}
	return r, nil
}

// Offsets implements queue.Log: one ListOffsets request to the partition
// leaders (two for an AtOffset position, which is clamped to what is retained).
func (l *Log) Offsets(ctx context.Context, topic string, at queue.Position) ([]int64, error) {
	if l.isClosed() {
		return nil, queue.ErrClosed
	}
	n, err := l.ensureTopic(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("resolving a position in %s: %w", topic, err)
	}
	offsets, err := l.startOffsets(ctx, topic, n, at)
	if err != nil {
		return nil, fmt.Errorf("resolving a position in %s: %w", topic, err)
	}
	return offsets, nil
}

// startOffsets resolves from to the offset of the first message to read in
// each partition of topic.
func (l *Log) startOffsets(ctx context.Context, topic string, n int, from queue.Position) ([]int64, error) {
	switch from.Kind {
	case queue.First:
		return l.listOffsets(ctx, topic, n, kafkago.FirstOffset)
	case queue.Last:
		return l.listOffsets(ctx, topic, n, kafkago.LastOffset)
	case queue.AtOffset:
		first, err := l.listOffsets(ctx, topic, n, kafkago.FirstOffset)
		if err != nil {
			return nil, err
		}
		last, err := l.listOffsets(ctx, topic, n, kafkago.LastOffset)
		if err != nil {
			return nil, err
		}
		start := make([]int64, n)
		for p := range start {
			start[p] = max(first[p], min(from.Offset, last[p]))
		}
		return start, nil
	case queue.AtTime:
		return l.listOffsets(ctx, topic, n, millisAtOrAfter(from.Time))
	default:
		return nil, fmt.Errorf("unknown position kind %d", from.Kind)
	}
}

// millisAtOrAfter returns t in Unix milliseconds, rounded up: record times
// are whole milliseconds, so a record is at or after t exactly when its time
// is at or after the result. Times before 1970 give 0, as the negative values
// ask ListOffsets for the first or last offset instead.
func millisAtOrAfter(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return max(ms, 0)
}

// listOffsets asks the partition leaders of topic, in one ListOffsets
// request, for the offset that ts names in each of the n partitions:
// kafkago.FirstOffset for the oldest retained message, kafkago.LastOffset for
// the end of the partition, or a Unix time in milliseconds for the first
// message at or after it (the end of the partition when there is none).
func (l *Log) listOffsets(ctx context.Context, topic string, n int, ts int64) ([]int64, error) {
	reqs := make([]kafkago.OffsetRequest, n)
	for p := range reqs {
		reqs[p] = kafkago.OffsetRequest{Partition: p, Timestamp: ts}
	}
	res, err := l.client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{
		Topics: map[string][]kafkago.OffsetRequest{topic: reqs},
	})
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", topic, classify(err))
	}
	offsets := make([]int64, n)
	found := make([]bool, n)
	for _, po := range res.Topics[topic] {
		if po.Partition < 0 || po.Partition >= n {
			continue
		}
		if po.Error != nil {
			return nil, fmt.Errorf("listing offsets of %s partition %d: %w", topic, po.Partition, classify(po.Error))
		}
		switch ts {
		case kafkago.FirstOffset:
			offsets[po.Partition] = po.FirstOffset
		case kafkago.LastOffset:
			offsets[po.Partition] = po.LastOffset
		default:
			// Offsets holds the one answer for the time; offset -1 means no
			// message is that recent.
			offsets[po.Partition] = -1
			for off := range po.Offsets {
				offsets[po.Partition] = off
			}
		}
		found[po.Partition] = true
	}
	for p, ok := range found {
		if !ok {
			return nil, fmt.Errorf("listing offsets of %s: no answer for partition %d", topic, p)
		}
	}
	if ts != kafkago.FirstOffset && ts != kafkago.LastOffset {
		var last []int64
		for p, off := range offsets {
			if off >= 0 {
				continue
			}
			if last == nil {
				if last, err = l.listOffsets(ctx, topic, n, kafkago.LastOffset); err != nil {
					return nil, err
				}
			}
			offsets[p] = last[p]
		}
	}
	return offsets, nil
}

// fetched is a message, or an error, of one partition Reader.
type fetched struct {
	msg kafkago.Message
	err error
}

// reader is a queue.Reader over every partition of a topic. One goroutine per
// partition fetches into msgs, which is unbuffered: a message is taken from
// kafka-go only when a Fetch is waiting or about to, so next stays exact.
type reader struct {
	l      *Log
	topic  string
	parts  []*kafkago.Reader
	msgs   chan fetched
	done   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once

	mu   sync.Mutex
	next []int64 // per partition, the offset of the next message Fetch returns
}

func (r *reader) run(ctx context.Context, pr *kafkago.Reader) {
	defer r.wg.Done()
	for {
		m, err := pr.FetchMessage(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case r.msgs <- fetched{msg: m, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			// kafka-go retries transient errors itself; pause before asking
			// again after one it returned.
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
		}
	}
}

// Fetch implements queue.Reader.
func (r *reader) Fetch(ctx context.Context) (queue.Message, error) {
	select {
	case <-r.done:
		return queue.Message{}, queue.ErrClosed
	default:
	}
	select {
	case <-r.done:
		return queue.Message{}, queue.ErrClosed
	case <-ctx.Done():
		return queue.Message{}, ctx.Err()
	case f := <-r.msgs:
		if f.err != nil {
			if errors.Is(f.err, io.EOF) {
				return queue.Message{}, queue.ErrClosed
			}
			return queue.Message{}, fmt.Errorf("fetching from %s: %w", r.topic, classify(f.err))
		}
		r.mu.Lock()
		r.next[f.msg.Partition] = f.msg.Offset + 1
		r.mu.Unlock()
		return fromKafka(f.msg), nil
	}
}

// Lag implements queue.Reader: the end offset of each partition, asked of its
// leader now, less the offset of the next message Fetch returns there.
func (r *reader) Lag(ctx context.Context) (int64, error) {
	select {
	case <-r.done:
		return 0, queue.ErrClosed
	default:
	}
	last, err := r.l.listOffsets(ctx, r.topic, len(r.parts), kafkago.LastOffset)
	if err != nil {
		return 0, fmt.Errorf("getting lag of %s: %w", r.topic, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var lag int64
	for p, end := range last {
		lag += max(0, end-r.next[p])
	}
	return lag, nil
}

// Close implements queue.Reader.
func (r *reader) Close() error {
	err := queue.ErrClosed
	r.closeOnce.Do(func() {
		close(r.done)
		r.cancel()
		var errs []error
		for p, pr := range r.parts {
			if e := pr.Close(); e != nil {
				errs = append(errs, fmt.Errorf("closing reader of partition %d: %w", p, e))
			}
		}
		r.wg.Wait()
		err = errors.Join(errs...)
	})
	return err
}

func fromKafka(m kafkago.Message) queue.Message {
	msg := queue.Message{
		Topic:     m.Topic,
		Key:       m.Key,
		Value:     m.Value,
		Partition: m.Partition,
		Offset:    m.Offset,
		Time:      m.Time,
	}
	if len(m.Headers) > 0 {
		msg.Headers = make([]queue.Header, len(m.Headers))
		for i, h := range m.Headers {
			msg.Headers[i] = queue.Header{Key: h.Key, Value: h.Value}
		}
	}
	return msg
}

var _ queue.Reader = (*reader)(nil)
