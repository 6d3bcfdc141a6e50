package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
)

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
	cfgPath := writeConfig(t, `sources:
  - name: app
    write_keys: [k]
  - name: crm-in
    type: hubspot
    hubspot:
      token: pat-e2e
      url: `+base+`
      client_secret: `+secret+`
      contacts: {firstname: first_name, lifecyclestage: lifecycle_stage}
      batch_wait: 200ms
destinations:
  - name: crm
    type: hubspot
    hubspot:
      token: pat-e2e
      url: `+base+`
      hub_id: 777
      max_wait: 50ms
  - name: app-hook
    type: webhook
    backoff_min: 100ms
    webhook:
      url: `+app.URL+`
`)
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
	var contactID string
	eventuallyTrueWithin(t, 20*time.Second, "the destination creates Ada's contact", func() bool {
		c := sandboxGet(t, base, "/_sandbox/objects/contacts").Get(`results.#(properties.email=="ada@example.com")`)
		contactID = c.Get("id").String()
		return contactID != "" && c.Get("properties.firstname").String() == "Ada"
	})
	eventuallyTrueWithin(t, 20*time.Second, "the creation's notifications counted as echoes", func() bool { return counter(echoes) >= 1 })
	eventuallyTrueWithin(t, 20*time.Second, "the app gets its own identify", func() bool { return len(app.Received()) >= 1 })
	if calls := sourceCalls(app, "crm-in"); len(calls) != 0 || counter(identify) != 0 {
		t.Fatalf("the destination's own write came back: %d calls, %v counted", len(calls), counter(identify))
	}

	// A person edits Ada in HubSpot: the app gets the identify of u-ada.
	edit := func(path, body string) string {
		t.Helper()
		resp, err := http.Post(base+"/_sandbox/edit/"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST /_sandbox/edit/%s: %d", path, resp.StatusCode)
		}
		raw, _ := io.ReadAll(resp.Body)
		return gjson.GetBytes(raw, "id").String()
	}
	edit("contacts/"+contactID, `{"properties":{"firstname":"Augusta","lifecyclestage":"customer","lastname":"Lovelace"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := app.WaitFor(ctx, func(*webhooktest.Server) bool { return len(sourceCalls(app, "crm-in")) >= 1 }); err != nil {
		t.Fatalf("the edit did not reach the app: %v\n%s", err, srv.logs())
	}
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
	edit("contacts", `{"properties":{"email":"nobody@example.com","firstname":"No"}}`)
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
