package hubspot

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
)

// Key prefixes of the source's state besides the directory's.
const (
	keyCheckpoint = "k/" // k/{name} -> a checkpoint, as JSON
	keyEmitted    = "m/" // m/{objectType}/{objectId} -> the newest modification emitted, epoch ms
)

// Checkpoint reads the checkpoint called name into v and reports whether
// one is stored.
func (d *Directory) Checkpoint(name string, v any) (bool, error) {
	raw, closer, err := d.db.Get([]byte(keyCheckpoint + name))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading checkpoint %s: %w", name, err)
	}
	defer closer.Close()
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("reading checkpoint %s: %w", name, err)
	}
	return true, nil
}

// SetCheckpoint stores v, durably, as the checkpoint called name.
func (d *Directory) SetCheckpoint(name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("storing checkpoint %s: %w", name, err)
	}
	if err := d.db.Set([]byte(keyCheckpoint+name), raw, pebble.Sync); err != nil {
		return fmt.Errorf("storing checkpoint %s: %w", name, err)
	}
	return nil
}

// Emitted returns the newest modification time (epoch ms) of the record
// for which a call has been emitted, or 0.
func (d *Directory) Emitted(objectType, objectID string) int64 {
	v, ok := d.get(emittedKey(objectType, objectID))
	if !ok {
		return 0
	}
	ms, _ := strconv.ParseInt(v, 10, 64)
	return ms
}

// MarkEmitted records, for each record id, the modification time (epoch
// ms) of the record whose calls are now in the log, keeping the newest.
func (d *Directory) MarkEmitted(objectType string, modified map[string]int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.db.NewBatch()
	defer b.Close()
	for id, ms := range modified {
		if ms <= d.Emitted(objectType, id) {
			continue
		}
		b.Set([]byte(emittedKey(objectType, id)), []byte(strconv.FormatInt(ms, 10)), nil)
	}
	if b.Empty() {
		return nil
	}
	return b.Commit(pebble.NoSync)
}

func emittedKey(objectType, objectID string) string {
	return keyEmitted + objectType + "/" + objectID
}
