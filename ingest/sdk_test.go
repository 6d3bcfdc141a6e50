package ingest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"
	"github.com/tidwall/gjson"
)

// sdkCallback records what the SDK reports for each message.
type sdkCallback struct {
	mu        sync.Mutex
	succeeded int
	failed    []error
}

func (c *sdkCallback) Success(analytics.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.succeeded++
}

func (c *sdkCallback) Failure(_ analytics.Message, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = append(c.failed, err)
}

// TestAnalyticsGoSDK points the official Go SDK, unchanged, at the gateway,
// sends every call type and reads the log back.
func TestAnalyticsGoSDK(t *testing.T) {
	f := newFixture(t, Config{Now: time.Now})
	addr := listen(t, f)
	cb := &sdkCallback{}
	client, err := analytics.NewWithConfig(testKey, analytics.Config{
		Endpoint:  "http://" + addr,
		BatchSize: 100,
		Interval:  50 * time.Millisecond,
		Callback:  cb,
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 11, 0, 0, 123456789, time.UTC)
	calls := []analytics.Message{
		analytics.Identify{MessageId: "sdk-identify", UserId: "u-1", Timestamp: at,
			Traits: analytics.NewTraits().SetEmail("ada@example.com").SetFirstName("Ada").Set("Plan Type", "pro").Set("plan type", "free").Set("gone", nil)},
		analytics.Track{MessageId: "sdk-track", UserId: "u-1", Event: "Order Completed", Timestamp: at,
			Properties: analytics.NewProperties().SetRevenue(42.5).SetCurrency("EUR")},
		analytics.Page{MessageId: "sdk-page", AnonymousId: "anon-1", Name: "Pricing", Timestamp: at,
			Properties: analytics.NewProperties().SetURL("https://example.com/pricing").SetCategory("Docs")},
		analytics.Screen{MessageId: "sdk-screen", UserId: "u-1", Name: "Home", Timestamp: at},
		analytics.Group{MessageId: "sdk-group", UserId: "u-1", GroupId: "acme", Timestamp: at,
			Traits: analytics.NewTraits().SetName("Acme").Set("website", "https://www.acme.example/")},
		analytics.Alias{MessageId: "sdk-alias", UserId: "u-1", PreviousId: "anon-1", Timestamp: at},
	}
	for _, c := range calls {
		if err := client.Enqueue(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if cb.succeeded != len(calls) || len(cb.failed) > 0 {
		t.Fatalf("the SDK reports %d delivered, failures %v", cb.succeeded, cb.failed)
	}

	byID := map[string]gjson.Result{}
	for _, m := range readAll(t, f.log, "events") {
		byID[m.Get("messageId").String()] = m
	}
	want := []struct {
		id, path, value string
	}{
		{"sdk-identify", "type", "identify"},
		{"sdk-identify", "userId", "u-1"},
		{"sdk-identify", "traits.email", "ada@example.com"},
		{"sdk-identify", "traits.firstName", "Ada"},
		{"sdk-identify", "traits.Plan Type", "pro"},
		{"sdk-identify", "traits.plan type", "free"},
		{"sdk-identify", "originalTimestamp", "2026-11-22T11:00:00.123456789Z"},
		{"sdk-track", "event", "Order Completed"},
		{"sdk-track", "properties.revenue", "42.5"},
		{"sdk-track", "properties.currency", "EUR"},
		{"sdk-page", "anonymousId", "anon-1"},
		{"sdk-page", "name", "Pricing"},
		{"sdk-page", "properties.category", "Docs"},
		{"sdk-screen", "name", "Home"},
		{"sdk-group", "groupId", "acme"},
		{"sdk-group", "traits.website", "https://www.acme.example/"},
		{"sdk-alias", "previousId", "anon-1"},
	}
	for _, w := range want {
		if got := byID[w.id].Get(w.path).String(); got != w.value {
			t.Errorf("%s %s = %q, want %q", w.id, w.path, got, w.value)
		}
	}
	if got := byID["sdk-identify"].Get("traits.gone").Raw; got != "null" {
		t.Errorf("a null trait was not kept: traits.gone = %q", got)
	}
	for _, c := range calls {
		id := gjson.Get(mustJSON(t, c), "messageId").String()
		m, ok := byID[id]
		if !ok {
			t.Errorf("%s not in the log", id)
			continue
		}
		// analytics-go puts its library only on the batch envelope: the
		// merge must bring it into every message.
		if m.Get("context.library.name").String() != "analytics-go" || m.Get("context.library.version").String() == "" {
			t.Errorf("%s: context.library = %s", id, m.Get("context.library").Raw)
		}
		if m.Get("sentAt").String() == "" || m.Get("receivedAt").String() == "" || m.Get("timestamp").String() == "" {
			t.Errorf("%s lacks sentAt, receivedAt or timestamp: %s", id, m.Raw)
		}
		if m.Get("_switchyard.source").String() != "web" {
			t.Errorf("%s: source %q", id, m.Get("_switchyard.source").String())
		}
	}
	if len(byID) != len(calls) {
		t.Errorf("the log holds %d messages, want %d", len(byID), len(calls))
	}
}

func mustJSON(t *testing.T, m analytics.Message) string {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
