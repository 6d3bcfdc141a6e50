package router

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// trackerModel drives a tracker the way a consumer group's log and the
// router do, and checks it against plain sets of offsets. Each partition is
// a log with gaps in its offsets; the member fetches it in order, finishes
// what it fetched in any order, commits, is re-delivered the partition from
// the group's committed offset (a rebalance that keeps it), and loses and
// regains it (a rebalance that moves it, during which another member may
// finish and commit some of it).
type trackerModel struct {
	t   *testing.T
	rng *rand.Rand
	tr  *tracker
	ops []string

	logs map[int][]int64 // per partition, the offsets that exist
	// per partition:
	owned     map[int]bool
	pos       map[int]int            // index in logs of the next offset the log hands out
	group     map[int]int64          // the group's committed offset, -1 for none
	accepted  map[int]map[int64]bool // offsets the tracker took and holds
	finished  map[int]map[int64]bool // offsets finished by anyone, ever
	inFlight  []modelOffset          // offsets taken and not finished, owned or not
	fetchedAt map[int]int64          // one past the highest offset the tracker took
}

type modelOffset struct {
	partition int
	offset    int64
}

func newTrackerModel(t *testing.T, seed uint64, partitions int) *trackerModel {
	m := &trackerModel{
		t: t, rng: rand.New(rand.NewPCG(seed, seed)), tr: newTracker(),
		logs: map[int][]int64{}, owned: map[int]bool{}, pos: map[int]int{}, group: map[int]int64{},
		accepted: map[int]map[int64]bool{}, finished: map[int]map[int64]bool{}, fetchedAt: map[int]int64{},
	}
	for p := range partitions {
		var offs []int64
		for o := int64(0); len(offs) < 60; o++ {
			if m.rng.IntN(8) > 0 { // one offset in eight is missing
				offs = append(offs, o)
			}
		}
		m.logs[p] = offs
		m.owned[p] = true
		m.group[p] = -1
		m.accepted[p] = map[int64]bool{}
		m.finished[p] = map[int64]bool{}
	}
	return m
}

func (m *trackerModel) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("%s\nafter: %v", fmt.Sprintf(format, args...), m.ops)
}

// restart makes the log hand out p again from the group's committed offset.
func (m *trackerModel) restart(p int) {
	m.pos[p] = 0
	for m.pos[p] < len(m.logs[p]) && m.logs[p][m.pos[p]] <= m.group[p] {
		m.pos[p]++
	}
}

func (m *trackerModel) fetch(p int) {
	if !m.owned[p] || m.pos[p] >= len(m.logs[p]) {
		return
	}
	o := m.logs[p][m.pos[p]]
	m.pos[p]++
	m.ops = append(m.ops, fmt.Sprintf("fetch %d/%d", p, o))
	isNew := m.tr.fetched(p, o)
	wantNew := o >= m.fetchedAt[p]
	if isNew != wantNew {
		m.fatalf("fetched(%d, %d) = %v, want %v", p, o, isNew, wantNew)
	}
	if isNew {
		m.accepted[p][o] = true
		m.fetchedAt[p] = o + 1
		m.inFlight = append(m.inFlight, modelOffset{p, o})
	}
}

func (m *trackerModel) finishOne() {
	if len(m.inFlight) == 0 {
		return
	}
	i := m.rng.IntN(len(m.inFlight))
	f := m.inFlight[i]
	m.inFlight = slices.Delete(m.inFlight, i, i+1)
	m.ops = append(m.ops, fmt.Sprintf("finish %d/%d", f.partition, f.offset))
	m.finished[f.partition][f.offset] = true
	m.tr.done(f.partition, f.offset)
}

func (m *trackerModel) commit() {
	offsets := m.tr.toCommit()
	m.ops = append(m.ops, fmt.Sprintf("commit %v", offsets))
	for p, off := range offsets {
		if !m.owned[p] {
			m.fatalf("commits partition %d, which the member does not own", p)
		}
		for _, o := range m.logs[p] {
			if o <= off && !m.finished[p][o] {
				m.fatalf("commits %d/%d past unfinished offset %d", p, off, o)
			}
		}
		if off <= m.group[p] {
			m.fatalf("commits %d/%d, not past the group's %d", p, off, m.group[p])
		}
		m.group[p] = off
	}
	m.tr.markCommitted(offsets)
}

// rebalance re-delivers p from the group's committed offset, keeping it.
func (m *trackerModel) rebalance(p int) {
	if !m.owned[p] {
		return
	}
	m.ops = append(m.ops, fmt.Sprintf("redeliver %d from %d", p, m.group[p]))
	m.restart(p)
}

// move gives p to another member, which finishes and commits part of it,
// and then back.
func (m *trackerModel) move(p int) {
	if !m.owned[p] {
		return
	}
	m.ops = append(m.ops, fmt.Sprintf("revoke %d", p))
	m.owned[p] = false
	m.tr.revoke(p)
	m.accepted[p] = map[int64]bool{}
	m.fetchedAt[p] = 0
	// The other member resumes from the group's offset and gets some way.
	m.restart(p)
	if left := len(m.logs[p]) - m.pos[p]; left > 0 {
		upTo := m.pos[p] + m.rng.IntN(left+1)
		for _, o := range m.logs[p][m.pos[p]:upTo] {
			m.finished[p][o] = true
			m.group[p] = o
		}
	}
	m.ops = append(m.ops, fmt.Sprintf("assign %d at %d", p, m.group[p]))
	m.owned[p] = true
	m.restart(p)
}

// checkWindow checks that the tracker holds exactly the offsets taken and
// not yet committable, in order: its memory is bounded by what is unfinished.
func (m *trackerModel) checkWindow() {
	for p, tp := range m.tr.partitions {
		if !m.owned[p] {
			m.fatalf("tracks partition %d, which the member does not own", p)
		}
		var want []int64
		for o := range m.accepted[p] {
			if o > tp.committable {
				want = append(want, o)
			}
		}
		slices.Sort(want)
		var got []int64
		for _, e := range tp.window {
			got = append(got, e.offset)
		}
		if !slices.Equal(got, want) {
			m.fatalf("window of partition %d is %v, want %v", p, got, want)
		}
		if len(tp.window) > 0 && tp.window[0].done {
			m.fatalf("window of partition %d starts with a done offset", p)
		}
	}
}

func TestTrackerAgainstAModelWithRebalances(t *testing.T) {
	for seed := range uint64(2000) {
		m := newTrackerModel(t, seed, 3)
		for range 400 {
			p := m.rng.IntN(3)
			switch n := m.rng.IntN(100); {
			case n < 45:
				m.fetch(p)
			case n < 80:
				m.finishOne()
			case n < 90:
				m.commit()
			case n < 96:
				m.rebalance(p)
			default:
				m.move(p)
			}
			m.checkWindow()
		}
		// The load stops: everything is fetched and finished.
		for {
			for p := range 3 {
				for m.pos[p] < len(m.logs[p]) {
					m.fetch(p)
				}
			}
			if len(m.inFlight) == 0 {
				break
			}
			for len(m.inFlight) > 0 {
				m.finishOne()
			}
		}
		m.commit()
		m.checkWindow()
		for p := range 3 {
			last := m.logs[p][len(m.logs[p])-1]
			if m.group[p] != last {
				m.fatalf("seed %d: partition %d committed up to %d, want the end %d", seed, p, m.group[p], last)
			}
		}
		if n := m.tr.outstanding(); n != 0 {
			m.fatalf("seed %d: %d offsets outstanding after everything finished", seed, n)
		}
	}
}
