package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/hubspot/signature"
)

// TestSandboxSendsSignedWebhooks runs `switchyard hubspot-sandbox
// --webhook-url URL --client-secret S` and edits a contact as a person in
// HubSpot's UI would: the receiver gets contact.creation and
// contact.propertyChange, signed with the secret (§1.2, §1.3, §1.7 of
// hubspot-source.md, [O24-wh], [O24-val]); a 500 is retried with
// attemptNumber 1 (§1.5, [O24-err]); /_sandbox/webhooks counts it all.
func TestSandboxSendsSignedWebhooks(t *testing.T) {
	const secret = "app-client-secret"
	var mu sync.Mutex
	var got []map[string]any
	var refused []error
	fail := 0
	var target string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := signature.Verify(secret, signature.Request{Method: r.Method, URI: target, Header: r.Header, Body: body}, time.Now()); err != nil {
			refused = append(refused, err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if fail > 0 {
			fail--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var notes []map[string]any
		if err := json.Unmarshal(body, &notes); err != nil {
			t.Errorf("webhook body: %v: %s", err, body)
		}
		got = append(got, notes...)
	}))
	defer receiver.Close()
	target = receiver.URL + "/hubspot/webhooks/crm-in"

	addr := freeAddr(t)
	startReady(t, addr, "/_sandbox/stats", "hubspot-sandbox", "--webhook-url", target, "--client-secret", secret,
		"--webhook-retry-delays", "50ms,50ms")
	base := "http://" + addr
	post := func(path, body string) {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
	}
	notes := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]any(nil), got...)
	}
	waitFor := func(n int) []map[string]any {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(notes()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d notifications, want %d; refused %v", len(notes()), n, refused)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return notes()
	}

	post("/_sandbox/edit/contacts", `{"properties":{"email":"ada@example.com"}}`)
	n := waitFor(2)
	if n[0]["subscriptionType"] != "contact.creation" || n[1]["subscriptionType"] != "contact.propertyChange" ||
		n[1]["propertyName"] != "email" || n[1]["propertyValue"] != "ada@example.com" || n[1]["changeSource"] != "CRM_UI" {
		t.Errorf("notifications %v", n)
	}
	id := n[0]["objectId"].(float64)

	mu.Lock()
	fail = 1
	mu.Unlock()
	post("/_sandbox/edit/contacts/"+strconv.FormatInt(int64(id), 10), `{"properties":{"firstname":"Ada"}}`)
	n = waitFor(3)
	if n[2]["propertyName"] != "firstname" || n[2]["attemptNumber"] != float64(1) {
		t.Errorf("the retried notification %v, want attemptNumber 1", n[2])
	}
	// The sender counts a request once it has read the answer, a moment
	// after the receiver has the notifications.
	eventuallyTrue(t, "the sandbox counts the third request", func() bool {
		return sandboxGet(t, base, "/_sandbox/webhooks").Get("stats.requests").Int() == 3 &&
			sandboxGet(t, base, "/_sandbox/webhooks").Get("stats.delivered").Int() == 3
	})
	stats := sandboxGet(t, base, "/_sandbox/webhooks").Get("stats")
	if stats.Get("requests").Int() != 3 || stats.Get("succeeded").Int() != 2 || stats.Get("failed").Int() != 1 || stats.Get("delivered").Int() != 3 {
		t.Errorf("GET /_sandbox/webhooks: %s", stats.Raw)
	}
	if len(refused) != 0 {
		t.Errorf("refused signatures: %v", refused)
	}
}

// TestSandboxWebhookFlags refuses webhook flags that cannot work.
func TestSandboxWebhookFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--webhook-url", "http://127.0.0.1:1/x"}, "--client-secret"},
		{[]string{"--client-secret", "s"}, "need --webhook-url"},
		{[]string{"--webhook-url", "/relative", "--client-secret", "s"}, "absolute http or https URL"},
		{[]string{"--webhook-url", "http://127.0.0.1:1/x", "--client-secret", "s", "--webhook-retry-delays", "soon"}, "--webhook-retry-delays"},
		{[]string{"--webhook-url", "http://127.0.0.1:1/x", "--client-secret", "s", "--webhook-properties", "firstname"}, "type.property"},
		{[]string{"--webhook-url", "http://127.0.0.1:1/x", "--client-secret", "s", "--webhook-properties", "deals.hs_lastmodifieddate"}, "hs_lastmodifieddate"},
		{[]string{"--webhook-url", "http://127.0.0.1:1/x", "--client-secret", "s", "--webhook-concurrency", "0"}, "--webhook-concurrency"},
	} {
		var stderr bytes.Buffer
		args := append([]string{"hubspot-sandbox", "--addr", "127.0.0.1:0"}, c.args...)
		if code := run(context.Background(), args, io.Discard, &stderr); code == 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want an error naming %q", c.args, code, stderr.String(), c.want)
		}
	}
}
