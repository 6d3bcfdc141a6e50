package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/router"
)

// serve runs the roles of a command: "serve" runs the gateway and a router
// per destination, "gateway" the gateway alone, "router" the routers alone.
func serve(ctx context.Context, name string, args []string, stderr io.Writer) error {
	cfg, logger, err := setUp(newFlagSet(name, stderr), args, stderr)
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
	clients := newHubSpotClients(logger)
	defer clients.Close()
	reg := newRegistry()
	log, backend, err := openLog(cfg, logger, reg)
	if err != nil {
		return err
	}
	defer log.Close()
	if err := prepareTopics(ctx, log, cfg.eventsTopic(), cfg.dlqTopic()); err != nil {
		return err
	}

	var routers []*router.Router
	health := destinationHealth{}
	if runRouters {
		metrics, err := router.NewMetrics(reg)
		if err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		hubspotMetrics, err := hubspot.NewMetrics(reg)
		if err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		deps := destinationDeps{logger: logger, dataDir: cfg.DataDir, hubspot: clients, hubspotMetrics: hubspotMetrics, health: health}
		var release func()
		if routers, release, err = buildRouters(cfg, log, deps, metrics); err != nil {
			return err
		}
		defer release()
		if err := health.register(reg); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		if runGateway {
			gwCfg.ReadyDetails = health.readyDetails
		}
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("addr: listening on %s: %w", cfg.Addr, err)
	}
	var srv httpServer
	if runGateway {
		if srv, err = gatewayServer(gwCfg, log, logger, reg); err != nil {
			return err
		}
	} else {
		srv = opsServer(reg, log, health)
	}
	logger.Info("listening", zap.String("role", name), zap.String("addr", ln.Addr().String()),
		zap.String("log", backend), zap.Int("sources", len(gwCfg.Sources)), zap.Int("destinations", len(routers)))
	go health.checkTokens(ctx)
	return serveUntilDone(ctx, srv, ln, routers, log, cfg.eventsTopic(), logger)
}
