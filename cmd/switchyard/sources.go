package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/queue"
	hubspotsource "github.com/switchyard/switchyard/sources/hubspot"
)

// sourceRestartPause is how long a source's directory or processor that
// stopped with an error waits before it starts again.
const sourceRestartPause = 5 * time.Second

// ownershipCheck is how often a source's processor asks whether it owns
// partition 0 of the notifications topic, which makes it the process that
// runs the source's catch-up schedule and email poller.
const ownershipCheck = time.Second

// syncer runs a source's catch-up and full sync: hubspotsource.Syncer.
type syncer interface {
	// Run runs one sync to its end, calling report after each page and at
	// the end; hubspotsource.ErrSyncRunning while another runs.
	Run(ctx context.Context, req hubspotsource.SyncRequest, report func(hubspotsource.Progress)) error
	// Progress returns the running sync's progress, or the last one's;
	// false when none ran in this process.
	Progress() (hubspotsource.Progress, bool)
	// RunSchedule runs the catch-up every catch_up_interval until ctx ends.
	RunSchedule(ctx context.Context) error
}

// runner is a part of a source that runs until ctx ends, such as the
// email poller.
type runner func(ctx context.Context) error

// sourceParts builds a source's syncer and email poller (hubspotParts in
// production).
type sourceParts struct {
	newSyncer      func(p *hubspotsource.Processor, dir *hubspotsource.Directory, logger *zap.Logger) syncer
	newEmailPoller func(cfg hubspotsource.Config, log queue.Log, client *api.Client, dir *hubspotsource.Directory, m *hubspotsource.Metrics, logger *zap.Logger) (runner, error)
}

// hubspotSource is one hubspot source as a role runs it: the receiver
// under the gateway; the directory, the processor, the syncer and the email
// poller under the router.
type hubspotSource struct {
	cfg       hubspotsource.Config
	receiver  *hubspotsource.Receiver
	directory *hubspotsource.Directory
	processor *hubspotsource.Processor
	// syncs runs the syncs the admin endpoint asks for; emailPoller is nil
	// unless email_events is on.
	syncs       *syncJobs
	emailPoller runner

	mu sync.Mutex
	// failure says why the directory or the processor is stopped, waiting
	// to start again; "" while both run.
	failure string
}

// hubspotSources are the process's hubspot sources.
type hubspotSources []*hubspotSource

// buildSources builds the hubspot sources configs (cfg.hubspotSources) for
// the roles run: receivers with the gateway; directories, processors,
// syncers and email pollers (built by parts) with the routers, reading
// HubSpot through clients. Build the destinations first, so a source shares
// their client and tier.
func buildSources(cfg config, configs []hubspotsource.Config, log queue.Log, clients *hubspotClients, reg prometheus.Registerer, logger *zap.Logger, parts sourceParts, withGateway, withRouters bool) (hubspotSources, error) {
	if len(configs) == 0 {
		return nil, nil
	}
	metrics, err := hubspotsource.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	var out hubspotSources
	for _, sc := range configs {
		key := sourceKey(cfg, sc.Name)
		s := &hubspotSource{cfg: sc}
		out = append(out, s)
		if withGateway {
			if s.receiver, err = hubspotsource.NewReceiver(sc, log, metrics, logger); err != nil {
				out.Close()
				return nil, fmt.Errorf("%s: %w", key, err)
			}
		}
		if !withRouters {
			continue
		}
		client, err := clients.sourceClient(key, sc.URL, sc.Token)
		if err != nil {
			out.Close()
			return nil, err
		}
		if s.directory, err = hubspotsource.OpenDirectory(sc, logger); err != nil {
			out.Close()
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if s.processor, err = hubspotsource.NewProcessor(sc, log, client, s.directory, metrics, logger); err != nil {
			out.Close()
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		s.syncs = newSyncJobs(sc.Name, parts.newSyncer(s.processor, s.directory, logger))
		if sc.EmailEvents {
			if s.emailPoller, err = parts.newEmailPoller(sc, log, client, s.directory, metrics, logger); err != nil {
				out.Close()
				return nil, fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	return out, nil
}

// sourceKey is the config key of the source named name, such as sources[1].
func sourceKey(cfg config, name string) string {
	for i, s := range cfg.Sources {
		if s.Name == name {
			return fmt.Sprintf("sources[%d]", i)
		}
	}
	return "sources"
}

// webhookPath is the route of the hubspot sources' receivers, as Fiber
// writes a path parameter: /hubspot/webhooks/{source}.
const webhookPath = "/hubspot/webhooks/:source"

// route is the gateway route of the sources' receivers, served whether or
// not any source is of type hubspot, as the gateway's OpenAPI document has
// it: each source's receiver at /hubspot/webhooks/{name}, 404 for any other
// name.
func (ss hubspotSources) route() ingest.Route {
	receivers := make(map[string]*hubspotsource.Receiver)
	for _, s := range ss {
		if s.receiver != nil {
			receivers[s.receiver.Path()] = s.receiver
		}
	}
	return ingest.Route{Method: http.MethodPost, Path: webhookPath, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rc, ok := receivers[r.URL.Path]; ok {
			rc.ServeHTTP(w, r)
			return
		}
		msg := "no hubspot source is served at " + r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]any{"success": false, "code": "not_found", "message": msg, "error": msg}) //nolint:errcheck // the client went away
	})}
}

// topics are the topics the sources use besides the events topic.
func (ss hubspotSources) topics() []string {
	if len(ss) == 0 {
		return nil
	}
	return []string{ss[0].cfg.NotificationsTopic}
}

// start runs each source's directory and processor until ctx ends, each
// started again after a failure, with the catch-up schedule and the email
// poller in the process that owns partition 0 of the notifications topic
// (see lead), and the syncs the admin endpoint asks for; it returns the
// function that waits for them all to return.
func (ss hubspotSources) start(ctx context.Context, log queue.Log, logger *zap.Logger) (wait func()) {
	var wg sync.WaitGroup
	for _, s := range ss {
		if s.directory == nil {
			continue
		}
		l := logger.With(zap.String("source", s.cfg.Name))
		s.syncs.open(ctx)
		wg.Add(3)
		go func() {
			defer wg.Done()
			s.syncs.wait()
		}()
		go func() {
			defer wg.Done()
			s.keepRunning(ctx, "directory", l, func(ctx context.Context) error { return s.directory.Run(ctx, log) })
		}()
		go func() {
			defer wg.Done()
			s.keepRunning(ctx, "processor", l, func(ctx context.Context) error {
				sub, err := log.Subscribe(ctx, queue.SubscribeConfig{Group: s.cfg.Group(), Topic: s.cfg.NotificationsTopic})
				if err != nil {
					return fmt.Errorf("subscribing: %w", err)
				}
				defer sub.Close()
				leadCtx, stopLeading := context.WithCancel(ctx)
				led := make(chan struct{})
				go func() {
					defer close(led)
					s.lead(leadCtx, sub, l)
				}()
				err = s.processor.Run(ctx, sub)
				stopLeading()
				<-led
				return err
			})
		}()
	}
	return wg.Wait
}

// lead runs the source's catch-up schedule and, with email_events, its
// email poller while owner (the processor's subscription) owns partition 0
// of the notifications topic, so that of the processes sharing the topic on
// Kafka one runs them, and on the embedded log the one process does. It
// checks every ownershipCheck, stops them when the partition moves away
// and returns once they have stopped after ctx ends.
func (s *hubspotSource) lead(ctx context.Context, owner queue.PartitionOwner, logger *zap.Logger) {
	var (
		stop    context.CancelFunc
		running sync.WaitGroup
	)
	resign := func() {
		if stop != nil {
			stop()
			running.Wait()
			stop = nil
			logger.Info("no longer runs the HubSpot source's catch-up schedule and email poller")
		}
	}
	defer resign()
	tick := time.NewTicker(ownershipCheck)
	defer tick.Stop()
	for {
		owned, _, err := owner.Owned(ctx)
		switch leader := err == nil && slices.Contains(owned, 0); {
		case leader && stop == nil:
			partCtx, cancel := context.WithCancel(ctx)
			stop = cancel
			logger.Info("runs the HubSpot source's catch-up schedule and email poller: it owns partition 0 of the notifications topic")
			parts := map[string]runner{"catch-up schedule": s.syncs.syncer.RunSchedule}
			if s.emailPoller != nil {
				parts["email poller"] = s.emailPoller
			}
			for name, run := range parts {
				running.Add(1)
				go func() {
					defer running.Done()
					s.keepRunning(partCtx, name, logger, run)
				}()
			}
		case !leader && stop != nil && ctx.Err() == nil:
			resign()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// keepRunning runs part until ctx ends, starting it again after a failure,
// which the source's health names meanwhile.
func (s *hubspotSource) keepRunning(ctx context.Context, part string, logger *zap.Logger, run func(context.Context) error) {
	for ctx.Err() == nil {
		err := run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("stopped")
		}
		s.setFailure(part + ": " + err.Error())
		logger.Error("HubSpot source stopped; starting it again", zap.String("part", part), zap.Duration("in", sourceRestartPause), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(sourceRestartPause):
		}
		s.setFailure("")
	}
}

func (s *hubspotSource) setFailure(reason string) {
	s.mu.Lock()
	s.failure = reason
	s.mu.Unlock()
}

// sourceState is one source's health in /readyz's body.
type sourceState struct {
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
}

// states returns each source's state, and whether all are healthy.
func (ss hubspotSources) states() (map[string]sourceState, bool) {
	out := make(map[string]sourceState, len(ss))
	all := true
	for _, s := range ss {
		s.mu.Lock()
		reason := s.failure
		s.mu.Unlock()
		out[s.cfg.Name] = sourceState{Healthy: reason == "", Reason: reason}
		all = all && reason == ""
	}
	return out, all
}

// Close closes the sources' directories, once what start ran has returned.
func (ss hubspotSources) Close() {
	for _, s := range ss {
		if s.directory != nil {
			s.directory.Close()
		}
	}
}
