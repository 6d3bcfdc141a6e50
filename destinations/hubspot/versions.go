package hubspot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
)

// propertyTimes remembers, for every record property this destination has
// written, the timestamp of the event its value came from. A value from an
// older event (a replay, or a late event from an offline device) is then
// not sent, so HubSpot keeps the newer value.
//
// Records are named by how the destination addresses them (email, user id,
// domain, group id or HubSpot id), so the times are kept per destination
// instance in its state directory, or in memory without one.
type propertyTimes struct {
	db *pebble.DB
	// mu makes record's read-compare-write atomic.
	mu sync.Mutex
}

func openPropertyTimes(dir string, log *zap.Logger) (*propertyTimes, error) {
	opts := &pebble.Options{FormatMajorVersion: pebble.FormatNewest, MemTableSize: 8 << 20, Logger: storeLogger{log}}
	if dir == "" {
		opts.FS = vfs.NewMem()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		var pathErr *os.PathError
		if !errors.As(err, &pathErr) {
			return nil, fmt.Errorf("%s is held by another process, a switchyard serving this destination: stop it first, or use another data directory, which starts with no property times (%w)", dir, err)
		}
		return nil, err
	}
	return &propertyTimes{db: db}, nil
}

func (p *propertyTimes) close() error { return p.db.Close() }

// A record's times are one entry, keyed object NUL record, holding for each
// property its name's length (uvarint), its name and the time in Unix
// nanoseconds (8 bytes, big-endian).
func timesKey(object, record string) []byte {
	return []byte(object + "\x00" + record)
}

// load returns a record's stored times; nil when there are none.
func (p *propertyTimes) load(key []byte) (map[string]int64, error) {
	value, closer, err := p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	times := map[string]int64{}
	for len(value) > 0 {
		n, size := binary.Uvarint(value)
		if size <= 0 || uint64(len(value)-size) < n+8 {
			return nil, fmt.Errorf("property times of %q are damaged", key)
		}
		name := string(value[size : size+int(n)])
		times[name] = int64(binary.BigEndian.Uint64(value[size+int(n):]))
		value = value[size+int(n)+8:]
	}
	return times, nil
}

// dropOlder removes from in the properties whose stored time is newer than
// the event that set them, and returns their names. The property naming the
// record is always kept.
func (p *propertyTimes) dropOlder(object string, in *input) ([]string, error) {
	times, err := p.load(timesKey(object, in.key))
	if err != nil || times == nil {
		return nil, err
	}
	var dropped []string
	for name := range in.props {
		at, ok := in.newest[name]
		if !ok || at.IsZero() || name == in.keyProperty {
			continue
		}
		if written, ok := times[name]; ok && written > at.UnixNano() {
			delete(in.props, name)
			dropped = append(dropped, name)
		}
	}
	return dropped, nil
}

// record stores the times of the properties the inputs wrote, keeping the
// newer time when two batches wrote one record. Each input is one record.
func (p *propertyTimes) record(object string, inputs []*input) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.db.NewBatch()
	defer b.Close()
	for _, in := range inputs {
		key := timesKey(object, in.key)
		times, err := p.load(key)
		if err != nil {
			return err
		}
		if times == nil {
			times = make(map[string]int64, len(in.props))
		}
		changed := false
		for name := range in.props {
			at, ok := in.newest[name]
			if !ok || at.IsZero() || name == in.keyProperty {
				continue
			}
			if written, ok := times[name]; !ok || written < at.UnixNano() {
				times[name], changed = at.UnixNano(), true
			}
		}
		if !changed {
			continue
		}
		var value []byte
		for name, at := range times {
			value = binary.AppendUvarint(value, uint64(len(name)))
			value = append(value, name...)
			value = binary.BigEndian.AppendUint64(value, uint64(at))
		}
		if err := b.Set(key, value, nil); err != nil {
			return err
		}
	}
	// Without an fsync a crash of the machine (not of the process) can
	// forget the newest times; HubSpot still holds the values.
	return b.Commit(pebble.NoSync)
}

// storeLogger sends the store's routine messages to debug and its errors
// to warn. Pebble calls Fatalf when it cannot go on safely.
type storeLogger struct{ log *zap.Logger }

func (l storeLogger) Infof(format string, args ...any) {
	if ce := l.log.Check(zap.DebugLevel, "property times"); ce != nil {
		ce.Write(zap.String("message", fmt.Sprintf(format, args...)))
	}
}

func (l storeLogger) Errorf(format string, args ...any) {
	l.log.Warn("property times: " + fmt.Sprintf(format, args...))
}

func (l storeLogger) Fatalf(format string, args ...any) {
	panic("property times: " + fmt.Sprintf(format, args...))
}
