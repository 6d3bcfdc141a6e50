package embedded

import (
	"math/bits"
	"sync"
)

// readBuffers keeps the buffers of read messages that their reader has
// released (queue.Message.Release), for the reads after: a router reading
// as fast as the gateway writes would otherwise allocate, and leave to the
// garbage collector, as many bytes as are written. Buffers come in sizes
// that are powers of two, so a read takes one at most twice its size.
type readBuffers struct {
	mu   sync.Mutex
	free [readBufferSizes][][]byte
	// held is the bytes of the buffers in free, at most maxIdleReadBuffers.
	held int
	// put is release as a func value, made once for every buffer.
	put func([]byte)
}

const (
	// minReadBuffer is the smallest buffer size; read buffers go up to
	// minReadBuffer << (readBufferSizes-1), twice a full block. A larger
	// read gets a buffer of its own, never reused.
	minReadBuffer   = 4 << 10
	readBufferSizes = 7
	// maxIdleReadBuffers bounds the bytes kept in released buffers.
	maxIdleReadBuffers = 16 << 20
)

func newReadBuffers() *readBuffers {
	rb := &readBuffers{}
	rb.put = rb.release
	return rb
}

// sizeClass returns the index in free of the buffers that fit n bytes, and
// false when n is larger than every size.
func sizeClass(n int) (int, bool) {
	if n <= minReadBuffer {
		return 0, true
	}
	c := bits.Len(uint(n-1)) - bits.Len(uint(minReadBuffer-1))
	return c, c < readBufferSizes
}

// get returns a buffer of length n, reused when one is free.
func (rb *readBuffers) get(n int) []byte {
	c, ok := sizeClass(n)
	if !ok {
		return make([]byte, n)
	}
	rb.mu.Lock()
	if k := len(rb.free[c]); k > 0 {
		b := rb.free[c][k-1]
		rb.free[c][k-1] = nil
		rb.free[c] = rb.free[c][:k-1]
		rb.held -= cap(b)
		rb.mu.Unlock()
		return b[:n]
	}
	rb.mu.Unlock()
	return make([]byte, n, minReadBuffer<<c)
}

// release takes back a buffer get returned, once nothing refers to it.
func (rb *readBuffers) release(b []byte) {
	c, ok := sizeClass(cap(b))
	if !ok || cap(b) != minReadBuffer<<c {
		return
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.held+cap(b) > maxIdleReadBuffers {
		return
	}
	rb.free[c] = append(rb.free[c], b[:0])
	rb.held += cap(b)
}
