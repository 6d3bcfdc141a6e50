package embedded

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
)

// publishRequest is one Publish call for the writer: its messages as
// records, in one buffer, and the channel the writer answers on. Requests
// are reused through requestPool: the caller puts its request back once it
// has the answer, as by then nothing refers to it (the records were copied
// into the batch). A caller whose context ends first leaves its request to
// the garbage collector, as the writer may still answer.
type publishRequest struct {
	msgs []pendingMessage
	buf  []byte
	done chan error // buffered: the writer never waits for the caller
}

var requestPool = sync.Pool{New: func() any { return &publishRequest{done: make(chan error, 1)} }}

// maxPooledBuffer is the largest record buffer kept for reuse.
const maxPooledBuffer = 1 << 20

// release empties req, whose answer has been taken or which never reached
// the writer, and puts it back in requestPool.
func (req *publishRequest) release() {
	clear(req.msgs)
	req.msgs = req.msgs[:0]
	if cap(req.buf) > maxPooledBuffer {
		req.buf = nil
	}
	requestPool.Put(req)
}

// pendingMessage is one message of a publishRequest.
type pendingMessage struct {
	t    *topic
	part int
	// record is the message's encoded record; the writer fills in its
	// header (append time and size), which is zero until then.
	record []byte
	size   int64
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
		size += storedSize(len(m.Key), headersLen(m.Headers)+len(m.Value))
	}
	if err := l.space.check(size); err != nil {
		return err
	}
	// Encoding here copies keys and values, so the caller may reuse them as
	// soon as Publish returns, even when ctx ends first. One buffer holds
	// every record of the call.
	encodedLen := 0
	for _, m := range msgs {
		encodedLen += recordLen(len(m.Key), headersLen(m.Headers), len(m.Value))
	}
	req := requestPool.Get().(*publishRequest)
	if cap(req.buf) < encodedLen {
		req.buf = make([]byte, 0, encodedLen)
	}
	buf := req.buf[:0]
	var t *topic
	for _, m := range msgs {
		if t == nil || t.name != m.Topic {
			var err error
			if t, err = l.topic(m.Topic); err != nil {
				req.release()
				return fmt.Errorf("publishing to topic %q: %w", m.Topic, err)
			}
		}
		start := len(buf)
		buf = appendRecord(buf, 0, 0, m.Key, m.Headers, m.Value)
		req.msgs = append(req.msgs, pendingMessage{
			t:      t,
			part:   queue.PartitionFor(m.Key, len(t.parts)),
			record: buf[start:len(buf):len(buf)],
			size:   storedSize(len(m.Key), headersLen(m.Headers)+len(m.Value)),
		})
	}
	req.buf = buf
	if !l.waiting.Add(req) {
		req.release()
		return queue.ErrClosed
	}
	select {
	case err := <-req.done:
		req.release()
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeLoop owns offset assignment. While syncLoop commits a batch, the
// calls that come wait in the list; the moment its fsync returns, the
// writer takes them (up to Config.MaxBatchMessages messages) as the next
// batch and hands it to syncLoop. So a call waits for the fsync under way
// and then its own, and every fsync covers all the calls that came while
// the one before it ran, written in a single commit.
func (l *Log) writeLoop() {
	defer l.wg.Done()
	// One batch is reused for every write, so its buffer is not allocated
	// and grown again each time; so is the grouping by partition. It is
	// closed once syncLoop is done with it.
	b := l.db.NewBatch(pebble.WithMaxRetainedSizeBytes(maxRetainedBatchBytes))
	defer b.Close()
	// syncLoop takes a batch only when it has none; idle tells the writer
	// the fsync it was waiting for has returned.
	written := make(chan *writtenBatch, 1)
	idle := make(chan struct{}, 1)
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		l.syncLoop(written, idle)
	}()
	defer func() {
		close(written)
		<-synced
	}()
	w := &commitState{parts: map[partitionID]*partitionAppend{}}
	var group []*publishRequest
	messages := 0
	// take adds a waiting call to the group unless the group has calls
	// and would go past Config.MaxBatchMessages with it.
	take := func(req *publishRequest) bool {
		if len(group) > 0 && messages+len(req.msgs) > l.cfg.MaxBatchMessages {
			return false
		}
		group = append(group, req)
		messages += len(req.msgs)
		return true
	}
	syncing := false
	for {
		if !syncing {
			group, messages = group[:0], 0
			if l.waiting.Take(take); len(group) > 0 {
				b.Reset()
				written <- l.write(b, w, group)
				syncing = true
				clear(group)
			}
		}
		select {
		case <-l.waiting.Arrived():
		case <-idle:
			syncing = false
		case <-l.quit:
			// The calls still waiting were not written.
			for _, req := range l.waiting.Close() {
				req.done <- queue.ErrClosed
			}
			return
		}
	}
}

// writtenBatch is a group of calls written as one pebble batch, for
// syncLoop to commit: the batch, its calls, what the partitions it appends
// to become once it is durable, and the error that ended it, if any.
type writtenBatch struct {
	batch    *pebble.Batch
	calls    []*publishRequest
	appended []appendedTo
	messages int
	err      error
}

// appendedTo is a partition's state after a batch.
type appendedTo struct {
	id partitionID
	p  partition
}

// syncLoop commits each written batch, which pebble makes durable with one
// fsync of its write-ahead log, tells the writer on idle that it can hand
// over the next, then advances the partitions' high watermarks, wakes
// their readers and answers the calls. It returns when written is closed
// and drained.
func (l *Log) syncLoop(written <-chan *writtenBatch, idle chan<- struct{}) {
	var woken []*topic
	for wb := range written {
		err := wb.err
		if err == nil {
			if commitErr := wb.batch.Commit(pebble.Sync); commitErr != nil {
				// The log takes no more writes, so the offsets the batch
				// took are never given again.
				l.failure.CompareAndSwap(nil, &commitErr)
				l.log.Error("committing failed; the log takes no more writes until reopened", zap.Error(commitErr))
				err = fmt.Errorf("%w: committing batch: %w", queue.ErrUnavailable, commitErr)
			}
		}
		idle <- struct{}{}
		// The topics whose readers to wake, once the calls are answered.
		woken = woken[:0]
		if err == nil {
			for _, a := range wb.appended {
				a.id.t.mu.Lock()
				cur := &a.id.t.parts[a.id.i]
				cur.high, cur.lastTime, cur.bytes = a.p.high, a.p.lastTime, a.p.bytes
				a.id.t.mu.Unlock()
				if !slices.Contains(woken, a.id.t) {
					woken = append(woken, a.id.t)
				}
			}
			if ce := l.log.Check(zap.DebugLevel, "batch committed"); ce != nil {
				ce.Write(zap.Int("calls", len(wb.calls)), zap.Int("messages", wb.messages))
			}
		}
		for _, req := range wb.calls {
			req.done <- err
		}
		for _, t := range woken {
			t.wake()
		}
	}
}

// partitionID names one partition of an open topic.
type partitionID struct {
	t *topic
	i int
}

// commitState is what the writer keeps from one batch to the next: each
// partition it has appended to, with the state the partition will have once
// every batch written so far is durable, and the partitions the current
// batch appends to, in the order first touched.
type commitState struct {
	parts map[partitionID]*partitionAppend
	order []*partitionAppend
	key   []byte
}

// partitionAppend is one partition's part of the writer's state: the
// partition as the batches written so far leave it, and the current
// batch's messages of it in offset order.
type partitionAppend struct {
	id   partitionID
	p    partition
	msgs []*pendingMessage
}

// maxRetainedBatchBytes is the largest batch buffer the writer keeps for the
// next commit; a larger one, from a commit of unusually large messages, is
// left to the garbage collector. A full group of DefaultMaxBatchMessages
// messages of a kilobyte fits.
const maxRetainedBatchBytes = 8 << 20

// write writes the requests' messages into b, which is empty, as blocks of
// consecutive messages of a partition, and returns what syncLoop needs to
// commit and finish them.
func (l *Log) write(b *pebble.Batch, w *commitState, group []*publishRequest) *writtenBatch {
	wb := &writtenBatch{calls: append([]*publishRequest(nil), group...)}
	if err := l.failure.Load(); err != nil {
		wb.err = fmt.Errorf("%w: an earlier write failed: %w", queue.ErrUnavailable, *err)
		return wb
	}
	defer w.reset()
	now := l.cfg.Now().UnixNano()
	for _, req := range group {
		for k := range req.msgs {
			m := &req.msgs[k]
			id := partitionID{m.t, m.part}
			pa := w.parts[id]
			if pa == nil {
				// First touched: no batch of the writer's is on its way to it.
				pa = &partitionAppend{id: id}
				id.t.mu.Lock()
				pa.p = id.t.parts[id.i]
				id.t.mu.Unlock()
				w.parts[id] = pa
			}
			if len(pa.msgs) == 0 {
				w.order = append(w.order, pa)
			}
			// A partition's append time never goes back, even if the clock does.
			pa.p.lastTime = max(pa.p.lastTime, now)
			pa.p.bytes += m.size
			putHeader(m.record, pa.p.lastTime, pa.p.bytes)
			pa.msgs = append(pa.msgs, m)
			wb.messages++
		}
	}
	for _, pa := range w.order {
		if err := w.writeBlocks(b, pa); err != nil {
			wb.err = err
			break
		}
	}
	if wb.err != nil {
		// The log takes no more writes, so the offsets the batch took are
		// never given again.
		l.failure.CompareAndSwap(nil, &wb.err)
		l.log.Error("write failed; the log takes no more writes until reopened", zap.Error(wb.err))
		wb.err = fmt.Errorf("%w: writing batch: %w", queue.ErrUnavailable, wb.err)
		return wb
	}
	wb.batch = b
	wb.appended = make([]appendedTo, len(w.order))
	for i, pa := range w.order {
		wb.appended[i] = appendedTo{pa.id, pa.p}
	}
	return wb
}

// writeBlocks adds pa's messages to b as blocks of at most maxBlockMessages
// and, unless a single message is larger, maxBlockBytes, and moves pa's high
// watermark past them.
func (w *commitState) writeBlocks(b *pebble.Batch, pa *partitionAppend) error {
	for msgs := pa.msgs; len(msgs) > 0; {
		n, size := 0, 0
		for n < len(msgs) && n < maxBlockMessages && (n == 0 || size+len(msgs[n].record) <= maxBlockBytes) {
			size += len(msgs[n].record)
			n++
		}
		w.key = appendBlockKey(w.key[:0], pa.id.t.name, pa.id.i, pa.p.high)
		op := b.SetDeferred(len(w.key), size)
		copy(op.Key, w.key)
		at := 0
		for _, m := range msgs[:n] {
			at += copy(op.Value[at:], m.record)
		}
		if err := op.Finish(); err != nil {
			return fmt.Errorf("building batch: %w", err)
		}
		pa.p.high += int64(n)
		msgs = msgs[n:]
	}
	return nil
}

// reset empties w for the next commit, keeping its buffers.
func (w *commitState) reset() {
	for _, pa := range w.order {
		clear(pa.msgs)
		pa.msgs = pa.msgs[:0]
	}
	w.order = w.order[:0]
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
