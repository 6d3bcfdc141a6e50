package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
	"github.com/switchyard/switchyard/queue/kafka/kafkatest"
)

// contactMappings are the source settings of the tests of contacts alone.
const contactMappings = "      contacts: {firstname: first_name, lifecyclestage: lifecycle_stage}\n"

// hubspotSourceConfig is the config of the end-to-end tests: write key k
// for the app, a hubspot source crm-in on the sandbox at base with the
// settings mappings (lines indented under its hubspot block), a hubspot
// destination to it and a webhook destination to the app at appURL;
// extraLog is added to the log section.
func hubspotSourceConfig(base, secret, appURL, mappings, extraLog string) string {
	return `sources:
  - name: app
    write_keys: [k]
  - name: crm-in
    type: hubspot
    hubspot:
      token: pat-e2e
      url: ` + base + `
      client_secret: ` + secret + `
` + mappings + `      batch_wait: 200ms
log:
  partitions: 4
` + extraLog + `destinations:
  - name: crm
    type: hubspot
    hubspot:
      token: pat-e2e
      url: ` + base + `
      hub_id: 777
      max_wait: 50ms
  - name: app-hook
    type: webhook
    backoff_min: 100ms
    webhook:
      url: ` + appURL + `
`
}

// sandboxEdit changes (or, without an id in path, creates) a record as a
// person in HubSpot's UI would, and returns its id.
func sandboxEdit(t *testing.T, base, path, body string) string {
	t.Helper()
	resp, err := http.Post(base+"/_sandbox/edit/"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /_sandbox/edit/%s: %d %s", path, resp.StatusCode, raw)
	}
	return gjson.GetBytes(raw, "id").String()
}

// waitForContact waits for the contact of email to hold firstname and
// returns its id.
func waitForContact(t *testing.T, base, email, firstname string) string {
	t.Helper()
	var id string
	eventuallyTrueWithin(t, 30*time.Second, "the contact "+email+" with firstname "+firstname, func() bool {
		c := sandboxGet(t, base, "/_sandbox/objects/contacts").Get(`results.#(properties.email=="` + email + `")`)
		id = c.Get("id").String()
		return id != "" && c.Get("properties.firstname").String() == firstname
	})
	return id
}

// waitForSourceCalls waits until the app got n calls from source.
func waitForSourceCalls(t *testing.T, app *webhooktest.Server, source string, n int, logs func() string) []gjson.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.WaitFor(ctx, func(*webhooktest.Server) bool { return len(sourceCalls(app, source)) >= n }); err != nil {
		t.Fatalf("the app got %d calls from %s, want %d: %v\n%s", len(sourceCalls(app, source)), source, n, err, logs())
	}
	return sourceCalls(app, source)
}

// sourceCalls returns the calls the app's receiver got from the source
// named source.
func sourceCalls(app *webhooktest.Server, source string) []gjson.Result {
	var out []gjson.Result
	for _, d := range app.Received() {
		if c := gjson.ParseBytes(d.Body); c.Get("_switchyard.source").String() == source {
			out = append(out, c)
		}
	}
	return out
}

// TestHubSpotSourceReachesTheApp runs `switchyard hubspot-sandbox` as its
// own process, sending signed webhooks to `switchyard serve`, which has a
// webhook destination to a receiver standing for the app, a hubspot
// destination to the sandbox and a hubspot source on it: the app's identify
// makes a contact; a person's edit of it in HubSpot reaches the app as an
// identify of the user with the mapped traits; an unknown contact's edit
// and the destination's own writes emit nothing.
func TestHubSpotSourceReachesTheApp(t *testing.T) {
	const secret = "app-client-secret"
	addr := freeAddr(t)
	sandboxAddr := freeAddr(t)
	startReady(t, sandboxAddr, "/_sandbox/stats", "hubspot-sandbox", "--tier", "free", "--hub-id", "777",
		"--webhook-url", "http://"+addr+"/hubspot/webhooks/crm-in", "--client-secret", secret,
		"--webhook-retry-delays", "200ms,500ms,1s,2s")
	base := "http://" + sandboxAddr

	app := webhooktest.NewServer(t)
	cfgPath := writeConfig(t, hubspotSourceConfig(base, secret, app.URL, contactMappings, ""))
	srv := start(t, addr, "serve", "--config", cfgPath, "--data-dir", t.TempDir())
	counter := func(series string) float64 {
		v, _ := scrapeCounter(addr, series)
		return v
	}
	const (
		echoes   = `switchyard_hubspot_source_changes_total{source="crm-in",object_type="contacts",outcome="echo"}`
		unknown  = `switchyard_hubspot_source_changes_total{source="crm-in",object_type="contacts",outcome="unknown_user"}`
		emitted  = `switchyard_hubspot_source_changes_total{source="crm-in",object_type="contacts",outcome="emitted"}`
		identify = `switchyard_hubspot_source_calls_total{source="crm-in",type="identify"}`
	)

	// The app's identify makes a contact, through the hubspot destination;
	// the notifications of that write are echoes and emit nothing.
	post(t, addr, "/v1/identify", "k", `{"userId":"u-ada","traits":{"email":"ada@example.com","firstName":"Ada"}}`)
	contactID := waitForContact(t, base, "ada@example.com", "Ada")
	eventuallyTrueWithin(t, 20*time.Second, "the creation's notifications counted as echoes", func() bool { return counter(echoes) >= 1 })
	eventuallyTrueWithin(t, 20*time.Second, "the app gets its own identify", func() bool { return len(app.Received()) >= 1 })
	if calls := sourceCalls(app, "crm-in"); len(calls) != 0 || counter(identify) != 0 {
		t.Fatalf("the destination's own write came back: %d calls, %v counted", len(calls), counter(identify))
	}

	// A person edits Ada in HubSpot: the app gets the identify of u-ada.
	sandboxEdit(t, base, "contacts/"+contactID, `{"properties":{"firstname":"Augusta","lifecyclestage":"customer","lastname":"Lovelace"}}`)
	waitForSourceCalls(t, app, "crm-in", 1, srv.logs)
	calls := sourceCalls(app, "crm-in")
	c := calls[0]
	if len(calls) != 1 || c.Get("type").String() != "identify" || c.Get("userId").String() != "u-ada" ||
		c.Get("traits.first_name").String() != "Augusta" || c.Get("traits.lifecycle_stage").String() != "customer" {
		t.Fatalf("the app got %d calls from the source, first %s; want the identify of u-ada with the edit", len(calls), c.Raw)
	}
	if c.Get("traits.lastname").Exists() || c.Get("traits.email").Exists() || len(c.Get("traits").Map()) != 2 {
		t.Errorf("an unmapped property reached the app: %s", c.Get("traits").Raw)
	}
	if c.Get("_switchyard.hubspot.hubId").Int() != 777 || c.Get("_switchyard.hubspot.objectId").String() != contactID ||
		c.Get("context.externalIds.0.id").String() != contactID || !strings.HasPrefix(c.Get("messageId").String(), "hubspot-") {
		t.Errorf("the call does not say where it came from: %s", c.Raw)
	}

	// An unknown contact's edit emits nothing.
	before := counter(unknown)
	sandboxEdit(t, base, "contacts", `{"properties":{"email":"nobody@example.com","firstname":"No"}}`)
	eventuallyTrueWithin(t, 20*time.Second, "the unknown contact counted", func() bool { return counter(unknown) > before })

	// The destination's own write, of the app's next identify, emits
	// nothing either.
	echoed, identifies := counter(echoes), counter(identify)
	post(t, addr, "/v1/identify", "k", `{"userId":"u-ada","traits":{"email":"ada@example.com","firstName":"Ada"}}`)
	eventuallyTrueWithin(t, 20*time.Second, "the destination writes Ada back", func() bool {
		return sandboxGet(t, base, "/_sandbox/objects/contacts").Get(`results.#(id=="`+contactID+`").properties.firstname`).String() == "Ada"
	})
	eventuallyTrueWithin(t, 20*time.Second, "the write's notifications counted as echoes", func() bool { return counter(echoes) > echoed })
	time.Sleep(time.Second) // a batch's calls follow its echoes
	if got := counter(identify); got != identifies {
		t.Errorf("the source emitted %v identifies after the destination's write, want %v", got, identifies)
	}
	if n := len(sourceCalls(app, "crm-in")); n != int(identifies) {
		t.Errorf("the app got %d calls from the source, want %v\n%s", n, identifies, srv.logs())
	}
	if counter(emitted) != identifies {
		t.Errorf("emitted contacts %v, identifies %v", counter(emitted), identifies)
	}

	// /readyz names the source; an unsigned webhook is refused, and a name
	// that is no hubspot source is not found.
	if r := sandboxGet(t, "http://"+addr, "/readyz"); !r.Get("sources.crm-in.healthy").Bool() {
		t.Errorf("/readyz: %s", r.Raw)
	}
	for path, want := range map[string]int{"/hubspot/webhooks/crm-in": 401, "/hubspot/webhooks/app": 404} {
		resp, err := http.Post("http://"+addr+path, "application/json", strings.NewReader(`[]`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("an unsigned POST %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestHubSpotSourceUnderGatewayAndRouter runs the source split across
// processes on Kafka: `switchyard gateway` receives the sandbox's webhooks,
// `switchyard router` reads them and delivers the edit to the app.
func TestHubSpotSourceUnderGatewayAndRouter(t *testing.T) {
	const secret = "app-client-secret"
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	gwAddr, sandboxAddr := freeAddr(t), freeAddr(t)
	startReady(t, sandboxAddr, "/_sandbox/stats", "hubspot-sandbox", "--tier", "free", "--hub-id", "777",
		"--webhook-url", "http://"+gwAddr+"/hubspot/webhooks/crm-in", "--client-secret", secret,
		"--webhook-retry-delays", "200ms,500ms,1s,2s")
	base := "http://" + sandboxAddr
	app := webhooktest.NewServer(t)
	suffix := uniqueSuffix()
	cfgPath := writeConfig(t, hubspotSourceConfig(base, secret, app.URL, contactMappings, fmt.Sprintf(
		"  events_topic: hs-events-%s\n  dlq_topic: hs-dlq-%s\n  hubspot_notifications_topic: hs-notes-%s\n", suffix, suffix, suffix)))
	gw := start(t, gwAddr, "gateway", "--config", cfgPath, "--data-dir", t.TempDir(), "--kafka-brokers", brokers)
	rt := start(t, freeAddr(t), "router", "--config", cfgPath, "--data-dir", t.TempDir(), "--kafka-brokers", brokers)
	logs := func() string { return "gateway:\n" + gw.logs() + "\nrouter:\n" + rt.logs() }

	post(t, gwAddr, "/v1/identify", "k", `{"userId":"u-ada","traits":{"email":"ada@example.com","firstName":"Ada"}}`)
	contactID := waitForContact(t, base, "ada@example.com", "Ada")
	sandboxEdit(t, base, "contacts/"+contactID, `{"properties":{"firstname":"Augusta"}}`)
	c := waitForSourceCalls(t, app, "crm-in", 1, logs)[0]
	if c.Get("userId").String() != "u-ada" || c.Get("traits.first_name").String() != "Augusta" {
		t.Fatalf("the app got %s", c.Raw)
	}
	if n, _ := scrapeCounter(gwAddr, `switchyard_hubspot_source_notifications_total{source="crm-in"}`); n == 0 {
		t.Error("the gateway counted no notifications")
	}
	if r := sandboxGet(t, "http://"+rt.addr, "/readyz"); !r.Get("sources.crm-in.healthy").Bool() {
		t.Errorf("the router's /readyz: %s", r.Raw)
	}
}
