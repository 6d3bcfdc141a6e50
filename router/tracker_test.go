package router

import "testing"

func TestTrackerCommitsOnlyTheDonePrefix(t *testing.T) {
	tests := []struct {
		name    string
		fetched []int64
		done    []int64
		want    int64 // -1: nothing to commit
	}{
		{"nothing done commits nothing", []int64{0, 1, 2}, nil, -1},
		{"a done prefix is committed", []int64{0, 1, 2}, []int64{0, 1}, 1},
		{"a later offset done before an earlier one is not committed", []int64{0, 1, 2}, []int64{1, 2}, -1},
		{"the gap closing commits everything after it", []int64{0, 1, 2}, []int64{2, 1, 0}, 2},
		{"gaps in the offsets themselves are fine", []int64{5, 9, 12}, []int64{5, 9}, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker()
			for _, o := range tt.fetched {
				tr.fetched(3, o)
			}
			for _, o := range tt.done {
				tr.done(3, o)
			}
			got, ok := tr.toCommit()[3]
			if !ok {
				got = -1
			}
			if got != tt.want {
				t.Fatalf("commit %d, want %d", got, tt.want)
			}
		})
	}
}

func TestTrackerDoesNotCommitTheSameOffsetTwice(t *testing.T) {
	tr := newTracker()
	tr.fetched(0, 0)
	tr.done(0, 0)
	first := tr.toCommit()
	tr.markCommitted(first)
	if again := tr.toCommit(); len(again) != 0 {
		t.Fatalf("committed again: %v", again)
	}
	if tr.outstanding() != 0 {
		t.Fatalf("outstanding %d", tr.outstanding())
	}
}
