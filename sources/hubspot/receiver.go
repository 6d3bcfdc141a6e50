package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/hubspot/signature"
	"github.com/switchyard/switchyard/queue"
)

// maxWebhookBytes caps a webhook body: HubSpot sends at most 100
// notifications of well under 1 KiB each.
const maxWebhookBytes = 1 << 20

// publishTimeout keeps the answer within HubSpot's 5 seconds: past it the
// request gets 503 and HubSpot retries.
const publishTimeout = 4 * time.Second

// Receiver serves POST /hubspot/webhooks/{source}: it verifies HubSpot's
// signature, then appends every notification of the array to the
// notifications topic and answers 200 only once they are all durable.
type Receiver struct {
	cfg     Config
	log     queue.Log
	metrics *Metrics
	logger  *zap.Logger
}

// NewReceiver returns the receiver of the source cfg, appending to log.
func NewReceiver(cfg Config, log queue.Log, m *Metrics, logger *zap.Logger) (*Receiver, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Receiver{cfg: cfg, log: log, metrics: m, logger: logger.With(zap.String("source", cfg.Name))}, nil
}

// Path is the path the receiver serves.
func (r *Receiver) Path() string { return r.cfg.WebhookPath() }

// ServeHTTP answers one webhook request: 401 for a forged, stale or
// unsigned one (nothing stored), 400 for a body that is not a JSON array of
// notifications, 503 when the log cannot take them, else 200 once every
// notification is in the log.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.answer(w, http.StatusMethodNotAllowed, "", "method_not_allowed", req.Method+" is not served here; HubSpot posts")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxWebhookBytes))
	if err != nil {
		r.answer(w, http.StatusBadRequest, "invalid", "invalid_body", "reading the body: "+err.Error())
		return
	}
	err = signature.Verify(r.cfg.ClientSecret, signature.Request{
		Method: req.Method, URI: r.signedURI(req), Header: req.Header, Body: body,
	}, r.cfg.Now())
	if err != nil {
		r.metrics.refused.WithLabelValues(r.cfg.Name, refusalReason(err)).Inc()
		r.logger.Warn("refused a HubSpot webhook", zap.String("uri", r.signedURI(req)), zap.Error(err))
		r.answer(w, http.StatusUnauthorized, "unauthorized", "unauthorized", "the request's HubSpot signature is missing, wrong or stale")
		return
	}
	msgs, err := r.messages(body)
	if err != nil {
		r.answer(w, http.StatusBadRequest, "invalid", "invalid_json", err.Error())
		return
	}
	if len(msgs) > 0 {
		ctx, cancel := context.WithTimeout(req.Context(), publishTimeout)
		err := r.log.Publish(ctx, msgs...)
		cancel()
		if err != nil {
			r.logger.Warn("writing HubSpot notifications to the log", zap.Int("notifications", len(msgs)), zap.Error(err))
			w.Header().Set("Retry-After", "5")
			r.answer(w, http.StatusServiceUnavailable, "unavailable", "unavailable", "the log cannot take writes now; retry later")
			return
		}
	}
	r.metrics.notifications.WithLabelValues(r.cfg.Name).Add(float64(len(msgs)))
	r.answer(w, http.StatusOK, "accepted", "", "")
}

// signedURI is the URL HubSpot signed: the configured public URL, else the
// forwarded scheme and host when trusted, else the request's own, followed
// by the path and query as requested.
func (r *Receiver) signedURI(req *http.Request) string {
	path := req.RequestURI
	if path == "" || !strings.HasPrefix(path, "/") {
		path = req.URL.RequestURI()
	}
	if r.cfg.PublicURL != "" {
		return strings.TrimRight(r.cfg.PublicURL, "/") + path
	}
	scheme, host := "http", req.Host
	if req.TLS != nil {
		scheme = "https"
	}
	if r.cfg.TrustForwardedHeaders {
		if p := firstValue(req.Header.Get("X-Forwarded-Proto")); p != "" {
			scheme = p
		}
		if h := firstValue(req.Header.Get("X-Forwarded-Host")); h != "" {
			host = h
		}
	}
	return scheme + "://" + host + path
}

// firstValue is the first of a header's comma-separated values: the one the
// proxy nearest the client set.
func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// refusalReason names a signature error for the refused metric.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, signature.ErrUnsigned):
		return "unsigned"
	case errors.Is(err, signature.ErrStale):
		return "stale"
	case errors.Is(err, signature.ErrFuture):
		return "future"
	case errors.Is(err, signature.ErrMismatch):
		return "mismatch"
	default:
		return "malformed"
	}
}

// messages turns the body's notifications into messages of the
// notifications topic, keyed by objectType:objectId, each with
// "_switchyard":{"source":NAME} added. Notifications of other object types
// than contacts, companies and deals are left out.
func (r *Receiver) messages(body []byte) ([]queue.Message, error) {
	if !gjson.ValidBytes(body) {
		return nil, errors.New("the body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsArray() {
		return nil, errors.New("the body must be a JSON array of notifications")
	}
	items := root.Array()
	msgs := make([]queue.Message, 0, len(items))
	for i, item := range items {
		n, err := parseNotification(item)
		if err != nil {
			return nil, fmt.Errorf("notification %d: %w", i, err)
		}
		if n.ObjectType == "" {
			continue
		}
		value, err := withSource(item.Raw, r.cfg.Name)
		if err != nil {
			return nil, fmt.Errorf("notification %d: %w", i, err)
		}
		msgs = append(msgs, queue.Message{Topic: r.cfg.NotificationsTopic, Key: []byte(n.Key()), Value: value})
	}
	return msgs, nil
}

// withSource adds "_switchyard":{"source":name} to a notification object.
func withSource(raw, name string) ([]byte, error) {
	tag, err := json.Marshal(map[string]any{"source": name})
	if err != nil {
		return nil, err
	}
	raw = strings.TrimSpace(raw)
	inner := strings.TrimSpace(raw[1 : len(raw)-1])
	var b bytes.Buffer
	b.WriteString("{")
	if inner != "" {
		b.WriteString(inner)
		b.WriteString(",")
	}
	b.WriteString(`"_switchyard":`)
	b.Write(tag)
	b.WriteString("}")
	return b.Bytes(), nil
}

// answer writes the receiver's JSON answer and counts it.
func (r *Receiver) answer(w http.ResponseWriter, status int, result, code, message string) {
	if result != "" {
		r.metrics.requests.WithLabelValues(r.cfg.Name, result).Inc()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusOK {
		io.WriteString(w, `{"success":true}`)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"success": false, "code": code, "message": message, "error": message}) //nolint:errcheck // the client went away
}
