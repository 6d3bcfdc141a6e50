package hubspot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
)

// state is what a destination instance keeps across restarts, in its state
// directory (or in memory without one):
//
//   - property times: for every record property written, the timestamp of
//     the event its value came from. A value from an older event (a replay,
//     or a late event from an offline device) is then not sent, so HubSpot
//     keeps the newer value. Records are named by how the destination
//     addresses them (email, user id, domain, group id or HubSpot id). The
//     times of edits made in HubSpot, learned from the events of a HubSpot
//     source of this portal, are kept under the record's HubSpot id.
//   - written values: for every record property written, a hash of the
//     value, under the record's HubSpot id, so the destination knows its
//     own values when a HubSpot source reports them back.
//   - HubSpot ids: the contact of each userId, anonymousId and email
//     written, so a track without an email finds its contact after a
//     restart, and the company of each domain, so it is searched once.
//   - waiting associations: the companies to associate with a user's
//     contact once it exists.
type state struct {
	db *pebble.DB
	// lock is the directory's lock, released after db closes; nil in memory.
	lock *pebble.Lock
	// records are the locks a batch holds on the records it writes, from
	// dropOlder through the HubSpot write to recordTimes.
	records recordLocks
}

// Keys start with a letter naming their kind.
const (
	timesPrefix   = "t\x00"
	idPrefix      = "i\x00"
	pendingPrefix = "p\x00"
	valuesPrefix  = "v\x00"
)

func openState(dir string, log *zap.Logger) (*state, error) {
	opts := &pebble.Options{FormatMajorVersion: pebble.FormatNewest, MemTableSize: 8 << 20, Logger: storeLogger{log}}
	if dir == "" {
		opts.FS = vfs.NewMem()
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		lock, err := pebble.LockDirectory(dir, vfs.Default)
		if err != nil {
			var pathErr *os.PathError
			if errors.As(err, &pathErr) {
				return nil, fmt.Errorf("locking %s: %w", dir, err)
			}
			return nil, fmt.Errorf("%s is held by another process, a switchyard serving this destination: stop it first, or use another data directory, which starts empty (%w)", dir, err)
		}
		opts.Lock = lock
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		if opts.Lock != nil {
			opts.Lock.Close()
		}
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	return &state{db: db, lock: opts.Lock}, nil
}

func (st *state) close() error {
	err := st.db.Close()
	if st.lock != nil {
		err = errors.Join(err, st.lock.Close())
	}
	return err
}

// id returns the HubSpot id stored for a key.
func (st *state) id(key string) (string, bool, error) {
	value, closer, err := st.db.Get([]byte(idPrefix + key))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer closer.Close()
	return string(value), true, nil
}

// setIDs stores HubSpot ids by key.
func (st *state) setIDs(ids map[string]string) error {
	if len(ids) == 0 {
		return nil
	}
	b := st.db.NewBatch()
	defer b.Close()
	for key, id := range ids {
		if err := b.Set([]byte(idPrefix+key), []byte(id), nil); err != nil {
			return err
		}
	}
	// Without an fsync a crash of the machine (not of the process) can
	// forget the newest ids; they are learned again from HubSpot.
	return b.Commit(pebble.NoSync)
}

// addPending stores a company waiting for a user's contact ("u:"+userId or
// "a:"+anonymousId). Unlike ids it is synced: nothing else remembers it.
func (st *state) addPending(user, companyID string) error {
	return st.db.Set([]byte(pendingPrefix+user+"\x00"+companyID), nil, pebble.Sync)
}

// pending returns the companies waiting for a user's contact.
func (st *state) pending(user string) ([]string, error) {
	prefix := []byte(pendingPrefix + user + "\x00")
	iter, err := st.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	var companies []string
	for iter.First(); iter.Valid(); iter.Next() {
		companies = append(companies, string(iter.Key()[len(prefix):]))
	}
	return companies, iter.Close()
}

// removePending forgets waiting associations, as {user, companyID} pairs.
func (st *state) removePending(pairs [][2]string) error {
	if len(pairs) == 0 {
		return nil
	}
	b := st.db.NewBatch()
	defer b.Close()
	for _, p := range pairs {
		if err := b.Delete([]byte(pendingPrefix+p[0]+"\x00"+p[1]), nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

// prefixEnd returns the first key after every key starting with prefix,
// whose last byte is NUL.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte{}, prefix...)
	end[len(end)-1]++
	return end
}

// A record's times are one entry, keyed timesPrefix object NUL record, and
// the hashes of its written values another, keyed valuesPrefix object NUL
// "id:" HubSpot id. Each holds for each property its name's length
// (uvarint), its name and a number (8 bytes, big-endian): the time in Unix
// nanoseconds, or the value's FNV-1a hash.
func timesKey(object, record string) []byte {
	return []byte(timesPrefix + object + "\x00" + record)
}

func valuesKey(object, id string) []byte {
	return []byte(valuesPrefix + object + "\x00id:" + id)
}

// valueHash is the hash of a written value kept in the state.
func valueHash(value string) int64 {
	f := fnv.New64a()
	f.Write([]byte(value))
	return int64(f.Sum64())
}

// loadEntry returns a record's stored times or value hashes; nil when there
// are none.
func (st *state) loadEntry(key []byte) (map[string]int64, error) {
	value, closer, err := st.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	entry := map[string]int64{}
	for len(value) > 0 {
		n, size := binary.Uvarint(value)
		if size <= 0 || uint64(len(value)-size) < n+8 {
			return nil, fmt.Errorf("property times of %q are damaged", key)
		}
		name := string(value[size : size+int(n)])
		entry[name] = int64(binary.BigEndian.Uint64(value[size+int(n):]))
		value = value[size+int(n)+8:]
	}
	return entry, nil
}

func encodeEntry(entry map[string]int64) []byte {
	var value []byte
	for name, n := range entry {
		value = binary.AppendUvarint(value, uint64(len(name)))
		value = append(value, name...)
		value = binary.BigEndian.AppendUint64(value, uint64(n))
	}
	return value
}

// dropOlder removes from in the properties whose stored time is newer than
// the event that set them, and returns their names. The stored times are
// those of the input's record and, when its HubSpot id is known (in.known),
// those learned from HubSpot for that id; the newer counts. The property
// naming the record is always kept. The caller holds the record's lock from
// here until recordTimes, so no other batch writes the record in between.
func (st *state) dropOlder(object string, in *input) ([]string, error) {
	times, err := st.loadEntry(timesKey(object, in.key))
	if err != nil {
		return nil, err
	}
	if in.known != "" && in.key != "id:"+in.known {
		learned, err := st.loadEntry(timesKey(object, "id:"+in.known))
		if err != nil {
			return nil, err
		}
		if times == nil {
			times = learned
		}
		for name, at := range learned {
			times[name] = max(times[name], at)
		}
	}
	if times == nil {
		return nil, nil
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

// recordTimes stores the times of the properties the inputs wrote, keeping the
// newer time, and the hashes of the values written under the HubSpot id
// each was written to (in.written). Each input is one record, whose lock the
// caller holds.
func (st *state) recordTimes(object string, inputs []*input) error {
	b := st.db.NewBatch()
	defer b.Close()
	for _, in := range inputs {
		key := timesKey(object, in.key)
		times, err := st.loadEntry(key)
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
		if changed {
			if err := b.Set(key, encodeEntry(times), nil); err != nil {
				return err
			}
		}
		if in.written == "" || len(in.props) == 0 {
			continue
		}
		key = valuesKey(object, in.written)
		values, err := st.loadEntry(key)
		if err != nil {
			return err
		}
		if values == nil {
			values = make(map[string]int64, len(in.props))
		}
		for name, v := range in.props {
			values[name] = valueHash(v)
		}
		if err := b.Set(key, encodeEntry(values), nil); err != nil {
			return err
		}
	}
	// Without an fsync a crash of the machine (not of the process) can
	// forget the newest times; HubSpot still holds the values.
	return b.Commit(pebble.NoSync)
}

// hubSpotValue is a property's value and time as a HubSpot source read it.
type hubSpotValue struct {
	value string
	at    time.Time
}

// learnTimes stores the times of a record's values as HubSpot reports them,
// under its HubSpot id, keeping the newer time. A value equal to the one
// the destination last wrote to that property is the destination's own
// write coming back, whose time in HubSpot is when it was written, not
// when the app set it: its time is not learned. It returns the names of the
// properties learned. The caller holds the lock of object NUL "id:"+id.
func (st *state) learnTimes(object, id string, props map[string]hubSpotValue) ([]string, error) {
	values, err := st.loadEntry(valuesKey(object, id))
	if err != nil {
		return nil, err
	}
	key := timesKey(object, "id:"+id)
	times, err := st.loadEntry(key)
	if err != nil {
		return nil, err
	}
	if times == nil {
		times = make(map[string]int64, len(props))
	}
	var learned []string
	for name, p := range props {
		if written, ok := values[name]; ok && written == valueHash(p.value) {
			continue
		}
		learned = append(learned, name)
		times[name] = max(times[name], p.at.UnixNano())
	}
	if len(learned) == 0 {
		return nil, nil
	}
	// Unlike the destination's own times these are synced: after a crash
	// nothing else tells an older app event from a newer HubSpot edit.
	return learned, st.db.Set(key, encodeEntry(times), pebble.Sync)
}

// recordLocks are locks by record, made while some batch holds or waits
// for them. A batch reaches a record through any of its events' router
// keys (a company shared by many users, a contact written under its
// anonymousId and its userId), so batches in flight at once can share
// records; holding the lock from the check of a record's property times
// through its write and the record of the new times keeps an older value
// from landing after a newer one.
type recordLocks struct {
	mu    sync.Mutex
	locks map[string]*recordLock
}

type recordLock struct {
	held    chan struct{} // holds one token while a batch has the record
	waiting int           // batches holding or waiting for it
}

// lock takes the locks of keys, in sorted order so that batches sharing
// several records never wait for each other in a circle, and returns the
// function that releases them. When ctx ends first it releases what it
// took and returns ctx's error.
func (l *recordLocks) lock(ctx context.Context, keys []string) (unlock func(), err error) {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	taken := make([]*recordLock, 0, len(keys))
	release := func() {
		for i := len(taken) - 1; i >= 0; i-- {
			<-taken[i].held
		}
		l.mu.Lock()
		for i, key := range keys[:len(taken)] {
			if taken[i].waiting--; taken[i].waiting == 0 {
				delete(l.locks, key)
			}
		}
		l.mu.Unlock()
	}
	for _, key := range keys {
		l.mu.Lock()
		if l.locks == nil {
			l.locks = map[string]*recordLock{}
		}
		rl := l.locks[key]
		if rl == nil {
			rl = &recordLock{held: make(chan struct{}, 1)}
			l.locks[key] = rl
		}
		rl.waiting++
		l.mu.Unlock()
		select {
		case rl.held <- struct{}{}:
			taken = append(taken, rl)
		case <-ctx.Done():
			l.mu.Lock()
			if rl.waiting--; rl.waiting == 0 {
				delete(l.locks, key)
			}
			l.mu.Unlock()
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

// storeLogger sends the store's routine messages to debug and its errors
// to warn. Pebble calls Fatalf when it cannot go on safely.
type storeLogger struct{ log *zap.Logger }

func (l storeLogger) Infof(format string, args ...any) {
	if ce := l.log.Check(zap.DebugLevel, "hubspot state"); ce != nil {
		ce.Write(zap.String("message", fmt.Sprintf(format, args...)))
	}
}

func (l storeLogger) Errorf(format string, args ...any) {
	l.log.Warn("hubspot state: " + fmt.Sprintf(format, args...))
}

func (l storeLogger) Fatalf(format string, args ...any) {
	panic("hubspot state: " + fmt.Sprintf(format, args...))
}
