// Package ingest is the gateway: a Fiber app that speaks Segment's HTTP
// Tracking API, authenticates write keys, enforces size limits, merges batch
// envelopes, validates and enriches each message, and answers 200 only once
// every accepted message is durably in the log.
package ingest

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/config"
)

// Source is one sender of events: an app, a service or a website.
type Source struct {
	// Name appears on every message the source sends, as _switchyard.source.
	Name string `yaml:"name"`
	// WriteKeys authenticate the source. A key belongs to one source only.
	WriteKeys []string `yaml:"write_keys"`
}

// Route is one more route the gateway serves besides the Tracking API, such
// as a HubSpot source's webhook receiver or a page. Its handler gets the body
// as the gateway read it, within max_request_bytes.
type Route struct {
	// Method is the HTTP method, such as POST. Empty on a prefix route,
	// which takes every method and leaves refusing one to its handler.
	Method string
	// Path is the exact path, such as /hubspot/webhooks/crm-in; or, on a
	// prefix route, the path of a tree, such as /ui.
	Path string
	// Prefix serves Path and every path under it (Path + "/..."), without
	// the Tracking API's CORS headers: it is for pages a browser opens
	// from the gateway's own origin.
	Prefix  bool
	Handler http.Handler
}

// StreamRoute is a GET route whose answer is written as it happens, such as
// a stream of server-sent events: Fiber's body stream writer writes it,
// since a net/http handler behind Fiber's adaptor cannot flush. It is
// served without the Tracking API's CORS headers, and each write gets the
// gateway's write timeout anew, so a stream may outlast it.
type StreamRoute struct {
	// Path is the exact path, such as /ui/stream. A stream route is
	// matched before a prefix route that covers its path.
	Path string
	// Open reads what it needs from the request, which is gone once Open
	// returns, and decides the answer: a stream, or a refusal as an error
	// with its status (4xx or 5xx), which is answered with the error's
	// text.
	Open func(r *http.Request) (Stream, int, error)
}

// Stream is an opened stream: its response headers, and Run, which writes
// the body, calling w.Flush after each part that must reach the client now,
// and returns when it is done or a write or flush fails (the client went
// away, or a write took longer than the write timeout).
type Stream struct {
	Headers map[string]string
	Run     func(w *bufio.Writer) error
}

// Config is the gateway's configuration. Zero fields take the defaults given.
// The yaml keys are those of the gateway section of the config file;
// Sources and the topics are set by the sources and log sections.
type Config struct {
	// Sources and their write keys. At least one is required unless
	// Routes has a route.
	Sources []Source `yaml:"-"`
	// Routes are served besides the Tracking API, with the same listener,
	// limits and metrics endpoints. Set by the sources section and by the
	// command (the delivery page).
	Routes []Route `yaml:"-"`
	// StreamRoutes are served besides the Tracking API, on the same
	// listener. Set by the command (the delivery page's stream).
	StreamRoutes []StreamRoute `yaml:"-"`

	// MaxMessageBytes caps one message, and the whole body of a single-call
	// route, after decompression. Default 32 KiB (32768), as Segment documents.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxRequestBytes caps the decompressed body of a batch. Default 500 KiB
	// (512000).
	MaxRequestBytes int `yaml:"max_request_bytes"`
	// MaxBatchMessages caps the messages in one batch. Default 2500.
	MaxBatchMessages int `yaml:"max_batch_messages"`

	// DedupeWindow is how long a messageId is remembered per source: a message
	// seen again within it is acknowledged and not stored twice. Default 24h.
	DedupeWindow config.Duration `yaml:"dedupe_window"`
	// DedupeEntries caps how many messageIds are remembered, about 40 bytes
	// each (dedupe.BytesPerEntry), allocated at start; past it the oldest
	// are forgotten before the window ends. Default 1,000,000 (about 40 MB).
	DedupeEntries int `yaml:"dedupe_entries"`

	// CORSOrigins lists the origins browsers may send from. Default ["*"].
	CORSOrigins []string `yaml:"cors_origins"`
	// ProxyHeader, when set (for example X-Forwarded-For), names the header
	// that carries the client IP behind a load balancer. Default: the peer
	// address.
	ProxyHeader string `yaml:"proxy_header"`

	// EventsTopic receives accepted messages. Default "events".
	EventsTopic string `yaml:"-"`
	// DLQTopic receives messages refused inside an accepted batch. Default "dlq".
	DLQTopic string `yaml:"-"`

	// MaxInFlight caps requests waiting for the log at once; beyond it the
	// gateway sheds load with 429 and Retry-After. Default 2048.
	MaxInFlight int `yaml:"max_in_flight"`
	// PublishTimeout bounds the wait for the log; past it the request gets
	// 503 and Retry-After. Default 10s.
	PublishTimeout config.Duration `yaml:"publish_timeout"`

	// Now is the clock. Default time.Now.
	Now func() time.Time `yaml:"-"`

	// ReadyDetails, when set, adds its fields to /readyz's JSON body (for
	// example the states of the destinations a process also serves). They
	// do not change the status: the gateway is ready while the log takes
	// writes.
	ReadyDetails func() map[string]any `yaml:"-"`
}

func (c Config) withDefaults() Config {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 32 << 10
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 500 << 10
	}
	if c.MaxBatchMessages == 0 {
		c.MaxBatchMessages = 2500
	}
	if c.DedupeWindow == 0 {
		c.DedupeWindow = config.Duration(24 * time.Hour)
	}
	if c.DedupeEntries == 0 {
		c.DedupeEntries = 1_000_000
	}
	if len(c.CORSOrigins) == 0 {
		c.CORSOrigins = []string{"*"}
	}
	if c.EventsTopic == "" {
		c.EventsTopic = "events"
	}
	if c.DLQTopic == "" {
		c.DLQTopic = "dlq"
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 2048
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = config.Duration(10 * time.Second)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first problem with the configuration, naming its key
// in the config file.
func (c Config) Validate() error {
	return c.withDefaults().validate()
}

func (c Config) validate() error {
	if len(c.Sources) == 0 && len(c.Routes) == 0 {
		return errors.New("sources: at least one source is required: one with write keys, or a hubspot source")
	}
	served := make(map[string]bool)
	for _, r := range c.Routes {
		switch {
		case r.Prefix && r.Method != "":
			return fmt.Errorf("route %s: a prefix route takes every method; its method must be empty, not %q", r.Path, r.Method)
		case r.Prefix && (r.Path == "/" || strings.HasSuffix(r.Path, "/") || strings.ContainsAny(r.Path, ":*")):
			return fmt.Errorf("route %s: a prefix route's path names a tree, such as /ui: not /, no trailing slash, no parameters", r.Path)
		case !r.Prefix && (r.Method == "" || strings.ToUpper(r.Method) != r.Method):
			return fmt.Errorf("route %s: the method %q must be an upper-case HTTP method", r.Path, r.Method)
		case !strings.HasPrefix(r.Path, "/") || strings.HasPrefix(r.Path, "/v1/"):
			return fmt.Errorf("route %s: the path must start with / and not be under /v1/, the Tracking API's", r.Path)
		case r.Handler == nil:
			return fmt.Errorf("route %s %s: has no handler", r.Method, r.Path)
		case served[r.Method+" "+routePath(r.Path)]:
			return fmt.Errorf("route %s %s: is served twice", r.Method, r.Path)
		}
		served[r.Method+" "+routePath(r.Path)] = true
	}
	for _, r := range c.StreamRoutes {
		switch {
		case !strings.HasPrefix(r.Path, "/") || strings.HasPrefix(r.Path, "/v1/"):
			return fmt.Errorf("stream route %s: the path must start with / and not be under /v1/, the Tracking API's", r.Path)
		case r.Open == nil:
			return fmt.Errorf("stream route %s: has no Open", r.Path)
		case served[http.MethodGet+" "+routePath(r.Path)]:
			return fmt.Errorf("stream route %s: GET %s is served twice", r.Path, r.Path)
		}
		served[http.MethodGet+" "+routePath(r.Path)] = true
	}
	names := make(map[string]bool)
	keys := make(map[string]string)
	for i, s := range c.Sources {
		if s.Name == "" {
			return fmt.Errorf("sources[%d].name: must not be empty", i)
		}
		if names[s.Name] {
			return fmt.Errorf("sources[%d].name: %q is used twice", i, s.Name)
		}
		names[s.Name] = true
		if len(s.WriteKeys) == 0 {
			return fmt.Errorf("sources[%d].write_keys: source %q needs at least one write key", i, s.Name)
		}
		for j, k := range s.WriteKeys {
			if k == "" {
				return fmt.Errorf("sources[%d].write_keys[%d]: must not be empty", i, j)
			}
			if other, ok := keys[k]; ok {
				return fmt.Errorf("sources[%d].write_keys[%d]: the key is already used by source %q", i, j, other)
			}
			keys[k] = s.Name
		}
	}
	switch {
	case c.MaxMessageBytes < 0:
		return errors.New("gateway.max_message_bytes: must be positive")
	case c.MaxRequestBytes < c.MaxMessageBytes:
		return errors.New("gateway.max_request_bytes: must be at least max_message_bytes")
	case c.MaxBatchMessages < 0:
		return errors.New("gateway.max_batch_messages: must be positive")
	case c.DedupeWindow < 0:
		return errors.New("gateway.dedupe_window: must be positive")
	case c.DedupeEntries < 0:
		return errors.New("gateway.dedupe_entries: must be positive")
	case c.MaxInFlight < 0:
		return errors.New("gateway.max_in_flight: must be positive")
	case c.PublishTimeout < 0:
		return errors.New("gateway.publish_timeout: must be positive")
	case c.EventsTopic == c.DLQTopic:
		return errors.New("log.dlq_topic: must differ from log.events_topic")
	}
	return nil
}
