package queue

import (
	"fmt"
	"sync/atomic"
)

// Buffer holds the bytes of messages read together, which their keys,
// values and headers point into. Each message that shares it holds one
// reference, given back by Message.Release; once all are, the log may put
// other messages in the same bytes. A reader that never calls Release
// loses nothing: the buffer is then left to the garbage collector.
type Buffer struct {
	refs atomic.Int32
	data []byte
	free func([]byte)
}

// NewBuffer returns a buffer over data, shared by refs messages, that
// calls free with data once every reference is released.
func NewBuffer(data []byte, refs int, free func([]byte)) *Buffer {
	b := &Buffer{data: data, free: free}
	b.refs.Store(int32(refs))
	return b
}

// release gives back one reference.
func (b *Buffer) release() {
	switch n := b.refs.Add(-1); {
	case n == 0:
		data := b.data
		b.data = nil
		b.free(data)
	case n < 0:
		// Bytes a message still points to may already hold other messages:
		// going on would deliver them as the wrong events.
		panic(fmt.Sprintf("queue: a Buffer released %d more times than it has messages", -n))
	}
}

// Release tells the log that nothing refers to m's bytes any more (its
// key, value and headers), so it may reuse them once every message read
// with m is released too. Release at most once per message read, and only
// once no copy of m, and nothing taken from its bytes without copying, is
// used again. A message without a Buffer (every message Publish was given,
// every message from Kafka) has nothing to release.
func (m *Message) Release() {
	if m.Buffer != nil {
		m.Buffer.release()
		m.Buffer = nil
	}
}
