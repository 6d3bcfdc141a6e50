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
