package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/router"
)

// shutdownTimeout bounds the wait for in-flight requests on SIGTERM.
const shutdownTimeout = 30 * time.Second

// httpServer is what a role serves over HTTP: the gateway, or the
// operational endpoints alone.
type httpServer struct {
	serve    func(net.Listener) error
	shutdown func(context.Context) error
}

// newRegistry returns a metrics registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// prepareTopics makes sure the topics exist before anything uses them.
func prepareTopics(ctx context.Context, log queue.Log, topics ...string) error {
	for _, topic := range topics {
		if _, err := log.Partitions(ctx, topic); err != nil {
			return fmt.Errorf("preparing topic %s: %w", topic, err)
		}
	}
	return nil
}

// gatewayServer serves the gateway, with its operational endpoints.
func gatewayServer(cfg ingest.Config, log queue.Log, logger *zap.Logger, reg *prometheus.Registry) (httpServer, error) {
	gw, err := ingest.New(cfg, log, logger, reg)
	if err != nil {
		return httpServer{}, err
	}
	app := gw.App()
	return serveClosingFresh(app.Listener, app.ShutdownWithContext, freshConnGrace), nil
}

// freshConnGrace is how long a shutting-down gateway waits for a
// connection that has sent nothing yet to send its request, as net/http
// waits for a new connection.
const freshConnGrace = 5 * time.Second

// serveClosingFresh serves with serve and shuts down with shutdown,
// closing meanwhile the connections that sent nothing for grace since
// they were accepted. fasthttp counts a connection active from its
// accept, so its shutdown would wait out the read timeout (30s) for one
// that a client opened and left unused, as HTTP clients' connection pools
// do when a dial loses the race to an idle connection.
func serveClosingFresh(serve func(net.Listener) error, shutdown func(context.Context) error, grace time.Duration) httpServer {
	conns := &freshConns{conns: make(map[*freshConn]time.Time)}
	return httpServer{
		serve: func(ln net.Listener) error { return serve(freshListener{ln, conns}) },
		shutdown: func(ctx context.Context) error {
			done := make(chan error, 1)
			go func() { done <- shutdown(ctx) }()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case err := <-done:
					return err
				case <-tick.C:
					conns.closeOlder(grace)
				}
			}
		},
	}
}

// freshConns are the accepted connections that have sent nothing yet,
// with when each was accepted.
type freshConns struct {
	mu    sync.Mutex
	conns map[*freshConn]time.Time
}

func (f *freshConns) forget(c *freshConn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// closeOlder closes the connections accepted more than grace ago that
// have sent nothing.
func (f *freshConns) closeOlder(grace time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c, accepted := range f.conns {
		if time.Since(accepted) >= grace {
			c.Conn.Close()
			delete(f.conns, c)
		}
	}
}

// freshListener tracks the connections it accepts until they send a byte.
type freshListener struct {
	net.Listener
	conns *freshConns
}

func (l freshListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := &freshConn{Conn: c, conns: l.conns}
	l.conns.mu.Lock()
	l.conns.conns[fc] = time.Now()
	l.conns.mu.Unlock()
	return fc, nil
}

// freshConn is an accepted connection, forgotten by its freshConns once
// it has sent a byte or is closed.
type freshConn struct {
	net.Conn
	conns *freshConns
	once  sync.Once
}

func (c *freshConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.once.Do(func() { c.conns.forget(c) })
	}
	return n, err
}

func (c *freshConn) Close() error {
	c.once.Do(func() { c.conns.forget(c) })
	return c.Conn.Close()
}

// opsServer serves /metrics, /healthz, /readyz, the admin endpoint and the
// delivery page, for the router role.
func opsServer(reg *prometheus.Registry, log queue.Log, health destinationHealth, sources hubspotSources, admin *syncAdmin, page *deliveryPage) httpServer {
	handler := opsHandler(reg, log, health, sources)
	admin.register(handler)
	page.register(handler)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	return httpServer{serve: srv.Serve, shutdown: srv.Shutdown}
}

// serveUntilDone serves srv on ln and runs the routers on topic and the
// sources until ctx ends, then stops the server first, the sources next and
// the routers last, so what the gateway accepted last still flows.
func serveUntilDone(ctx context.Context, srv httpServer, ln net.Listener, routers []*router.Router, sources hubspotSources, log queue.Log, topic string, logger *zap.Logger) error {
	routerCtx, stopRouters := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRouters()
	sourceCtx, stopSources := context.WithCancel(context.WithoutCancel(ctx))
	waitSources := sources.start(sourceCtx, log, logger)
	defer func() {
		stopSources()
		waitSources()
	}()
	var routing sync.WaitGroup
	for _, r := range routers {
		routing.Add(1)
		go func() {
			defer routing.Done()
			runRouter(routerCtx, r, log, topic, logger)
		}()
	}

	served := make(chan error, 1)
	go func() { served <- srv.serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests and batches")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.shutdown(shutdownCtx); err != nil {
		logger.Warn("shutting down the listener", zap.Error(err))
	}
	<-served
	stopSources()
	waitSources()
	stopRouters()
	routing.Wait()
	logger.Info("stopped")
	return nil
}

// runRouter keeps a router running on its consumer group until ctx ends,
// starting it again after a failure.
func runRouter(ctx context.Context, r *router.Router, log queue.Log, topic string, logger *zap.Logger) {
	for ctx.Err() == nil {
		err := func() error {
			sub, err := log.Subscribe(ctx, queue.SubscribeConfig{Group: r.Group(), Topic: topic})
			if err != nil {
				return fmt.Errorf("subscribing: %w", err)
			}
			defer sub.Close()
			return r.Run(ctx, sub)
		}()
		if err == nil || ctx.Err() != nil {
			return
		}
		logger.Error("router stopped; starting it again in 5s", zap.String("group", r.Group()), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

// destinationHealth holds the destinations that report their health
// (destinations.HealthReporter), by name.
type destinationHealth map[string]destinations.HealthReporter

// destinationState is one destination's health in /readyz's body.
type destinationState struct {
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
}

// states returns each destination's state, and whether all are healthy.
func (d destinationHealth) states() (map[string]destinationState, bool) {
	out := make(map[string]destinationState, len(d))
	all := true
	for name, hr := range d {
		ok, reason := hr.Health()
		out[name] = destinationState{Healthy: ok, Reason: reason}
		all = all && ok
	}
	return out, all
}

// register adds the gauge switchyard_destination_healthy{destination}: 1
// while the destination's service takes it, 0 while it refuses it.
func (d destinationHealth) register(reg prometheus.Registerer) error {
	for name, hr := range d {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "switchyard_destination_healthy",
			Help:        "1 while the destination's service takes it, 0 while it refuses it (for HubSpot: a token that is invalid, expired or lacks a scope).",
			ConstLabels: prometheus.Labels{"destination": name},
		}, func() float64 {
			if ok, _ := hr.Health(); ok {
				return 1
			}
			return 0
		})
		if err := reg.Register(g); err != nil {
			return err
		}
	}
	return nil
}

// readyDetails is what the gateway adds to /readyz: the destinations'
// states when serve also routes, and the hubspot sources' states. An
// unhealthy destination or source leaves the gateway ready, as it still
// takes events durably. Nil when there is nothing to add.
func readyDetails(d destinationHealth, sources hubspotSources, routing bool) func() map[string]any {
	if !routing && len(sources) == 0 {
		return nil
	}
	return func() map[string]any {
		out := map[string]any{}
		if routing {
			out["destinations"], _ = d.states()
		}
		if len(sources) > 0 {
			out["sources"], _ = sources.states()
		}
		return out
	}
}

// checkTokens makes each HubSpot destination's first call now, so a token
// HubSpot refuses is logged at start.
func (d destinationHealth) checkTokens(ctx context.Context) {
	for _, hr := range d {
		if h, ok := hr.(*hubspot.HubSpot); ok {
			_ = h.CheckToken(ctx) // a refusal is logged and kept in Health
		}
	}
}

// opsHandler serves /metrics, /healthz and /readyz for the router role.
// /readyz answers 503 while the log is unavailable or a destination or a
// hubspot source is unhealthy, naming each one's state in the body.
func opsHandler(reg *prometheus.Registry, log queue.Log, health destinationHealth, sources hubspotSources) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		states, healthy := health.states()
		body := map[string]any{"status": "ready", "destinations": states}
		sourcesHealthy := true
		if len(sources) > 0 {
			body["sources"], sourcesHealthy = sources.states()
		}
		if err := log.Check(ctx); err != nil {
			body["status"], body["reason"] = "unavailable", err.Error()
		} else if !healthy {
			body["status"], body["reason"] = "unavailable", "a destination is unhealthy"
		} else if !sourcesHealthy {
			body["status"], body["reason"] = "unavailable", "a source is unhealthy"
		}
		if body["status"] != "ready" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(body) //nolint:errcheck // the client went away
	})
	return mux
}
