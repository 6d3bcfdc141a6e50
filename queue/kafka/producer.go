package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/protocol/produce"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
)

// produceCall is one Publish call for the producer. Its messages' keys,
// values and headers are copies, so the caller may reuse its own as soon as
// Publish returns, even when its context ends first. Calls are reused
// through callPool, with their buffers: the caller puts its call back once
// it has the answer, as the producer is done with it by then. A caller
// whose context ends first leaves its call to the garbage collector, as the
// producer may still answer.
type produceCall struct {
	msgs    []queue.Message
	parts   []topicPartition // parts[i] is the partition of msgs[i]
	copies  []byte           // holds msgs' keys, values and header values
	headers []queue.Header   // holds msgs' headers
	done    chan error       // buffered: the producer never waits for the caller
}

var callPool = sync.Pool{New: func() any { return &produceCall{done: make(chan error, 1)} }}

// maxPooledCopies is the largest copy buffer kept for reuse.
const maxPooledCopies = 1 << 20

// release empties c, whose answer has been taken or which never reached
// the producer, and puts it back in callPool.
func (c *produceCall) release() {
	clear(c.msgs)
	c.msgs = c.msgs[:0]
	clear(c.headers)
	c.headers = c.headers[:0]
	c.parts = nil
	if cap(c.copies) > maxPooledCopies {
		c.copies = nil
	}
	callPool.Put(c)
}

// maxBatchBytes bounds the keys and values of one partition's record batch
// in a produce request. The broker refuses a batch larger than the topic's
// max.message.bytes (1 MiB by default) after compression; uncompressed
// records under this bound always fit. A single larger message goes alone
// and gets the broker's answer.
const maxBatchBytes = 1 << 20

// retryBackoff is the pause before the producer sends again the batches the
// brokers refused with a transient error.
const retryBackoff = 100 * time.Millisecond

// produceLoop sends the Publish calls to the partition leaders in rounds.
// A round takes every call waiting at the moment (after Config.BatchTimeout,
// when set), and sends each leader one produce request holding one record
// batch per partition; the calls that come while it is on its way make the
// next. One round at a time keeps every partition's messages in the order
// their calls were taken, retries included. It returns when quit is closed,
// after the round in hand; the calls still waiting get queue.ErrClosed.
func (l *Log) produceLoop() {
	defer l.wg.Done()
	defer func() {
		for _, c := range l.waiting.Close() {
			c.done <- queue.ErrClosed
		}
	}()
	// One round is reused, so its batches keep their slices from one round
	// to the next.
	var r round
	offer := func(c *produceCall) bool { return r.offer(c, l) }
	for {
		select {
		case <-l.quit:
			return
		default:
		}
		r.reset()
		if l.waiting.Take(offer); len(r.calls) == 0 {
			select {
			case <-l.waiting.Arrived():
			case <-l.quit:
			}
			continue
		}
		if linger := time.Duration(l.cfg.BatchTimeout); linger > 0 {
			select {
			case <-time.After(linger):
			case <-l.quit:
			}
			l.waiting.Take(offer)
		}
		l.send(&r)
	}
}

// round is the calls of one round, with their messages grouped by topic
// and partition in the order taken.
type round struct {
	calls   []*produceCall
	batches map[topicPartition]*partitionBatch
	order   []*partitionBatch
	// spare are the batches of earlier rounds, emptied, for this one's
	// partitions to take.
	spare []*partitionBatch
}

// reset empties r for the next round, keeping its batches as spares.
func (r *round) reset() {
	for _, b := range r.order {
		clear(b.msgs)
		clear(b.calls)
		*b = partitionBatch{msgs: b.msgs[:0], calls: b.calls[:0]}
	}
	r.spare = append(r.spare, r.order...)
	clear(r.order)
	r.order = r.order[:0]
	clear(r.calls)
	r.calls = r.calls[:0]
	clear(r.batches)
}

type topicPartition struct {
	topic     string
	partition int
}

// partitionBatch is one partition's messages in a round, the calls they
// came from, and how the brokers answered them.
type partitionBatch struct {
	tp    topicPartition
	msgs  []queue.Message
	load  batchLoad
	calls []*produceCall // each once, in order
	err   error
}

// batchLoad is the size of a partition's batch in a round.
type batchLoad struct{ msgs, bytes int }

func (b batchLoad) plus(m queue.Message) batchLoad {
	return batchLoad{b.msgs + 1, b.bytes + len(m.Key) + len(m.Value)}
}

// tooLarge tells whether a batch of load b is past BatchSize messages or
// maxBatchBytes.
func (l *Log) tooLarge(b batchLoad) bool {
	return b.msgs > l.cfg.BatchSize || b.bytes > maxBatchBytes
}

// partitionOf is the partition a message goes to: queue.PartitionFor of its
// key over the topic's partitions, as on the embedded log.
func (l *Log) partitionOf(m queue.Message) topicPartition {
	l.mu.Lock()
	n := l.topics[m.Topic]
	l.mu.Unlock()
	return topicPartition{m.Topic, queue.PartitionFor(m.Key, n)}
}

// offer adds c to r and returns true if r is empty or c fits in it.
func (r *round) offer(c *produceCall, l *Log) bool {
	if len(r.calls) > 0 && !r.fits(c, l) {
		return false
	}
	r.add(c)
	return true
}

// fits tells whether c can join r without taking a partition's batch past
// maxBatchBytes or BatchSize messages.
func (r *round) fits(c *produceCall, l *Log) bool {
	grown := map[topicPartition]batchLoad{}
	for i, m := range c.msgs {
		tp := c.parts[i]
		g, ok := grown[tp]
		if !ok && r.batches[tp] != nil {
			g = r.batches[tp].load
		}
		g = g.plus(m)
		grown[tp] = g
		if l.tooLarge(g) {
			return false
		}
	}
	return true
}

func (r *round) add(c *produceCall) {
	if r.batches == nil {
		r.batches = map[topicPartition]*partitionBatch{}
	}
	r.calls = append(r.calls, c)
	for i, m := range c.msgs {
		tp := c.parts[i]
		b := r.batches[tp]
		if b == nil {
			if n := len(r.spare); n > 0 {
				b, r.spare = r.spare[n-1], r.spare[:n-1]
				b.tp = tp
			} else {
				b = &partitionBatch{tp: tp}
			}
			r.batches[tp] = b
			r.order = append(r.order, b)
		}
		b.msgs = append(b.msgs, m)
		b.load = b.load.plus(m)
		if n := len(b.calls); n == 0 || b.calls[n-1] != c {
			b.calls = append(b.calls, c)
		}
	}
}

// send writes r's batches, trying those the brokers refused with a
// transient error up to writeAttempts times in all, and answers r's calls:
// a call succeeds when every batch holding its messages did.
func (l *Log) send(r *round) {
	pending := r.order
	attempt := 1
	for ; ; attempt++ {
		l.sendOnce(pending)
		var retry []*partitionBatch
		for _, b := range pending {
			if b.err != nil && isUnavailable(b.err) && attempt < writeAttempts {
				retry = append(retry, b)
			}
		}
		if len(retry) == 0 {
			break
		}
		l.log.Debug("retrying batches the brokers refused", zap.Int("batches", len(retry)), zap.Int("attempt", attempt), zap.Error(retry[0].err))
		select {
		case <-time.After(time.Duration(attempt) * retryBackoff):
		case <-l.quit:
		}
		pending = retry
	}
	if ce := l.log.Check(zap.DebugLevel, "round sent"); ce != nil {
		ce.Write(zap.Int("calls", len(r.calls)), zap.Int("batches", len(r.order)), zap.Int("attempts", attempt))
	}
	failed := map[*produceCall]error{}
	for _, b := range r.order {
		if b.err == nil {
			continue
		}
		for _, c := range b.calls {
			if failed[c] == nil {
				failed[c] = fmt.Errorf("writing to %s partition %d: %w", b.tp.topic, b.tp.partition, b.err)
			}
		}
	}
	for _, c := range r.calls {
		if err := failed[c]; err != nil {
			c.done <- fmt.Errorf("publishing %d messages: %w", len(c.msgs), classify(err))
		} else {
			c.done <- nil
		}
	}
}

// sendOnce sends batches, one produce request per partition leader, and
// sets each batch's err from the answer.
func (l *Log) sendOnce(batches []*partitionBatch) {
	for _, b := range batches {
		b.err = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(l.cfg.WriteTimeout))
	defer cancel()
	byLeader, err := l.leaders(ctx, batches)
	if err != nil {
		for _, b := range batches {
			b.err = err
		}
		return
	}
	if len(byLeader) == 1 {
		for _, bs := range byLeader {
			l.produce(ctx, bs)
		}
		return
	}
	var wg sync.WaitGroup
	for _, bs := range byLeader {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.produce(ctx, bs)
		}()
	}
	wg.Wait()
}

// leaders groups batches by the leader of their partition, as the
// transport, which routes each produce request, last read them.
func (l *Log) leaders(ctx context.Context, batches []*partitionBatch) (map[int32][]*partitionBatch, error) {
	var topics []string
	seen := map[string]bool{}
	for _, b := range batches {
		if !seen[b.tp.topic] {
			seen[b.tp.topic] = true
			topics = append(topics, b.tp.topic)
		}
	}
	res, err := l.transport.RoundTrip(ctx, l.client.Addr, &metadata.Request{TopicNames: topics})
	if err != nil {
		return nil, fmt.Errorf("reading the partitions' leaders: %w", err)
	}
	leader := map[topicPartition]int32{}
	for _, t := range res.(*metadata.Response).Topics {
		for _, p := range t.Partitions {
			leader[topicPartition{t.Name, int(p.PartitionIndex)}] = p.LeaderID
		}
	}
	byLeader := map[int32][]*partitionBatch{}
	for _, b := range batches {
		id, ok := leader[b.tp]
		if !ok || id < 0 {
			b.err = kafkago.LeaderNotAvailable
			continue
		}
		byLeader[id] = append(byLeader[id], b)
	}
	return byLeader, nil
}

// produce sends batches, whose partitions have one leader, in one produce
// request with acks from all in-sync replicas.
func (l *Log) produce(ctx context.Context, batches []*partitionBatch) {
	now := time.Now()
	req := &produce.Request{Acks: int16(kafkago.RequireAll), Timeout: int32(time.Duration(l.cfg.WriteTimeout) / time.Millisecond)}
	topicIndex := map[string]int{}
	for _, b := range batches {
		// One allocation each for the batch's records, keys and values, and
		// headers, instead of some for every message.
		records := &recordList{records: make([]protocol.Record, len(b.msgs))}
		payloads := make([]payload, 2*len(b.msgs))
		headers := 0
		for _, m := range b.msgs {
			headers += len(m.Headers)
		}
		hs := make([]protocol.Header, 0, headers)
		for i, m := range b.msgs {
			records.records[i] = protocol.Record{Time: now, Key: payloads[2*i].of(m.Key), Value: payloads[2*i+1].of(m.Value)}
			if len(m.Headers) > 0 {
				start := len(hs)
				for _, h := range m.Headers {
					hs = append(hs, protocol.Header{Key: h.Key, Value: h.Value})
				}
				records.records[i].Headers = hs[start:len(hs):len(hs)]
			}
		}
		i, ok := topicIndex[b.tp.topic]
		if !ok {
			i = len(req.Topics)
			topicIndex[b.tp.topic] = i
			req.Topics = append(req.Topics, produce.RequestTopic{Topic: b.tp.topic})
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, produce.RequestPartition{
			Partition: int32(b.tp.partition),
			RecordSet: protocol.RecordSet{
				Attributes: protocol.Attributes(compressions[l.cfg.Compression]) & 0x7,
				Records:    records,
			},
		})
	}
	res, err := l.transport.RoundTrip(ctx, l.client.Addr, req)
	if err != nil {
		for _, b := range batches {
			b.err = err
		}
		return
	}
	answered := map[topicPartition]error{}
	for _, t := range res.(*produce.Response).Topics {
		for _, p := range t.Partitions {
			var perr error
			if p.ErrorCode != 0 {
				perr = kafkago.Error(p.ErrorCode)
				if p.ErrorMessage != "" {
					perr = fmt.Errorf("%w: %s", perr, p.ErrorMessage)
				}
			}
			answered[topicPartition{t.Topic, int(p.Partition)}] = perr
		}
	}
	for _, b := range batches {
		perr, ok := answered[b.tp]
		if !ok {
			perr = errors.New("the broker's answer left the partition out")
		}
		b.err = perr
	}
}

// recordList hands out its records in order, once: a protocol.RecordReader
// over a slice, without the copy protocol.NewRecordReader makes.
type recordList struct {
	records []protocol.Record
	next    int
}

func (r *recordList) ReadRecord() (*protocol.Record, error) {
	if r.next == len(r.records) {
		return nil, io.EOF
	}
	r.next++
	return &r.records[r.next-1], nil
}

// payload is a key or value as protocol.Bytes, read from the message's
// bytes without copying them, like protocol.NewBytes but allocated with
// the rest of its batch.
type payload struct{ bytes.Reader }

// of returns b as protocol.Bytes read through p, or nil (a null key) for
// nil b.
func (p *payload) of(b []byte) protocol.Bytes {
	if b == nil {
		return nil
	}
	p.Reset(b)
	return p
}

func (*payload) Close() error { return nil }
