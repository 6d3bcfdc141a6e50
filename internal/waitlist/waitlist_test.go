package waitlist

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestListModel adds, takes and finally closes at random against a plain
// slice: items are taken in the order they came, up to the first one
// refused; an item added to the empty list signals Arrived, one added to a
// list that has items does not; once closed the list hands back every item
// left and refuses new ones.
func TestListModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	next := 0
	for round := range 300 {
		l := New[int]()
		var model []int
		for range rng.IntN(60) {
			if rng.IntN(3) > 0 {
				select {
				case <-l.Arrived():
				default:
				}
				wasEmpty := len(model) == 0
				if !l.Add(next) {
					t.Fatalf("round %d: Add refused before Close", round)
				}
				model = append(model, next)
				next++
				if signalled := len(l.arrived) == 1; signalled != wasEmpty {
					t.Fatalf("round %d: adding to a list of %d items signalled Arrived: %v", round, len(model)-1, signalled)
				}
				continue
			}
			limit := rng.IntN(len(model) + 2)
			var took []int
			l.Take(func(item int) bool {
				if len(took) == limit {
					return false
				}
				took = append(took, item)
				return true
			})
			want := model[:min(limit, len(model))]
			if !slices.Equal(took, want) {
				t.Fatalf("round %d: took %v, want %v", round, took, want)
			}
			model = model[len(want):]
		}
		if left := l.Close(); !slices.Equal(left, model) {
			t.Fatalf("round %d: Close handed back %v, want %v", round, left, model)
		}
		if l.Add(next) {
			t.Fatalf("round %d: Add took an item after Close", round)
		}
		l.Take(func(item int) bool {
			t.Fatalf("round %d: Take found %d after Close", round, item)
			return true
		})
	}
}

// TestNoItemIsMissed has adders race one taker that waits on Arrived
// whenever it finds the list empty: every item added is taken, once, and
// each adder's items in the order it added them.
func TestNoItemIsMissed(t *testing.T) {
	const adders, each = 8, 2000
	l := New[[2]int]()
	var wg sync.WaitGroup
	for a := range adders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Add([2]int{a, i})
			}
		}()
	}
	next := make([]int, adders)
	for taken := 0; taken < adders*each; {
		n := 0
		l.Take(func(item [2]int) bool {
			if item[1] != next[item[0]] {
				t.Fatalf("adder %d's item %d taken when %d was due", item[0], item[1], next[item[0]])
			}
			next[item[0]]++
			n++
			return true
		})
		taken += n
		if n == 0 && taken < adders*each {
			select {
			case <-l.Arrived():
			case <-time.After(10 * time.Second):
				t.Fatalf("waited 10 s on Arrived with %d of %d items taken", taken, adders*each)
			}
		}
	}
	wg.Wait()
}
