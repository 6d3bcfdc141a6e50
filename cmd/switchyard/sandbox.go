package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/hubspot/sandbox"

	"go.uber.org/zap"
)

// hubspotSandbox serves the in-memory HubSpot simulator.
func hubspotSandbox(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("hubspot-sandbox", stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen `address`")
	tier := fs.String("tier", "free", "account `tier` sizing the rate limits: free, starter, professional, enterprise, api-add-on, oauth")
	hubID := fs.Int64("hub-id", 12345678, "portal `id`, used in event names and error bodies")
	tokens := fs.String("tokens", "", "comma-separated accepted bearer `tokens`; empty accepts any")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch *tier {
	case "free", "starter", "professional", "enterprise", "api-add-on", "oauth":
	default:
		return fmt.Errorf("--tier: %q is not one of free, starter, professional, enterprise, api-add-on, oauth", *tier)
	}
	logger, err := newLogger(*logLevel, stderr)
	if err != nil {
		return err
	}
	sandbox := sandbox.New(sandbox.Config{Tier: *tier, HubID: *hubID, Tokens: splitList(*tokens)})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("--addr: listening on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: sandbox, ReadHeaderTimeout: 10 * time.Second}
	logger.Warn("serving the HubSpot sandbox: an in-memory simulator, not HubSpot",
		zap.String("addr", ln.Addr().String()), zap.String("tier", *tier), zap.Int64("hubId", *hubID),
		zap.Bool("anyToken", strings.TrimSpace(*tokens) == ""))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// sandboxTokenlessHubSpot gives serve a HubSpot destination that works out
// of the box: with no destination configured it adds one named hubspot, and
// every hubspot destination without a token is pointed at an in-process
// sandbox on a loopback port, which it says loudly. It returns the function
// that stops the sandbox.
func sandboxTokenlessHubSpot(cfg *config, logger *zap.Logger) (func(), error) {
	if len(cfg.Destinations) == 0 {
		cfg.Destinations = append(cfg.Destinations, destinationConfig{Name: "hubspot", Type: "hubspot"})
	}
	var srv *http.Server
	var url string
	for i := range cfg.Destinations {
		d := &cfg.Destinations[i]
		if d.Type != "hubspot" || d.HubSpot.Token != "" {
			continue
		}
		if srv == nil {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, fmt.Errorf("starting the HubSpot sandbox: %w", err)
			}
			tier := d.HubSpot.Tier
			if tier == "" {
				tier = "free"
			}
			srv = &http.Server{Handler: sandbox.New(sandbox.Config{Tier: tier, HubID: sandboxHubID}), ReadHeaderTimeout: 10 * time.Second}
			go srv.Serve(ln)
			url = "http://" + ln.Addr().String()
		}
		d.HubSpot.Token, d.HubSpot.URL = "sandbox", url
		if d.HubSpot.HubID == 0 {
			d.HubSpot.HubID = sandboxHubID
		}
		logger.Warn("NO HUBSPOT TOKEN: this destination delivers to an in-process HubSpot sandbox, not to HubSpot; set hubspot.token (or --hubspot-token) to deliver for real",
			zap.String("destination", d.Name), zap.String("sandbox", url), zap.String("stats", url+"/_sandbox/stats"))
	}
	return func() {
		if srv != nil {
			srv.Close()
		}
	}, nil
}

// sandboxHubID is the in-process sandbox's portal id.
const sandboxHubID = 12345678
