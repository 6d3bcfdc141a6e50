package kafka

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/switchyard/switchyard/queue"
)

// A randomized model of how Publish splits calls and produceLoop groups
// them in rounds: random calls over random topics, keys and sizes, with a
// random number of calls waiting at each round. Whatever the mix, every
// message is sent exactly once; each partition's messages are sent in the
// order of the calls and within them; no batch is past BatchSize messages
// or maxBatchBytes unless it is one message alone; and each batch names the
// calls it holds messages of, each once.
func TestRoundsKeepEveryPartitionsOrderWithinBounds(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			l := &Log{cfg: Config{BatchSize: 1 + rng.IntN(20)}, topics: map[string]int{"a": 1 + rng.IntN(8), "b": 1 + rng.IntN(3)}}
			var calls []*produceCall
			var want []queue.Message
			seq := 0
			for range 1 + rng.IntN(60) {
				var msgs []queue.Message
				for range 1 + rng.IntN(40) {
					size := rng.IntN(64)
					if rng.IntN(50) == 0 {
						size = maxBatchBytes/2 + rng.IntN(maxBatchBytes)
					}
					topic := "a"
					if rng.IntN(4) == 0 {
						topic = "b"
					}
					msgs = append(msgs, queue.Message{Topic: topic, Key: fmt.Appendf(nil, "k%d", rng.IntN(10)), Value: append(fmt.Appendf(nil, "%d:", seq), make([]byte, size)...)})
					seq++
				}
				want = append(want, msgs...)
				parts := make([]topicPartition, len(msgs))
				for i, m := range msgs {
					parts[i] = l.partitionOf(m)
				}
				for len(msgs) > 0 {
					n := l.fittingPrefix(msgs, parts)
					calls = append(calls, &produceCall{msgs: msgs[:n], parts: parts[:n]})
					msgs, parts = msgs[n:], parts[n:]
				}
			}

			sent := map[topicPartition][]string{}
			var held *produceCall
			for len(calls) > 0 || held != nil {
				var r round
				waiting := 1 + rng.IntN(10)
				if held != nil {
					r.offer(held, l)
					held = nil
				}
				for ; waiting > 0 && len(calls) > 0; waiting-- {
					c := calls[0]
					calls = calls[1:]
					if !r.offer(c, l) {
						held = c
						break
					}
				}
				inRound := map[*produceCall]bool{}
				for _, c := range r.calls {
					inRound[c] = true
				}
				for _, b := range r.order {
					if l.tooLarge(b.load) && len(b.msgs) > 1 {
						t.Fatalf("a batch of %d messages, %d bytes, with BatchSize %d", b.load.msgs, b.load.bytes, l.cfg.BatchSize)
					}
					named := map[*produceCall]bool{}
					for _, c := range b.calls {
						if named[c] || !inRound[c] {
							t.Fatalf("a batch names a call twice or one not in its round")
						}
						named[c] = true
					}
					for _, m := range b.msgs {
						if l.partitionOf(m) != b.tp {
							t.Fatalf("a message of %v in the batch of %v", l.partitionOf(m), b.tp)
						}
						sent[b.tp] = append(sent[b.tp], string(m.Value))
					}
				}
			}

			wantByPartition := map[topicPartition][]string{}
			for _, m := range want {
				tp := l.partitionOf(m)
				wantByPartition[tp] = append(wantByPartition[tp], string(m.Value))
			}
			if len(sent) != len(wantByPartition) {
				t.Fatalf("sent to %d partitions, want %d", len(sent), len(wantByPartition))
			}
			for tp, w := range wantByPartition {
				got := sent[tp]
				if len(got) != len(w) {
					t.Fatalf("%v: sent %d messages, want %d", tp, len(got), len(w))
				}
				for i := range w {
					if got[i] != w[i] {
						t.Fatalf("%v: message %d is %.10q, want %.10q", tp, i, got[i], w[i])
					}
				}
			}
		})
	}
}
