package embedded

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// moveSingleMessages moves the messages a log stored one per key, before
// it stored blocks, into blocks of one message each, under the same
// partition and offset. Each batch of moves commits atomically, so a move
// interrupted by a crash goes on at the next Open with nothing lost or
// doubled.
func (l *Log) moveSingleMessages() error {
	lower, upper := []byte{prefixSingleMessage, '/'}, []byte{prefixSingleMessage, '/' + 1}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("listing single messages: %w", err)
	}
	defer it.Close()
	b := l.db.NewBatch()
	defer func() { b.Close() }()
	moved := 0
	commit := func() error {
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("moving single messages into blocks: %w", err)
		}
		b.Close()
		b = l.db.NewBatch()
		return nil
	}
	for ok := it.First(); ok; ok = it.Next() {
		key := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("reading message %q: %w", key, err)
		}
		r, err := decodeSingleMessage(v)
		if err != nil {
			return fmt.Errorf("decoding message %q: %w", key, err)
		}
		// Only the prefix differs: b/<topic>/<partition><offset>.
		newKey := append([]byte{prefixBlock}, key[1:]...)
		if err := b.Set(newKey, appendRecord(nil, r.time, r.bytes, r.key, nil, r.value), nil); err != nil {
			return fmt.Errorf("moving message %q: %w", key, err)
		}
		if err := b.Delete(key, nil); err != nil {
			return fmt.Errorf("moving message %q: %w", key, err)
		}
		moved++
		if b.Len() >= 4<<20 {
			if err := commit(); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("listing single messages: %w", err)
	}
	if moved == 0 {
		return nil
	}
	if err := commit(); err != nil {
		return err
	}
	l.log.Info("moved messages stored one per key into blocks", zap.Int("messages", moved))
	return nil
}

// decodeSingleMessage decodes a message stored one per key: append time
// u64, bytes u64, key length uvarint, key, and the value to the end.
func decodeSingleMessage(v []byte) (record, error) {
	if len(v) < recordHeaderLen+1 {
		return record{}, fmt.Errorf("message value of %d bytes is shorter than its header", len(v))
	}
	r := record{time: int64(binary.BigEndian.Uint64(v)), bytes: int64(binary.BigEndian.Uint64(v[8:]))}
	var err error
	if r.key, r.value, err = lengthPrefixed(v[recordHeaderLen:]); err != nil {
		return record{}, fmt.Errorf("message value's key: %w", err)
	}
	return r, nil
}
