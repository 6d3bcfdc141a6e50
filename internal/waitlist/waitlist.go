// Package waitlist holds the calls waiting for a log's writer, in the order
// they came. A call adds itself under a lock instead of handing itself to
// the writer over a channel, so the calls that come while the writer is
// busy (an fsync, a produce request) neither wake it one by one nor wait
// to be received: the writer takes them together when it is free. Only a
// call finding the list empty wakes it.
package waitlist

import "sync"

// List is a list of waiting calls. Its zero value is not usable; call New.
type List[T any] struct {
	mu      sync.Mutex
	items   []T
	closed  bool
	arrived chan struct{}
}

// New returns an empty, open List.
func New[T any]() *List[T] {
	return &List[T]{arrived: make(chan struct{}, 1)}
}

// Add puts item at the end of the list, or returns false once the list is
// closed.
func (l *List[T]) Add(item T) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.items = append(l.items, item)
	first := len(l.items) == 1
	l.mu.Unlock()
	if first {
		select {
		case l.arrived <- struct{}{}:
		default:
		}
	}
	return true
}

// Arrived gets a value when an item is added to the empty list. A value
// may be left from an item already taken, so a receiver takes and finds
// the list empty at times; it never misses an item added after it took.
func (l *List[T]) Arrived() <-chan struct{} { return l.arrived }

// Take removes the items at the front of the list for as long as accept,
// called on each in order with the list locked, returns true; the first it
// refuses, and those after it, stay.
func (l *List[T]) Take(accept func(T) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for n < len(l.items) && accept(l.items[n]) {
		n++
	}
	left := copy(l.items, l.items[n:])
	clear(l.items[left:])
	l.items = l.items[:left]
}

// Close makes Add refuse from now on and returns the items left.
func (l *List[T]) Close() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	left := l.items
	l.items = nil
	return left
}
