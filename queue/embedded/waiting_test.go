package embedded

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestWaitingCallsModel adds, takes and finally closes at random against a
// plain list: calls are taken in the order they came, as many as fit in
// maxMessages (one larger call alone), a call arriving at an empty list
// wakes the writer, and once closed the list hands back every call left
// and refuses new ones.
func TestWaitingCallsModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const maxMessages = 20
	for round := range 200 {
		w := waitingCalls{arrived: make(chan struct{}, 1)}
		var model []*publishRequest
		for range rng.IntN(60) {
			if rng.IntN(3) > 0 {
				req := &publishRequest{encoded: &encoded{msgs: make([]pendingMessage, 1+rng.IntN(2*maxMessages))}}
				wasEmpty := len(model) == 0
				select {
				case <-w.arrived:
				default:
				}
				if !w.add(req) {
					t.Fatalf("round %d: add refused before close", round)
				}
				model = append(model, req)
				woken := len(w.arrived) == 1
				if woken != wasEmpty {
					t.Fatalf("round %d: a call added to a list of %d woke the writer: %v", round, len(model)-1, woken)
				}
				continue
			}
			group := w.take(nil, maxMessages)
			n, messages := 0, 0
			for n < len(model) && (n == 0 || messages+len(model[n].msgs) <= maxMessages) {
				messages += len(model[n].msgs)
				n++
			}
			if !slices.Equal(group, model[:n]) {
				t.Fatalf("round %d: took %d calls, want the first %d of %d", round, len(group), n, len(model))
			}
			model = model[n:]
		}
		left := w.close()
		if !slices.Equal(left, model) {
			t.Fatalf("round %d: close handed back %d calls, want the %d left", round, len(left), len(model))
		}
		if w.add(&publishRequest{encoded: &encoded{msgs: make([]pendingMessage, 1)}}) {
			t.Fatalf("round %d: add took a call after close", round)
		}
		if got := w.take(nil, maxMessages); len(got) != 0 {
			t.Fatalf("round %d: take after close returned %d calls", round, len(got))
		}
	}
}
