package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
)

const uiTestToken = "ui-admin-token-for-tests"

// uiGet sends GET path to addr, with token as a bearer token unless empty,
// without following redirects, and returns the answer with its body read.
func uiGet(t *testing.T, addr, path, token string) (*http.Response, string) {
	t.Helper()
	return uiGetWith(t, &http.Client{}, addr, path, token)
}

// uiGetWith is uiGet with client, for its cookies.
func uiGetWith(t *testing.T, client *http.Client, addr, path, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := *client
	c.Timeout = 10 * time.Second
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// sseStream is an open /ui/stream, read as server-sent events.
type sseStream struct {
	resp *http.Response
	r    *bufio.Reader
}

// sseEvent is one server-sent event: its name ("" for message) and its
// data lines joined by newlines.
type sseEvent struct {
	name, data string
}

// openUIStream opens /ui/stream with token as a bearer token and fails the
// test unless it answers 200 as an event stream.
func openUIStream(t *testing.T, addr, token string) *sseStream {
	t.Helper()
	return openUIStreamWith(t, http.DefaultClient, addr, token)
}

// openUIStreamWith is openUIStream with client, for its cookies; token may
// be empty.
func openUIStreamWith(t *testing.T, client *http.Client, addr, token string) *sseStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/ui/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET /ui/stream: %d %s %q, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads the next event, skipping comments and the retry field; it
// fails the test if none comes within limit.
func (s *sseStream) next(t *testing.T, limit time.Duration) sseEvent {
	t.Helper()
	type result struct {
		e   sseEvent
		err error
	}
	done := make(chan result, 1)
	go func() {
		var e sseEvent
		var data []string
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				done <- result{err: err}
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "" && (data != nil || e.name != ""):
				e.data = strings.Join(data, "\n")
				done <- result{e: e}
				return
			case strings.HasPrefix(line, "event: "):
				e.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("reading the stream: %v", r.err)
		}
		return r.e
	case <-time.After(limit):
		s.resp.Body.Close()
		<-done
		t.Fatalf("no event on the stream within %v", limit)
		return sseEvent{}
	}
}

var deliveredCell = regexp.MustCompile(`data-destination="hook">\s*<th>hook</th>\s*<td data-field="delivered">(\d+)</td>`)

// delivered returns the hook destination's delivered count an overview
// fragment shows, if it shows one.
func delivered(fragment string) (int, bool) {
	m := deliveredCell.FindStringSubmatch(fragment)
	if m == nil {
		return 0, false
	}
	n, _ := strconv.Atoi(m[1])
	return n, true
}

func TestDeliveryPageWithoutATokenAnswersLoopback(t *testing.T) {
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--data-dir", t.TempDir(), "--write-key", "k")
	resp, body := uiGet(t, addr, "/ui", "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: %d, Location %q; want 303 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The first visit gets a session, with which the data endpoints and
	// the stream answer.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar}
	resp, body = uiGetWith(t, browser, addr, "/ui/", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `id="no-token"`) || !strings.Contains(body, "No admin token is configured") {
		t.Fatalf("GET /ui/ from loopback without a token: %d, want 200 saying no token is set\n%s\n%s", resp.StatusCode, body, srv.logs())
	}
	if resp, body := uiGetWith(t, browser, addr, "/ui/overview", ""); resp.StatusCode != 200 || !strings.Contains(body, `id="sources"`) {
		t.Fatalf("GET /ui/overview from loopback without a token: %d %q", resp.StatusCode, body)
	}
	stream := openUIStreamWith(t, browser, addr, "")
	if first := stream.next(t, 5*time.Second); !strings.Contains(first.data, `id="sources"`) {
		t.Fatalf("the stream's first event is not the overview: %+v", first)
	}
	// The page's assets are served under it.
	asset := regexp.MustCompile(`/ui/assets/[^"]+\.js`).FindString(body)
	if asset == "" {
		t.Fatalf("the page links no script:\n%s", body)
	}
	if resp, _ := uiGet(t, addr, asset, ""); resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", asset, resp.StatusCode)
	}
}

func TestDeliveryPageNeedsTheAdminToken(t *testing.T) {
	receiver := webhooktest.NewServer(t)
	cfgPath := routerConfigFile(t, receiver.URL, "")
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--config", cfgPath, "--data-dir", t.TempDir(), "--admin-token", uiTestToken)

	for _, path := range []string{"/ui/overview", "/ui/stream", "/ui/stream?live=1&userId=u", "/ui/live/event?partition=0&offset=0"} {
		if resp, body := uiGet(t, addr, path, ""); resp.StatusCode != 401 {
			t.Errorf("GET %s without auth: %d %q, want 401", path, resp.StatusCode, body)
		}
		if resp, body := uiGet(t, addr, path, "not-"+uiTestToken); resp.StatusCode != 401 {
			t.Errorf("GET %s with a wrong token: %d %q, want 401", path, resp.StatusCode, body)
		}
	}
	if resp, _ := uiGet(t, addr, "/ui/", ""); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("GET /ui/ without auth: %d, Location %q; want 303 to /ui/login", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := uiGet(t, addr, "/ui/overview", uiTestToken); resp.StatusCode != 200 || !strings.Contains(body, `id="destinations"`) {
		t.Fatalf("GET /ui/overview with the token: %d %q", resp.StatusCode, body)
	}
	if resp, body := uiGet(t, addr, "/ui/", uiTestToken); resp.StatusCode != 200 || strings.Contains(body, `id="no-token"`) {
		t.Fatalf("GET /ui/ with the token: %d, want 200 without the no-token notice", resp.StatusCode)
	}

	// The stream delivers the overview as the router delivers the events,
	// and keeps delivering past the gateway's 30 s write timeout.
	opened := time.Now()
	stream := openUIStream(t, addr, uiTestToken)
	if first := stream.next(t, 5*time.Second); first.name != "" {
		t.Fatalf("the stream's first event is %q, want the overview", first.name)
	}
	ids := postAll(t, addr, "ui", 20)
	waitDelivered(t, receiver, ids, 30*time.Second)
	for {
		e := stream.next(t, 5*time.Second)
		if n, ok := delivered(e.data); ok && n >= len(ids) {
			break
		}
		if time.Since(opened) > 30*time.Second {
			t.Fatalf("the stream did not show %d delivered within 30 s", len(ids))
		}
	}
	const writeTimeout = 30 * time.Second
	var last time.Time
	for time.Since(opened) < writeTimeout+5*time.Second {
		if e := stream.next(t, 5*time.Second); e.name == "" {
			last = time.Now()
		}
	}
	if last.Sub(opened) <= writeTimeout {
		t.Fatalf("the stream's last overview came %v after it opened, not past the write timeout", last.Sub(opened))
	}

	// A stream still open does not hold up the shutdown.
	stopped := time.Now()
	srv.stop(t, syscall.SIGTERM)
	if d := time.Since(stopped); d > 10*time.Second {
		t.Fatalf("with a stream open, the shutdown took %v\n%s", d, srv.logs())
	}
	if !strings.Contains(srv.logs(), `"stopped"`) {
		t.Fatalf("switchyard did not stop cleanly:\n%s", srv.logs())
	}
}

func TestRouterServesTheDeliveryPage(t *testing.T) {
	receiver := webhooktest.NewServer(t)
	cfgPath := routerConfigFile(t, receiver.URL, "")
	addr := freeAddr(t)
	srv := start(t, addr, "router", "--config", cfgPath, "--data-dir", t.TempDir(), "--admin-token", uiTestToken)
	if resp, body := uiGet(t, addr, "/ui/overview", ""); resp.StatusCode != 401 {
		t.Fatalf("GET /ui/overview without auth: %d %q, want 401", resp.StatusCode, body)
	}
	if resp, body := uiGet(t, addr, "/ui/", uiTestToken); resp.StatusCode != 200 || !strings.Contains(body, `id="overview"`) {
		t.Fatalf("GET /ui/ with the token: %d %q\n%s", resp.StatusCode, body, srv.logs())
	}
	stream := openUIStream(t, addr, uiTestToken)
	first := stream.next(t, 5*time.Second)
	if !strings.Contains(first.data, `id="ready" data-ready="true"`) {
		t.Fatalf("the router's stream does not show it ready: %q", first.data)
	}
	stream.next(t, 5*time.Second) // and goes on
	stopped := time.Now()
	srv.stop(t, syscall.SIGTERM)
	if d := time.Since(stopped); d > 10*time.Second {
		t.Fatalf("with a stream open, the shutdown took %v\n%s", d, srv.logs())
	}
}
