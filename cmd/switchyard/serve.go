package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/ingest"
)

// shutdownTimeout bounds the wait for in-flight requests on SIGTERM.
const shutdownTimeout = 30 * time.Second

// serve runs the gateway ("serve" and "gateway" share it: the router is not
// part of either yet).
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
	cfg, err := opts.load(fs, lookupEnv)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	defer logger.Sync() //nolint:errcheck // nothing to do about a failed flush of stderr

	gwCfg := cfg.gatewayConfig()
	if err := gwCfg.Validate(); err != nil {
		return err
	}
	log, backend, err := openLog(ctx, cfg, logger)
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
	gw, err := ingest.New(gwCfg, log, logger, reg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("addr: listening on %s: %w", cfg.Addr, err)
	}
	logger.Info("gateway listening", zap.String("addr", ln.Addr().String()), zap.String("log", backend),
		zap.Int("sources", len(gwCfg.Sources)))

	app := gw.App()
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := app.ShutdownWithContext(shutdownCtx); err != nil {
		logger.Warn("shutting down the gateway", zap.Error(err))
	}
	<-served
	logger.Info("stopped")
	return nil
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
