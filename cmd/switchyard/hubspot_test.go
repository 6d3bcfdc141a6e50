package main

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// TestTwoDestinationsOnOneTokenStayUnderItsLimit has two users of one token
// call the sandbox at once, 120 calls in all against the free tier's 100 per
// 10 seconds. Sharing one budget, the last 20 wait (and give up when the
// test's deadline passes) instead of drawing 429s; with a budget each, both
// would spend 60 at once.
func TestTwoDestinationsOnOneTokenStayUnderItsLimit(t *testing.T) {
	srv := httptest.NewServer(sandbox.New(sandbox.Config{Tier: "free"}))
	defer srv.Close()
	clients := newHubSpotClients(zap.NewNop())
	cfg := hubspot.Config{Token: "pat-1", BaseURL: srv.URL, Tier: "free"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var sent, limited atomic.Int64
	var wg sync.WaitGroup
	for i, name := range []string{"crm", "crm-eu"} {
		client, _, err := clients.client(fmt.Sprintf("destinations[%d]", i), name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for range 60 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := client.Do(ctx, api.Standard, "GET", "/crm/v3/properties/contacts", nil)
				var rl *api.RateLimitError
				switch {
				case err == nil:
					sent.Add(1)
				case errors.As(err, &rl):
					limited.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if limited.Load() != 0 {
		t.Fatalf("HubSpot answered 429 to %d calls (%d succeeded): the destinations spent two budgets", limited.Load(), sent.Load())
	}
	if sent.Load() != 100 {
		t.Fatalf("%d calls succeeded, want the free tier's 100", sent.Load())
	}
}

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

// TestASourceSharesItsDestinationsClient checks that a hubspot source gets
// the client of the destinations on its URL and token, at their tier, and a
// client of its own on another token.
func TestASourceSharesItsDestinationsClient(t *testing.T) {
	clients := newHubSpotClients(zap.NewNop())
	dest, _, err := clients.client("destinations[0]", "crm", hubspot.Config{Token: "pat-1", BaseURL: "https://hubspot.example/", Tier: "professional"})
	if err != nil {
		t.Fatal(err)
	}
	same, err := clients.sourceClient("sources[1]", "https://hubspot.example", "pat-1")
	if err != nil {
		t.Fatal(err)
	}
	if same != dest {
		t.Error("the source on the destination's URL and token got a client of its own")
	}
	other, err := clients.sourceClient("sources[2]", "https://hubspot.example", "pat-2")
	if err != nil {
		t.Fatal(err)
	}
	if other == dest {
		t.Error("a source on another token shares the destination's client")
	}
	if again, _ := clients.sourceClient("sources[3]", "https://hubspot.example/", "pat-2"); again != other {
		t.Error("two sources on one token got two clients")
	}
}
