package queue

import (
	"strings"
	"testing"
)

func TestABufferIsFreedOnceItsLastMessageIsReleased(t *testing.T) {
	var freed [][]byte
	data := []byte("keyvalue")
	buf := NewBuffer(data, 3, func(b []byte) { freed = append(freed, b) })
	msgs := []Message{
		{Key: data[:3], Value: data[3:], Buffer: buf},
		{Value: data[3:], Buffer: buf},
		{Value: data[:3], Buffer: buf},
	}
	for i := range msgs {
		if len(freed) != 0 {
			t.Fatalf("freed after %d of 3 releases", i)
		}
		msgs[i].Release()
		if msgs[i].Buffer != nil {
			t.Errorf("message %d still has its buffer after Release", i)
		}
	}
	if len(freed) != 1 || &freed[0][0] != &data[0] {
		t.Fatalf("freed %d buffers, want the one given once", len(freed))
	}
	// A released message has nothing left to release.
	msgs[0].Release()
	if len(freed) != 1 {
		t.Fatalf("releasing a released message freed again")
	}
}

func TestReleasingAMessageWithoutABufferDoesNothing(t *testing.T) {
	m := Message{Value: []byte("v")}
	m.Release()
	if string(m.Value) != "v" {
		t.Fatalf("value became %q", m.Value)
	}
}

func TestReleasingABufferMoreTimesThanItHasMessagesPanics(t *testing.T) {
	buf := NewBuffer([]byte("v"), 1, func([]byte) {})
	a, b := Message{Buffer: buf}, Message{Buffer: buf}
	a.Release()
	defer func() {
		r := recover()
		if s, ok := r.(string); !ok || !strings.Contains(s, "released 1 more times") {
			t.Fatalf("recovered %v, want the over-release panic", r)
		}
	}()
	b.Release()
}
