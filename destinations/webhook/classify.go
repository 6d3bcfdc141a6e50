package webhook

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchyard/switchyard/destinations"
)

const (
	// excerptBytes is how much of an answer's body an outcome keeps.
	excerptBytes = 512
	// drainBytes is how much more of a body is read so that the connection
	// can be reused; a longer body costs a new connection instead.
	drainBytes = 64 << 10
)

// classify turns an answer into an outcome, then drains and closes its body.
func (w *Webhook) classify(resp *http.Response) destinations.Outcome {
	excerpt := readExcerpt(resp.Body)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	_ = resp.Body.Close()

	code := resp.StatusCode
	o := destinations.Outcome{Status: code}
	switch {
	case code >= 200 && code <= 299:
		o.Result = destinations.Delivered
		return o
	case code == http.StatusTooManyRequests:
		o.Result, o.Class = destinations.Retry, "http_429"
	case code == http.StatusRequestTimeout, code == http.StatusLocked:
		o.Result, o.Class = destinations.Retry, "http_4xx"
	case code == http.StatusNotImplemented:
		o.Result, o.Class = destinations.DeadLetter, "http_5xx"
	case code >= 500 && code <= 599:
		o.Result, o.Class = destinations.Retry, "http_5xx"
	case code >= 400 && code <= 499:
		o.Result, o.Class = destinations.DeadLetter, "http_4xx"
	case code >= 300 && code <= 399:
		// Redirects reach here when the client does not follow them.
		o.Result, o.Class = destinations.DeadLetter, "http_3xx"
	default:
		o.Result, o.Class = destinations.DeadLetter, "http_other"
	}
	if o.Result == destinations.Retry {
		o.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), w.now())
	}
	o.Response = excerpt
	o.Reason = "webhook answered " + statusLine(code)
	if trimmed := strings.TrimSpace(excerpt); trimmed != "" {
		o.Reason += ": " + trimmed
	}
	return o
}

// statusLine is a status code and its text, such as "400 Bad Request".
func statusLine(code int) string {
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}

// readExcerpt reads up to excerptBytes of r as valid UTF-8: a rune cut at
// the end is dropped and invalid bytes become U+FFFD. A read error ends the
// excerpt early.
func readExcerpt(r io.Reader) string {
	buf := make([]byte, excerptBytes)
	n, _ := io.ReadFull(r, buf)
	buf = buf[:n]
	if n == excerptBytes {
		// Drop a final rune that continues past the excerpt.
		for cut := 1; cut <= utf8.UTFMax && cut <= n; cut++ {
			if utf8.RuneStart(buf[n-cut]) {
				if !utf8.FullRune(buf[n-cut:]) {
					buf = buf[:n-cut]
				}
				break
			}
		}
	}
	return strings.ToValidUTF8(string(buf), "\uFFFD")
}

// retryAfter reads a Retry-After header: a number of seconds or an HTTP date,
// taken relative to now. It returns 0 when the header is absent, malformed
// or in the past.
func retryAfter(header string, now time.Time) time.Duration {
	header = strings.TrimSpace(header)
	if header == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(header, 10, 64); err == nil {
		if seconds <= 0 {
			return 0
		}
		return time.Duration(min(seconds, maxRetryAfterSeconds)) * time.Second
	}
	at, err := http.ParseTime(header)
	if err != nil {
		return 0
	}
	return max(at.Sub(now), 0)
}

// maxRetryAfterSeconds keeps a huge Retry-After from overflowing a Duration.
const maxRetryAfterSeconds = int64(time.Duration(1<<63-1) / time.Second)
