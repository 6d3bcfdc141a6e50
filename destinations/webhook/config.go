package webhook

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/config"
)

// Config is one webhook destination. Zero values take the defaults given on
// each field; negative values are errors. The yaml keys are those of a
// destination's webhook section in the config file.
type Config struct {
	// URL receives every request as a POST. Required; an absolute http or
	// https URL. Redirects are not followed: a 3xx answer dead-letters the
	// events, so configure the final URL.
	URL string `yaml:"url"`

	// Headers are added to every request, for example an Authorization
	// header. They may replace Content-Type and User-Agent; configuring
	// X-Switchyard-Attempt is an error. Their values are never logged.
	// Default none.
	Headers map[string]string `yaml:"headers"`

	// Batch selects the request shape. False (the default): one request per
	// event, whose body is the event's raw JSON. True: one request per
	// batch, whose body is a JSON array of the batch's raw events in order,
	// and whose answer decides the outcome of every event in it.
	Batch bool `yaml:"batch"`

	// MaxItems caps the events of one batch. In per-event mode a batch only
	// groups work, whose requests are sent Concurrency at a time. Default 100.
	MaxItems int `yaml:"max_items"`

	// MaxBytes caps the summed raw size of a batch's events; a single larger
	// event still goes alone. Default 1 MiB.
	MaxBytes int `yaml:"max_bytes"`

	// MaxWait is how long the first event of a batch waits for more before
	// the batch is sent anyway. Default 50ms.
	MaxWait config.Duration `yaml:"max_wait"`

	// MaxInFlight caps the batches being sent at once. Default 4.
	MaxInFlight int `yaml:"max_in_flight"`

	// Timeout bounds each request, from sending it to reading the answer's
	// excerpt. A request that runs out of time is retried. Default 10s.
	Timeout config.Duration `yaml:"timeout"`

	// Concurrency caps the requests sent at once within one batch in
	// per-event mode, each for a different user: the events of one user
	// are always sent one after another. Ignored when Batch is set.
	// Default 8.
	Concurrency int `yaml:"concurrency"`
}

// Defaults of Config.
const (
	DefaultMaxItems    = 100
	DefaultMaxBytes    = 1 << 20
	DefaultMaxWait     = 50 * time.Millisecond
	DefaultMaxInFlight = 4
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 8
)

// withDefaults validates the config and fills in the defaults. Errors name
// the key within the webhook settings, for example "url: must not be
// empty"; the caller adds where those settings sit in its config file.
func (c Config) withDefaults(name string) (Config, *url.URL, error) {
	key := func(k string) string { return k }
	if name == "" {
		return c, nil, fmt.Errorf("destinations: a webhook destination needs a name")
	}
	u, err := parseURL(c.URL)
	if err != nil {
		return c, nil, fmt.Errorf("%s: %w", key("url"), err)
	}
	if err := checkHeaders(c.Headers); err != nil {
		return c, nil, fmt.Errorf("%s: %w", key("headers"), err)
	}
	ints := []struct {
		key   string
		value *int
		def   int
	}{
		{"max_items", &c.MaxItems, DefaultMaxItems},
		{"max_bytes", &c.MaxBytes, DefaultMaxBytes},
		{"max_in_flight", &c.MaxInFlight, DefaultMaxInFlight},
		{"concurrency", &c.Concurrency, DefaultConcurrency},
	}
	for _, f := range ints {
		switch {
		case *f.value < 0:
			return c, nil, fmt.Errorf("%s: must not be negative, got %d", key(f.key), *f.value)
		case *f.value == 0:
			*f.value = f.def
		}
	}
	durations := []struct {
		key   string
		value *config.Duration
		def   time.Duration
	}{
		{"max_wait", &c.MaxWait, DefaultMaxWait},
		{"timeout", &c.Timeout, DefaultTimeout},
	}
	for _, f := range durations {
		switch {
		case *f.value < 0:
			return c, nil, fmt.Errorf("%s: must not be negative, got %s", key(f.key), *f.value)
		case *f.value == 0:
			*f.value = config.Duration(f.def)
		}
	}
	return c, u, nil
}

// parseURL accepts absolute http and https URLs with a host. Its errors do
// not repeat the URL, whose path or query may hold a secret.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("must not be empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("must be an http or https URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("must name a host")
	}
	return u, nil
}

// checkHeaders rejects header names that are not HTTP tokens and values
// that could split a request. Its errors name the header, never its value.
func checkHeaders(headers map[string]string) error {
	for name, value := range headers {
		if !isToken(name) {
			return fmt.Errorf("%q is not a valid header name", name)
		}
		if http.CanonicalHeaderKey(name) == attemptHeader {
			return fmt.Errorf("%s is set by the destination and cannot be configured", attemptHeader)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return fmt.Errorf("the value of %s must not contain line breaks or NUL", name)
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token, the syntax of header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}
