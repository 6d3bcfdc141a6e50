package dedupe

import (
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s, err := New(2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := KeyOf("web", "m1"), KeyOf("web", "m2"), KeyOf("web", "m3")
	if KeyOf("web", "m1") != a || KeyOf("app", "m1") == a {
		t.Fatal("a key must depend on the source and the id, and only on them")
	}
	s.Add([]Key{a}, now)
	if got := s.Seen([]Key{a, b}, now.Add(59*time.Minute)); !got[0] || got[1] {
		t.Fatalf("within the window: %v, want [true false]", got)
	}
	if got := s.Seen([]Key{a}, now.Add(time.Hour)); got[0] {
		t.Fatal("an id is forgotten once the window has passed")
	}
	s.Add([]Key{b, c}, now)
	if got := s.Seen([]Key{a, b, c}, now); got[0] || !got[1] || !got[2] {
		t.Fatalf("past the capacity the oldest is forgotten: %v", got)
	}
	if _, err := New(0, time.Hour); err == nil {
		t.Fatal("a set of no entries is refused")
	}
}
