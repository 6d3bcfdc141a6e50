package main

import (
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"time"

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
	// hubspotMetrics is nil when metrics are not exported.
	hubspotMetrics *hubspot.Metrics
}

type destinationBuilder func(dc destinationConfig, deps destinationDeps) (destinations.Destination, error)

// destinationTypes returns the destination types this binary can build.
func destinationTypes() map[string]destinationBuilder {
	return map[string]destinationBuilder{
		"webhook": func(dc destinationConfig, deps destinationDeps) (destinations.Destination, error) {
			w := dc.Webhook
			return webhook.New(dc.Name, webhook.Config{
				URL: w.URL, Headers: w.Headers, Batch: w.Batch,
				MaxItems: w.MaxItems, MaxBytes: w.MaxBytes, MaxWait: time.Duration(w.MaxWait),
				MaxInFlight: w.MaxInFlight, Timeout: time.Duration(w.Timeout), Concurrency: w.Concurrency,
			}, deps.logger, nil)
		},
		"drop": func(destinationConfig, destinationDeps) (destinations.Destination, error) {
			return drop.New(), nil
		},
		"hubspot": func(dc destinationConfig, deps destinationDeps) (destinations.Destination, error) {
			c := dc.HubSpot
			var loc *time.Location
			if c.TimeZone != "" {
				var err error
				if loc, err = time.LoadLocation(c.TimeZone); err != nil {
					return nil, fmt.Errorf("time_zone: %q is not an IANA time zone such as Europe/Paris", c.TimeZone)
				}
			}
			return hubspot.New(dc.Name, hubspot.Config{
				Token: c.Token, BaseURL: c.URL, HubID: c.HubID, Tier: c.Tier, TimeZone: loc,
				IDProperty: c.IDProperty, CompanyIDProperty: c.CompanyIDProperty, RegistrableDomain: c.RegistrableDomain,
				AutoCreateProperties: c.AutoCreateProperties, ClearNulls: c.ClearNulls, NestedJSON: c.NestedJSON,
				EventNames: c.EventNames, PageEvent: c.PageEvent, ScreenEvent: c.ScreenEvent,
				SkipPages: c.SkipPages, SkipScreens: c.SkipScreens, SkipEventDefinitions: c.SkipEventDefinitions, Lists: c.Lists,
				MaxWait: time.Duration(c.MaxWait), MaxInFlight: c.MaxInFlight, Timeout: time.Duration(c.Timeout),
				StateDir: filepath.Join(deps.dataDir, "hubspot-"+dc.Name), Metrics: deps.hubspotMetrics,
			}, deps.logger, nil)
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
		r, err := router.New(routerConfig(cfg, dc), dest, log, deps.logger, m)
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
	dest, err := build(dc, deps)
	if err != nil {
		return nil, fmt.Errorf("%s.%s.%w", key, dc.Type, err)
	}
	return dest, nil
}

func routerConfig(cfg config, dc destinationConfig) router.Config {
	return router.Config{
		Destination:  dc.Name,
		DisplayName:  dc.DisplayName,
		DLQTopic:     cfg.dlqTopic(),
		RetryWindow:  time.Duration(dc.RetryWindow),
		BackoffMin:   time.Duration(dc.BackoffMin),
		BackoffMax:   time.Duration(dc.BackoffMax),
		MaxPending:   dc.MaxPending,
		DedupeWindow: time.Duration(dc.DedupeWindow),
	}
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
