package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/router"
	"github.com/switchyard/switchyard/ui"
)

// serve runs the roles of a command: "serve" runs the gateway and a router
// per destination, "gateway" the gateway alone, "router" the routers alone;
// parts builds the hubspot sources' syncers and email pollers.
func serve(ctx context.Context, name string, args []string, stderr io.Writer, parts sourceParts) error {
	fs := newFlagSet(name, stderr)
	adminToken := registerAdminToken(fs)
	cfg, logger, err := setUp(fs, args, stderr)
	if err != nil {
		return err
	}
	defer logger.Sync() //nolint:errcheck // nothing to do about a failed flush of stderr

	runGateway, runRouters := name != "router", name != "gateway"
	hubspotConfigs, err := cfg.hubspotSources()
	if err != nil {
		return err
	}
	gwCfg := cfg.gatewayConfig()
	if runGateway {
		// The receivers' route is added once they are built; it stands
		// for them here, so that a config whose only sources are hubspot
		// ones passes.
		check := gwCfg
		if len(hubspotConfigs) > 0 {
			check.Routes = []ingest.Route{{Method: http.MethodPost, Path: webhookPath, Handler: http.NotFoundHandler()}}
		}
		if err := check.Validate(); err != nil {
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

	var routers []*router.Router
	health := destinationHealth{}
	var outcomes *router.Outcomes
	live := map[string]destinations.Destination{}
	if runRouters {
		metrics, err := router.NewMetrics(reg)
		if err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		hubspotMetrics, err := hubspot.NewMetrics(reg)
		if err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		outcomes = newRecentOutcomes(cfg)
		deps := destinationDeps{logger: logger, dataDir: cfg.DataDir, hubspot: clients, hubspotMetrics: hubspotMetrics, health: health, outcomes: outcomes, built: live}
		var release func()
		if routers, release, err = buildRouters(cfg, log, deps, metrics); err != nil {
			return err
		}
		defer release()
		if err := health.register(reg); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	// After the destinations, so that a source shares their client.
	sources, err := buildSources(cfg, hubspotConfigs, log, clients, reg, logger, parts, runGateway, runRouters)
	if err != nil {
		return err
	}
	defer sources.Close()
	if err := prepareTopics(ctx, log, append([]string{cfg.eventsTopic(), cfg.dlqTopic()}, sources.topics()...)...); err != nil {
		return err
	}
	admin := sources.syncAdmin(adminToken())
	ready := routerReady(log, health, sources)
	if runGateway {
		ready = gatewayReady(log)
	}
	// The page's streams end with ctx, before serveUntilDone shuts the
	// server down.
	pageCtx, stopPage := context.WithCancel(ctx)
	defer stopPage()
	tester, err := newPageTester(cfg)
	if err != nil {
		return err
	}
	page, err := newDeliveryPage(pageCtx, ui.Config{
		AdminToken: adminToken(), Metrics: reg, Ready: ready,
		DeadLetters: pageDeadLetters(cfg, log, logger, clients, live, outcomes), Tester: tester,
		Live: liveEvents(cfg, log, outcomes), Syncs: pageSyncs(admin),
	})
	if err != nil {
		return err
	}
	if runGateway {
		pageRoute, streamRoute := page.gatewayRoutes()
		gwCfg.Routes = append([]ingest.Route{sources.route(), pageRoute}, admin.routes()...)
		gwCfg.StreamRoutes = []ingest.StreamRoute{streamRoute}
		gwCfg.ReadyDetails = readyDetails(health, sources, runRouters)
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
		srv = opsServer(reg, log, health, sources, admin, page)
	}
	logger.Info("listening", zap.String("role", name), zap.String("addr", ln.Addr().String()),
		zap.String("log", backend), zap.Int("sources", len(cfg.Sources)), zap.Int("hubspot_sources", len(sources)), zap.Int("destinations", len(routers)))
	go health.checkTokens(ctx)
	return serveUntilDone(ctx, srv, ln, routers, sources, log, cfg.eventsTopic(), logger)
}
