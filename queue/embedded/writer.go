package embedded

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
)

// publishRequest is one Publish call waiting for the writer.
type publishRequest struct {
	msgs []pendingMessage
	done chan error // buffered: the writer never waits for the caller
}

// pendingMessage is one message of a publishRequest.
type pendingMessage struct {
	t    *topic
	part int
	// value is the message's encoded value; the writer fills in its header
	// (append time and size), which is zero until then.
	value []byte
	size  int64
}

// Publish appends msgs and returns nil once all of them are fsynced. Topics
// are created on first use. While the disk has less than Config.MinFreeBytes
// free it refuses with an error wrapping queue.ErrFull and stores nothing. If ctx ends first Publish returns ctx.Err(), and
// the messages may or may not have been written.
func (l *Log) Publish(ctx context.Context, msgs ...queue.Message) error {
	if l.isClosing() {
		return queue.ErrClosed
	}
	if err := l.failure.Load(); err != nil {
		return fmt.Errorf("%w: an earlier write failed: %w", queue.ErrUnavailable, *err)
	}
	if len(msgs) == 0 {
		return nil
	}
	var size int64
	for _, m := range msgs {
		size += storedSize(len(m.Key), len(m.Value))
	}
	if err := l.space.check(size); err != nil {
		return err
	}
	// Encoding here copies keys and values, so the caller may reuse them as
	// soon as Publish returns, even when ctx ends first. One buffer holds
	// every encoded value of the call.
	encodedLen := 0
	for _, m := range msgs {
		encodedLen += encodedValueLen(len(m.Key), len(m.Value))
	}
	buf := make([]byte, 0, encodedLen)
	req := &publishRequest{msgs: make([]pendingMessage, len(msgs)), done: make(chan error, 1)}
	var t *topic
	for i, m := range msgs {
		if t == nil || t.name != m.Topic {
			var err error
			if t, err = l.topic(m.Topic); err != nil {
				return fmt.Errorf("publishing to topic %q: %w", m.Topic, err)
			}
		}
		start := len(buf)
		buf = encodeValue(buf, 0, 0, m.Key, m.Value)
		req.msgs[i] = pendingMessage{
			t:     t,
			part:  queue.PartitionFor(m.Key, len(t.parts)),
			value: buf[start:len(buf):len(buf)],
			size:  storedSize(len(m.Key), len(m.Value)),
		}
	}

	select {
	case l.requests <- req:
	case <-l.quit:
		return queue.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeLoop owns offset assignment. It takes every Publish call waiting at
// the moment, commits them in one batch with one fsync, and answers them.
func (l *Log) writeLoop() {
	defer l.wg.Done()
	// One batch is reused for every commit, so its buffer is not allocated
	// and grown again each time.
	b := l.db.NewBatch(pebble.WithMaxRetainedSizeBytes(maxRetainedBatchBytes))
	defer b.Close()
	var group []*publishRequest
	for {
		select {
		case req := <-l.requests:
			group = append(group[:0], req)
		case <-l.quit:
			return
		}
		n := len(group[0].msgs)
	drain:
		for n < l.cfg.MaxBatchMessages {
			select {
			case req := <-l.requests:
				group = append(group, req)
				n += len(req.msgs)
			default:
				break drain
			}
		}
		err := l.commit(b, group)
		b.Reset()
		for i, req := range group {
			req.done <- err
			group[i] = nil
		}
	}
}

// partitionID names one partition of an open topic.
type partitionID struct {
	t *topic
	i int
}

// maxRetainedBatchBytes is the largest batch buffer the writer keeps for the
// next commit; a larger one, from a commit of unusually large messages, is
// left to the garbage collector. A full group of DefaultMaxBatchMessages
// messages of a kilobyte fits.
const maxRetainedBatchBytes = 8 << 20

// commit writes the requests' messages in one synced batch b, which is
// empty, then advances the partitions' high watermarks and wakes their
// readers.
func (l *Log) commit(b *pebble.Batch, group []*publishRequest) error {
	if err := l.failure.Load(); err != nil {
		return fmt.Errorf("%w: an earlier write failed: %w", queue.ErrUnavailable, *err)
	}
	now := l.cfg.Now().UnixNano()
	next := map[partitionID]partition{}
	count := 0
	key := make([]byte, 0, 64)
	for _, req := range group {
		for _, m := range req.msgs {
			id := partitionID{m.t, m.part}
			p, ok := next[id]
			if !ok {
				id.t.mu.Lock()
				p = id.t.parts[id.i]
				id.t.mu.Unlock()
			}
			// A partition's append time never goes back, even if the clock does.
			p.lastTime = max(p.lastTime, now)
			p.bytes += m.size
			putHeader(m.value, p.lastTime, p.bytes)
			key = appendMessageKey(key[:0], id.t.name, id.i, p.high)
			if err := b.Set(key, m.value, nil); err != nil {
				return fmt.Errorf("building batch: %w", err)
			}
			p.high++
			next[id] = p
			count++
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		l.failure.CompareAndSwap(nil, &err)
		l.log.Error("write failed; the log takes no more writes until reopened", zap.Error(err))
		return fmt.Errorf("%w: committing batch: %w", queue.ErrUnavailable, err)
	}

	woken := map[*topic]bool{}
	for id, p := range next {
		id.t.mu.Lock()
		cur := &id.t.parts[id.i]
		cur.high, cur.lastTime, cur.bytes = p.high, p.lastTime, p.bytes
		id.t.mu.Unlock()
		woken[id.t] = true
	}
	for t := range woken {
		t.wake()
	}
	if ce := l.log.Check(zap.DebugLevel, "batch committed"); ce != nil {
		ce.Write(zap.Int("calls", len(group)), zap.Int("messages", count), zap.Int("bytes", b.Len()))
	}
	return nil
}

// wake wakes the readers of t waiting for a change.
func (t *topic) wake() {
	t.mu.Lock()
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

// changes returns a channel closed at t's next change.
func (t *topic) changes() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}
