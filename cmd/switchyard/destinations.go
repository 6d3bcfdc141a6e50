package main

import (
	"fmt"
	"io"
	"path/filepath"
	"regexp"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/drop"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/destinations/webhook"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/router"
)

// destinationDeps is what destination constructors may need besides their
// own config.
type destinationDeps struct {
	logger *zap.Logger
	// dataDir holds destinations' state files.
	dataDir string
	// hubspot hands out the process's HubSpot clients.
	hubspot *hubspotClients
	// hubspotMetrics is nil when metrics are not exported.
	hubspotMetrics *hubspot.Metrics
	// health, when not nil, receives each built destination that reports
	// its health, by name.
	health destinationHealth
	// outcomes, when not nil, learns what every router does with each
	// event, for the delivery page.
	outcomes router.Observer
	// built, when not nil, receives each destination its router delivers
	// to, by name, so that the page's replays share it and its state.
	built map[string]destinations.Destination
}

// destinationBuilder builds a destination; key is its place in the config,
// such as destinations[1].
type destinationBuilder func(key string, dc destinationConfig, deps destinationDeps) (destinations.Destination, error)

// destinationTypes returns the destination types this binary can build.
func destinationTypes() map[string]destinationBuilder {
	return map[string]destinationBuilder{
		"webhook": func(_ string, dc destinationConfig, deps destinationDeps) (destinations.Destination, error) {
			return webhook.New(dc.Name, dc.Webhook, deps.logger, nil)
		},
		"drop": func(string, destinationConfig, destinationDeps) (destinations.Destination, error) {
			return drop.New(), nil
		},
		"hubspot": func(key string, dc destinationConfig, deps destinationDeps) (destinations.Destination, error) {
			client, cfg, err := deps.hubspot.client(key, dc.Name, dc.HubSpot)
			if err != nil {
				return nil, err
			}
			cfg.StateDir = filepath.Join(deps.dataDir, "hubspot-"+dc.Name)
			cfg.Metrics = deps.hubspotMetrics
			return hubspot.New(dc.Name, cfg, client, deps.logger)
		},
	}
}

var destinationName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$`)

// buildRouters builds one router per configured destination, and returns
// the function that releases the destinations when the routers are done.
func buildRouters(cfg config, log queue.Log, deps destinationDeps, m *router.Metrics) ([]*router.Router, func(), error) {
	seen := make(map[string]bool)
	var routers []*router.Router
	var closers []io.Closer
	release := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	for i, dc := range cfg.Destinations {
		if seen[dc.Name] {
			release()
			return nil, nil, fmt.Errorf("destinations[%d].name: %q is used twice", i, dc.Name)
		}
		seen[dc.Name] = true
		dest, err := buildDestination(i, dc, deps)
		if err != nil {
			release()
			return nil, nil, err
		}
		if c, ok := dest.(destinations.Closer); ok {
			closers = append(closers, c)
		}
		if deps.built != nil {
			deps.built[dc.Name] = dest
		}
		if hr, ok := dest.(destinations.HealthReporter); ok && deps.health != nil {
			deps.health[dc.Name] = hr
		}
		rc := cfg.routerConfig(dc)
		rc.Observer = deps.outcomes
		r, err := router.New(rc, dest, log, deps.logger, m)
		if err != nil {
			release()
			return nil, nil, err
		}
		routers = append(routers, r)
	}
	return routers, release, nil
}

// buildDestination builds the i-th configured destination.
func buildDestination(i int, dc destinationConfig, deps destinationDeps) (destinations.Destination, error) {
	key := fmt.Sprintf("destinations[%d]", i)
	if !destinationName.MatchString(dc.Name) {
		return nil, fmt.Errorf("%s.name: %q must be 1-100 letters, digits, '.', '_' or '-'", key, dc.Name)
	}
	build, ok := destinationTypes()[dc.Type]
	if !ok {
		return nil, fmt.Errorf("%s.type: %q is not one of hubspot, webhook, drop", key, dc.Type)
	}
	dest, err := build(key, dc, deps)
	if err != nil {
		return nil, fmt.Errorf("%s.%s.%w", key, dc.Type, err)
	}
	return dest, nil
}

// findDestination returns the named destination's config and index.
func findDestination(cfg config, name string) (int, destinationConfig, error) {
	for i, dc := range cfg.Destinations {
		if dc.Name == name {
			return i, dc, nil
		}
	}
	return 0, destinationConfig{}, fmt.Errorf("--destination: no destination named %q in the config", name)
}
