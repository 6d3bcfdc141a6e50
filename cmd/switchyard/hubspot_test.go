package main

import (
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations/hubspot"
)

func TestOneHubSpotBudgetPerToken(t *testing.T) {
	clients := newHubSpotClients(zap.NewNop())
	defer clients.Close()
	a, _, err := clients.client("destinations[0]", "a", hubspot.Config{Token: "pat-1", Tier: "professional"})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := clients.client("destinations[1]", "b", hubspot.Config{Token: "pat-1", Tier: "professional", BaseURL: "https://api.hubapi.com/"})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := clients.client("destinations[2]", "c", hubspot.Config{Token: "pat-2", Tier: "professional"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Budget() != b.Budget() {
		t.Error("two destinations on one token got two budgets")
	}
	if a.Budget() == other.Budget() {
		t.Error("two tokens share one budget")
	}
}

func TestHubSpotUsersOfOneTokenMustAgree(t *testing.T) {
	cfg := config{Destinations: []destinationConfig{
		{Name: "crm", Type: "hubspot", HubSpot: hubspot.Config{Token: "pat-1", Tier: "professional"}},
		{Name: "crm-eu", Type: "hubspot", HubSpot: hubspot.Config{Token: "pat-1", Tier: "free"}},
	}}
	deps := destinationDeps{logger: zap.NewNop(), dataDir: t.TempDir(), hubspot: newHubSpotClients(zap.NewNop())}
	_, _, err := buildRouters(cfg, nil, deps, mustMetrics())
	want := `destinations[1].hubspot.tier: "free" differs from "professional" of destinations[0] on the same token`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
	if strings.Contains(err.Error(), "pat-1") {
		t.Fatalf("error %q prints the token", err)
	}
}

func TestTokenlessHubSpotDestinationsShareTheSandbox(t *testing.T) {
	clients := newHubSpotClients(zap.NewNop())
	defer clients.Close()
	a, ca, err := clients.client("destinations[0]", "a", hubspot.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, cb, err := clients.client("destinations[1]", "b", hubspot.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ca.BaseURL, "http://127.0.0.1:") || ca.BaseURL != cb.BaseURL || ca.HubID != sandboxHubID {
		t.Fatalf("configs %+v %+v: a tokenless destination must use the in-process sandbox", ca, cb)
	}
	if a != b {
		t.Fatal("tokenless destinations got two clients of the sandbox")
	}
}
