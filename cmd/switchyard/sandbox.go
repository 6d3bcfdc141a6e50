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

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// hubspotSandbox serves the in-memory HubSpot simulator.
func hubspotSandbox(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("hubspot-sandbox", stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen `address`")
	tier := fs.String("tier", "free", "account `tier` sizing the rate limits: free, starter, professional, enterprise, api-add-on, oauth")
	hubID := fs.Int64("hub-id", 12345678, "portal `id`, used in event names and error bodies")
	tokens := fs.String("tokens", "", "comma-separated accepted bearer `tokens`; empty accepts any")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	webhookURL := fs.String("webhook-url", "", "send signed webhooks for every change to this target `URL`, as HubSpot does to an app")
	clientSecret := fs.String("client-secret", "", "the app's client `secret` that signs the webhooks (required with --webhook-url)")
	concurrency := fs.Int("webhook-concurrency", 10, "most webhook requests in flight")
	retryDelays := fs.String("webhook-retry-delays", joinDurations(sandbox.DefaultWebhookRetryDelays), "comma-separated `delays` before each retry of a failed webhook notification; empty: no retries")
	properties := fs.String("webhook-properties", "", "comma-separated `type.property` propertyChange subscriptions, e.g. contacts.firstname,deals.dealstage; empty: every property")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var hooks *sandbox.WebhookConfig
	if *webhookURL != "" {
		cfg, err := webhookConfig(*webhookURL, *clientSecret, *concurrency, *retryDelays, *properties)
		if err != nil {
			return err
		}
		hooks = &cfg
	} else if *clientSecret != "" || *properties != "" {
		return fmt.Errorf("--client-secret and --webhook-properties need --webhook-url")
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
	portal := sandbox.New(sandbox.Config{Tier: *tier, HubID: *hubID, Tokens: splitList(*tokens)})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("--addr: listening on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: portal, ReadHeaderTimeout: 10 * time.Second}
	logger.Warn("serving the HubSpot sandbox: an in-memory simulator, not HubSpot",
		zap.String("addr", ln.Addr().String()), zap.String("tier", *tier), zap.Int64("hubId", *hubID),
		zap.Bool("anyToken", strings.TrimSpace(*tokens) == ""))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	hooksDone := make(chan error, 1)
	hooksCtx, stopHooks := context.WithCancel(ctx)
	defer stopHooks()
	if hooks != nil {
		logger.Info("sending webhooks", zap.String("url", hooks.TargetURL), zap.Int("concurrency", *concurrency))
		go func() { hooksDone <- portal.SendWebhooks(hooksCtx, *hooks) }()
	} else {
		hooksDone <- nil
	}
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	if err := <-hooksDone; err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// webhookConfig builds the sandbox's webhook configuration from the
// hubspot-sandbox flags.
func webhookConfig(url, secret string, concurrency int, retryDelays, properties string) (sandbox.WebhookConfig, error) {
	cfg := sandbox.WebhookConfig{TargetURL: url, ClientSecret: secret, MaxConcurrentRequests: concurrency, RetryDelays: []time.Duration{}}
	if concurrency < 1 {
		return cfg, fmt.Errorf("--webhook-concurrency: %d, want at least 1", concurrency)
	}
	for _, part := range splitList(retryDelays) {
		d, err := time.ParseDuration(part)
		if err != nil {
			return cfg, fmt.Errorf("--webhook-retry-delays: %q is not a duration such as 500ms or 2m", part)
		}
		cfg.RetryDelays = append(cfg.RetryDelays, d)
	}
	for _, part := range splitList(properties) {
		typ, prop, ok := strings.Cut(part, ".")
		if !ok || typ == "" || prop == "" {
			return cfg, fmt.Errorf("--webhook-properties: %q: want type.property, e.g. contacts.firstname", part)
		}
		if cfg.Properties == nil {
			cfg.Properties = map[string][]string{}
		}
		cfg.Properties[typ] = append(cfg.Properties[typ], prop)
	}
	if secret == "" {
		return cfg, fmt.Errorf("--client-secret: webhooks need the app's client secret to sign with")
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("webhooks: %w", err)
	}
	return cfg, nil
}

// joinDurations writes durations as a comma-separated list.
func joinDurations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}
