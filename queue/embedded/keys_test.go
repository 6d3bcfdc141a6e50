package embedded

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/switchyard/switchyard/queue"
)

func TestBlockSpanEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
		want []byte
	}{
		{"block", blockKey("events", 3, 42), partitionPrefix(prefixBlock, "events", 4)},
		{"first block of a partition", blockKey("events", 0, 0), partitionPrefix(prefixBlock, "events", 1)},
		{"block of the last partition number", blockKey("a", 1<<32-1, 7), []byte("b/a0")},
		{"a key before the blocks", []byte("a"), []byte("b/")},
		{"group offset", groupKey("g", "events", 0), nil},
		{"low watermark", lowKey("events", 1), nil},
		{"joined", joinedKey("g", "events"), nil},
		{"topic", topicKey("events"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := blockSpanEnd(tc.key); !bytes.Equal(got, tc.want) {
				t.Errorf("blockSpanEnd(%q) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

// TestTablesHoldOnePartitionEach checks that a flush writes each
// partition's messages to tables of their own, which pebble can then move
// down its levels without rewriting them, as no other table overlaps them.
func TestTablesHoldOnePartitionEach(t *testing.T) {
	l := open(t, Config{Dir: t.TempDir(), Partitions: 4})
	ctx := testContext(t)
	for round := range 3 {
		var msgs []queue.Message
		for user := range 200 {
			msgs = append(msgs, queue.Message{Topic: "events", Key: fmt.Appendf(nil, "user-%d", user), Value: fmt.Appendf(nil, "round %d", round)})
		}
		mustPublish(t, ctx, l, msgs...)
		if err := l.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	levels, err := l.db.SSTables()
	if err != nil {
		t.Fatal(err)
	}
	tables := 0
	for level, infos := range levels {
		for _, info := range infos {
			smallest, largest := info.Smallest.UserKey, info.Largest.UserKey
			if !bytes.HasPrefix(smallest, []byte("b/")) {
				continue
			}
			tables++
			if end := blockSpanEnd(smallest); bytes.Compare(largest, end) >= 0 {
				t.Errorf("L%d table %s spans %q to %q, past its partition's end %q", level, info.FileNum, smallest, largest, end)
			}
		}
	}
	if tables < 4 {
		t.Errorf("%d tables of messages in 4 partitions, want at least 4", tables)
	}
}
