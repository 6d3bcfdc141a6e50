package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// rangeIdleCheck is how long Range.Fetch waits for a message before it asks
// the log whether retention removed what is left of the range.
const rangeIdleCheck = 2 * time.Second

// Range is a bounded read of a topic: the messages between two positions as
// the topic was when the read began. Messages published later are not read,
// so a range of a topic that keeps growing, or that the reader itself writes
// to, still ends. It commits nothing. Fetch is not safe for concurrent use.
type Range struct {
	log    Log
	topic  string
	reader Reader // nil when the range is empty
	// end is, per partition, the offset just past the range.
	end []int64
	// done marks the partitions read to their end; open counts the others.
	done  []bool
	open  int
	total int64
}

// ReadRange opens a read of topic from the position from through the
// position to, both resolved in every partition now. to is inclusive: an
// AtOffset end includes that offset, an AtTime end the messages appended at
// that time, and Last, the open end, every message published before
// ReadRange returns. A range cannot end at First. Fetch returns io.EOF once
// every partition is read to its end.
func ReadRange(ctx context.Context, l Log, topic string, from, to Position) (*Range, error) {
	end, err := endOffsets(ctx, l, topic, to)
	if err != nil {
		return nil, err
	}
	start, err := l.Offsets(ctx, topic, from)
	if err != nil {
		return nil, err
	}
	if len(start) != len(end) {
		return nil, fmt.Errorf("queue: reading a range of %s: the partition count changed from %d to %d", topic, len(end), len(start))
	}
	r := &Range{log: l, topic: topic, end: end, done: make([]bool, len(end)), open: len(end)}
	for p := range end {
		if start[p] >= end[p] {
			r.finish(p)
			continue
		}
		r.total += end[p] - start[p]
	}
	if r.open == 0 {
		return r, nil
	}
	if r.reader, err = l.Read(ctx, topic, from); err != nil {
		return nil, err
	}
	return r, nil
}

// endOffsets resolves the inclusive end to, per partition, the offset just
// past it.
func endOffsets(ctx context.Context, l Log, topic string, to Position) ([]int64, error) {
	switch to.Kind {
	case Last:
		return l.Offsets(ctx, topic, to)
	case AtOffset:
		if to.Offset == math.MaxInt64 {
			return l.Offsets(ctx, topic, Position{Kind: Last})
		}
		return l.Offsets(ctx, topic, Position{Kind: AtOffset, Offset: to.Offset + 1})
	case AtTime:
		return l.Offsets(ctx, topic, Position{Kind: AtTime, Time: to.Time.Add(time.Nanosecond)})
	case First:
		return nil, errors.New("queue: a range cannot end at First; end it at an offset, a time or Last")
	default:
		return nil, fmt.Errorf("queue: unknown position kind %d", to.Kind)
	}
}

// Total returns how many messages the range holds at most: the offsets
// between its start and its end, summed over partitions. Fewer are read
// when retention removes some meanwhile.
func (r *Range) Total() int64 { return r.total }

// Fetch returns the next message of the range, or io.EOF once every
// partition is read to its end. Messages of one partition come in offset
// order; partitions are interleaved.
func (r *Range) Fetch(ctx context.Context) (Message, error) {
	for r.open > 0 {
		m, err := r.next(ctx)
		if err != nil {
			return Message{}, err
		}
		p := m.Partition
		if p < 0 || p >= len(r.end) || r.done[p] {
			continue
		}
		if m.Offset >= r.end[p]-1 {
			r.finish(p)
		}
		if m.Offset < r.end[p] {
			return m, nil
		}
	}
	return Message{}, io.EOF
}

// next fetches the reader's next message. When none comes for a while it
// ends the partitions whose rest retention removed, and returns io.EOF when
// that was all of them.
func (r *Range) next(ctx context.Context) (Message, error) {
	for {
		wait, cancel := context.WithTimeout(ctx, rangeIdleCheck)
		m, err := r.reader.Fetch(wait)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return m, err
		}
		first, err := r.log.Offsets(ctx, r.topic, Position{Kind: First})
		if err != nil {
			return Message{}, err
		}
		for p, low := range first {
			if p < len(r.end) && !r.done[p] && low >= r.end[p] {
				r.finish(p)
			}
		}
		if r.open == 0 {
			return Message{}, io.EOF
		}
	}
}

func (r *Range) finish(p int) {
	r.done[p] = true
	r.open--
}

// Close releases the range's reader. A Fetch after Close returns
// ErrClosed, or io.EOF when the range was read to its end.
func (r *Range) Close() error {
	if r.reader == nil {
		return nil
	}
	return r.reader.Close()
}
