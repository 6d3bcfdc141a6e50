package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/internal/hubspot/ratelimit"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
	"github.com/switchyard/switchyard/internal/hubspot/signature"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
)

const (
	testSecret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
	testAppID  = 1160452
	otherToken = "someone-elses-app"
)

// harness runs a source against a sandbox on the embedded log.
type harness struct {
	t       *testing.T
	log     *embedded.Log
	sandbox *sandbox.Server
	hubspot *httptest.Server
	hook    *httptest.Server
	dir     *Directory
	metrics *Metrics
	cfg     Config
	proc    *Processor
	// journal is the sandbox journal position already posted.
	journal int
	// requests counts the sandbox's requests in flight.
	requests *requestCounter
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, nil, nil)
}

// newHarnessWith is newHarness with the sandbox's and the source's
// configuration changed by sb and src (either may be nil).
func newHarnessWith(t *testing.T, sb func(*sandbox.Config), src func(*Config)) *harness {
	t.Helper()
	log, err := embedded.Open(embedded.Config{Dir: t.TempDir(), Partitions: 2}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	sbCfg := sandbox.Config{AppID: testAppID, AppIDs: map[string]int64{otherToken: 999}}
	if sb != nil {
		sb(&sbCfg)
	}
	sbox := sandbox.New(sbCfg)
	requests := &requestCounter{now: map[string]int{}, peak: map[string]int{}}
	hs := httptest.NewServer(requests.wrap(sbox))
	t.Cleanup(hs.Close)
	budget, err := ratelimit.NewBudget(ratelimit.Free, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := api.New(api.Config{BaseURL: hs.URL, Token: "our-token"}, budget, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Name: "crm-in", Token: "our-token", URL: hs.URL, ClientSecret: testSecret,
		Contacts:  Mapping{Fields: map[string]string{"firstname": "first_name", "lifecyclestage": "lifecycle_stage"}},
		Companies: Mapping{Fields: map[string]string{"name": "name"}},
		Deals:     Mapping{Fields: map[string]string{"dealstage": "deal_stage", "amount": "deal_amount"}},
		BatchWait: config.Duration(300 * time.Millisecond),
		DataDir:   t.TempDir(),
	}
	if src != nil {
		src(&cfg)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := OpenDirectory(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := NewReceiver(cfg, log, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	proc, err := NewProcessor(cfg, log, client, dir, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(rcv.Path(), rcv)
	hook := httptest.NewServer(mux)
	t.Cleanup(hook.Close)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := dir.Run(ctx, log); err != nil {
			t.Errorf("directory: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		sub, err := log.Subscribe(ctx, queue.SubscribeConfig{Group: cfg.Group(), Topic: "hubspot-notifications"})
		if err != nil {
			t.Errorf("subscribing: %v", err)
			return
		}
		defer sub.Close()
		if err := proc.Run(ctx, sub); err != nil {
			t.Errorf("processor: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		dir.Close()
	})
	return &harness{t: t, log: log, sandbox: sbox, hubspot: hs, hook: hook, dir: dir, metrics: m, cfg: cfg.WithDefaults(), proc: proc, requests: requests}
}

// requestCounter counts the requests to the sandbox in flight, per method
// and path.
type requestCounter struct {
	mu   sync.Mutex
	now  map[string]int
	peak map[string]int
	// moves are the requests' starts (+1) and ends (-1), in order.
	moves []requestMove
}

// requestMove is a request's start (+1) or end (-1).
type requestMove struct {
	request string
	delta   int
}

func (c *requestCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		request := r.Method + " " + path
		c.mu.Lock()
		c.now[path]++
		c.peak[path] = max(c.peak[path], c.now[path])
		c.moves = append(c.moves, requestMove{request, 1})
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.now[path]--
			c.moves = append(c.moves, requestMove{request, -1})
			c.mu.Unlock()
		}()
		next.ServeHTTP(w, r)
	})
}

// made counts the requests (method and path) made.
func (c *requestCounter) made(request string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.moves {
		if m.request == request && m.delta > 0 {
			n++
		}
	}
	return n
}

// peakTogether is the most requests (method and path) of requests that
// were in flight at once.
func (c *requestCounter) peakTogether(requests ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	now, peak := 0, 0
	for _, m := range c.moves {
		if slices.Contains(requests, m.request) {
			now += m.delta
			peak = max(peak, now)
		}
	}
	return peak
}

// peakInFlight is the most requests to path that were in flight at once.
func (c *requestCounter) peakInFlight(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak[path]
}

// appIdentify appends an identify as the app's gateway would.
func (h *harness) appIdentify(userID, email string) {
	h.t.Helper()
	v := fmt.Sprintf(`{"type":"identify","userId":%q,"messageId":"m-%s","traits":{"email":%q},"_switchyard":{"source":"web"}}`, userID, userID, email)
	if err := h.log.Publish(context.Background(), queue.Message{Topic: "events", Key: []byte(userID), Value: []byte(v)}); err != nil {
		h.t.Fatal(err)
	}
	waitFor(h.t, "the directory learns "+email, func() bool { u, ok := h.dir.UserByEmail(email); return ok && u == userID })
}

// call makes a request to the sandbox and returns its answer's body.
func (h *harness) call(method, path, token, body string) gjson.Result {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.hubspot.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode >= 300 {
		h.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b.String())
	}
	return gjson.Parse(b.String())
}

// edit changes or creates a record as a person in HubSpot's UI and
// returns its id.
func (h *harness) edit(path, body string) string {
	return h.call(http.MethodPost, "/_sandbox/edit/"+path, "", body).Get("id").String()
}

// pending returns the notifications HubSpot would send for the journal's
// entries since the last call.
func (h *harness) pending() []byte {
	h.t.Helper()
	changes, next := h.sandbox.Changes(h.journal)
	h.journal = next
	var out []map[string]any
	singular := map[string]string{"contacts": "contact", "companies": "company", "deals": "deal"}
	for _, c := range changes {
		n := map[string]any{
			"eventId": c.Seq + 1, "subscriptionId": 7, "portalId": 12345678, "appId": testAppID,
			"occurredAt": c.OccurredAt.UnixMilli(), "subscriptionType": singular[c.ObjectType] + "." + string(c.Kind),
			"attemptNumber": 0, "objectId": c.ObjectID, "changeSource": c.ChangeSource, "sourceId": c.SourceID,
		}
		switch c.Kind {
		case sandbox.ChangePropertyChange:
			n["propertyName"], n["propertyValue"] = c.Property, c.Value
		case sandbox.ChangeMerge:
			n["primaryObjectId"], n["mergedObjectIds"], n["newObjectId"] = c.PrimaryObjectID, c.MergedObjectIDs, c.NewObjectID
		case sandbox.ChangeAssociationChange:
			n["associationType"], n["toObjectId"], n["associationRemoved"] = c.AssociationType, c.ToObjectID, c.AssociationRemoved
		}
		out = append(out, n)
	}
	b, _ := json.Marshal(out)
	return b
}

// post sends body to the receiver signed with secret at ts and returns the
// status.
func (h *harness) post(body []byte, secret string, ts time.Time) int {
	h.t.Helper()
	uri := h.hook.URL + h.cfg.WebhookPath()
	req, _ := http.NewRequest(http.MethodPost, uri, bytes.NewReader(body))
	for k, v := range signature.Headers(secret, http.MethodPost, uri, body, ts) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// deliver posts what is pending, signed correctly, and wants 200.
func (h *harness) deliver() []byte {
	h.t.Helper()
	body := h.pending()
	if status := h.post(body, testSecret, time.Now()); status != http.StatusOK {
		h.t.Fatalf("the receiver answered %d", status)
	}
	return body
}

// emitted returns the calls the source appended to events.
func (h *harness) emitted() []gjson.Result {
	h.t.Helper()
	return appended(h.t, h.log, func(gjson.Result) bool { return true })
}

// appended returns the calls of source crm-in in the events topic of log,
// in the log's order, that keep holds for.
func appended(t testing.TB, log queue.Log, keep func(gjson.Result) bool) []gjson.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := queue.ReadRange(ctx, log, "events", queue.Position{Kind: queue.First}, queue.Position{Kind: queue.Last})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []gjson.Result
	for {
		m, err := r.Fetch(ctx)
		if err != nil {
			break
		}
		if v := gjson.ParseBytes(m.Value); v.Get("_switchyard.source").String() == "crm-in" && keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// notificationsStored counts the messages of the notifications topic.
func (h *harness) notificationsStored() int64 {
	h.t.Helper()
	offs, err := h.log.Offsets(context.Background(), "hubspot-notifications", queue.Position{Kind: queue.Last})
	if err != nil {
		h.t.Fatal(err)
	}
	var n int64
	for _, o := range offs {
		n += o
	}
	return n
}

// counted returns the processor's count of outcome for objectType.
func (h *harness) counted(objectType, outcome string) float64 {
	return testutil.ToFloat64(h.metrics.changes.WithLabelValues("crm-in", objectType, outcome))
}

// waitCounted waits until the count of outcome for objectType reaches n.
func (h *harness) waitCounted(objectType, outcome string, n float64) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("%s %s counts %v", objectType, outcome, n), func() bool { return h.counted(objectType, outcome) >= n })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
