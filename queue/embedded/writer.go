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
	topics []*topic
	parts  []int
	// values are the messages' encoded values; the writer fills in their
	// headers (append time and size), which are zero until then.
	values [][]byte
	sizes  []int64
	done   chan error // buffered: the writer never waits for the caller
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
	req := &publishRequest{
		topics: make([]*topic, len(msgs)),
		parts:  make([]int, len(msgs)),
		values: make([][]byte, len(msgs)),
		sizes:  make([]int64, len(msgs)),
		done:   make(chan error, 1),
	}
	var t *topic
	for i, m := range msgs {
		if t == nil || t.name != m.Topic {
			var err error
			if t, err = l.topic(m.Topic); err != nil {
				return fmt.Errorf("publishing to topic %q: %w", m.Topic, err)
			}
		}
		req.topics[i] = t
		req.parts[i] = queue.PartitionFor(m.Key, len(t.parts))
		// Encoding here copies key and value, so the caller may reuse them
		// as soon as Publish returns, even when ctx ends first.
		req.values[i] = encodeValue(make([]byte, 0, valueHeaderLen+5+len(m.Key)+len(m.Value)), 0, 0, m.Key, m.Value)
		req.sizes[i] = storedSize(len(m.Key), len(m.Value))
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
	var group []*publishRequest
	for {
		select {
		case req := <-l.requests:
			group = append(group[:0], req)
		case <-l.quit:
			return
		}
		n := len(group[0].values)
	drain:
		for n < l.cfg.MaxBatchMessages {
			select {
			case req := <-l.requests:
				group = append(group, req)
				n += len(req.values)
			default:
				break drain
			}
		}
		err := l.commit(group)
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

// commit writes the requests' messages in one synced batch, then advances
// the partitions' high watermarks and wakes their readers.
func (l *Log) commit(group []*publishRequest) error {
	if err := l.failure.Load(); err != nil {
		return fmt.Errorf("%w: an earlier write failed: %w", queue.ErrUnavailable, *err)
	}
	now := l.cfg.Now().UnixNano()
	next := map[partitionID]partition{}
	b := l.db.NewBatch()
	defer b.Close()
	count := 0
	for _, req := range group {
		for i, value := range req.values {
			id := partitionID{req.topics[i], req.parts[i]}
			p, ok := next[id]
			if !ok {
				id.t.mu.Lock()
				p = id.t.parts[id.i]
				id.t.mu.Unlock()
			}
			// A partition's append time never goes back, even if the clock does.
			p.lastTime = max(p.lastTime, now)
			p.bytes += req.sizes[i]
			putHeader(value, p.lastTime, p.bytes)
			if err := b.Set(messageKey(id.t.name, id.i, p.high), value, nil); err != nil {
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
