package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/router"
	hubspotsource "github.com/switchyard/switchyard/sources/hubspot"
	"github.com/switchyard/switchyard/ui"
)

// uiPath is where a process serves the delivery page: the page and its
// assets under it, the live stream at uiStreamPath.
const (
	uiPath       = "/ui"
	uiStreamPath = "/ui/stream"
)

// deliveryPage is a process's delivery page.
type deliveryPage struct {
	*ui.Handler
	ctx context.Context
}

// newDeliveryPage builds the page of cfg (its panels' views, the admin
// token: none means loopback only) on ctx. Its sampler and every open
// stream end when ctx ends, which must come before the server's shutdown so
// that no stream holds it up.
func newDeliveryPage(ctx context.Context, cfg ui.Config) (*deliveryPage, error) {
	cfg.Context = ctx
	h, err := ui.New(cfg)
	if err != nil {
		return nil, err
	}
	return &deliveryPage{Handler: h.(*ui.Handler), ctx: ctx}, nil
}

// pageDeadLetters is the page's dead-letter panel over the process's own
// log: its replays run in this process, as replay --dlq would, for on the
// embedded log the process holds the log. They share the process's HubSpot
// clients, and so its rate budget, and the destinations its routers deliver
// to (live, by name; nil when it runs none). outcomes, when the process runs
// routers, learns the replays' outcomes too (nil otherwise).
func pageDeadLetters(cfg config, log queue.Log, logger *zap.Logger, clients *hubspotClients, live map[string]destinations.Destination, outcomes *router.Outcomes) ui.DeadLetters {
	var observer router.Observer
	if outcomes != nil {
		observer = outcomes
	}
	return ui.DeadLetters{
		Log:   log,
		Topic: cfg.dlqTopic(),
		Replay: func(ctx context.Context, destination string, pick func(queue.Message) bool, progress func(ui.ReplayProgress)) error {
			return replayDeadLetters(ctx, cfg, log, logger, clients, live, observer, destination, pick, progress)
		},
	}
}

// pageSyncs is the page's view of the syncs a (the admin endpoint) runs
// and shows: nil when the process syncs no source.
func pageSyncs(a *syncAdmin) ui.Syncs {
	if len(a.jobs) == 0 {
		return nil
	}
	return adminSyncs{a}
}

// adminSyncs shows the page what GET /admin/sources/{source}/sync answers,
// and starts a full sync as POST does.
type adminSyncs struct{ admin *syncAdmin }

func (s adminSyncs) Progress() []ui.SourceSync {
	out := make([]ui.SourceSync, 0, len(s.admin.jobs))
	for name, jobs := range s.admin.jobs {
		p, ok := jobs.progress()
		if !ok {
			out = append(out, ui.SourceSync{Source: name})
			continue
		}
		out = append(out, ui.SourceSync{
			Source: name, Kind: p.Kind, State: p.State, ObjectType: p.ObjectType,
			Done: p.Done, Emitted: p.Emitted, Total: p.Total,
			Started: p.Started, Updated: p.Updated, Error: p.Error,
		})
	}
	return out
}

func (s adminSyncs) StartFull(source string) error {
	jobs := s.admin.jobs[source]
	if jobs == nil {
		return fmt.Errorf("no hubspot source named %q is synced by this process", source)
	}
	_, err := jobs.start(hubspotsource.SyncRequest{Full: true})
	if errors.Is(err, hubspotsource.ErrSyncRunning) {
		return ui.ErrSyncRunning
	}
	return err
}

// recentOutcomesPerDestination is how many outcomes the page keeps per
// destination for its live events.
const recentOutcomesPerDestination = 10_000

// newRecentOutcomes keeps the latest outcomes of cfg's destinations for the
// page.
func newRecentOutcomes(cfg config) *router.Outcomes {
	names := make([]string, len(cfg.Destinations))
	for i, dc := range cfg.Destinations {
		names[i] = dc.Name
	}
	return router.NewOutcomes(recentOutcomesPerDestination, names...)
}

// liveEvents is what the page's live events read: the events and
// dead-letter topics of log and, when the process runs routers, their
// outcomes (nil otherwise).
func liveEvents(cfg config, log queue.Log, outcomes *router.Outcomes) ui.LiveConfig {
	live := ui.LiveConfig{Log: log, Topic: cfg.eventsTopic(), DLQTopic: cfg.dlqTopic()}
	if outcomes != nil {
		live.Outcomes = outcomes
	}
	return live
}

// gatewayRoutes are the page's routes on the gateway: the page through
// net/http, the stream natively on Fiber, which cannot flush through its
// net/http adaptor.
func (p *deliveryPage) gatewayRoutes() (ingest.Route, ingest.StreamRoute) {
	return ingest.Route{Path: uiPath, Prefix: true, Handler: p.Handler},
		ingest.StreamRoute{Path: uiStreamPath, Open: p.openStream}
}

func (p *deliveryPage) openStream(r *http.Request) (ingest.Stream, int, error) {
	s, status, err := p.OpenStream(r)
	if err != nil {
		return ingest.Stream{}, status, err
	}
	return ingest.Stream{
		Headers: ui.StreamHeaders,
		Run:     func(w *bufio.Writer) error { return s.Run(p.ctx, w, w.Flush) },
	}, http.StatusOK, nil
}

// register serves the page, stream included, on mux.
func (p *deliveryPage) register(mux *http.ServeMux) {
	mux.Handle(uiPath, p.Handler)
	mux.Handle(uiPath+"/", p.Handler)
}

// gatewayReady is the gateway's readiness, as its /readyz answers it: the
// log takes writes.
func gatewayReady(log queue.Log) func(context.Context) error {
	return log.Check
}

// routerReady is the router role's readiness, as its /readyz answers it:
// the log takes writes and every destination and hubspot source is healthy.
func routerReady(log queue.Log, health destinationHealth, sources hubspotSources) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := log.Check(ctx); err != nil {
			return err
		}
		if _, healthy := health.states(); !healthy {
			return errors.New("a destination is unhealthy")
		}
		if len(sources) > 0 {
			if _, healthy := sources.states(); !healthy {
				return errors.New("a source is unhealthy")
			}
		}
		return nil
	}
}
