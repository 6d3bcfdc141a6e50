package ui

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const testToken = "s3cret-admin-token"

// testMetrics registers the gateway's and the router's metrics, by the
// names and labels they export, on a fresh registry.
type testMetrics struct {
	reg       *prometheus.Registry
	messages  *prometheus.CounterVec
	responses *prometheus.CounterVec
	events    *prometheus.CounterVec
	dead      *prometheus.CounterVec
	lag       *prometheus.GaugeVec
}

func newTestMetrics() *testMetrics {
	m := &testMetrics{
		reg:       prometheus.NewRegistry(),
		messages:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricGatewayMessages, Help: "h"}, []string{"outcome"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricGatewayResponses, Help: "h"}, []string{"status"}),
		events:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRouterEvents, Help: "h"}, []string{"destination", "outcome"}),
		dead:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRouterDead, Help: "h"}, []string{"destination", "class"}),
		lag:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricRouterLag, Help: "h"}, []string{"destination"}),
	}
	m.reg.MustRegister(m.messages, m.responses, m.events, m.dead, m.lag)
	return m
}

func newTestHandler(t testing.TB, token string, m *testMetrics, sampleEvery time.Duration) *Handler {
	t.Helper()
	h, err := New(Config{
		AdminToken:  token,
		Metrics:     m.reg,
		Context:     t.Context(),
		Ready:       func(context.Context) error { return nil },
		SampleEvery: sampleEvery,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Handler)
}

// noRedirect is a client that shows redirects instead of following them.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, method, u string, body url.Values, hdr map[string]string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// login posts the token through the form and returns the session cookie.
func login(t *testing.T, base string) *http.Cookie {
	t.Helper()
	resp := do(t, noRedirect(), "POST", base+"/ui/login", url.Values{"token": {testToken}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: status %d", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Fatalf("session cookie is not HttpOnly and SameSite=Strict: %+v", c)
			}
			if strings.Contains(c.Value, testToken) {
				t.Fatal("the session cookie carries the admin token")
			}
			return c
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

func TestWithoutAuthEverythingIsRefused(t *testing.T) {
	srv := httptest.NewServer(newTestHandler(t, testToken, newTestMetrics(), 0))
	defer srv.Close()
	c := noRedirect()
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		want         int
	}{
		{"GET", "/ui/overview", nil, 401},
		{"GET", "/ui/stream", nil, 401},
		{"POST", "/ui/logout", nil, 401},
		{"GET", "/ui/overview", map[string]string{"Authorization": "Bearer wrong"}, 401},
		{"GET", "/ui/stream", map[string]string{"Authorization": "Bearer wrong"}, 401},
		{"GET", "/ui/overview", map[string]string{"Cookie": sessionCookie + "=forged.value"}, 401},
		{"GET", "/ui/", nil, http.StatusSeeOther},
	} {
		resp := do(t, c, tc.method, srv.URL+tc.path, nil, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %v: status %d, want %d", tc.method, tc.path, tc.hdr, resp.StatusCode, tc.want)
		}
	}
	if resp := do(t, c, "GET", srv.URL+"/ui/", nil, nil); resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("page GET without auth redirects to %q, want /ui/login", resp.Header.Get("Location"))
	}
	if resp := do(t, c, "POST", srv.URL+"/ui/login", url.Values{"token": {"nope"}}, nil); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("login with a wrong token: status %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	// The bearer token opens the data endpoints.
	resp := do(t, c, "GET", srv.URL+"/ui/overview", nil, map[string]string{"Authorization": "Bearer " + testToken})
	if resp.StatusCode != 200 {
		t.Errorf("overview with the bearer token: status %d", resp.StatusCode)
	}
}

func TestWriteActionsNeedCSRFAndSameOrigin(t *testing.T) {
	h := newTestHandler(t, testToken, newTestMetrics(), 0)
	srv := httptest.NewServer(h)
	defer srv.Close()
	cookie := login(t, srv.URL)
	s, ok := h.auth.parseSession(cookie.Value)
	if !ok {
		t.Fatal("the login cookie does not parse")
	}
	csrf := h.auth.csrfToken(s)
	ck := map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range ck {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	c := noRedirect()
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  map[string]string
		want int
	}{
		{"no CSRF token", url.Values{}, ck, 403},
		{"wrong CSRF token", url.Values{"csrf": {"x" + csrf}}, ck, 403},
		{"cross-site Origin", url.Values{"csrf": {csrf}}, with(map[string]string{"Origin": "http://evil.example"}), 403},
		{"cross-site fetch", url.Values{"csrf": {csrf}}, with(map[string]string{"Sec-Fetch-Site": "cross-site"}), 403},
		{"same origin with token in header", url.Values{}, with(map[string]string{"X-CSRF-Token": csrf, "Origin": srv.URL, "Sec-Fetch-Site": "same-origin"}), 303},
		{"same origin with token in form", url.Values{"csrf": {csrf}}, with(map[string]string{"Origin": srv.URL}), 303},
	} {
		resp := do(t, c, "POST", srv.URL+"/ui/logout", tc.form, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	// A login posted from another site is refused too.
	resp := do(t, c, "POST", srv.URL+"/ui/login", url.Values{"token": {testToken}}, map[string]string{"Origin": "http://evil.example"})
	if resp.StatusCode != 403 {
		t.Errorf("cross-site login: status %d, want 403", resp.StatusCode)
	}
}

func TestSessionsExpireAndDependOnTheToken(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	a, _ := newAuth(testToken, func() time.Time { return now })
	s, value, err := a.newSession()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.parseSession(value); !ok {
		t.Fatal("a fresh session does not parse")
	}
	other, _ := newAuth("another-token", func() time.Time { return now })
	if _, ok := other.parseSession(value); ok {
		t.Error("a session signed under one token is accepted under another")
	}
	if other.csrfToken(s) == a.csrfToken(s) {
		t.Error("the CSRF token does not depend on the signing key")
	}
	now = now.Add(sessionLife)
	if _, ok := a.parseSession(value); ok {
		t.Error("an expired session is accepted")
	}
}

func TestNoTokenAnswersOnlyLoopback(t *testing.T) {
	h := newTestHandler(t, "", newTestMetrics(), 0)
	for _, path := range []string{"/ui/", "/ui/overview", "/ui/stream", "/ui/login"} {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "192.0.2.7:4000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("GET %s from a remote client with no token: status %d, want 403", path, rec.Code)
		}
	}
	req := httptest.NewRequest("POST", "/ui/logout", nil)
	req.RemoteAddr = "192.0.2.7:4000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("POST from a remote client with no token: status %d, want 403", rec.Code)
	}

	req = httptest.NewRequest("GET", "/ui/", nil)
	req.RemoteAddr = "127.0.0.1:4000"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "answers only clients on this machine") {
		t.Errorf("loopback page with no token: status %d, body says nothing about loopback:\n%s", rec.Code, rec.Body)
	}
	if len(rec.Result().Cookies()) == 0 {
		t.Error("the loopback page with no token set no session cookie, so its forms carry no CSRF token")
	}
}

func TestAssetsAreVersionedCachedAndGzipped(t *testing.T) {
	h := newTestHandler(t, testToken, newTestMetrics(), 0)
	srv := httptest.NewServer(h)
	defer srv.Close()
	u := srv.URL + h.assets.url("vendor/htmx.org@4.0.1/htmx.min.js")
	tr := &http.Transport{DisableCompression: true}
	c := &http.Client{Transport: tr}
	resp := do(t, c, "GET", u, nil, map[string]string{"Accept-Encoding": "gzip"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("asset: status %d, headers %v", resp.StatusCode, resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	if !strings.HasPrefix(string(body), "var htmx=") {
		t.Errorf("gunzipped asset starts %q", body[:min(len(body), 20)])
	}
	plain := do(t, c, "GET", u, nil, nil)
	if plain.Header.Get("Content-Encoding") != "" {
		t.Error("asset gzipped for a client that did not ask")
	}
	if resp := do(t, c, "GET", srv.URL+"/ui/assets/000000000000/app.js", nil, nil); resp.StatusCode != 404 {
		t.Errorf("asset under a stale version: status %d, want 404", resp.StatusCode)
	}
}

func TestRatesAndHistory(t *testing.T) {
	t0 := time.Unix(1000, 0)
	mk := func(sec int, delivered float64) *reading {
		return &reading{seq: uint64(sec + 1), at: t0.Add(time.Duration(sec) * time.Second),
			sources: map[string]*sourceReading{},
			dests:   map[string]*destReading{"hubspot": {delivered: delivered, deadByClass: map[string]float64{}}}}
	}
	p := pointBetween(mk(0, 10), mk(2, 30))
	if got := p.Destinations["hubspot"][0]; got != 10 {
		t.Errorf("rate of 20 over 2 s = %v, want 10", got)
	}
	if got := pointBetween(mk(0, 30), mk(1, 5)).Destinations["hubspot"][0]; got != 0 {
		t.Errorf("a counter reset gave rate %v, want 0", got)
	}
	r := newRing(5)
	for i := range 8 {
		r.add(mk(i, float64(i)))
	}
	all := r.all()
	if len(all) != 5 || all[0].seq != 4 || all[4].seq != 8 {
		t.Fatalf("ring keeps seqs %v..%v (%d), want 4..8 (5)", all[0].seq, all[len(all)-1].seq, len(all))
	}
	var rs []*reading
	for i := range 3600 {
		rs = append(rs, mk(i, float64(i)))
	}
	h := history(rs, 10*time.Minute, 10*time.Second)
	if len(h) < 600 || len(h) > 600+300+2 {
		t.Errorf("an hour of history gave %d points, want about 600 fine + 300 coarse", len(h))
	}
	for _, p := range h {
		if p.Destinations["hubspot"][0] != 1 {
			t.Fatalf("history point at %v has rate %v, want 1", p.T, p.Destinations["hubspot"][0])
		}
	}
}

func TestStreamNeverBlocksTheProducer(t *testing.T) {
	hb := newHub()
	v := hb.subscribe()
	done := make(chan struct{})
	go func() {
		for range viewerBuffer * 3 {
			hb.publish([]byte("x"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked on a viewer that does not read")
	}
	if got := v.dropped.Load(); got != viewerBuffer*2 {
		t.Errorf("dropped %d, want %d", got, viewerBuffer*2)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := New(Config{Context: t.Context()}); err == nil || !strings.Contains(err.Error(), "Metrics") {
		t.Errorf("New without Metrics: %v", err)
	}
	if _, err := New(Config{Metrics: prometheus.NewRegistry()}); err == nil || !strings.Contains(err.Error(), "Context") {
		t.Errorf("New without Context: %v", err)
	}
	bad := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return nil, errors.New("boom") })
	if _, err := New(Config{Metrics: bad, Context: t.Context()}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("New with a failing Gatherer: %v", err)
	}
}
