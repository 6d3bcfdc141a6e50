package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchyard/switchyard/internal/config"

	"go.uber.org/zap/zaptest"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
	"github.com/switchyard/switchyard/schemas"
)

// reply is one scripted answer of a scriptServer.
type reply struct {
	status int
	header map[string]string
	body   string
}

// request is one request a scriptServer received.
type request struct {
	header http.Header
	body   string
}

// scriptServer answers requests with its replies in order, then 200, and
// records every request.
type scriptServer struct {
	*httptest.Server
	mu       sync.Mutex
	replies  []reply
	requests []request
}

func newScriptServer(t *testing.T, replies ...reply) *scriptServer {
	t.Helper()
	s := &scriptServer{replies: replies}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, request{header: r.Header.Clone(), body: string(body)})
		next := reply{status: http.StatusOK}
		if len(s.replies) > 0 {
			next, s.replies = s.replies[0], s.replies[1:]
		}
		s.mu.Unlock()
		for k, v := range next.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(next.status)
		_, _ = io.WriteString(w, next.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scriptServer) received() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.requests...)
}

func event(raw string, attempt int) destinations.Event {
	return destinations.Event{Event: schemas.NewEvent([]byte(raw)), Attempt: attempt}
}

func track(messageID, userID string) destinations.Event {
	return event(`{"type":"track","event":"Signed Up","messageId":"`+messageID+`","userId":"`+userID+`"}`, 1)
}

func newWebhook(t *testing.T, cfg Config) *Webhook {
	t.Helper()
	w, err := New("hooks", cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

// sendOne sends one event and checks that exactly one outcome came back.
func sendOne(t *testing.T, w *Webhook, e destinations.Event) destinations.Outcome {
	t.Helper()
	out := w.Send(t.Context(), []destinations.Event{e})
	if len(out) != 1 {
		t.Fatalf("Send returned %d outcomes for 1 event", len(out))
	}
	return out[0]
}

func TestAnswersAreClassified(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		reply reply
		want  destinations.Outcome
	}{
		{
			name:  "a 200 delivers the event",
			reply: reply{status: 200, body: `{"ok":true}`},
			want:  destinations.Outcome{Result: destinations.Delivered, Status: 200},
		},
		{
			name:  "a 204 delivers the event",
			reply: reply{status: 204},
			want:  destinations.Outcome{Result: destinations.Delivered, Status: 204},
		},
		{
			name:  "a 400 dead-letters the event and quotes the body",
			reply: reply{status: 400, body: `{"error":"bad"}`},
			want: destinations.Outcome{Result: destinations.DeadLetter, Status: 400, Class: "http_4xx",
				Reason: `webhook answered 400 Bad Request: {"error":"bad"}`, Response: `{"error":"bad"}`},
		},
		{
			name:  "a 404 without a body dead-letters the event",
			reply: reply{status: 404},
			want: destinations.Outcome{Result: destinations.DeadLetter, Status: 404, Class: "http_4xx",
				Reason: "webhook answered 404 Not Found"},
		},
		{
			name:  "a 408 is retried",
			reply: reply{status: 408},
			want: destinations.Outcome{Result: destinations.Retry, Status: 408, Class: "http_4xx",
				Reason: "webhook answered 408 Request Timeout"},
		},
		{
			name:  "a 423 is retried",
			reply: reply{status: 423},
			want: destinations.Outcome{Result: destinations.Retry, Status: 423, Class: "http_4xx",
				Reason: "webhook answered 423 Locked"},
		},
		{
			name:  "a 429 with Retry-After in seconds is retried after that many seconds",
			reply: reply{status: 429, header: map[string]string{"Retry-After": "7"}, body: "slow down\n"},
			want: destinations.Outcome{Result: destinations.Retry, Status: 429, Class: "http_429", RetryAfter: 7 * time.Second,
				Reason: "webhook answered 429 Too Many Requests: slow down", Response: "slow down\n"},
		},
		{
			name:  "a 429 with Retry-After as an HTTP date is retried at that date",
			reply: reply{status: 429, header: map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}},
			want: destinations.Outcome{Result: destinations.Retry, Status: 429, Class: "http_429", RetryAfter: 90 * time.Second,
				Reason: "webhook answered 429 Too Many Requests"},
		},
		{
			name:  "a 429 with Retry-After as a date in the past is retried by the router's backoff",
			reply: reply{status: 429, header: map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}},
			want: destinations.Outcome{Result: destinations.Retry, Status: 429, Class: "http_429",
				Reason: "webhook answered 429 Too Many Requests"},
		},
		{
			name:  "a 429 with a malformed Retry-After is retried by the router's backoff",
			reply: reply{status: 429, header: map[string]string{"Retry-After": "soon"}},
			want: destinations.Outcome{Result: destinations.Retry, Status: 429, Class: "http_429",
				Reason: "webhook answered 429 Too Many Requests"},
		},
		{
			name:  "a 500 is retried",
			reply: reply{status: 500, body: "oops"},
			want: destinations.Outcome{Result: destinations.Retry, Status: 500, Class: "http_5xx",
				Reason: "webhook answered 500 Internal Server Error: oops", Response: "oops"},
		},
		{
			name:  "a 501 dead-letters the event",
			reply: reply{status: 501},
			want: destinations.Outcome{Result: destinations.DeadLetter, Status: 501, Class: "http_5xx",
				Reason: "webhook answered 501 Not Implemented"},
		},
		{
			name:  "a 503 with Retry-After is retried after it",
			reply: reply{status: 503, header: map[string]string{"Retry-After": "120"}},
			want: destinations.Outcome{Result: destinations.Retry, Status: 503, Class: "http_5xx", RetryAfter: 2 * time.Minute,
				Reason: "webhook answered 503 Service Unavailable"},
		},
		{
			name:  "a redirect is not followed and dead-letters the event",
			reply: reply{status: 302, header: map[string]string{"Location": "/elsewhere"}},
			want: destinations.Outcome{Result: destinations.DeadLetter, Status: 302, Class: "http_3xx",
				Reason: "webhook answered 302 Found"},
		},
		{
			name:  "an unknown 4xx dead-letters the event with its bare code",
			reply: reply{status: 499},
			want: destinations.Outcome{Result: destinations.DeadLetter, Status: 499, Class: "http_4xx",
				Reason: "webhook answered 499"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScriptServer(t, tc.reply)
			w := newWebhook(t, Config{URL: srv.URL})
			w.now = func() time.Time { return now }
			got := sendOne(t, w, track("m1", "u1"))
			if got != tc.want {
				t.Errorf("outcome:\n got %+v\nwant %+v", got, tc.want)
			}
			if n := len(srv.received()); n != 1 {
				t.Errorf("server received %d requests, want 1", n)
			}
		})
	}
}

func TestResponseExcerpt(t *testing.T) {
	cases := []struct {
		name string
		body string
		want string
	}{
		{
			name: "a long body is cut to 512 bytes",
			body: strings.Repeat("a", 2000),
			want: strings.Repeat("a", 512),
		},
		{
			name: "a rune cut by the limit is dropped so the excerpt stays valid UTF-8",
			body: strings.Repeat("€", 300), // 3 bytes each: 170 fit in 512
			want: strings.Repeat("€", 170),
		},
		{
			name: "invalid UTF-8 is replaced",
			body: "bad \xff byte",
			want: "bad \uFFFD byte",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScriptServer(t, reply{status: 400, body: tc.body})
			got := sendOne(t, newWebhook(t, Config{URL: srv.URL}), track("m1", "u1"))
			if got.Response != tc.want {
				t.Errorf("response excerpt is %d bytes %q, want %d bytes %q", len(got.Response), got.Response, len(tc.want), tc.want)
			}
			if !utf8.ValidString(got.Reason) {
				t.Errorf("reason is not valid UTF-8: %q", got.Reason)
			}
		})
	}
}

func TestNetworkFailuresAreRetried(t *testing.T) {
	t.Run("a closed server is a network error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL + "/secret-token"
		srv.Close()
		got := sendOne(t, newWebhook(t, Config{URL: url}), track("m1", "u1"))
		if got.Result != destinations.Retry || got.Class != "network" || got.Status != 0 {
			t.Errorf("outcome %+v, want a network retry without status", got)
		}
		if strings.Contains(got.Reason, "secret-token") {
			t.Errorf("reason %q repeats the URL's path", got.Reason)
		}
	})

	t.Run("a server slower than the timeout is a network retry", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // lets the server see the client leave
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release)
		start := time.Now()
		got := sendOne(t, newWebhook(t, Config{URL: srv.URL, Timeout: config.Duration(100 * time.Millisecond)}), track("m1", "u1"))
		if got.Result != destinations.Retry || got.Class != "network" {
			t.Errorf("outcome %+v, want a network retry", got)
		}
		if want := "webhook did not answer within 100ms"; got.Reason != want {
			t.Errorf("reason %q, want %q", got.Reason, want)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Send took %s with a 100ms timeout", took)
		}
	})
}

func TestRequests(t *testing.T) {
	raw := `{ "type":"identify",  "messageId":"m1", "userId":"u1", "traits":{"name":"Zoë"} }`
	srv := newScriptServer(t)
	w := newWebhook(t, Config{
		URL:     srv.URL + "/hook?token=abc",
		Headers: map[string]string{"Authorization": "Bearer s3cret", "x-custom": "yes"},
	})
	got := sendOne(t, w, event(raw, 3))
	if got.Result != destinations.Delivered {
		t.Fatalf("outcome %+v, want delivered", got)
	}
	reqs := srv.received()
	if len(reqs) != 1 {
		t.Fatalf("server received %d requests, want 1", len(reqs))
	}
	if reqs[0].body != raw {
		t.Errorf("body:\n got %q\nwant %q", reqs[0].body, raw)
	}
	wantHeaders := map[string]string{
		"Content-Type":         "application/json",
		"User-Agent":           "switchyard",
		"X-Switchyard-Attempt": "3",
		"Authorization":        "Bearer s3cret",
		"X-Custom":             "yes",
	}
	for name, want := range wantHeaders {
		if got := reqs[0].header.Get(name); got != want {
			t.Errorf("header %s is %q, want %q", name, got, want)
		}
	}
}

func TestBatchedMode(t *testing.T) {
	events := []destinations.Event{
		event(`{"type":"track","messageId":"m1","userId":"u1"}`, 1),
		event(`{"type":"track","messageId":"m2","userId":"u2"}`, 4),
		event(`{"type":"track","messageId":"m3","userId":"u1"}`, 2),
	}
	wantBody := `[{"type":"track","messageId":"m1","userId":"u1"},{"type":"track","messageId":"m2","userId":"u2"},{"type":"track","messageId":"m3","userId":"u1"}]`
	cases := []struct {
		name  string
		reply reply
		want  destinations.Outcome
	}{
		{
			name:  "a 200 delivers every event of the batch",
			reply: reply{status: 200},
			want:  destinations.Outcome{Result: destinations.Delivered, Status: 200},
		},
		{
			name:  "a 503 retries every event of the batch",
			reply: reply{status: 503, header: map[string]string{"Retry-After": "5"}},
			want: destinations.Outcome{Result: destinations.Retry, Status: 503, Class: "http_5xx", RetryAfter: 5 * time.Second,
				Reason: "webhook answered 503 Service Unavailable"},
		},
		{
			name:  "a 422 dead-letters every event of the batch",
			reply: reply{status: 422, body: "no"},
			want: destinations.Outcome{Result: destinations.DeadLetter, Status: 422, Class: "http_4xx",
				Reason: "webhook answered 422 Unprocessable Entity: no", Response: "no"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScriptServer(t, tc.reply)
			w := newWebhook(t, Config{URL: srv.URL, Batch: true})
			out := w.Send(t.Context(), events)
			if len(out) != len(events) {
				t.Fatalf("Send returned %d outcomes for %d events", len(out), len(events))
			}
			for i, got := range out {
				if got != tc.want {
					t.Errorf("outcome %d:\n got %+v\nwant %+v", i, got, tc.want)
				}
			}
			reqs := srv.received()
			if len(reqs) != 1 {
				t.Fatalf("server received %d requests, want 1", len(reqs))
			}
			if reqs[0].body != wantBody {
				t.Errorf("body:\n got %s\nwant %s", reqs[0].body, wantBody)
			}
			if got := reqs[0].header.Get("X-Switchyard-Attempt"); got != "4" {
				t.Errorf("attempt header %q, want the batch's highest attempt 4", got)
			}
		})
	}
}

func TestPerUserOrder(t *testing.T) {
	cases := []struct {
		name          string
		script        int // the answer to a1, the first event of user A
		want          map[string]destinations.Result
		wantReceived  []string // in the order of each user's events
		wantNeverSent string
	}{
		{
			name:   "a retried event holds back the later events of its user only",
			script: 500,
			want: map[string]destinations.Result{
				"a1": destinations.Retry, "a2": destinations.Retry, "a3": destinations.Retry,
				"b1": destinations.Delivered, "b2": destinations.Delivered,
			},
			wantReceived:  []string{"a1", "b1", "b2"},
			wantNeverSent: "a2",
		},
		{
			name:   "a dead-lettered event does not hold back the later events of its user",
			script: 400,
			want: map[string]destinations.Result{
				"a1": destinations.DeadLetter, "a2": destinations.Delivered, "a3": destinations.Delivered,
				"b1": destinations.Delivered, "b2": destinations.Delivered,
			},
			wantReceived: []string{"a1", "a2", "a3", "b1", "b2"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := webhooktest.NewServer(t)
			srv.Script("a1", tc.script)
			batch := []destinations.Event{
				track("a1", "A"), track("b1", "B"), track("a2", "A"), track("b2", "B"), track("a3", "A"),
			}
			w := newWebhook(t, Config{URL: srv.URL, Concurrency: 4})
			out := w.Send(t.Context(), batch)
			if len(out) != len(batch) {
				t.Fatalf("Send returned %d outcomes for %d events", len(out), len(batch))
			}
			for i, e := range batch {
				id := e.MessageID()
				if out[i].Result != tc.want[id] {
					t.Errorf("%s: outcome %+v, want %s", id, out[i], tc.want[id])
				}
			}
			if tc.script == 500 {
				for _, id := range []string{"a2", "a3"} {
					o := out[indexOf(batch, id)]
					if o.Reason != "held back: an earlier event of this user is being retried" {
						t.Errorf("%s: reason %q, want held back", id, o.Reason)
					}
				}
			}

			seq := make(map[string]int)
			for _, d := range srv.Received() {
				seq[d.MessageID] = d.Seq
			}
			if len(seq) != len(tc.wantReceived) {
				t.Errorf("server received %v, want %v", seq, tc.wantReceived)
			}
			for i, id := range tc.wantReceived {
				if _, ok := seq[id]; !ok {
					t.Errorf("server never received %s", id)
				}
				if i > 0 && id[0] == tc.wantReceived[i-1][0] && seq[id] < seq[tc.wantReceived[i-1]] {
					t.Errorf("%s arrived before %s of the same user", id, tc.wantReceived[i-1])
				}
			}
			if _, sent := seq[tc.wantNeverSent]; tc.wantNeverSent != "" && sent {
				t.Errorf("%s was sent although an earlier event of its user is being retried", tc.wantNeverSent)
			}
		})
	}
}

func indexOf(batch []destinations.Event, messageID string) int {
	for i, e := range batch {
		if e.MessageID() == messageID {
			return i
		}
	}
	return -1
}

func TestUsersAreSentConcurrently(t *testing.T) {
	// The server holds every request until concurrency of them are in
	// flight, then holds those a little longer, in which a request beyond
	// the bound would arrive, and answers. A Send that never reaches the
	// bound gets 503s once giveUp ends.
	const concurrency = 3
	giveUp, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		inFlight int
		maxSeen  int
		full     = make(chan struct{})
		filled   bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		inFlight++
		maxSeen = max(maxSeen, inFlight)
		if inFlight == concurrency && !filled {
			filled = true
			time.AfterFunc(50*time.Millisecond, func() { close(full) })
		}
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight--
			mu.Unlock()
		}()
		select {
		case <-full:
			w.WriteHeader(http.StatusOK)
		case <-giveUp.Done():
			w.WriteHeader(http.StatusServiceUnavailable)
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()

	batch := []destinations.Event{
		track("m1", "u1"), track("m2", "u2"), track("m3", "u3"),
		track("m4", "u4"), track("m5", "u5"), track("m6", "u6"),
	}
	w := newWebhook(t, Config{URL: srv.URL, Concurrency: concurrency})
	out := w.Send(t.Context(), batch)
	if len(out) != len(batch) {
		t.Fatalf("%d outcomes for %d events", len(out), len(batch))
	}
	for i, o := range out {
		if o.Result != destinations.Delivered {
			t.Errorf("event %d: outcome %+v, want delivered", i, o)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if maxSeen != concurrency {
		t.Errorf("at most %d requests were in flight at once, want %d", maxSeen, concurrency)
	}
}

func TestCancellation(t *testing.T) {
	t.Run("events not sent when the context ends are retried", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var (
			mu       sync.Mutex
			requests int
		)
		release := make(chan struct{})
		blocking := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // lets the server see the client leave
			mu.Lock()
			requests++
			mu.Unlock()
			cancel()
			select {
			case <-r.Context().Done(): // the client gives up
			case <-release:
			}
		}))
		defer blocking.Close()
		defer close(release)
		batch := []destinations.Event{track("m1", "u1"), track("m2", "u2"), track("m3", "u1")}
		w := newWebhook(t, Config{URL: blocking.URL, Concurrency: 1})
		out := w.Send(ctx, batch)
		for i, o := range out {
			if o.Result != destinations.Retry {
				t.Errorf("event %d: outcome %+v, want retry", i, o)
			}
		}
		if want := "sending interrupted: context canceled"; out[0].Reason != want || out[0].Class != "canceled" {
			t.Errorf("interrupted event: outcome %+v, want class canceled, reason %q", out[0], want)
		}
		if want := "not sent: context canceled"; out[1].Reason != want {
			t.Errorf("unsent event: reason %q, want %q", out[1].Reason, want)
		}
		mu.Lock()
		defer mu.Unlock()
		if requests != 1 {
			t.Errorf("server received %d requests, want only the first", requests)
		}
	})

	for _, batched := range []bool{false, true} {
		name := "a context that already ended sends nothing in per-event mode"
		if batched {
			name = "a context that already ended sends nothing in batched mode"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			srv := newScriptServer(t)
			w := newWebhook(t, Config{URL: srv.URL, Batch: batched})
			out := w.Send(ctx, []destinations.Event{track("m1", "u1"), track("m2", "u2")})
			if len(out) != 2 {
				t.Fatalf("%d outcomes for 2 events", len(out))
			}
			for i, o := range out {
				if o.Result != destinations.Retry || o.Reason != "not sent: context canceled" {
					t.Errorf("event %d: outcome %+v, want retry, not sent", i, o)
				}
			}
			if n := len(srv.received()); n != 0 {
				t.Errorf("server received %d requests, want none", n)
			}
		})
	}
}

func TestEmptyBatch(t *testing.T) {
	srv := newScriptServer(t)
	for _, batched := range []bool{false, true} {
		w := newWebhook(t, Config{URL: srv.URL, Batch: batched})
		if out := w.Send(t.Context(), nil); len(out) != 0 {
			t.Errorf("batch %v: %d outcomes for an empty batch", batched, len(out))
		}
	}
	if n := len(srv.received()); n != 0 {
		t.Errorf("server received %d requests for empty batches", n)
	}
}

func TestConfig(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
		notIn   string // a secret the error must not repeat
	}{
		{name: "a missing URL names the url key", cfg: Config{}, wantErr: "url: must not be empty"},
		{name: "a URL of another scheme names the url key", cfg: Config{URL: "ftp://example.com/x"},
			wantErr: `url: must be an http or https URL, got scheme "ftp"`},
		{name: "a relative URL names the url key", cfg: Config{URL: "/hook"},
			wantErr: `url: must be an http or https URL, got scheme ""`},
		{name: "a URL without a host names the url key", cfg: Config{URL: "https:///path"},
			wantErr: "url: must name a host"},
		{name: "an unparsable URL names the url key without repeating it", cfg: Config{URL: "http://[::1/secret"},
			wantErr: "url: is not a valid URL", notIn: "secret"},
		{name: "a header name with a space names the headers key", cfg: Config{URL: "http://x", Headers: map[string]string{"Bad Name": "v"}},
			wantErr: `headers: "Bad Name" is not a valid header name`},
		{name: "a header value with a line break names the header but not its value",
			cfg:     Config{URL: "http://x", Headers: map[string]string{"Authorization": "Bearer secret\r\nX: y"}},
			wantErr: "headers: the value of Authorization must not contain line breaks or NUL", notIn: "secret"},
		{name: "the attempt header cannot be configured", cfg: Config{URL: "http://x", Headers: map[string]string{"x-switchyard-attempt": "1"}},
			wantErr: "headers: X-Switchyard-Attempt is set by the destination and cannot be configured"},
		{name: "negative max items names its key", cfg: Config{URL: "http://x", MaxItems: -1},
			wantErr: "max_items: must not be negative, got -1"},
		{name: "negative max bytes names its key", cfg: Config{URL: "http://x", MaxBytes: -1},
			wantErr: "max_bytes: must not be negative, got -1"},
		{name: "negative max in flight names its key", cfg: Config{URL: "http://x", MaxInFlight: -2},
			wantErr: "max_in_flight: must not be negative, got -2"},
		{name: "negative concurrency names its key", cfg: Config{URL: "http://x", Concurrency: -1},
			wantErr: "concurrency: must not be negative, got -1"},
		{name: "a negative max wait names its key", cfg: Config{URL: "http://x", MaxWait: config.Duration(-time.Second)},
			wantErr: "max_wait: must not be negative, got -1s"},
		{name: "a negative timeout names its key", cfg: Config{URL: "http://x", Timeout: config.Duration(-time.Second)},
			wantErr: "timeout: must not be negative, got -1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New("hooks", tc.cfg, zaptest.NewLogger(t), nil)
			if err == nil {
				t.Fatalf("New accepted %+v", tc.cfg)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error:\n got %q\nwant %q", err, tc.wantErr)
			}
			if tc.notIn != "" && strings.Contains(err.Error(), tc.notIn) {
				t.Errorf("error %q repeats %q", err, tc.notIn)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want destinations.Policy
	}{
		{
			name: "zero values take the defaults",
			cfg:  Config{URL: "https://example.com/hook"},
			want: destinations.Policy{MaxItems: 100, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond, MaxInFlight: 4},
		},
		{
			name: "configured values are kept",
			cfg:  Config{URL: "https://example.com/hook", Batch: true, MaxItems: 10, MaxBytes: 5000, MaxWait: config.Duration(time.Second), MaxInFlight: 1},
			want: destinations.Policy{MaxItems: 10, MaxBytes: 5000, MaxWait: time.Second, MaxInFlight: 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := newWebhook(t, tc.cfg).Policy()
			if got != tc.want {
				t.Errorf("policy %+v, want %+v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("policy does not validate: %v", err)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		header string
		want   time.Duration
	}{
		{"no header means no delay", "", 0},
		{"seconds are read", "30", 30 * time.Second},
		{"zero seconds mean no delay", "0", 0},
		{"negative seconds mean no delay", "-5", 0},
		{"a huge number of seconds does not overflow", "99999999999999999", time.Duration(maxRetryAfterSeconds) * time.Second},
		{"an HTTP date is taken relative to now", "Sun, 01 Mar 2026 12:01:00 GMT", time.Minute},
		{"an RFC 850 date is read too", "Sunday, 01-Mar-26 12:00:10 GMT", 10 * time.Second},
		{"garbage means no delay", "tomorrow", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryAfter(tc.header, now); got != tc.want {
				t.Errorf("retryAfter(%q) = %s, want %s", tc.header, got, tc.want)
			}
		})
	}
}
