package router

import (
	"cmp"
	"slices"
)

// tracker follows, per partition, which fetched offsets are done, so that
// only a fully acknowledged prefix is ever committed: committing an offset
// commits every earlier one of its partition.
//
// A consumer group's log delivers a partition again from the group's
// committed offset after every rebalance, so offsets do not only grow: an
// offset below the highest one fetched is one the tracker already has (done,
// or still on its way) and fetched turns it away.
type tracker struct {
	partitions map[int]*partitionTrack
}

type partitionTrack struct {
	// window holds the offsets fetched and not yet committable, in
	// increasing order, with whether each is done. Its first entry is never
	// done.
	window []trackedOffset
	// array is the window's array, from its front: once the window reaches
	// its end, it moves back to the front while that leaves it room.
	array []trackedOffset
	// next is one past the highest offset fetched.
	next int64
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

// fetched records an offset handed out by the log and reports whether it is
// new. An offset below the highest one fetched in the partition is a
// re-delivery of one the tracker already has: it is not recorded and
// fetched returns false.
func (t *tracker) fetched(partition int, offset int64) bool {
	p, ok := t.partitions[partition]
	if !ok {
		p = &partitionTrack{committable: -1, committed: -1}
		t.partitions[partition] = p
	} else if offset < p.next {
		return false
	}
	if len(p.window) == cap(p.window) {
		if cap(p.array) == 0 || 2*len(p.window) > cap(p.array) {
			p.array = make([]trackedOffset, 0, max(64, 2*cap(p.array)))
		}
		p.window = append(p.array[:0], p.window...)
	}
	p.window = append(p.window, trackedOffset{offset: offset})
	p.next = offset + 1
	return true
}

// done marks an offset finished: delivered, skipped or dead-lettered. An
// offset the tracker does not hold (its partition was revoked, or it is
// already committable) changes nothing.
func (t *tracker) done(partition int, offset int64) {
	p := t.partitions[partition]
	if p == nil {
		return
	}
	if i, ok := slices.BinarySearchFunc(p.window, offset, func(t trackedOffset, o int64) int { return cmp.Compare(t.offset, o) }); ok {
		p.window[i].done = true
	}
	n := 0
	for n < len(p.window) && p.window[n].done {
		p.committable = p.window[n].offset
		n++
	}
	// Dropping the done prefix by reslicing costs nothing; fetched moves
	// the window back to the front of its array once it reaches the end. A
	// window all done starts again at the front.
	if n == len(p.window) {
		p.window = p.array[:0]
	} else {
		p.window = p.window[n:]
	}
}

// revoke forgets a partition this member no longer owns: nothing of it is
// committed any more, and when it is assigned again its offsets start anew.
func (t *tracker) revoke(partition int) {
	delete(t.partitions, partition)
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
