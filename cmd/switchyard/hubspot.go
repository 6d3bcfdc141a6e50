package main

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// hubspotClients hands out the process's HubSpot API clients: one per API
// URL and token, so everything that calls HubSpot with a token (every
// destination and every hubspot source on it) spends one rate budget, as
// HubSpot counts it. A hubspot setting without a token gets the in-process sandbox,
// started on first use, which it says loudly.
type hubspotClients struct {
	logger  *zap.Logger
	clients map[hubspotKey]*sharedClient

	sandbox    *http.Server
	sandboxURL string
}

type hubspotKey struct{ url, token string }

// sharedClient is a client with the settings it was built from and the
// config key of the first user, for errors about disagreeing users.
type sharedClient struct {
	client *api.Client
	owner  string
	tier   string
	zone   string
	// timeout bounds each call of the client.
	timeout time.Duration
}

func newHubSpotClients(logger *zap.Logger) *hubspotClients {
	return &hubspotClients{logger: logger, clients: make(map[hubspotKey]*sharedClient)}
}

// client returns the client for cfg's URL and token, and cfg as the client
// sees it (pointed at the sandbox when it has no token). owner is the
// config key of the user, such as destinations[1], which errors name; name
// is the user's name for the logs. Users of one token must agree on its
// tier, time zone and timeout.
func (c *hubspotClients) client(owner, name string, cfg hubspot.Config) (*api.Client, hubspot.Config, error) {
	if cfg.Token == "" {
		url, err := c.startSandbox(cfg.Tier)
		if err != nil {
			return nil, cfg, err
		}
		cfg.Token, cfg.BaseURL = "sandbox", url
		if cfg.HubID == 0 {
			cfg.HubID = sandboxHubID
		}
		c.logger.Warn("NO HUBSPOT TOKEN: this destination delivers to an in-process HubSpot sandbox, not to HubSpot; set hubspot.token (or SWITCHYARD_HUBSPOT_TOKEN) to deliver for real",
			zap.String("destination", name), zap.String("sandbox", url), zap.String("stats", url+"/_sandbox/stats"))
	}
	key := hubspotKey{url: strings.TrimRight(cmp.Or(cfg.BaseURL, api.DefaultBaseURL), "/"), token: cfg.Token}
	tier := cmp.Or(cfg.Tier, "free")
	zone := "UTC"
	if cfg.TimeZone.Location != nil {
		zone = cfg.TimeZone.String()
	}
	timeout := cmp.Or(time.Duration(cfg.Timeout), 30*time.Second)
	if shared, ok := c.clients[key]; ok {
		switch {
		case shared.tier != tier:
			return nil, cfg, fmt.Errorf("tier: %q differs from %q of %s on the same token; HubSpot limits the token, so they must agree", tier, shared.tier, shared.owner)
		case shared.zone != zone:
			return nil, cfg, fmt.Errorf("time_zone: %q differs from %q of %s on the same token; HubSpot limits the token, so they must agree", zone, shared.zone, shared.owner)
		case shared.timeout != timeout:
			return nil, cfg, fmt.Errorf("timeout: %s differs from %s of %s on the same token, whose client they share", timeout, shared.timeout, shared.owner)
		}
		return shared.client, cfg, nil
	}
	client, err := hubspot.NewClient(cfg, nil, c.logger.With(zap.String("component", "hubspot-api")))
	if err != nil {
		return nil, cfg, err
	}
	c.clients[key] = &sharedClient{client: client, owner: owner, tier: tier, zone: zone, timeout: timeout}
	return client, cfg, nil
}

// sourceClient returns the client for a hubspot source's URL and token:
// the client of the destinations on the same URL and token when there are
// any, so the source reads within their budget at their tier, else one of
// its own at the free tier. Build the destinations first. owner is the
// config key of the source, such as sources[1].
func (c *hubspotClients) sourceClient(owner, url, token string) (*api.Client, error) {
	key := hubspotKey{url: strings.TrimRight(cmp.Or(url, api.DefaultBaseURL), "/"), token: token}
	if shared, ok := c.clients[key]; ok {
		return shared.client, nil
	}
	client, err := hubspot.NewClient(hubspot.Config{Token: token, BaseURL: key.url}, nil, c.logger.With(zap.String("component", "hubspot-api")))
	if err != nil {
		return nil, fmt.Errorf("%s.hubspot: %w", owner, err)
	}
	c.clients[key] = &sharedClient{client: client, owner: owner, tier: "free", zone: "UTC", timeout: 30 * time.Second}
	return client, nil
}

// startSandbox serves the HubSpot sandbox on a loopback port, once, and
// returns its URL.
func (c *hubspotClients) startSandbox(tier string) (string, error) {
	if c.sandbox != nil {
		return c.sandboxURL, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("starting the HubSpot sandbox: %w", err)
	}
	c.sandbox = &http.Server{Handler: sandbox.New(sandbox.Config{Tier: cmp.Or(tier, "free"), HubID: sandboxHubID}), ReadHeaderTimeout: 10 * time.Second}
	go c.sandbox.Serve(ln)
	c.sandboxURL = "http://" + ln.Addr().String()
	return c.sandboxURL, nil
}

// Close stops the sandbox, if one was started.
func (c *hubspotClients) Close() error {
	if c.sandbox == nil {
		return nil
	}
	return c.sandbox.Close()
}

// sandboxHubID is the in-process sandbox's portal id.
const sandboxHubID = 12345678
