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

// TestReadyzNamesEachSourcesState checks that /readyz names each hubspot
// source's state: the router role answers 503 while a source's processor
// or directory is stopped with an error, the gateway only names it.
func TestReadyzNamesEachSourcesState(t *testing.T) {
	log, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	crmIn := &hubspotSource{}
	crmIn.cfg.Name = "crm-in"
	sources := hubspotSources{crmIn}
	srv := httptest.NewServer(opsHandler(newRegistry(), log, destinationHealth{}, sources))
	t.Cleanup(srv.Close)
	get := func() (int, gjson.Result) {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, gjson.ParseBytes(b)
	}
	if status, body := get(); status != 200 || !body.Get("sources.crm-in.healthy").Bool() {
		t.Fatalf("healthy: %d %s", status, body.Raw)
	}
	crmIn.setFailure("processor: subscribing: the log is closed")
	if status, body := get(); status != 503 || body.Get("sources.crm-in.healthy").Bool() ||
		body.Get("sources.crm-in.reason").String() != "processor: subscribing: the log is closed" || body.Get("reason").String() != "a source is unhealthy" {
		t.Fatalf("unhealthy: %d %s", status, body.Raw)
	}
	details := readyDetails(destinationHealth{}, sources, false)()
	if _, ok := details["destinations"]; ok {
		t.Errorf("the gateway alone names destinations: %v", details)
	}
	if states := details["sources"].(map[string]sourceState); states["crm-in"].Healthy {
		t.Errorf("the gateway's details: %v", details)
	}
	if readyDetails(destinationHealth{}, nil, false) != nil {
		t.Error("a gateway without sources or destinations adds details")
	}
}
