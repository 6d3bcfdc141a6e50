package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/router"
)

// shutdownTimeout bounds the wait for in-flight requests on SIGTERM.
const shutdownTimeout = 30 * time.Second

// serve runs the roles of a command: "serve" runs the gateway and a router
// per destination, "gateway" the gateway alone, "router" the routers alone.
func serve(ctx context.Context, name string, args []string, stderr io.Writer) error {
	fs := newFlagSet(name, stderr)
	var opts options
	opts.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := opts.load(fs, os.LookupEnv)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	defer logger.Sync() //nolint:errcheck // nothing to do about a failed flush of stderr

	runGateway, runRouters := name != "router", name != "gateway"
	gwCfg := cfg.gatewayConfig()
	if runGateway {
		if err := gwCfg.Validate(); err != nil {
			return err
		}
	}
	if name == "router" && len(cfg.Destinations) == 0 {
		return errors.New("destinations: the router needs at least one destination")
	}
	if name == "serve" {
		stopSandbox, err := sandboxTokenlessHubSpot(&cfg, logger)
		if err != nil {
			return err
		}
		defer stopSandbox()
	}
	log, backend, err := openLog(cfg, logger)
	if err != nil {
		return err
	}
	defer log.Close()
	for _, topic := range []string{cfg.eventsTopic(), cfg.dlqTopic()} {
		if _, err := log.Partitions(ctx, topic); err != nil {
			return fmt.Errorf("preparing topic %s: %w", topic, err)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var routers []*router.Router
	if runRouters {
		metrics, err := router.NewMetrics(reg)
		if err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		hubspotMetrics, err := hubspot.NewMetrics(reg)
		if err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		deps := destinationDeps{logger: logger, dataDir: cfg.DataDir, hubspotMetrics: hubspotMetrics}
		var release func()
		if routers, release, err = buildRouters(cfg, log, deps, metrics); err != nil {
			return err
		}
		defer release()
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("addr: listening on %s: %w", cfg.Addr, err)
	}
	var httpServe func() error
	var httpShutdown func(context.Context) error
	if runGateway {
		gw, err := ingest.New(gwCfg, log, logger, reg)
		if err != nil {
			return err
		}
		app := gw.App()
		httpServe = func() error { return app.Listener(ln) }
		httpShutdown = app.ShutdownWithContext
	} else {
		srv := &http.Server{Handler: opsHandler(reg, log), ReadHeaderTimeout: 10 * time.Second}
		httpServe = func() error { return srv.Serve(ln) }
		httpShutdown = srv.Shutdown
	}
	logger.Info("listening", zap.String("role", name), zap.String("addr", ln.Addr().String()),
		zap.String("log", backend), zap.Int("sources", len(gwCfg.Sources)), zap.Int("destinations", len(routers)))

	// Routers stop after the gateway, so what it accepted last still flows.
	routerCtx, stopRouters := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRouters()
	var routing sync.WaitGroup
	for _, r := range routers {
		routing.Add(1)
		go func() {
			defer routing.Done()
			runRouter(routerCtx, r, log, cfg.eventsTopic(), logger)
		}()
	}

	served := make(chan error, 1)
	go func() { served <- httpServe() }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests and batches")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := httpShutdown(shutdownCtx); err != nil {
		logger.Warn("shutting down the listener", zap.Error(err))
	}
	<-served
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

// opsHandler serves /metrics, /healthz and /readyz for the router role.
func opsHandler(reg *prometheus.Registry, log queue.Log) http.Handler {
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
		if err := log.Check(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"status":"unavailable","reason":%q}`, err.Error())
			return
		}
		io.WriteString(w, `{"status":"ready"}`)
	})
	return mux
}

// gatewayConfig maps the file's gateway section, sources and topics.
func (c config) gatewayConfig() ingest.Config {
	g := c.Gateway
	out := ingest.Config{
		MaxMessageBytes:  g.MaxMessageBytes,
		MaxRequestBytes:  g.MaxRequestBytes,
		MaxBatchMessages: g.MaxBatchMessages,
		DedupeWindow:     time.Duration(g.DedupeWindow),
		DedupeEntries:    g.DedupeEntries,
		CORSOrigins:      g.CORSOrigins,
		ProxyHeader:      g.ProxyHeader,
		MaxInFlight:      g.MaxInFlight,
		PublishTimeout:   time.Duration(g.PublishTimeout),
		EventsTopic:      c.eventsTopic(),
		DLQTopic:         c.dlqTopic(),
	}
	for _, s := range c.Sources {
		out.Sources = append(out.Sources, ingest.Source{Name: s.Name, WriteKeys: s.WriteKeys})
	}
	return out
}

func (c config) eventsTopic() string {
	if c.Log.EventsTopic == "" {
		return "events"
	}
	return c.Log.EventsTopic
}

func (c config) dlqTopic() string {
	if c.Log.DLQTopic == "" {
		return "dlq"
	}
	return c.Log.DLQTopic
}
