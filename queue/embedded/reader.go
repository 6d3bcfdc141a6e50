package embedded

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
)

const (
	// readAheadMessages and readAheadBytes bound how much of one partition a
	// cursor reads from pebble at a time: whole blocks, until one of them is
	// reached.
	readAheadMessages = 1024
	readAheadBytes    = 1 << 20
)

// cursor reads every partition of a topic from a position per partition. It
// is the common part of Reader and Subscription.
type cursor struct {
	l *Log
	t *topic

	closed    chan struct{}
	closeOnce sync.Once

	// mu guards parts and rr. Fetch holds it while reading, never while waiting.
	mu    sync.Mutex
	parts []partCursor
	// rr is the partition Fetch looks at first, so partitions take turns.
	rr int
}

type partCursor struct {
	// next is the offset of the next message Fetch returns from this partition.
	next int64
	// buf holds messages read ahead, from next on.
	buf []queue.Message
	// backing is buf's array from its start, which each fill reuses.
	backing []queue.Message
}

// newCursor returns a cursor on t whose partition i starts at start(i).
func (l *Log) newCursor(t *topic, start func(i int) (int64, error)) (*cursor, error) {
	c := &cursor{l: l, t: t, closed: make(chan struct{}), parts: make([]partCursor, len(t.parts))}
	for i := range c.parts {
		next, err := start(i)
		if err != nil {
			return nil, fmt.Errorf("positioning partition %d: %w", i, err)
		}
		c.parts[i].next = next
	}
	return c, nil
}

// fetch returns the next message, waiting for one when every partition has
// been read to its end.
func (c *cursor) fetch(ctx context.Context) (queue.Message, error) {
	var one [1]queue.Message
	got, err := c.fetchBatch(ctx, one[:0], 1)
	if err != nil {
		return queue.Message{}, err
	}
	return got[0], nil
}

// fetchBatch appends up to limit messages to dst, waiting for one when every
// partition has been read to its end.
func (c *cursor) fetchBatch(ctx context.Context, dst []queue.Message, limit int) ([]queue.Message, error) {
	limit = max(limit, 1)
	for {
		select {
		case <-c.closed:
			return dst, queue.ErrClosed
		case <-c.l.quit:
			return dst, queue.ErrClosed
		default:
		}
		// Take the signal before looking, so a message committed after the
		// look still wakes us.
		changed := c.t.changes()
		c.mu.Lock()
		n := len(dst)
		var err error
		for len(dst)-n < limit {
			m, ok, takeErr := c.take()
			if takeErr != nil || !ok {
				err = takeErr
				break
			}
			dst = append(dst, m)
		}
		c.mu.Unlock()
		if len(dst) > n {
			// An error after some messages comes back at the next call.
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return dst, ctx.Err()
		case <-c.closed:
			return dst, queue.ErrClosed
		case <-c.l.quit:
			return dst, queue.ErrClosed
		}
	}
}

// take returns the next message of the first partition, from rr on, that
// has one.
func (c *cursor) take() (queue.Message, bool, error) {
	n := len(c.parts)
	for k := range n {
		i := (c.rr + k) % n
		pc := &c.parts[i]
		if len(pc.buf) == 0 {
			if err := c.fill(i); err != nil {
				return queue.Message{}, false, err
			}
		}
		if len(pc.buf) == 0 {
			continue
		}
		m := pc.buf[0]
		pc.buf[0] = queue.Message{}
		pc.buf = pc.buf[1:]
		pc.next = m.Offset + 1
		c.rr = (i + 1) % n
		return m, true, nil
	}
	return queue.Message{}, false, nil
}

// fill reads ahead in partition i from its next offset.
func (c *cursor) fill(i int) error {
	pc := &c.parts[i]
	c.t.mu.Lock()
	p := c.t.parts[i]
	c.t.mu.Unlock()
	if pc.next < p.low {
		c.l.log.Info("reader skipped messages removed by retention",
			zap.String("topic", c.t.name), zap.Int("partition", i),
			zap.Int64("from", pc.next), zap.Int64("to", p.low))
		pc.next = p.low
	}
	if pc.next >= p.high {
		return nil
	}
	end := p.high

	if err := c.l.acquire(); err != nil {
		return err
	}
	defer c.l.release()
	it, ok, err := c.l.blocksFrom(c.t.name, i, pc.next, end)
	if err != nil {
		return fmt.Errorf("reading topic %s partition %d: %w", c.t.name, i, err)
	}
	defer it.Close()
	pc.buf = pc.backing[:0]
	defer func() { pc.backing = pc.buf[:0] }()
	size := 0
	// Whole blocks, so that the next fill starts at the start of one.
	for ; ok && size < readAheadBytes && len(pc.buf) < readAheadMessages; ok = it.Next() {
		from := pc.next
		if len(pc.buf) > 0 {
			from = pc.buf[len(pc.buf)-1].Offset + 1
		}
		if from >= end {
			break
		}
		block, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("reading topic %s partition %d offset %d: %w", c.t.name, i, from, err)
		}
		before := len(pc.buf)
		if pc.buf, err = c.l.appendMessages(pc.buf, c.t.name, i, offsetOfKey(it.Key()), block, from, end); err != nil {
			return err
		}
		for _, m := range pc.buf[before:] {
			size += len(m.Key) + len(m.Value)
		}
	}
	return it.Error()
}

// blocksFrom returns an iterator over the blocks of a partition before
// offset end, positioned at the block holding offset next, or, when
// retention has just removed that one, at the oldest block left; ok is
// false when there is none.
func (l *Log) blocksFrom(topic string, partition int, next, end int64) (it *pebble.Iterator, ok bool, err error) {
	// The block holding next usually begins at most maxBlockMessages-1
	// before it: bounds that tight let pebble pass over every table of
	// older blocks.
	it, err = l.db.NewIter(&pebble.IterOptions{
		LowerBound: blockKey(topic, partition, max(0, next-maxBlockMessages+1)),
		UpperBound: blockKey(topic, partition, end),
	})
	if err != nil {
		return nil, false, err
	}
	// A reader that took whole blocks is at the start of one: found looking
	// forward, whose values pebble need not copy as it does looking back.
	if it.SeekGE(blockKey(topic, partition, next)) && offsetOfKey(it.Key()) == next {
		return it, true, nil
	}
	if it.SeekLT(blockKey(topic, partition, next+1)) {
		return it, true, nil
	}
	// Not within the bounds: look in the whole partition.
	if err := it.Close(); err != nil {
		return nil, false, err
	}
	it, err = l.db.NewIter(&pebble.IterOptions{
		LowerBound: blockKey(topic, partition, 0),
		UpperBound: blockKey(topic, partition, end),
	})
	if err != nil {
		return nil, false, err
	}
	ok = it.SeekLT(blockKey(topic, partition, next+1))
	if !ok {
		ok = it.First()
	}
	return it, ok, nil
}

// partitionBlocks returns an iterator over the blocks of a partition.
func (l *Log) partitionBlocks(topic string, partition int) (*pebble.Iterator, error) {
	return l.db.NewIter(&pebble.IterOptions{
		LowerBound: blockKey(topic, partition, 0),
		UpperBound: blockSpanEnd(blockKey(topic, partition, 0)),
	})
}

// appendMessages appends to dst the messages of block, which begins at
// offset first, from offset from up to (not including) end. The messages
// share one copy of their bytes, each key and value capped to its length,
// reused for later reads once every one of them is released.
func (l *Log) appendMessages(dst []queue.Message, topic string, partition int, first int64, block []byte, from, end int64) ([]queue.Message, error) {
	bad := func(offset int64, err error) error {
		return fmt.Errorf("decoding topic %s partition %d offset %d: %w", topic, partition, offset, err)
	}
	rest, offset := block, first
	var err error
	for ; offset < from && len(rest) > 0; offset++ {
		if _, rest, err = nextRecord(rest); err != nil {
			return dst, bad(offset, err)
		}
	}
	// The messages are decoded in place, then their bytes copied into one
	// buffer of l.buffers, theirs until each is released, and the messages
	// moved over to it. A field's place in run is told by its capacity,
	// which runs to the end of the block's as run's does.
	start, run := len(dst), rest
	var headers []queue.Header
	for n := 0; offset+int64(n) < end && len(rest) > 0; n++ {
		var r record
		if r, rest, err = nextRecord(rest); err != nil {
			return dst[:start], bad(offset+int64(n), err)
		}
		m := queue.Message{Topic: topic, Partition: partition, Offset: offset + int64(n), Time: unixTime(r.time), Key: r.key, Value: r.value}
		if headers == nil && len(r.headers) > 0 {
			// The messages' headers share one array, sized for one each.
			headers = make([]queue.Header, 0, min(end-offset-int64(n), maxBlockMessages))
		}
		first := len(headers)
		if headers, err = decodeHeaders(headers, r.headers); err != nil {
			return dst[:start], bad(offset+int64(n), err)
		}
		if len(headers) > first {
			m.Headers = headers[first:len(headers):len(headers)]
		}
		dst = append(dst, m)
	}
	msgs := dst[start:]
	if len(msgs) == 0 {
		return dst, nil
	}
	run = run[:len(run)-len(rest)]
	owned := l.buffers.get(len(run))
	copy(owned, run)
	moved := func(field []byte) []byte {
		if len(field) == 0 {
			return nil
		}
		at := cap(run) - cap(field)
		return owned[at : at+len(field) : at+len(field)]
	}
	buf := queue.NewBuffer(owned, len(msgs), l.buffers.put)
	for i := range msgs {
		m := &msgs[i]
		m.Key, m.Value, m.Buffer = moved(m.Key), moved(m.Value), buf
		for k := range m.Headers {
			m.Headers[k].Value = moved(m.Headers[k].Value)
		}
	}
	return dst, nil
}

func unixTime(nanos int64) time.Time { return time.Unix(0, nanos) }

// lag sums, over partitions, the messages retained after the cursor.
func (c *cursor) lag() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	var lag int64
	for i, pc := range c.parts {
		p := c.t.parts[i]
		if from := max(pc.next, p.low); p.high > from {
			lag += p.high - from
		}
	}
	return lag
}

func (c *cursor) close() {
	c.closeOnce.Do(func() { close(c.closed) })
}

// startOffset resolves pos in partition i of t.
func (l *Log) startOffset(t *topic, i int, pos queue.Position) (int64, error) {
	t.mu.Lock()
	p := t.parts[i]
	t.mu.Unlock()
	switch pos.Kind {
	case queue.First:
		return p.low, nil
	case queue.Last:
		return p.high, nil
	case queue.AtOffset:
		return min(max(pos.Offset, p.low), p.high), nil
	case queue.AtTime:
		return l.searchOffsets(t.name, i, p.low, p.high, func(r record) bool {
			return r.time >= pos.Time.UnixNano()
		})
	default:
		return 0, fmt.Errorf("unknown position kind %d", pos.Kind)
	}
}

// searchOffsets returns the first offset in [low, high) whose message
// satisfies f, or high if none does. f must be false and then true along the
// offsets, as it is for append times and sizes. A message missing because
// retention removed it counts as not satisfying f.
func (l *Log) searchOffsets(topic string, partition int, low, high int64, f func(record) bool) (int64, error) {
	if err := l.acquire(); err != nil {
		return 0, err
	}
	defer l.release()
	it, err := l.partitionBlocks(topic, partition)
	if err != nil {
		return 0, fmt.Errorf("reading topic %s partition %d: %w", topic, partition, err)
	}
	defer it.Close()
	var searchErr error
	n := sort.Search(int(high-low), func(k int) bool {
		if searchErr != nil {
			return true
		}
		r, found, err := recordAt(it, topic, partition, low+int64(k))
		if err != nil {
			searchErr = err
			return true
		}
		return found && f(r)
	})
	if searchErr == nil {
		searchErr = it.Error()
	}
	return low + int64(n), searchErr
}

// recordAt returns the record at offset, read with it, an iterator over its
// partition's blocks; found is false when there is none. The record aliases
// the iterator's current value.
func recordAt(it *pebble.Iterator, topic string, partition int, offset int64) (r record, found bool, err error) {
	if !it.SeekLT(blockKey(topic, partition, offset+1)) {
		return record{}, false, nil
	}
	block, err := it.ValueAndErr()
	if err != nil {
		return record{}, false, fmt.Errorf("reading topic %s partition %d offset %d: %w", topic, partition, offset, err)
	}
	err = decodeBlock(block, offsetOfKey(it.Key()), func(at int64, rec record) bool {
		if at == offset {
			r, found = rec, true
		}
		return at < offset
	})
	if err != nil {
		return record{}, false, fmt.Errorf("decoding topic %s partition %d: %w", topic, partition, err)
	}
	return r, found, nil
}

// Read returns a reader of every partition of topic from the position from,
// creating the topic when it does not exist. It commits nothing.
func (l *Log) Read(ctx context.Context, topic string, from queue.Position) (queue.Reader, error) {
	if l.isClosing() {
		return nil, queue.ErrClosed
	}
	t, err := l.topic(topic)
	if err != nil {
		return nil, fmt.Errorf("reading topic %q: %w", topic, err)
	}
	c, err := l.newCursor(t, func(i int) (int64, error) { return l.startOffset(t, i, from) })
	if err != nil {
		return nil, fmt.Errorf("reading topic %q: %w", topic, err)
	}
	return &Reader{c: c}, nil
}

// Offsets returns, for each partition of topic, the offset at names now,
// creating the topic when it does not exist.
func (l *Log) Offsets(ctx context.Context, topic string, at queue.Position) ([]int64, error) {
	if l.isClosing() {
		return nil, queue.ErrClosed
	}
	t, err := l.topic(topic)
	if err != nil {
		return nil, fmt.Errorf("resolving a position in topic %q: %w", topic, err)
	}
	offsets := make([]int64, len(t.parts))
	for i := range offsets {
		if offsets[i], err = l.startOffset(t, i, at); err != nil {
			return nil, fmt.Errorf("resolving a position in topic %q partition %d: %w", topic, i, err)
		}
	}
	return offsets, nil
}

// Reader reads every partition of a topic without a group. Fetch and Lag may
// be called from different goroutines.
type Reader struct {
	c *cursor
}

// Fetch returns the next message, waiting until one is published or ctx
// ends. Partitions take turns; each comes in offset order. A reader behind
// what retention removed skips ahead to the oldest retained message.
func (r *Reader) Fetch(ctx context.Context) (queue.Message, error) {
	return r.c.fetch(ctx)
}

// FetchBatch implements queue.BatchFetcher.
func (r *Reader) FetchBatch(ctx context.Context, dst []queue.Message, max int) ([]queue.Message, error) {
	return r.c.fetchBatch(ctx, dst, max)
}

// Lag returns how many retained messages the reader has not yet fetched.
func (r *Reader) Lag(ctx context.Context) (int64, error) {
	if err := r.c.err(); err != nil {
		return 0, err
	}
	return r.c.lag(), nil
}

// Close ends the reader; a Fetch waiting in another goroutine returns
// queue.ErrClosed.
func (r *Reader) Close() error {
	r.c.close()
	return nil
}

// err is queue.ErrClosed once the cursor or its log is closed.
func (c *cursor) err() error {
	select {
	case <-c.closed:
		return queue.ErrClosed
	case <-c.l.quit:
		return queue.ErrClosed
	default:
		return nil
	}
}

var _ queue.Reader = (*Reader)(nil)
