package webhooktest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
)

// post sends body as a webhook request with an attempt header and returns
// the status.
func post(t *testing.T, srv *webhooktest.Server, body string, attempt string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader(body))
	if err != nil {
		t.Fatalf("building request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Switchyard-Attempt", attempt)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("posting: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func statuses(ds []webhooktest.Delivery) []int {
	var out []int
	for _, d := range ds {
		out = append(out, d.Status)
	}
	return out
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestScriptedAnswers(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(*webhooktest.Server)
		bodies []string
		want   []int // the answer to each body
		// wantDelivered counts 2xx answers per messageId at the end.
		wantDelivered map[string]int
	}{
		{
			name:          "an unscripted event gets 200",
			setup:         func(*webhooktest.Server) {},
			bodies:        []string{`{"messageId":"m1"}`},
			want:          []int{200},
			wantDelivered: map[string]int{"m1": 1},
		},
		{
			name:          "a script answers the deliveries of its event in turn, then 200",
			setup:         func(s *webhooktest.Server) { s.Script("m1", 500, 429) },
			bodies:        []string{`{"messageId":"m1"}`, `{"messageId":"m2"}`, `{"messageId":"m1"}`, `{"messageId":"m1"}`, `{"messageId":"m1"}`},
			want:          []int{500, 200, 429, 200, 200},
			wantDelivered: map[string]int{"m1": 2, "m2": 1},
		},
		{
			name:          "a batched request with a scripted failure answers it for all its events",
			setup:         func(s *webhooktest.Server) { s.Script("m2", 503) },
			bodies:        []string{`[{"messageId":"m1"},{"messageId":"m2"},{"messageId":"m3"}]`, `[{"messageId":"m1"},{"messageId":"m2"},{"messageId":"m3"}]`},
			want:          []int{503, 200},
			wantDelivered: map[string]int{"m1": 1, "m2": 1, "m3": 1},
		},
		{
			name: "failing answers every request and leaves the scripts for after recovering",
			setup: func(s *webhooktest.Server) {
				s.Script("m1", 400)
				s.Fail(502)
			},
			bodies:        []string{`{"messageId":"m1"}`, `{"messageId":"m2"}`},
			want:          []int{502, 502},
			wantDelivered: map[string]int{"m1": 0, "m2": 0},
		},
		{
			name:          "a body that is not JSON is refused",
			setup:         func(*webhooktest.Server) {},
			bodies:        []string{`not json`, `[1,2]`},
			want:          []int{400, 400},
			wantDelivered: map[string]int{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := webhooktest.NewServer(t)
			tc.setup(srv)
			var got []int
			for _, body := range tc.bodies {
				got = append(got, post(t, srv, body, "1"))
			}
			if !equal(got, tc.want) {
				t.Errorf("answers %v, want %v", got, tc.want)
			}
			for id, want := range tc.wantDelivered {
				if got := srv.Delivered(id); got != want {
					t.Errorf("Delivered(%q) = %d, want %d", id, got, want)
				}
			}
		})
	}
}

func TestRecover(t *testing.T) {
	srv := webhooktest.NewServer(t)
	srv.Script("m1", 400)
	srv.Fail(503)
	first := post(t, srv, `{"messageId":"m1"}`, "1")
	srv.Recover()
	second := post(t, srv, `{"messageId":"m1"}`, "2")
	third := post(t, srv, `{"messageId":"m1"}`, "3")
	if got, want := []int{first, second, third}, []int{503, 400, 200}; !equal(got, want) {
		t.Errorf("answers %v, want %v", got, want)
	}
	if got, want := statuses(srv.Received()), []int{503, 400, 200}; !equal(got, want) {
		t.Errorf("recorded statuses %v, want %v", got, want)
	}
}

func TestReceived(t *testing.T) {
	srv := webhooktest.NewServer(t)
	post(t, srv, `{"messageId":"m1","userId":"u1"}`, "2")
	post(t, srv, ` [{"messageId":"m2"}, {"messageId":"m3"}]`, "5")

	got := srv.Received()
	want := []webhooktest.Delivery{
		{Seq: 0, Request: 0, MessageID: "m1", Attempt: 2, Body: []byte(`{"messageId":"m1","userId":"u1"}`), Status: 200},
		{Seq: 1, Request: 1, Batched: true, MessageID: "m2", Attempt: 5, Body: []byte(`{"messageId":"m2"}`), Status: 200},
		{Seq: 2, Request: 1, Batched: true, MessageID: "m3", Attempt: 5, Body: []byte(`{"messageId":"m3"}`), Status: 200},
	}
	if len(got) != len(want) {
		t.Fatalf("received %d events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Request != w.Request || g.Batched != w.Batched || g.MessageID != w.MessageID ||
			g.Attempt != w.Attempt || string(g.Body) != string(w.Body) || g.Status != w.Status {
			t.Errorf("delivery %d:\n got %+v\nwant %+v", i, g, w)
		}
		if g.Header.Get("Content-Type") != "application/json" {
			t.Errorf("delivery %d: header %v lacks the request's Content-Type", i, g.Header)
		}
	}

	got[0].MessageID = "changed"
	if again := srv.Received(); again[0].MessageID != "m1" {
		t.Errorf("changing the result of Received changed the server's record")
	}
}

func TestWaitFor(t *testing.T) {
	t.Run("it returns once a request makes the condition hold", func(t *testing.T) {
		srv := webhooktest.NewServer(t)
		srv.Script("m1", 500)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- srv.WaitFor(ctx, func(s *webhooktest.Server) bool { return s.Delivered("m1") == 1 })
		}()
		post(t, srv, `{"messageId":"m1"}`, "1")
		select {
		case err := <-done:
			t.Fatalf("WaitFor returned %v before m1 was delivered", err)
		case <-time.After(50 * time.Millisecond):
		}
		post(t, srv, `{"messageId":"m1"}`, "2")
		if err := <-done; err != nil {
			t.Fatalf("WaitFor: %v", err)
		}
	})

	t.Run("it returns the context's error when the condition never holds", func(t *testing.T) {
		srv := webhooktest.NewServer(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := srv.WaitFor(ctx, func(s *webhooktest.Server) bool { return len(s.Received()) > 0 })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitFor returned %v, want context.Canceled", err)
		}
	})
}

func TestDistinct(t *testing.T) {
	srv := webhooktest.NewServer(t)
	srv.Script("m2", 500)
	post(t, srv, `{"messageId":"m1"}`, "1")
	post(t, srv, `{"messageId":"m1"}`, "2")
	post(t, srv, `{"messageId":"m2"}`, "1")
	if got := srv.Distinct(); got != 1 {
		t.Fatalf("Distinct = %d after m1 twice and a failed m2, want 1", got)
	}
	post(t, srv, `[{"messageId":"m2"},{"messageId":"m3"}]`, "2")
	if got := srv.Distinct(); got != 3 {
		t.Fatalf("Distinct = %d once m2 and m3 were delivered too, want 3", got)
	}
}
