package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
)

// TestNoSecretInAnythingARunWrites runs serve with a write key, a HubSpot
// token for the sandbox and a webhook destination with an Authorization
// header and a client secret, posts good and bad messages with write keys in
// their bodies, makes some deliveries fail, and then looks for every secret
// in everything the run wrote: the log, the answers, the dead letters and
// the metrics.
func TestNoSecretInAnythingARunWrites(t *testing.T) {
	const (
		writeKey     = "wk-live-S3CRET-write-key"
		wrongKey     = "wk-live-S3CRET-wrong-key"
		hubspotToken = "pat-na1-S3CRET-hubspot-token"
		hookBearer   = "hook-S3CRET-bearer-token"
		clientSecret = "client-S3CRET-secret"
	)
	secrets := []string{writeKey, wrongKey, hubspotToken, hookBearer, clientSecret}
	for _, s := range secrets[:5] {
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(s+":")), base64.StdEncoding.EncodeToString([]byte(s)))
	}

	sandboxAddr := freeAddr(t)
	sandbox := startReady(t, sandboxAddr, "/_sandbox/stats", "hubspot-sandbox", "--tier", "free", "--hub-id", "777", "--tokens", hubspotToken)
	receiver := webhooktest.NewServer(t)
	receiver.Script("hook-refused", 400) // dead-lettered by the webhook
	receiver.Script("hook-retried", 500, 200)
	cfgPath := writeConfig(t, fmt.Sprintf(`sources:
  - name: app
    write_keys: [%s]
destinations:
  - name: hook
    type: webhook
    backoff_min: 10ms
    backoff_max: 50ms
    webhook:
      url: %s
      headers:
        Authorization: "Bearer %s"
        X-Client-Secret: %s
  - name: crm
    type: hubspot
    hubspot:
      max_wait: 50ms
`, writeKey, receiver.URL, hookBearer, clientSecret))
	dataDir := t.TempDir()
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--config", cfgPath, "--data-dir", dataDir,
		"--hubspot-url", "http://"+sandboxAddr, "--hubspot-token", hubspotToken, "--hubspot-hub-id", "777", "--hubspot-tier", "free")

	var answers strings.Builder
	send := func(path, authorization, body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers.Write(raw)
		answers.WriteByte('\n')
		return resp.StatusCode
	}
	basicAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":"))
	wk := fmt.Sprintf(`"writeKey":%q`, writeKey)
	calls := []struct {
		path, authorization, body string
		status                    int
	}{
		{"/v1/batch", "", `{` + wk + `,"batch":[
		  {"type":"identify","userId":"ada","messageId":"ada-identify",` + wk + `,"traits":{"email":"ada@acme.example"}},
		  {"type":"track","userId":"ada","event":"Signed Up","messageId":"hook-retried",` + wk + `},
		  {"type":"track","userId":"ada","event":"Refused","messageId":"hook-refused",` + wk + `},
		  {"type":"track","userId":"ada","messageId":"no-event",` + wk + `},
		  {"type":"track","userId":"nobody","event":"No Email","messageId":"no-email",` + wk + `},
		  {"type":"identify","messageId":"no-ids",` + wk + `,"traits":{"token":"x"}}
		]}`, 200},
		{"/v1/track", basicAuth, `{"userId":"ada","messageId":"single-bad",` + wk + `}`, 400},
		{"/v1/track", "", `{"userId":"ada","event":"E","writeKey":"` + wrongKey + `"}`, 401},
		{"/v1/track", "Basic " + base64.StdEncoding.EncodeToString([]byte(wrongKey+":")), `{"userId":"ada","event":"E"}`, 401},
		{"/v1/identify", basicAuth, `{"userId":"grace","messageId":"grace-identify",` + wk + `,"traits":{"email":"grace@acme.example"}}`, 200},
	}
	for _, c := range calls {
		if got := send(c.path, c.authorization, c.body); got != c.status {
			t.Fatalf("POST %s %s: status %d, want %d", c.path, c.body, got, c.status)
		}
	}

	eventuallyTrue(t, "the failures are dead-lettered and the rest delivered", func() bool {
		hook, _ := scrapeCounter(addr, `switchyard_router_events_total{destination="hook",outcome="dead_lettered"}`)
		gateway, _ := scrapeCounter(addr, `switchyard_gateway_messages_total{outcome="invalid"}`)
		contacts := len(sandboxGet(t, "http://"+sandboxAddr, "/_sandbox/objects/contacts").Get("results").Array())
		return hook >= 1 && gateway >= 3 && contacts == 2 && receiver.Delivered("hook-retried") == 1
	})
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	srv.stop(t, syscall.SIGTERM)

	var letters strings.Builder
	dlq := tailAll(t, "--config", cfgPath, "--data-dir", dataDir, "--topic", "dlq")
	for _, d := range dlq {
		letters.WriteString(d.Raw + "\n")
	}
	stages := map[string]int{}
	for _, d := range dlq {
		stages[d.Get("stage").String()]++
	}
	if stages["gateway"] != 2 || stages["hook"] < 1 {
		t.Fatalf("dead letters by stage %v, want 2 from the gateway and the refused one from hook:\n%s", stages, letters.String())
	}
	written := map[string]string{
		"the serve log":     srv.logs(),
		"the sandbox log":   sandbox.logs(),
		"the answers":       answers.String(),
		"the dead letters":  letters.String(),
		"the metrics":       string(metrics),
		"the events (tail)": tailRaw(t, "--config", cfgPath, "--data-dir", dataDir, "--topic", "events"),
	}
	for what, text := range written {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret %q:\n%s", what, s, text)
			}
		}
	}
	t.Logf("checked %d secrets in %d log bytes, %d dead letters (%v), %d bytes of metrics", len(secrets), len(srv.logs()), len(dlq), stages, len(metrics))
}

// tailRaw is every message of a topic as tail prints it.
func tailRaw(t *testing.T, args ...string) string {
	t.Helper()
	var b strings.Builder
	for _, m := range tailAll(t, args...) {
		b.WriteString(m.Raw + "\n")
	}
	return b.String()
}

// TestAFloodOfDeadLettersWritesFewLogLines has a webhook refuse 2,000
// events and checks the log holds a bounded number of dead-letter lines
// while the metrics count every one.
func TestAFloodOfDeadLettersWritesFewLogLines(t *testing.T) {
	const n = 2000
	receiver := webhooktest.NewServer(t)
	receiver.Fail(400)
	cfgPath := routerConfigFile(t, receiver.URL, "")
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--config", cfgPath, "--data-dir", t.TempDir())
	began := time.Now()
	postAll(t, addr, "flood", n)
	eventuallyTrue(t, "every event is dead-lettered", func() bool {
		got, _ := scrapeCounter(addr, `switchyard_router_events_total{destination="hook",outcome="dead_lettered"}`)
		return got == n
	})
	seconds := int(time.Since(began).Seconds()) + 1
	lines := strings.Count(srv.logs(), `"msg":"dead-lettered"`)
	if lines == 0 || lines > logBurst*(seconds+1) {
		t.Fatalf("%d dead letters in %d s wrote %d log lines, want between 1 and %d", n, seconds, lines, logBurst*(seconds+1))
	}
	t.Logf("%d dead letters in %d s wrote %d log lines", n, seconds, lines)
}
