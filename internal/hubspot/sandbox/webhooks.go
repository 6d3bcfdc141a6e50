package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/switchyard/switchyard/internal/hubspot/signature"
)

// The webhook facts below are from §1 of hubspot-source.md: [O24-wh] the
// 2024 webhooks guide, [O24-err] its error-handling page, [O24-val] the
// request-validation guide.

// MaxWebhookBatch is the most notifications one webhook request carries:
// "Each request can contain up to 100 events" ([O24-wh], §1.4).
const MaxWebhookBatch = 100

// WebhookTimeout is how long HubSpot waits for a webhook answer: a request
// whose answer takes longer than five seconds failed ([O24-err], §1.5).
const WebhookTimeout = 5 * time.Second

// DefaultWebhookRetryDelays is the sandbox's retry schedule: the delay
// before each retry of a failed notification. HubSpot retries "up to 10
// times", "spread out over the next 24 hours" with an unpublished schedule
// ([O24-wh], [O24-err], §1.5); the sandbox keeps the ten retries and
// shortens the day to about four minutes.
var DefaultWebhookRetryDelays = []time.Duration{
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
}

// StaleSignatureAge is how old the timestamp of a request signed with the
// stale-timestamp switch is: over the 5 minutes after which a receiver must
// refuse it ([O24-val], §1.7).
const StaleSignatureAge = 10 * time.Minute

// unsubscribable are the properties HubSpot refuses propertyChange
// subscriptions for ([O24-wh], §1.2).
var unsubscribable = []string{"hs_lastmodifieddate", "num_unique_conversion_events"}

// WebhookConfig configures the webhooks the sandbox sends, as HubSpot sends
// them to an app's target URL.
type WebhookConfig struct {
	// TargetURL is the app's webhook target URL: where notifications are
	// POSTed, and the URI the v3 signature covers. Required.
	TargetURL string
	// ClientSecret is the app's client secret, which signs every request.
	// Required.
	ClientSecret string
	// AppID is the receiving app's id, the notifications' appId. Default
	// the sandbox's Config.AppID.
	AppID int64
	// MaxConcurrentRequests is the most requests in flight at a time
	// ([O24-wh]: HubSpot's concurrency limit of 10). Default 10.
	MaxConcurrentRequests int
	// BatchSize is the most notifications per request, 1 to 100. Default
	// 100.
	BatchSize int
	// Timeout is how long a request may take before it fails. Default 5 s.
	Timeout time.Duration
	// RetryDelays are the delays before each retry of a failed
	// notification, which goes out again with attemptNumber one higher; a
	// notification whose last retry fails is dropped. Each delay gets up to
	// 10% of random extra, as HubSpot randomizes its retries. Nil means
	// DefaultWebhookRetryDelays; an empty, non-nil slice means no retries.
	RetryDelays []time.Duration
	// Properties lists, by object type ("contacts", "companies",
	// "deals"), the properties subscribed to with propertyChange. A type
	// missing from a non-nil map gets no propertyChange notifications. Nil
	// subscribes every property but hs_lastmodifieddate and
	// num_unique_conversion_events, which HubSpot does not offer.
	Properties map[string][]string
	// From is the change journal's position to start at (see Changes).
	// Default 0: every change the sandbox has recorded.
	From int
}

// WebhookSwitches make the webhooks misbehave as HubSpot may, so that a
// receiver's handling can be tested. The zero value turns them all off.
type WebhookSwitches struct {
	// Shuffle sends the notifications waiting to go out in random order,
	// within and across requests: HubSpot "does not guarantee that you'll
	// receive these notifications in the order they occurred" ([O24-wh],
	// §1.6).
	Shuffle bool `json:"shuffle"`
	// DuplicateRatio (0 to 1) of the notifications are sent a second time,
	// identical: HubSpot "will send you the same notification multiple
	// times" ([O24-wh], §1.6). Spread evenly: 0.5 duplicates every other
	// one.
	DuplicateRatio float64 `json:"duplicateRatio"`
	// DelayRatio (0 to 1) of the notifications wait Delay before they go
	// out, so later changes overtake them. Spread evenly.
	DelayRatio float64       `json:"delayRatio"`
	Delay      time.Duration `json:"-"`
	// StaleTimestamp signs requests with a timestamp StaleSignatureAge in
	// the past, which a receiver must refuse ([O24-val], §1.7).
	StaleTimestamp bool `json:"staleTimestamp"`
	// WrongSecret signs requests with a secret other than the client
	// secret, which a receiver must refuse.
	WrongSecret bool `json:"wrongSecret"`
}

// WebhookStats counts the webhook requests and notifications sent since the
// sandbox started or was reset.
type WebhookStats struct {
	// Requests sent, and of them those answered 2xx within the timeout and
	// those that failed (timeout, connection error, any other status).
	Requests  int `json:"requests"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Delivered counts notifications in succeeded requests, duplicates
	// included; Dropped counts notifications whose last retry failed.
	Delivered int `json:"delivered"`
	Dropped   int `json:"dropped"`
	// LastError says why the last failed request failed.
	LastError string `json:"lastError,omitempty"`
}

// SetWebhookSwitches sets the webhook switches, replacing the previous ones.
// Reset turns them off.
func (s *Server) SetWebhookSwitches(sw WebhookSwitches) {
	sw.DuplicateRatio = min(max(sw.DuplicateRatio, 0), 1)
	sw.DelayRatio = min(max(sw.DelayRatio, 0), 1)
	sw.Delay = max(sw.Delay, 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhookSwitches = sw
}

// WebhookStats returns the webhook counters.
func (s *Server) WebhookStats() WebhookStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhookStats
}

// Validate reports a webhook configuration SendWebhooks would refuse.
func (c WebhookConfig) Validate() error {
	u, err := url.Parse(c.TargetURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook target URL %q: want an absolute http or https URL", c.TargetURL)
	}
	if c.ClientSecret == "" {
		return fmt.Errorf("webhooks need the app's client secret to sign with")
	}
	if c.MaxConcurrentRequests < 0 || c.Timeout < 0 || c.From < 0 {
		return fmt.Errorf("webhook concurrency, timeout and journal position must not be negative")
	}
	if c.BatchSize < 0 || c.BatchSize > MaxWebhookBatch {
		return fmt.Errorf("webhook batch size %d: want 1 to %d", c.BatchSize, MaxWebhookBatch)
	}
	for _, d := range c.RetryDelays {
		if d < 0 {
			return fmt.Errorf("webhook retry delay %s is negative", d)
		}
	}
	for typ, props := range c.Properties {
		if _, ok := objectTypeIDs[typ]; !ok {
			return fmt.Errorf("webhook properties: object type %q: want contacts, companies or deals", typ)
		}
		for _, p := range props {
			if slices.Contains(unsubscribable, p) {
				return fmt.Errorf("webhook properties: HubSpot offers no propertyChange subscription for %s", p)
			}
		}
	}
	return nil
}

// SendWebhooks sends signed webhooks for the changes in the change journal,
// from cfg.From on, to cfg.TargetURL, as HubSpot sends them to an app
// subscribed to creation, propertyChange, deletion, merge,
// associationChange and privacyDeletion of contacts, companies and deals
// (§1.2, §1.3 of hubspot-source.md):
//
//   - each request is a JSON array of at most cfg.BatchSize notifications,
//     signed with the v1 and v3 headers of signature.Headers;
//   - at most cfg.MaxConcurrentRequests requests are in flight;
//   - a request fails on a timeout, a connection error or a status other
//     than 2xx, and its notifications are retried by cfg.RetryDelays, each
//     with attemptNumber one higher;
//   - the switches of SetWebhookSwitches apply as the notifications go out.
//
// It runs until ctx ends, and returns nil once the requests in flight have
// ended; it returns an error at once for a configuration Validate refuses.
func (s *Server) SendWebhooks(ctx context.Context, cfg WebhookConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.AppID == 0 {
		cfg.AppID = s.cfg.AppID
	}
	if cfg.MaxConcurrentRequests == 0 {
		cfg.MaxConcurrentRequests = 10
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = MaxWebhookBatch
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = WebhookTimeout
	}
	if cfg.RetryDelays == nil {
		cfg.RetryDelays = DefaultWebhookRetryDelays
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.MaxConcurrentRequests
	w := &webhookSender{
		s:      s,
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.Timeout, Transport: transport},
		subs:   map[string]int64{},
	}
	defer transport.CloseIdleConnections()
	return w.run(ctx)
}

// webhookSender is one SendWebhooks run. Its fields are used by run's
// goroutine only.
type webhookSender struct {
	s      *Server
	cfg    WebhookConfig
	client *http.Client
	// subs are the subscription ids, by subscription type and property.
	subs map[string]int64
	// queue holds the notifications waiting to go out, oldest first.
	queue []notification
	// duplicateCredit and delayCredit spread the switches' ratios evenly.
	duplicateCredit, delayCredit float64
}

// notification is one notification waiting to go out.
type notification struct {
	change           Change
	subscriptionType string
	subscriptionID   int64
	attempt          int
	ready            time.Time
}

// sent is a finished request: its notifications and why it failed (nil for
// success).
type sent struct {
	batch []notification
	err   error
}

func (w *webhookSender) run(ctx context.Context) error {
	pos := w.cfg.From
	results := make(chan sent)
	inFlight := 0
	for {
		added := w.s.ChangesAdded()
		changes, next := w.s.Changes(pos)
		pos = next
		if len(changes) > 0 {
			sw := w.switches()
			now := time.Now()
			for _, c := range changes {
				w.enqueue(c, sw, now)
			}
		}
		for inFlight < w.cfg.MaxConcurrentRequests {
			batch := w.take(time.Now())
			if batch == nil {
				break
			}
			inFlight++
			go func() { results <- sent{batch, w.post(ctx, batch)} }()
		}

		var wake <-chan time.Time
		var timer *time.Timer
		if at, ok := w.nextReady(); ok && inFlight < w.cfg.MaxConcurrentRequests {
			timer = time.NewTimer(time.Until(at))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			for ; inFlight > 0; inFlight-- {
				<-results
			}
			return nil
		case <-added:
		case <-wake:
		case r := <-results:
			inFlight--
			w.finish(r, time.Now())
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (w *webhookSender) switches() WebhookSwitches {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.webhookSwitches
}

// enqueue queues the notification of a change, if the app is subscribed to
// it, with the duplicate and delay switches applied.
func (w *webhookSender) enqueue(c Change, sw WebhookSwitches, now time.Time) {
	typ := singularLower(c.ObjectType) + "." + string(c.Kind)
	if c.Kind == ChangePropertyChange && !w.subscribed(c.ObjectType, c.Property) {
		return
	}
	n := notification{change: c, subscriptionType: typ, subscriptionID: w.subscriptionID(typ, c.Property), ready: now}
	if w.delayCredit += sw.DelayRatio; w.delayCredit >= 1 {
		w.delayCredit--
		n.ready = now.Add(sw.Delay)
	}
	w.queue = append(w.queue, n)
	if w.duplicateCredit += sw.DuplicateRatio; w.duplicateCredit >= 1 {
		w.duplicateCredit--
		w.queue = append(w.queue, n)
	}
}

// subscribed reports whether the app has a propertyChange subscription for
// the property of an object type.
func (w *webhookSender) subscribed(objectType, property string) bool {
	if slices.Contains(unsubscribable, property) {
		return false
	}
	if w.cfg.Properties == nil {
		return true
	}
	return slices.Contains(w.cfg.Properties[objectType], property)
}

// subscriptionID returns the id of the subscription to typ (and, for
// propertyChange, property), numbering them as they are first used.
func (w *webhookSender) subscriptionID(typ, property string) int64 {
	key := typ + " " + property
	if id, ok := w.subs[key]; ok {
		return id
	}
	id := int64(len(w.subs) + 1)
	w.subs[key] = id
	return id
}

// take removes from the queue and returns up to BatchSize notifications
// ready at now: the oldest, or random ones with the shuffle switch. Nil
// when none is ready.
func (w *webhookSender) take(now time.Time) []notification {
	var ready []int
	for i, n := range w.queue {
		if !n.ready.After(now) {
			ready = append(ready, i)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	if w.switches().Shuffle {
		rand.Shuffle(len(ready), func(i, j int) { ready[i], ready[j] = ready[j], ready[i] })
	}
	ready = ready[:min(len(ready), w.cfg.BatchSize)]
	batch := make([]notification, len(ready))
	taken := make(map[int]bool, len(ready))
	for i, at := range ready {
		batch[i] = w.queue[at]
		taken[at] = true
	}
	rest := w.queue[:0]
	for i, n := range w.queue {
		if !taken[i] {
			rest = append(rest, n)
		}
	}
	clear(w.queue[len(rest):])
	w.queue = rest
	return batch
}

// nextReady returns when the next queued notification is ready.
func (w *webhookSender) nextReady() (time.Time, bool) {
	var at time.Time
	for _, n := range w.queue {
		if at.IsZero() || n.ready.Before(at) {
			at = n.ready
		}
	}
	return at, !at.IsZero()
}

// finish counts a finished request and queues a failed one's notifications
// for their next attempt.
func (w *webhookSender) finish(r sent, now time.Time) {
	var dropped int
	if r.err != nil {
		for _, n := range r.batch {
			if n.attempt >= len(w.cfg.RetryDelays) {
				dropped++
				continue
			}
			delay := w.cfg.RetryDelays[n.attempt]
			n.attempt++
			n.ready = now.Add(delay + time.Duration(rand.Float64()*0.1*float64(delay)))
			w.queue = append(w.queue, n)
		}
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	st := &w.s.webhookStats
	if r.err != nil {
		st.Failed++
		st.Dropped += dropped
		st.LastError = r.err.Error()
		return
	}
	st.Succeeded++
	st.Delivered += len(r.batch)
}

// post sends one request and reports why it failed, nil for a 2xx answer.
func (w *webhookSender) post(ctx context.Context, batch []notification) error {
	body, err := json.Marshal(w.bodyOf(batch))
	if err != nil {
		return err
	}
	sw := w.switches()
	secret, ts := w.cfg.ClientSecret, time.Now()
	if sw.WrongSecret {
		secret = "not-" + secret
	}
	if sw.StaleTimestamp {
		ts = ts.Add(-StaleSignatureAge)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.TargetURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range signature.Headers(secret, http.MethodPost, w.cfg.TargetURL, body, ts) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	w.s.mu.Lock()
	w.s.webhookStats.Requests++
	w.s.mu.Unlock()
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: status %d", w.cfg.TargetURL, resp.StatusCode)
	}
	return nil
}

// bodyOf is a request's body: the batch's notifications with the fields of
// §1.3 of hubspot-source.md ([O24-wh], [O24-val]'s example for
// changeFlag, [C-prismatic] for sourceId).
func (w *webhookSender) bodyOf(batch []notification) []map[string]any {
	out := make([]map[string]any, len(batch))
	for i, n := range batch {
		c := n.change
		m := map[string]any{
			"eventId":          int64(c.Seq) + 1,
			"subscriptionId":   n.subscriptionID,
			"portalId":         w.s.cfg.HubID,
			"appId":            w.cfg.AppID,
			"occurredAt":       c.OccurredAt.UnixMilli(),
			"subscriptionType": n.subscriptionType,
			"attemptNumber":    n.attempt,
			"objectId":         c.ObjectID,
			"changeSource":     c.ChangeSource,
			"sourceId":         c.SourceID,
		}
		switch c.Kind {
		case ChangeCreation:
			m["changeFlag"] = "NEW"
		case ChangePropertyChange:
			m["propertyName"] = c.Property
			m["propertyValue"] = c.Value
		case ChangeMerge:
			m["primaryObjectId"] = c.PrimaryObjectID
			m["mergedObjectIds"] = c.MergedObjectIDs
			m["newObjectId"] = c.NewObjectID
			m["numberOfPropertiesMoved"] = c.NumberOfPropertiesMoved
		case ChangeAssociationChange:
			m["associationType"] = c.AssociationType
			m["fromObjectId"] = c.ObjectID
			m["toObjectId"] = c.ToObjectID
			m["associationRemoved"] = c.AssociationRemoved
			m["isPrimaryAssociation"] = c.IsPrimaryAssociation
		}
		out[i] = m
	}
	return out
}

// handleCtlWebhooks is GET /_sandbox/webhooks: the webhook counters and
// switches.
func (s *Server) handleCtlWebhooks(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	stats, sw := s.webhookStats, s.webhookSwitches
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"stats": stats, "switches": webhookSwitchesJSON{sw, sw.Delay.Milliseconds()}})
}

// webhookSwitchesJSON is WebhookSwitches with Delay in milliseconds.
type webhookSwitchesJSON struct {
	WebhookSwitches
	DelayMS int64 `json:"delayMs"`
}

// handleCtlWebhookSwitches is POST /_sandbox/webhooks/switches with
// {"shuffle":true,"duplicateRatio":0.5,"delayRatio":0.5,"delayMs":2000,
// "staleTimestamp":true,"wrongSecret":true}: replaces the webhook switches;
// {} turns them off.
func (s *Server) handleCtlWebhookSwitches(w http.ResponseWriter, r *http.Request) {
	var body webhookSwitchesJSON
	if !decode(w, r, &body) {
		return
	}
	if body.DuplicateRatio < 0 || body.DuplicateRatio > 1 || body.DelayRatio < 0 || body.DelayRatio > 1 || body.DelayMS < 0 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "duplicateRatio and delayRatio must be 0 to 1, delayMs not negative", nil)
		return
	}
	sw := body.WebhookSwitches
	sw.Delay = time.Duration(body.DelayMS) * time.Millisecond
	s.SetWebhookSwitches(sw)
	w.WriteHeader(http.StatusNoContent)
}
