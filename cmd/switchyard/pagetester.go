package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/schemas"
	"github.com/switchyard/switchyard/ui"
)

// pageTester is the delivery page's event tester: the dry run of
// `switchyard transform` for each configured hubspot destination, over a
// new portal's properties. Each run has a sandbox and a destination of its
// own, so it sends nothing and leaves the running destinations alone.
type pageTester struct {
	names   []string
	configs map[string]hubspot.Config
}

// newPageTester returns the tester of cfg's hubspot destinations, or nil
// when there is none.
func newPageTester(cfg config) (ui.Tester, error) {
	t := &pageTester{configs: map[string]hubspot.Config{}}
	for _, dc := range cfg.Destinations {
		if dc.Type != "hubspot" {
			continue
		}
		hcfg, err := dryRunConfig(cfg, dc.Name)
		if err != nil {
			return nil, err
		}
		t.names = append(t.names, dc.Name)
		t.configs[dc.Name] = hcfg
	}
	if len(t.names) == 0 {
		return nil, nil
	}
	return t, nil
}

// Destinations implements ui.Tester.
func (t *pageTester) Destinations() []string { return t.names }

// DryRun implements ui.Tester.
func (t *pageTester) DryRun(ctx context.Context, destination string, calls []json.RawMessage) (ui.TesterResult, error) {
	hcfg, ok := t.configs[destination]
	if !ok {
		return ui.TesterResult{}, fmt.Errorf("no hubspot destination named %q", destination)
	}
	msgs := make([]destinations.Event, len(calls))
	for i, c := range calls {
		msgs[i] = destinations.Event{Event: schemas.NewEvent(c), Attempt: 1}
	}
	var res ui.TesterResult
	err := dryRun(ctx, destination, hcfg, nil, msgs, func(b dryRunBatch) error {
		batch := ui.TesterBatch{First: b.start, Last: b.start + len(b.events) - 1}
		for _, rq := range b.requests {
			tr := ui.TesterRequest{Method: rq.Method, Path: rq.Path}
			if string(rq.Body) != "null" {
				tr.Body = rq.Body
			}
			batch.Requests = append(batch.Requests, tr)
		}
		res.Batches = append(res.Batches, batch)
		for i, o := range b.outcomes {
			call := ui.TesterCall{Result: o.Result.String(), Class: o.Class, Reason: o.Reason}
			for _, m := range b.mappings[i] {
				call.Mapping = append(call.Mapping, ui.TesterMapping{Object: m.Object, Key: m.Key, Property: m.Property, Value: m.Value, Skipped: m.Skipped, Created: m.Created})
			}
			res.Calls = append(res.Calls, call)
		}
		return nil
	})
	return res, err
}
