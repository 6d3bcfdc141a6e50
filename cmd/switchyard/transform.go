package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
	"github.com/switchyard/switchyard/schemas"
)

// transform prints, one JSON per line, every HTTP request a HubSpot
// destination would send for the Segment messages on stdin. It runs the
// real destination, with the settings the configuration gives it, against
// an in-memory HubSpot sandbox reached without any network, seeded with the
// portal's properties from --properties, so the requests are the ones a
// real run would make against a new portal.
func transform(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("transform", stderr)
	destName := fs.String("destination", "hubspot", "`name` of a configured hubspot destination (with no destinations configured: hubspot)")
	hubID := fs.Int64("hub-id", 0, "HubSpot portal `id`, in custom event names (default: the destination's hub_id, else 12345678)")
	propsDir := fs.String("properties", "", "`dir` holding contacts.json and companies.json, HubSpot property-list responses; default: a new portal's properties")
	idProperty := fs.String("id-property", "", "contact `property` identify matches by: email, or a unique property holding the userId (default: the destination's id_property)")
	autoCreate := fs.Bool("auto-create-properties", false, "create unknown properties instead of skipping them (default: the destination's auto_create_properties)")
	cfg, _, err := setUp(fs, args, stderr)
	if err != nil {
		return err
	}
	hcfg, err := dryRunConfig(cfg, *destName)
	if err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "hub-id":
			hcfg.HubID = *hubID
		case "id-property":
			hcfg.IDProperty = *idProperty
		case "auto-create-properties":
			hcfg.AutoCreateProperties = *autoCreate
		}
	})
	if hcfg.HubID <= 0 {
		return fmt.Errorf("--hub-id: %d is not a portal id", hcfg.HubID)
	}
	msgs, err := readMessages(stdin)
	if err != nil {
		return err
	}

	var seed func(http.Handler) error
	if *propsDir != "" {
		seed = func(portal http.Handler) error { return seedProperties(portal, *propsDir) }
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	return dryRun(ctx, *destName, hcfg, seed, msgs, func(b dryRunBatch) error {
		for _, rq := range b.requests {
			line, err := json.Marshal(rq)
			if err != nil {
				return fmt.Errorf("printing a request: %w", err)
			}
			out.Write(line)
			out.WriteByte('\n')
		}
		for i, o := range b.outcomes {
			if o.Result != destinations.Delivered || o.Reason != "" {
				fmt.Fprintf(stderr, "message %d (%s): %s: %s\n", b.start+i+1, b.events[i].Type(), o.Result, o.Reason)
			}
		}
		return nil
	})
}

// dryRunRequest is one request a dry run made.
type dryRunRequest struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body"` // null for none
}

// dryRunBatch is one batch of a dry run: its events, from index start of
// the run's, the requests it made, in order, and what became of each
// event, with what each one's keys became.
type dryRunBatch struct {
	start    int
	events   []destinations.Event
	requests []dryRunRequest
	outcomes []destinations.Outcome
	mappings [][]hubspot.Mapping
}

// dryRun sends msgs through a new HubSpot destination named name, with the
// settings hcfg (see dryRunConfig), against a new in-memory sandbox reached
// without any network and seeded by seed when it is not nil, in batches of
// the destination's batch size, and gives each batch to each as it is
// done. It sends nothing anywhere and shares no state with a running
// destination.
func dryRun(ctx context.Context, name string, hcfg hubspot.Config, seed func(http.Handler) error, msgs []destinations.Event, each func(dryRunBatch) error) error {
	portal := sandbox.New(sandbox.Config{Tier: hcfg.Tier, HubID: hcfg.HubID})
	if seed != nil {
		if err := seed(portal); err != nil {
			return err
		}
	}
	rec := &recorder{handler: portal}
	client, err := hubspot.NewClient(hcfg, &http.Client{Transport: rec}, nil)
	if err != nil {
		return err
	}
	var mappings [][]hubspot.Mapping
	hcfg.Mapped = func(event int, m []hubspot.Mapping) {
		mappings[event] = append(mappings[event], m...)
	}
	h, err := hubspot.New(name, hcfg, client, nil)
	if err != nil {
		return err
	}
	defer h.Close()
	max := h.Policy().MaxItems
	for start := 0; start < len(msgs); start += max {
		batch := msgs[start:min(len(msgs), start+max)]
		mappings = make([][]hubspot.Mapping, len(batch))
		outcomes := h.Send(ctx, batch)
		if rec.err != nil {
			return rec.err
		}
		if err := each(dryRunBatch{start: start, events: batch, requests: rec.take(), outcomes: outcomes, mappings: mappings}); err != nil {
			return err
		}
	}
	return nil
}

// dryRunConfig returns the settings of the named hubspot destination for a
// dry run: its own mapping settings, with the token and address of the
// in-memory sandbox, on the tier with the most room, and no state on disk.
func dryRunConfig(cfg config, name string) (hubspot.Config, error) {
	_, dc, err := findDestination(cfg, name)
	if err != nil {
		return hubspot.Config{}, err
	}
	if dc.Type != "hubspot" {
		return hubspot.Config{}, fmt.Errorf("--destination: %q is a %s destination, which has no dry run; only hubspot does", name, dc.Type)
	}
	h := dc.HubSpot
	h.Token, h.BaseURL, h.Tier = "dry-run", "https://api.hubapi.com", "api-add-on"
	if h.HubID == 0 {
		h.HubID = sandboxHubID
	}
	return h, nil
}

// readMessages reads one JSON message per line, or batch envelopes whose
// items are taken in order.
func readMessages(r io.Reader) ([]destinations.Event, error) {
	var msgs []destinations.Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if !gjson.Valid(text) {
			return nil, fmt.Errorf("stdin line %d is not valid JSON", line)
		}
		v := gjson.Parse(text)
		items := []gjson.Result{v}
		if b := v.Get("batch"); b.IsArray() {
			items = b.Array()
		}
		for _, item := range items {
			if !item.IsObject() {
				return nil, fmt.Errorf("stdin line %d: a message must be a JSON object", line)
			}
			msgs = append(msgs, destinations.Event{Event: schemas.NewEvent([]byte(item.Raw)), Attempt: 1})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading stdin: %w", err)
	}
	return msgs, nil
}

// seedProperties creates, in the sandbox, the properties of dir's
// contacts.json and companies.json it does not have yet.
func seedProperties(sandbox http.Handler, dir string) error {
	for _, object := range []string{"contacts", "companies"} {
		raw, err := os.ReadFile(filepath.Join(dir, object+".json"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("--properties: %w", err)
		}
		list := gjson.ParseBytes(raw).Get("results")
		if !list.IsArray() {
			return fmt.Errorf("--properties: %s/%s.json is not a property list ({\"results\":[...]})", dir, object)
		}
		for _, p := range list.Array() {
			group := p.Get("groupName").String()
			if group == "" {
				group = "switchyard"
			}
			call(sandbox, "POST", "/crm/v3/properties/"+object+"/groups", fmt.Sprintf(`{"name":%q,"label":%q}`, group, group))
			body := p.Raw
			if p.Get("groupName").String() == "" {
				body = `{"groupName":"switchyard",` + strings.TrimPrefix(strings.TrimSpace(p.Raw), "{")
			}
			status, answer := call(sandbox, "POST", "/crm/v3/properties/"+object, body)
			if status >= 300 && !strings.Contains(answer, "already exists") {
				return fmt.Errorf("--properties: %s property %s: %s", object, p.Get("name").String(), gjson.Get(answer, "message").String())
			}
		}
	}
	return nil
}

func call(h http.Handler, method, path, body string) (int, string) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer dry-run")
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// recorder is an http.RoundTripper that keeps each request and answers it
// from a handler, in memory.
type recorder struct {
	handler  http.Handler
	mu       sync.Mutex
	requests []dryRunRequest
	err      error
}

// take returns the requests kept since the last take.
func (r *recorder) take() []dryRunRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	reqs := r.requests
	r.requests = nil
	return reqs
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	path := req.URL.Path
	if req.URL.RawQuery != "" {
		path += "?" + req.URL.RawQuery
	}
	kept := json.RawMessage("null")
	if len(body) > 0 {
		if !json.Valid(body) {
			r.mu.Lock()
			r.err = cmp.Or(r.err, fmt.Errorf("%s %s: the body is not JSON", req.Method, path))
			r.mu.Unlock()
		}
		kept = body
	}
	r.mu.Lock()
	r.requests = append(r.requests, dryRunRequest{Method: req.Method, Path: path, Body: kept})
	r.mu.Unlock()

	served := req.Clone(req.Context())
	served.Body = io.NopCloser(bytes.NewReader(body))
	served.RequestURI = ""
	w := httptest.NewRecorder()
	r.handler.ServeHTTP(w, served)
	return w.Result(), nil
}
