package ingest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// pageRoute stands for a page served under /ui: it answers with the method,
// path and body it got.
var pageRoute = Route{Path: "/ui", Prefix: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "page %s %s %s", r.Method, r.URL.Path, body)
})}

func TestPrefixRouteServesItsTree(t *testing.T) {
	f := newFixture(t, Config{CORSOrigins: []string{"https://shop.example"}, Routes: []Route{pageRoute}})
	cases := []struct {
		method, path, body string
		want               string
	}{
		{http.MethodGet, "/ui", "", "page GET /ui "},
		{http.MethodGet, "/ui/", "", "page GET /ui/ "},
		{http.MethodGet, "/ui/assets/0123abcd/app.js", "", "page GET /ui/assets/0123abcd/app.js "},
		{http.MethodPost, "/ui/login", "token=secret", "page POST /ui/login token=secret"},
		{http.MethodDelete, "/ui/x", "", "page DELETE /ui/x "},
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := f.gw.App().Test(req, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != c.want {
			t.Errorf("%s %s: %d %q, want 200 %q", c.method, c.path, resp.StatusCode, body, c.want)
		}
	}
	if r := f.do(t, httptest.NewRequest(http.MethodGet, "/uix", nil)); r.status != 404 || r.body.Get("code").String() != "not_found" {
		t.Errorf("GET /uix: %d %s, want the gateway's 404", r.status, r.body.Raw)
	}

	// A page gets no CORS headers, even for an allowed origin, and a
	// preflight reaches its handler.
	req := httptest.NewRequest(http.MethodGet, "/ui/overview", nil)
	req.Header.Set("Origin", "https://shop.example")
	if r := f.do(t, req); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a page answered with Access-Control-Allow-Origin %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	req = httptest.NewRequest(http.MethodOptions, "/ui/overview", nil)
	req.Header.Set("Origin", "https://shop.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := f.gw.App().Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "page OPTIONS /ui/overview " || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a preflight to a page: %d %q, Access-Control-Allow-Origin %q; want its handler's answer", resp.StatusCode, body, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// The Tracking API keeps them.
	req = httptest.NewRequest(http.MethodPost, "/v1/track", nil)
	req.Header.Set("Origin", "https://shop.example")
	if r := f.do(t, req); r.header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Errorf("the Tracking API lost its CORS headers: %q", r.header.Get("Access-Control-Allow-Origin"))
	}
}

// testStream is a stream route whose Open needs the header X-Let-In and
// whose Run writes the Last-Event-ID and remote address Open read, then an
// event per value sent on events, until events closes or a write fails.
type testStream struct {
	events chan string
	ended  chan error
}

func newTestStream() *testStream {
	return &testStream{events: make(chan string), ended: make(chan error, 1)}
}

func (s *testStream) route() StreamRoute {
	return StreamRoute{Path: "/ui/stream", Open: func(r *http.Request) (Stream, int, error) {
		if r.Header.Get("X-Let-In") == "" {
			return Stream{}, http.StatusUnauthorized, errors.New("authentication required")
		}
		lastID, remote := r.Header.Get("Last-Event-ID"), r.RemoteAddr
		return Stream{
			Headers: map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store"},
			Run: func(w *bufio.Writer) error {
				err := func() error {
					fmt.Fprintf(w, "data: after %s from %s\n\n", lastID, remote)
					if err := w.Flush(); err != nil {
						return err
					}
					for e := range s.events {
						fmt.Fprintf(w, "data: %s\n\n", e)
						if err := w.Flush(); err != nil {
							return err
						}
					}
					return nil
				}()
				s.ended <- err
				return err
			},
		}, http.StatusOK, nil
	}}
}

// readEvent reads one server-sent event's data line.
func readEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (so far %q)", err, data)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return data
		}
		data += strings.TrimPrefix(line, "data: ")
	}
}

func openStream(t *testing.T, addr string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/ui/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestStreamRouteStreams(t *testing.T) {
	s := newTestStream()
	f := newFixture(t, Config{CORSOrigins: []string{"https://shop.example"}, Routes: []Route{pageRoute}, StreamRoutes: []StreamRoute{s.route()}})
	addr := listen(t, f)

	resp := openStream(t, addr, http.Header{"Origin": {"https://shop.example"}})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || string(body) != "authentication required\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("a refused stream: %d %s %q, want 401 text/plain with the reason", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	resp = openStream(t, addr, http.Header{"X-Let-In": {"yes"}, "Last-Event-ID": {"41"}, "Origin": {"https://shop.example"}})
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("the stream answered %d, Content-Type %q, Cache-Control %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("the stream answered with Access-Control-Allow-Origin %q", got)
	}
	r := bufio.NewReader(resp.Body)
	if got := readEvent(t, r); !strings.HasPrefix(got, "after 41 from 127.0.0.1:") {
		t.Fatalf("first event %q: Open did not read the request", got)
	}
	// Each event arrives while the stream is still open.
	for _, e := range []string{"one", "two"} {
		s.events <- e
		if got := readEvent(t, r); got != e {
			t.Fatalf("event %q, want %q", got, e)
		}
	}
	close(s.events)
	if err := <-s.ended; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after Run returned: %q, %v; want the end of the body", rest, err)
	}

	// The prefix route still serves the rest of its tree.
	if resp, err := http.Get("http://" + addr + "/ui/other"); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "page GET /ui/other " {
			t.Fatalf("GET /ui/other: %q", body)
		}
	}
}

func TestStreamEndsWhenTheClientGoes(t *testing.T) {
	s := newTestStream()
	f := newFixture(t, Config{StreamRoutes: []StreamRoute{s.route()}})
	addr := listen(t, f)
	resp := openStream(t, addr, http.Header{"X-Let-In": {"yes"}})
	readEvent(t, bufio.NewReader(resp.Body))
	resp.Body.Close()
	for {
		select {
		case err := <-s.ended:
			if err == nil {
				t.Fatal("Run returned no error after the client went")
			}
			return
		case s.events <- "ping":
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not end within 10 s of the client going")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStreamOutlastsTheWriteTimeout keeps a stream open for four times the
// server's write timeout: each write gets the timeout anew.
func TestStreamOutlastsTheWriteTimeout(t *testing.T) {
	s := newTestStream()
	f := newFixture(t, Config{StreamRoutes: []StreamRoute{s.route()}})
	f.gw.App().Server().WriteTimeout = 500 * time.Millisecond
	addr := listen(t, f)
	resp := openStream(t, addr, http.Header{"X-Let-In": {"yes"}})
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	readEvent(t, r)
	start := time.Now()
	for i := 0; time.Since(start) < 2*time.Second; i++ {
		want := fmt.Sprint("event ", i)
		select {
		case s.events <- want:
		case err := <-s.ended:
			t.Fatalf("the stream ended after %v: %v", time.Since(start).Round(time.Millisecond), err)
		}
		if got := readEvent(t, r); got != want {
			t.Fatalf("event %q, want %q", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(s.events)
	if err := <-s.ended; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestPageAndStreamRouteErrors(t *testing.T) {
	h := pageRoute.Handler
	open := newTestStream().route().Open
	tests := []struct {
		name    string
		routes  []Route
		streams []StreamRoute
		want    string
	}{
		{"a prefix route with a method", []Route{{Method: "GET", Path: "/ui", Prefix: true, Handler: h}}, nil, "takes every method"},
		{"a prefix route at the root", []Route{{Path: "/", Prefix: true, Handler: h}}, nil, "names a tree"},
		{"a prefix route with a trailing slash", []Route{{Path: "/ui/", Prefix: true, Handler: h}}, nil, "names a tree"},
		{"a prefix route under the Tracking API", []Route{{Path: "/v1/ui", Prefix: true, Handler: h}}, nil, "the path"},
		{"a stream route without Open", nil, []StreamRoute{{Path: "/ui/stream"}}, "has no Open"},
		{"a stream route with a relative path", nil, []StreamRoute{{Path: "ui/stream", Open: open}}, "the path"},
		{"a stream route served twice", []Route{{Method: "GET", Path: "/ui/stream", Handler: h}}, []StreamRoute{{Path: "/UI/stream", Open: open}}, "served twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Sources: []Source{{Name: "web", WriteKeys: []string{testKey}}}, Routes: tt.routes, StreamRoutes: tt.streams}.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to say %q", err, tt.want)
			}
		})
	}
}
