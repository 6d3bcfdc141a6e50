package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/ui"
)

// TestPageTesterMakesTheRequestsOfTransform checks that the delivery
// page's event tester, for each configured hubspot destination, gives the
// requests and notes `switchyard transform` prints for the same calls and
// the same destination, and tells per call what each trait became.
func TestPageTesterMakesTheRequestsOfTransform(t *testing.T) {
	path := writeConfig(t, `destinations:
  - {name: crm, type: hubspot, hubspot: {hub_id: 4242, token: pat-na1-secret}}
  - {name: crm-nested, type: hubspot, hubspot: {hub_id: 4242, token: pat-na1-secret, nested_json: true}}
  - {name: hook, type: webhook, webhook: {url: "http://127.0.0.1:1/"}}
`)
	cfg, _, err := setUp(newFlagSet("test", io.Discard), []string{"--config", path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	tester, err := newPageTester(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(tester.Destinations()); got != "[crm crm-nested]" {
		t.Fatalf("the tester offers %s, want the hubspot destinations [crm crm-nested]", got)
	}
	inputs, err := filepath.Glob("../../testdata/hubspot/*.input.json")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, input := range inputs {
		for _, dest := range tester.Destinations() {
			t.Run(filepath.Base(input)+"/"+dest, func(t *testing.T) {
				raw, err := os.ReadFile(input)
				if err != nil {
					t.Fatal(err)
				}
				var want, notes bytes.Buffer
				if err := transform(context.Background(), []string{"--config", path, "--destination", dest}, bytes.NewReader(raw), &want, &notes); err != nil {
					t.Fatalf("transform: %v\n%s", err, notes.String())
				}
				msgs, err := readMessages(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				calls := make([]json.RawMessage, len(msgs))
				for i, m := range msgs {
					calls[i] = m.Raw()
				}
				res, err := tester.DryRun(context.Background(), dest, calls)
				if err != nil {
					t.Fatal(err)
				}
				var got, gotNotes bytes.Buffer
				next := 0
				for _, b := range res.Batches {
					if b.First != next || b.Last < b.First {
						t.Fatalf("batch of calls %d-%d after call %d", b.First, b.Last, next-1)
					}
					next = b.Last + 1
					for _, rq := range b.Requests {
						body := rq.Body
						if body == nil {
							body = json.RawMessage("null")
						}
						line, _ := json.Marshal(dryRunRequest{Method: rq.Method, Path: rq.Path, Body: body})
						got.Write(line)
						got.WriteByte('\n')
					}
				}
				if next != len(calls) || len(res.Calls) != len(calls) {
					t.Fatalf("the batches end at call %d and %d calls are told of, want %d", next, len(res.Calls), len(calls))
				}
				for i, c := range res.Calls {
					if c.Result != "delivered" || c.Reason != "" {
						fmt.Fprintf(&gotNotes, "message %d (%s): %s: %s\n", i+1, msgs[i].Type(), c.Result, c.Reason)
					}
				}
				if got.Len() == 0 || got.String() != want.String() {
					t.Errorf("the tester's requests\n%s\ndiffer from transform's\n%s", got.String(), want.String())
				}
				if gotNotes.String() != notes.String() {
					t.Errorf("the tester's notes\n%s\ndiffer from transform's\n%s", gotNotes.String(), notes.String())
				}
				if strings.Contains(got.String(), "pat-na1-secret") {
					t.Error("a request carries the destination's token")
				}
				checkMapping(t, msgs[0].Type(), res.Calls[0])
			})
		}
	}
	if _, err := tester.DryRun(context.Background(), "hook", nil); err == nil {
		t.Error("a dry run of a webhook destination ran")
	}
}

// checkMapping checks that an identify's or group's table names a property
// for every trait it sent.
func checkMapping(t *testing.T, typ string, c ui.TesterCall) {
	t.Helper()
	if typ != "identify" && typ != "group" {
		return
	}
	if len(c.Mapping) == 0 {
		t.Fatalf("the first call (%s) has no trait table", typ)
	}
	for _, m := range c.Mapping {
		if m.Key == "" && m.Skipped == "" || m.Skipped == "" && m.Property == "" {
			t.Errorf("a trait row names no trait or property: %+v", m)
		}
	}
}
