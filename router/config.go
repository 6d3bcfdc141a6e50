// Package router delivers the log's events to destinations: one router per
// destination instance, each with its own consumer group, so a slow or
// failing destination never delays another. It keeps each user's events in
// order through retries, retries with backoff, dead-letters what cannot be
// delivered, and commits an offset only when everything before it is done.
package router

import (
	"errors"
	"fmt"
	"time"
)

// Config configures one router. Zero fields take the defaults given.
type Config struct {
	// Destination is the destination instance's name: it names the consumer
	// group, the dead letters' stage and the metrics' label. Required.
	Destination string
	// DisplayName is the destination's key in a message's integrations
	// object (case-sensitive). Default: Destination.
	DisplayName string
	// Group is the consumer group. Default "switchyard-" + Destination.
	Group string
	// DLQTopic receives dead letters. Default "dlq".
	DLQTopic string

	// RetryWindow is how long an event keeps being retried before it is
	// dead-lettered. Default 4h.
	RetryWindow time.Duration
	// BackoffMin and BackoffMax bound the exponential backoff between
	// attempts (with ±50% jitter). Defaults 1s and 5m.
	BackoffMin, BackoffMax time.Duration

	// MaxPending caps the events fetched and not yet finished, which bounds
	// memory whatever the backlog: at the cap the router stops fetching.
	// Default 10,000.
	MaxPending int

	// DedupeWindow is how long a delivered messageId is remembered, so the
	// same message is not sent again. Default 24h.
	DedupeWindow time.Duration
	// DedupeEntries caps the messageIds remembered. Default 200,000.
	DedupeEntries int

	// CommitInterval is how often finished offsets are committed. Default 1s.
	CommitInterval time.Duration
	// ShutdownTimeout bounds the wait for in-flight batches when the router
	// stops; batches still out are abandoned and redelivered later.
	// Default 30s.
	ShutdownTimeout time.Duration

	// OnFinish, when set, is called each time an event is finished
	// (delivered, dead-lettered or skipped), on the router's own goroutine;
	// replay uses it for its progress bar.
	OnFinish func()

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	if c.Destination == "" {
		return c, errors.New("router: Destination is required")
	}
	if c.DisplayName == "" {
		c.DisplayName = c.Destination
	}
	if c.Group == "" {
		c.Group = "switchyard-" + c.Destination
	}
	if c.DLQTopic == "" {
		c.DLQTopic = "dlq"
	}
	defaults := []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"retry_window", &c.RetryWindow, 4 * time.Hour},
		{"backoff_min", &c.BackoffMin, time.Second},
		{"backoff_max", &c.BackoffMax, 5 * time.Minute},
		{"dedupe_window", &c.DedupeWindow, 24 * time.Hour},
		{"commit_interval", &c.CommitInterval, time.Second},
		{"shutdown_timeout", &c.ShutdownTimeout, 30 * time.Second},
	}
	for _, d := range defaults {
		if *d.value < 0 {
			return c, fmt.Errorf("destinations.%s.%s: must not be negative", c.Destination, d.name)
		}
		if *d.value == 0 {
			*d.value = d.def
		}
	}
	if c.BackoffMax < c.BackoffMin {
		return c, fmt.Errorf("destinations.%s.backoff_max: must be at least backoff_min", c.Destination)
	}
	if c.MaxPending < 0 || c.DedupeEntries < 0 {
		return c, fmt.Errorf("destinations.%s: max_pending and dedupe_entries must not be negative", c.Destination)
	}
	if c.MaxPending == 0 {
		c.MaxPending = 10_000
	}
	if c.DedupeEntries == 0 {
		c.DedupeEntries = 200_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
