package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/queue/embedded"
)

// staticHealth is a destination health that says what it is told.
type staticHealth struct {
	ok     bool
	reason string
}

func (s *staticHealth) Health() (bool, string) { return s.ok, s.reason }

// TestRouterReadyzNamesEachDestinationsState checks the router role's
// /readyz: 200 while every destination is healthy, 503 naming the
// destination and its reason while one is not.
func TestRouterReadyzNamesEachDestinationsState(t *testing.T) {
	log, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	crm := &staticHealth{ok: true}
	reg := newRegistry()
	health := destinationHealth{"crm": crm}
	if err := health.register(reg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(opsHandler(reg, log, health, nil))
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := get("/readyz")
	if status != 200 || !gjson.Get(body, "destinations.crm.healthy").Bool() || gjson.Get(body, "status").String() != "ready" {
		t.Fatalf("healthy: %d %s", status, body)
	}
	crm.ok, crm.reason = false, "HubSpot refuses the token (401): it is invalid or expired"
	status, body = get("/readyz")
	if status != 503 || gjson.Get(body, "destinations.crm.healthy").Bool() || !strings.Contains(gjson.Get(body, "destinations.crm.reason").String(), "401") {
		t.Fatalf("unhealthy: %d %s", status, body)
	}
	if !json.Valid([]byte(body)) {
		t.Fatalf("not JSON: %s", body)
	}
	_, metrics := get("/metrics")
	if !strings.Contains(metrics, `switchyard_destination_healthy{destination="crm"} 0`) {
		t.Fatalf("no gauge at 0:\n%s", metrics)
	}
}
