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

	"github.com/switchyard/switchyard/internal/config"
)

// Config configures one router. Zero fields take the defaults given. The
// yaml keys are those of a destination in the config file.
type Config struct {
	// Destination is the destination instance's name: it names the consumer
	// group, the dead letters' stage and the metrics' label. Required.
	Destination string `yaml:"-"`
	// DisplayName is the destination's key in a message's integrations
	// object (case-sensitive). Default: Destination.
	DisplayName string `yaml:"display_name"`
	// Group is the consumer group. Default "switchyard-" + Destination.
	Group string `yaml:"group"`
	// DLQTopic receives dead letters. Default "dlq"; the config file sets it
	// with log.dlq_topic.
	DLQTopic string `yaml:"-"`

	// RetryWindow is how long an event keeps being retried before it is
	// dead-lettered. Default 4h.
	RetryWindow config.Duration `yaml:"retry_window"`
	// BackoffMin and BackoffMax bound the exponential backoff between
	// attempts (with ±50% jitter). Defaults 1s and 5m.
	BackoffMin config.Duration `yaml:"backoff_min"`
	BackoffMax config.Duration `yaml:"backoff_max"`

	// MaxPending caps the events fetched and not yet finished, which bounds
	// memory whatever the backlog: at the cap the router stops fetching.
	// Default 10,000.
	MaxPending int `yaml:"max_pending"`

	// DedupeWindow is how long a delivered messageId is remembered, so the
	// same message is not sent again. Default 24h.
	DedupeWindow config.Duration `yaml:"dedupe_window"`
	// DedupeEntries caps the messageIds remembered. Default 200,000.
	DedupeEntries int `yaml:"dedupe_entries"`

	// CommitInterval is how often finished offsets are committed. Default 1s.
	CommitInterval config.Duration `yaml:"commit_interval"`
	// ShutdownTimeout bounds the wait for in-flight batches when the router
	// stops; batches still out are abandoned and redelivered later.
	// Default 30s.
	ShutdownTimeout config.Duration `yaml:"shutdown_timeout"`

	// OnFinish, when set, is called each time an event is finished
	// (delivered, dead-lettered or skipped), on the router's own goroutine;
	// replay uses it for its progress bar.
	OnFinish func() `yaml:"-"`

	// Observer, when set, learns every outcome the router gives an event:
	// each attempt's result and each skip, on the router's own goroutine.
	Observer Observer `yaml:"-"`

	// Now is the clock. Default time.Now.
	Now func() time.Time `yaml:"-"`
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
		value *config.Duration
		def   config.Duration
	}{
		{"retry_window", &c.RetryWindow, config.Duration(4 * time.Hour)},
		{"backoff_min", &c.BackoffMin, config.Duration(time.Second)},
		{"backoff_max", &c.BackoffMax, config.Duration(5 * time.Minute)},
		{"dedupe_window", &c.DedupeWindow, config.Duration(24 * time.Hour)},
		{"commit_interval", &c.CommitInterval, config.Duration(time.Second)},
		{"shutdown_timeout", &c.ShutdownTimeout, config.Duration(30 * time.Second)},
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
