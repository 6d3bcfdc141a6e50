package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/ui"
)

// TestPageReplayDeliversDeadLettersToAWebhook replays, from the page, one
// selected dead letter of a webhook destination over the process's own
// embedded log, and sees the receiver get that event and no other.
func TestPageReplayDeliversDeadLettersToAWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	defer receiver.Close()
	cfg, err := parseConfig([]byte("data_dir: "+t.TempDir()+"\nsources:\n  - name: app\n    write_keys: [k]\ndestinations:\n  - name: hook\n    type: webhook\n    webhook:\n      url: "+receiver.URL+"\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logger := zap.NewNop()
	log, _, err := openLog(cfg, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	for _, id := range []string{"m-keep", "m-replay"} {
		v, _ := json.Marshal(queue.DeadLetter{Reason: "the receiver answered 400", Stage: "hook", Class: "http_4xx", Attempts: 1, LastStatus: 400, FailedAt: time.Now(),
			Message: json.RawMessage(`{"type":"track","event":"Order Completed","messageId":"` + id + `","userId":"u1","receivedAt":"2026-12-01T10:00:00Z"}`)})
		if err := log.Publish(context.Background(), queue.Message{Topic: cfg.dlqTopic(), Key: []byte("u1"), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	clients := newHubSpotClients(logger)
	defer clients.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	page, err := newDeliveryPage(ctx, ui.Config{AdminToken: "tok", Metrics: newRegistry(), DeadLetters: pageDeadLetters(cfg, log, logger, clients, nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(page)
	defer srv.Close()

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(srv.URL+"/ui/login", url.Values{"token": {"tok"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookie := resp.Cookies()[0]
	get := func(path string) string {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.AddCookie(cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	list := get("/ui/deadletters?destination=hook")
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(list)
	pick := regexp.MustCompile(`name="pick" value="([^"]+)"[^>]*>\s*</td>\s*<td><a[^>]*>[^<]*</a></td>(?s:.*?)<td>m-replay</td>`).FindStringSubmatch(list)
	if csrf == nil || pick == nil {
		t.Fatalf("no CSRF token or no m-replay to select on the page:\n%s", list)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/ui/deadletters/replay", strings.NewReader(url.Values{"csrf": {csrf[1]}, "pick": {pick[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("replay: status %d", resp.StatusCode)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(get("/ui/deadletters/replays"), "done at") {
		if time.Now().After(deadline) {
			t.Fatalf("the replay did not finish: %s", get("/ui/deadletters/replays"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if f := get("/ui/deadletters/replays"); !strings.Contains(f, "1 of 1 delivered<") {
		t.Errorf("replays: %s", f)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.Contains(got[0], `"m-replay"`) {
		t.Fatalf("the receiver got %q, want m-replay alone", got)
	}
}

// TestPageReplayReportsRefusedAgainThenDelivered replays, from the page, a
// webhook's dead letter while the receiver still refuses it, and sees the
// replay say it was refused again and why; once the receiver accepts, a
// replay of the new dead letter says it was delivered.
func TestPageReplayReportsRefusedAgainThenDelivered(t *testing.T) {
	var mu sync.Mutex
	refuse := true
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if refuse {
			http.Error(w, "list 7 does not exist", http.StatusBadRequest)
		}
	}))
	defer receiver.Close()
	cfg, err := parseConfig([]byte("data_dir: "+t.TempDir()+"\nsources:\n  - name: app\n    write_keys: [k]\ndestinations:\n  - name: hook\n    type: webhook\n    webhook:\n      url: "+receiver.URL+"\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logger := zap.NewNop()
	log, _, err := openLog(cfg, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	v, _ := json.Marshal(queue.DeadLetter{Reason: "webhook answered 400 Bad Request", Stage: "hook", Class: "http_4xx", Attempts: 1, LastStatus: 400, FailedAt: time.Now(),
		Message: json.RawMessage(`{"type":"track","event":"Order Completed","messageId":"m-1","userId":"u1","receivedAt":"2026-12-01T10:00:00Z"}`)})
	if err := log.Publish(context.Background(), queue.Message{Topic: cfg.dlqTopic(), Key: []byte("u1"), Value: v}); err != nil {
		t.Fatal(err)
	}
	clients := newHubSpotClients(logger)
	defer clients.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	page, err := newDeliveryPage(ctx, ui.Config{AdminToken: "tok", Metrics: newRegistry(), DeadLetters: pageDeadLetters(cfg, log, logger, clients, nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(page)
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(srv.URL+"/ui/login", url.Values{"token": {"tok"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookie := resp.Cookies()[0]
	get := func(path string) string {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.AddCookie(cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	progress := regexp.MustCompile(`<span data-field="progress">(.*?)</span> ·`)
	// replayNewest replays the newest dead letter and returns the replay's
	// progress once it is done.
	replayNewest := func() string {
		t.Helper()
		list := get("/ui/deadletters?destination=hook")
		csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(list)
		pick := regexp.MustCompile(`name="pick" value="([^"]+)"`).FindStringSubmatch(list)
		if csrf == nil || pick == nil {
			t.Fatalf("no CSRF token or no dead letter to select on the page:\n%s", list)
		}
		req, _ := http.NewRequest("POST", srv.URL+"/ui/deadletters/replay", strings.NewReader(url.Values{"csrf": {csrf[1]}, "pick": {pick[1]}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("replay: status %d", resp.StatusCode)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			f := get("/ui/deadletters/replays")
			if first, _, _ := strings.Cut(f, "</li>"); strings.Contains(first, "done at") {
				m := progress.FindStringSubmatch(first)
				if m == nil {
					t.Fatalf("the replay shows no progress: %s", first)
				}
				return m[1]
			}
			if time.Now().After(deadline) {
				t.Fatalf("the replay did not finish: %s", f)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	want := `0 of 1 delivered, 1 refused again: <span data-field="refusals">webhook answered 400 Bad Request: list 7 does not exist</span>`
	if got := replayNewest(); got != want {
		t.Errorf("the replay the receiver refuses reads %q, want %q", got, want)
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	if got := replayNewest(); got != "1 of 1 delivered" {
		t.Errorf("the replay the receiver accepts reads %q, want 1 of 1 delivered", got)
	}
}
