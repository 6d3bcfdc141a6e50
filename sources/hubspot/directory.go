package hubspot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
)

// Directory is the source's store of the app's known users, (userId,
// email), learned from the identify calls of the events topic, and of the
// HubSpot contacts it has emitted for. It is kept in pebble in the source's
// state directory and read from the log by Run, which reads every
// partition of the events and notifications topics (not as a consumer
// group member), so that every process has all of it. The offsets it has
// applied are stored with what they taught, in one batch, so after a
// restart it resumes where it stopped.
type Directory struct {
	db     *pebble.DB
	cfg    Config
	logger *zap.Logger
	// mu serializes the read-modify-write updates.
	mu sync.Mutex
}

// Key prefixes of the directory's store.
const (
	keyEmail     = "e/" // e/{lowercased email} -> userId
	keyUser      = "u/" // u/{userId} -> email ("" when none is known)
	keyContact   = "c/" // c/{contactId} -> userId, from the source's own identify calls
	keyForgotten = "x/" // x/{contactId}: a privacy deletion; nothing is emitted for it again
	keyOffset    = "o/" // o/{topic}/{partition} -> the next offset to read
)

// StateDir is where the source named name keeps its state under dataDir.
func StateDir(dataDir, name string) string { return filepath.Join(dataDir, "sources", name) }

// OpenDirectory opens (creating) the directory in the state directory of
// cfg's source.
func OpenDirectory(cfg Config, logger *zap.Logger) (*Directory, error) {
	cfg = cfg.WithDefaults()
	if cfg.DataDir == "" {
		return nil, errors.New("the source's directory needs a data directory")
	}
	db, err := pebble.Open(filepath.Join(StateDir(cfg.DataDir, cfg.Name), "directory"), &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("opening the directory of source %s: %w", cfg.Name, err)
	}
	return &Directory{db: db, cfg: cfg, logger: logger.With(zap.String("source", cfg.Name), zap.String("component", "directory"))}, nil
}

// Close closes the store, after Run has returned.
func (d *Directory) Close() error { return d.db.Close() }

func (d *Directory) get(key string) (string, bool) {
	v, closer, err := d.db.Get([]byte(key))
	if err != nil {
		return "", false
	}
	defer closer.Close()
	return string(v), true
}

// UserByEmail returns the userId of the known user with email, compared
// without regard to case.
func (d *Directory) UserByEmail(email string) (string, bool) {
	if email == "" {
		return "", false
	}
	return d.get(keyEmail + strings.ToLower(email))
}

// Known reports whether the app has identified userID.
func (d *Directory) Known(userID string) bool {
	if userID == "" {
		return false
	}
	_, ok := d.get(keyUser + userID)
	return ok
}

// Forgotten reports whether the contact had a privacy deletion.
func (d *Directory) Forgotten(contactID string) bool {
	_, ok := d.get(keyForgotten + contactID)
	return ok
}

// Forget removes every trace of a contact after its privacy deletion: the
// user it was matched to and that user's email, and the contact's id; it
// marks the contact so that nothing is emitted for it again.
func (d *Directory) Forget(contactID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.db.NewBatch()
	defer b.Close()
	d.forget(b, contactID)
	return b.Commit(pebble.Sync)
}

func (d *Directory) forget(b *pebble.Batch, contactID string) {
	if userID, ok := d.get(keyContact + contactID); ok {
		if email, ok := d.get(keyUser + userID); ok && email != "" {
			if owner, _ := d.get(keyEmail + email); owner == userID {
				b.Delete([]byte(keyEmail+email), nil)
			}
		}
		b.Delete([]byte(keyUser+userID), nil)
		b.Delete([]byte(keyContact+contactID), nil)
	}
	b.Delete([]byte(emittedKey("contacts", contactID)), nil)
	b.Set([]byte(keyForgotten+contactID), nil, nil)
}

// learn applies one message of the events topic.
func (d *Directory) learn(b *pebble.Batch, value []byte) {
	msg := gjson.ParseBytes(value)
	if msg.Get("type").String() != "identify" {
		return
	}
	userID := msg.Get("userId").String()
	if userID == "" {
		return
	}
	if msg.Get("_switchyard.source").String() == d.cfg.Name {
		// The source's own call: it ties the contact to the user.
		if msg.Get("_switchyard.hubspot.objectType").String() == "contacts" {
			id := msg.Get("_switchyard.hubspot.objectId").String()
			if id != "" && !d.Forgotten(id) {
				b.Set([]byte(keyContact+id), []byte(userID), nil)
			}
		}
		return
	}
	email := msg.Get("traits.email").String()
	if email == "" {
		email = msg.Get("context.traits.email").String()
	}
	email = strings.ToLower(strings.TrimSpace(email))
	old, known := d.get(keyUser + userID)
	if known && (email == "" || email == old) {
		return
	}
	if known && old != "" {
		if owner, _ := d.get(keyEmail + old); owner == userID {
			b.Delete([]byte(keyEmail+old), nil)
		}
	}
	b.Set([]byte(keyUser+userID), []byte(email), nil)
	if email != "" {
		b.Set([]byte(keyEmail+email), []byte(userID), nil)
	}
}

// Run reads the events topic (learning users) and the notifications topic
// (applying privacy deletions) until ctx ends.
func (d *Directory) Run(ctx context.Context, log queue.Log) error {
	return d.read(ctx, log, false)
}

// CatchUp brings the directory up to date with the log: it applies the
// events and notifications topics up to the ends they had when it began,
// and returns once it has, so that a sync run by a process that does not
// run the directory matches the users the log has seen.
func (d *Directory) CatchUp(ctx context.Context, log queue.Log) error {
	return d.read(ctx, log, true)
}

// read reads both topics, to the ends they have now when bounded, else
// until ctx ends.
func (d *Directory) read(ctx context.Context, log queue.Log, bounded bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- d.follow(ctx, log, d.cfg.EventsTopic, d.learn, bounded) }()
	go func() { errs <- d.follow(ctx, log, d.cfg.NotificationsTopic, d.applyNotification, bounded) }()
	var first error
	for range 2 {
		err := <-errs
		if err != nil && first == nil {
			first = err
		}
		if err != nil || !bounded {
			cancel()
		}
	}
	if !bounded && ctx.Err() != nil && errors.Is(first, context.Canceled) {
		return nil
	}
	return first
}

// applyNotification applies one message of the notifications topic: a
// privacy deletion of one of the source's contacts.
func (d *Directory) applyNotification(b *pebble.Batch, value []byte) {
	n, err := parseNotification(gjson.ParseBytes(value))
	if err == nil && n.Source == d.cfg.Name && n.ObjectType == "contacts" && n.Kind == "privacyDeletion" {
		d.forget(b, n.ObjectID)
	}
}

// follow reads every partition of topic from the stored offsets and applies
// each message with its offset in one batch, until ctx ends or, when
// bounded, up to the ends the partitions have now. A Read starts at one
// offset in every partition, so it starts at the lowest stored one and skips
// what partitions further on have applied already.
func (d *Directory) follow(ctx context.Context, log queue.Log, topic string, apply func(*pebble.Batch, []byte), bounded bool) error {
	parts, err := log.Partitions(ctx, topic)
	if err != nil {
		return fmt.Errorf("directory: %s: %w", topic, err)
	}
	next := make([]int64, parts)
	from := queue.Position{Kind: queue.AtOffset, Offset: -1}
	for p := range next {
		v, ok := d.get(offsetKey(topic, p))
		if !ok {
			from = queue.Position{Kind: queue.First}
			continue
		}
		next[p], _ = strconv.ParseInt(v, 10, 64)
		if from.Kind == queue.AtOffset && (from.Offset < 0 || next[p] < from.Offset) {
			from.Offset = next[p]
		}
	}
	if from.Kind == queue.AtOffset && from.Offset < 0 {
		from = queue.Position{Kind: queue.First}
	}
	var r interface {
		Fetch(context.Context) (queue.Message, error)
		Close() error
	}
	if bounded {
		r, err = queue.ReadRange(ctx, log, topic, from, queue.Position{Kind: queue.Last})
	} else {
		r, err = log.Read(ctx, topic, from)
	}
	if err != nil {
		return fmt.Errorf("directory: reading %s: %w", topic, err)
	}
	defer r.Close()
	for {
		m, err := r.Fetch(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Partition < len(next) && m.Offset < next[m.Partition] {
			continue
		}
		d.mu.Lock()
		b := d.db.NewBatch()
		apply(b, m.Value)
		b.Set([]byte(offsetKey(topic, m.Partition)), []byte(strconv.FormatInt(m.Offset+1, 10)), nil)
		err = b.Commit(pebble.NoSync)
		b.Close()
		d.mu.Unlock()
		if err != nil {
			return fmt.Errorf("directory: storing: %w", err)
		}
		if m.Partition < len(next) {
			next[m.Partition] = m.Offset + 1
		}
	}
}

func offsetKey(topic string, partition int) string {
	return keyOffset + topic + "/" + strconv.Itoa(partition)
}

// quietLogger drops pebble's informational lines and keeps its fatal ones.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
