package ingest

import (
	"context"
	"os"
	"os/exec"
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
	// analytics-go puts its library only on the batch envelope: the merge
	// must bring it into every message.
	checkSDKLog(t, f, sdkWant{library: "analytics-go", originalTimestamp: "2026-11-22T11:00:00.123456789Z", sendsNulls: true})
}

// TestAnalyticsNodeSDK runs the official Node.js SDK, unchanged, from
// testdata/sdk/node (installed by scripts/sdk-deps.sh).
func TestAnalyticsNodeSDK(t *testing.T) {
	sdkInstalled(t, "../testdata/sdk/node/node_modules/@segment/analytics-node")
	f := newFixture(t, Config{Now: time.Now})
	addr := listen(t, f)
	runSDK(t, "node", "../testdata/sdk/node/send.mjs", "http://"+addr, testKey)
	checkSDKLog(t, f, sdkWant{library: "@segment/analytics-node", originalTimestamp: "2026-11-22T11:00:00.123Z", sendsNulls: true})
}

// TestAnalyticsPythonSDK runs the official Python SDK, unchanged, with
// gzip on, from testdata/sdk/python (installed by scripts/sdk-deps.sh).
func TestAnalyticsPythonSDK(t *testing.T) {
	python := "../testdata/sdk/python/.venv/bin/python"
	sdkInstalled(t, python)
	f := newFixture(t, Config{Now: time.Now})
	addr := listen(t, f)
	runSDK(t, python, "../testdata/sdk/python/send.py", "http://"+addr, testKey)
	checkSDKLog(t, f, sdkWant{library: "analytics-python", originalTimestamp: "2026-11-22T11:00:00.123+00:00", sendsNulls: true})
}

// TestAnalyticsJavaSDK runs the official Java SDK, unchanged, from
// testdata/sdk/java (fetched from Maven Central and compiled by
// scripts/sdk-deps.sh). It posts to /v1/import.
func TestAnalyticsJavaSDK(t *testing.T) {
	sdkInstalled(t, "../testdata/sdk/java/target/classes/Send.class")
	f := newFixture(t, Config{Now: time.Now})
	addr := listen(t, f)
	runSDK(t, "java", "-cp", "../testdata/sdk/java/target/classes:../testdata/sdk/java/target/lib/*", "Send", "http://"+addr, testKey)
	// Its Gson leaves null values out of what it sends.
	checkSDKLog(t, f, sdkWant{library: "analytics-java", originalTimestamp: "2026-11-22T11:00:00.123Z"})
}

// sdkInstalled stops the test when an SDK is missing: a failure in CI,
// which installs them, a skip elsewhere.
func sdkInstalled(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing; CI must install the SDKs with scripts/sdk-deps.sh", path)
	}
	t.Skipf("%s is missing; run scripts/sdk-deps.sh", path)
}

// runSDK runs an SDK script and fails the test if the SDK reports an error.
func runSDK(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// sdkWant is what differs between SDKs sending the same calls.
type sdkWant struct {
	library string
	// originalTimestamp is the calls' timestamp as the SDK writes it.
	originalTimestamp string
	// sendsNulls is true when the SDK sends a null trait rather than
	// leaving it out.
	sendsNulls bool
}

// checkSDKLog reads back what an SDK sent: the six calls every SDK test
// makes, with the SDK's library in each message's context.
func checkSDKLog(t *testing.T, f *fixture, want sdkWant) {
	t.Helper()
	byID := map[string]gjson.Result{}
	stored := readAll(t, f.log, "events")
	for _, m := range stored {
		byID[m.Get("messageId").String()] = m
	}
	fields := []struct {
		id, path, value string
	}{
		{"sdk-identify", "type", "identify"},
		{"sdk-identify", "userId", "u-1"},
		{"sdk-identify", "traits.email", "ada@example.com"},
		{"sdk-identify", "traits.firstName", "Ada"},
		{"sdk-identify", "traits.Plan Type", "pro"},
		{"sdk-identify", "traits.plan type", "free"},
		{"sdk-identify", "originalTimestamp", want.originalTimestamp},
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
	for _, w := range fields {
		if got := byID[w.id].Get(w.path).String(); got != w.value {
			t.Errorf("%s %s = %q, want %q", w.id, w.path, got, w.value)
		}
	}
	if got := byID["sdk-identify"].Get("traits.gone").Raw; want.sendsNulls && got != "null" {
		t.Errorf("a null trait was not kept: traits.gone = %q", got)
	}
	ids := []string{"sdk-identify", "sdk-track", "sdk-page", "sdk-screen", "sdk-group", "sdk-alias"}
	for _, id := range ids {
		m, ok := byID[id]
		if !ok {
			t.Errorf("%s not in the log", id)
			continue
		}
		if m.Get("context.library.name").String() != want.library || m.Get("context.library.version").String() == "" {
			t.Errorf("%s: context.library = %s", id, m.Get("context.library").Raw)
		}
		if m.Get("sentAt").String() == "" || m.Get("receivedAt").String() == "" || m.Get("timestamp").String() == "" {
			t.Errorf("%s lacks sentAt, receivedAt or timestamp: %s", id, m.Raw)
		}
		if m.Get("_switchyard.source").String() != "web" {
			t.Errorf("%s: source %q", id, m.Get("_switchyard.source").String())
		}
	}
	if len(byID) != len(ids) {
		t.Errorf("the log holds %d distinct messages, want %d", len(byID), len(ids))
	}
	// An SDK's retry of a call the gateway already stored is stored once.
	if len(stored) != len(ids) {
		t.Errorf("the log holds %d messages for %d distinct messageIds: one was stored twice", len(stored), len(byID))
	}
}
