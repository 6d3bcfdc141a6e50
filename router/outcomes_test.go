package router

import (
	"fmt"
	"testing"

	"github.com/switchyard/switchyard/destinations"
)

func TestTheObserverLearnsEveryOutcomeByOffset(t *testing.T) {
	h := newHarness(t, 1)
	dest := newScripted(smallBatches)
	dest.script["flaky"] = []destinations.Outcome{status500, destinations.Ok()}
	dest.script["bad"] = []destinations.Outcome{status400}
	h.publish(t, event("u1", "flaky"), event("u2", "bad"), event("u3", "off", `"integrations":{"All":false}`), event("u4", "good"))
	outcomes := NewOutcomes(100, "hook")
	h.start(t, Config{Destination: "hook", Observer: outcomes}, dest)
	eventually(t, "every event has its final outcome", func() bool {
		return len(outcomes.Of("events", 0, 0)) == 2 && len(outcomes.Of("events", 0, 3)) == 1
	})

	flaky := outcomes.Of("events", 0, 0)
	if flaky[0].Result != ResultRetried || flaky[0].Attempt != 1 || flaky[0].Reason != "answered 500" || flaky[0].Status != 500 ||
		flaky[1].Result != ResultDelivered || flaky[1].Attempt != 2 || flaky[0].MessageID != "flaky" || flaky[0].Destination != "hook" {
		t.Errorf("the flaky event's outcomes: %+v", flaky)
	}
	bad := outcomes.Of("events", 0, 1)
	if len(bad) != 1 || bad[0].Result != ResultDeadLettered || bad[0].Class != "http_4xx" || bad[0].Response != `{"error":"bad"}` {
		t.Errorf("the bad event's outcomes: %+v", bad)
	}
	off := outcomes.Of("events", 0, 2)
	if len(off) != 1 || off[0].Result != ResultSkipped || off[0].Attempt != 0 {
		t.Errorf("the skipped event's outcomes: %+v", off)
	}
	if got := outcomes.Of("events", 0, 4); len(got) != 0 {
		t.Errorf("outcomes of an offset never read: %+v", got)
	}
	if got := outcomes.Of("other", 0, 0); len(got) != 0 {
		t.Errorf("outcomes of another topic: %+v", got)
	}
}

func TestOutcomesKeepTheLatestPerDestination(t *testing.T) {
	o := NewOutcomes(3, "b", "a")
	for i := range 5 {
		o.Observe(Outcome{Destination: "a", Topic: "events", Offset: int64(i), Result: ResultDelivered})
	}
	o.Observe(Outcome{Destination: "b", Topic: "events", Offset: 0, Result: ResultRetried})
	o.Observe(Outcome{Destination: "c", Topic: "events", Offset: 4, Result: ResultSkipped})
	for off, want := range []string{"[b:retried]", "[]", "[a:delivered]", "[a:delivered]", "[a:delivered c:skipped]"} {
		var got []string
		for _, oc := range o.Of("events", 0, int64(off)) {
			got = append(got, oc.Destination+":"+oc.Result)
		}
		if fmt.Sprint(got) != want {
			t.Errorf("offset %d: %v, want %v", off, got, want)
		}
	}
	if got := fmt.Sprint(o.Destinations()); got != "[a b c]" {
		t.Errorf("destinations %s, want [a b c]", got)
	}
}

func TestOutcomesObservedTogetherAreKeptLikeOneByOne(t *testing.T) {
	together, oneByOne := NewOutcomes(2), NewOutcomes(2)
	var all []Outcome
	for i, dest := range []string{"a", "a", "b", "a", "c", "a", "b"} {
		all = append(all, Outcome{Destination: dest, Topic: "events", Offset: int64(i), Result: ResultDelivered})
	}
	together.Observe(all...)
	for _, oc := range all {
		oneByOne.Observe(oc)
	}
	for off := range all {
		got, want := together.Of("events", 0, int64(off)), oneByOne.Of("events", 0, int64(off))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("offset %d: %v observed together, %v one by one", off, got, want)
		}
	}
	if got := fmt.Sprint(together.Of("events", 0, 5)); len(together.Of("events", 0, 0)) != 0 || got == "[]" {
		t.Errorf("a's ring of 2 should have forgotten offset 0 and kept offset 5, got %s", got)
	}
}
