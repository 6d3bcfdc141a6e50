package router

import (
	"cmp"
	"slices"
)

// tracker follows, per partition, which fetched offsets are done, so that
// only a fully acknowledged prefix is ever committed: committing an offset
// commits every earlier one of its partition.
type tracker struct {
	partitions map[int]*partitionTrack
}

type partitionTrack struct {
	// window holds the offsets fetched and not yet committable, in fetch
	// (offset) order, with whether each is done.
	window []trackedOffset
	// committable is the highest offset whose prefix is all done, or -1.
	committable int64
	// committed is the offset last handed to Commit, or -1.
	committed int64
}

type trackedOffset struct {
	offset int64
	done   bool
}

func newTracker() *tracker {
	return &tracker{partitions: make(map[int]*partitionTrack)}
}

// fetched records an offset handed out by the log. Offsets of a partition
// arrive in increasing order.
func (t *tracker) fetched(partition int, offset int64) {
	p, ok := t.partitions[partition]
	if !ok {
		p = &partitionTrack{committable: -1, committed: -1}
		t.partitions[partition] = p
	}
	p.window = append(p.window, trackedOffset{offset: offset})
}

// done marks an offset finished: delivered, skipped or dead-lettered.
func (t *tracker) done(partition int, offset int64) {
	p := t.partitions[partition]
	if p == nil {
		return
	}
	// The window is in offset order.
	if i, ok := slices.BinarySearchFunc(p.window, offset, func(t trackedOffset, o int64) int { return cmp.Compare(t.offset, o) }); ok {
		p.window[i].done = true
	}
	n := 0
	for n < len(p.window) && p.window[n].done {
		p.committable = p.window[n].offset
		n++
	}
	// Dropping the done prefix by reslicing costs nothing; append
	// reallocates once the front's capacity is gone, leaving it behind.
	p.window = p.window[n:]
}

// toCommit returns, per partition, the offset to commit when it moved past
// the last one committed.
func (t *tracker) toCommit() map[int]int64 {
	out := make(map[int]int64)
	for id, p := range t.partitions {
		if p.committable > p.committed {
			out[id] = p.committable
		}
	}
	return out
}

// markCommitted records that offsets returned by toCommit were committed.
func (t *tracker) markCommitted(offsets map[int]int64) {
	for id, off := range offsets {
		if p := t.partitions[id]; p != nil && off > p.committed {
			p.committed = off
		}
	}
}

// outstanding counts fetched offsets not yet done.
func (t *tracker) outstanding() int {
	n := 0
	for _, p := range t.partitions {
		for _, o := range p.window {
			if !o.done {
				n++
			}
		}
	}
	return n
}
