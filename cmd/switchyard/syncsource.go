package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	hubspotsource "github.com/switchyard/switchyard/sources/hubspot"
)

// syncFollowInterval is how often `switchyard sync` asks a running process
// how its sync goes.
const syncFollowInterval = 500 * time.Millisecond

// syncSource runs a hubspot source's catch-up, or its full sync: in the
// running process that holds the source's state when there is one (or the
// one at --addr), following its progress, else in this process.
func syncSource(ctx context.Context, args []string, stderr io.Writer, parts sourceParts) error {
	fs := newFlagSet("sync", stderr)
	name := fs.String("source", "", "`name` of the hubspot source to sync (required)")
	since := fs.String("since", "", "start the catch-up at this RFC 3339 `time` instead of its checkpoint")
	full := fs.Bool("full", false, "page through every contact, company and deal, resuming an interrupted full sync")
	adminToken := registerAdminToken(fs)
	cfg, logger, err := setUp(fs, args, stderr)
	if err != nil {
		return err
	}
	defer logger.Sync() //nolint:errcheck // nothing to do about a failed flush of stderr
	if *name == "" {
		return errors.New("--source is required")
	}
	req := hubspotsource.SyncRequest{Full: *full}
	if *since != "" {
		if req.Since, err = time.Parse(time.RFC3339Nano, *since); err != nil {
			return fmt.Errorf("--since: %q is not an RFC 3339 time (2026-12-01T10:00:00Z)", *since)
		}
	}
	if err := checkSyncRequest(req, time.Now()); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if flagSet(fs, "addr") {
		return syncRemote(ctx, cfg.Addr, adminToken(), *name, req, stderr)
	}
	configs, err := cfg.hubspotSources()
	if err != nil {
		return err
	}
	var sc hubspotsource.Config
	for _, c := range configs {
		if c.Name == *name {
			sc = c
		}
	}
	if sc.Name == "" {
		return fmt.Errorf("--source: the config has no source of type hubspot named %q", *name)
	}
	if dir, held := heldDir(cfg, sc); held {
		fmt.Fprintf(stderr, "sync: %s is held by a running switchyard; asking it at %s\n", dir, cfg.Addr)
		return syncRemote(ctx, cfg.Addr, adminToken(), *name, req, stderr)
	}
	return syncLocal(ctx, cfg, sc, req, parts, logger, stderr)
}

// flagSet reports whether the flag called name was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// heldDir returns the directory of the embedded log, or of the source's
// state, that a running process holds, if any.
func heldDir(cfg config, sc hubspotsource.Config) (string, bool) {
	dirs := []string{filepath.Join(hubspotsource.StateDir(cfg.DataDir, sc.Name), "directory")}
	if len(cfg.Kafka.Brokers) == 0 {
		dirs = append([]string{cfg.DataDir}, dirs...)
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		lock, err := pebble.LockDirectory(dir, vfs.Default)
		if err != nil {
			return dir, true
		}
		lock.Close()
	}
	return "", false
}

// syncLocal runs the sync in this process: the source's directory first
// brought up to date with the log, then the syncer. Interrupted (ctx
// ending), the sync keeps its checkpoint and runs on from it next time.
func syncLocal(ctx context.Context, cfg config, sc hubspotsource.Config, req hubspotsource.SyncRequest, parts sourceParts, logger *zap.Logger, stderr io.Writer) error {
	reg := prometheus.NewRegistry()
	log, _, err := openLog(cfg, logger, nil)
	if err != nil {
		return err
	}
	defer log.Close()
	metrics, err := hubspotsource.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	clients := newHubSpotClients(logger)
	defer clients.Close()
	client, err := clients.sourceClient(sourceKey(cfg, sc.Name), sc.URL, sc.Token)
	if err != nil {
		return err
	}
	dir, err := hubspotsource.OpenDirectory(sc, logger)
	if err != nil {
		return err
	}
	defer dir.Close()
	fmt.Fprintf(stderr, "sync: reading the users the log has seen\n")
	if err := dir.CatchUp(ctx, log); err != nil {
		if ctx.Err() != nil {
			return interruptedError{"interrupted before the sync began"}
		}
		return fmt.Errorf("reading the log's users: %w", err)
	}
	processor, err := hubspotsource.NewProcessor(sc, log, client, dir, metrics, logger)
	if err != nil {
		return err
	}
	s := parts.newSyncer(processor, dir, logger)
	show := newSyncProgress(req, stderr)
	err = s.Run(ctx, req, show.report)
	show.finish()
	last, _ := s.Progress()
	return syncOutcome(last, err, ctx.Err() != nil)
}

// syncRemote asks the process at addr to run the sync, then follows its
// progress until it ends. Interrupted, it stops following; the sync runs on.
func syncRemote(ctx context.Context, addr, token, source string, req hubspotsource.SyncRequest, stderr io.Writer) error {
	endpoint := adminURL(addr) + "/admin/sources/" + url.PathEscape(source) + "/sync"
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second}
	p, err := adminCall(ctx, client, http.MethodPost, endpoint, token, body, http.StatusAccepted)
	if err != nil {
		return err
	}
	show := newSyncProgress(req, stderr)
	defer show.finish()
	tick := time.NewTicker(syncFollowInterval)
	defer tick.Stop()
	for {
		show.report(p)
		if p.State != hubspotsource.SyncRunning {
			show.finish()
			return syncOutcome(p, nil, false)
		}
		select {
		case <-ctx.Done():
			show.finish()
			return interruptedError{fmt.Sprintf("stopped following; the sync runs on in the process at %s (GET %s)", addr, endpoint)}
		case <-tick.C:
		}
		if p, err = adminCall(ctx, client, http.MethodGet, endpoint, token, nil, http.StatusOK); err != nil {
			if ctx.Err() != nil {
				continue
			}
			return err
		}
	}
}

// adminURL is the base URL of the admin endpoint of a process listening at
// addr: a host of its own, or loopback for a listen address of any host.
func adminURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// adminCall makes one call of the admin endpoint and reads the Progress it
// answers with want, or the refusal's message.
func adminCall(ctx context.Context, client *http.Client, method, endpoint, token string, body []byte, want int) (hubspotsource.Progress, error) {
	var p hubspotsource.Progress
	r, err := http.NewRequestWithContext(ctx, method, endpoint, bytes.NewReader(body))
	if err != nil {
		return p, err
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(r)
	if err != nil {
		return p, fmt.Errorf("asking the running switchyard: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return p, fmt.Errorf("%s %s: reading the answer: %w", method, endpoint, err)
	}
	if resp.StatusCode != want {
		var refusal struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &refusal) != nil || refusal.Message == "" {
			refusal.Message = strings.TrimSpace(string(raw))
		}
		return p, fmt.Errorf("%s %s: %s: %s", method, endpoint, resp.Status, refusal.Message)
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, fmt.Errorf("%s %s: the answer is not a sync's progress: %w", method, endpoint, err)
	}
	return p, nil
}

// syncOutcome is the command's result for a sync that ended in p (with
// err, from a sync run here): nil when it is done, an interruptedError
// (exit status 130) when interrupted, else an error (exit status 1).
func syncOutcome(p hubspotsource.Progress, err error, interrupted bool) error {
	switch {
	case interrupted || p.State == hubspotsource.SyncInterrupted:
		return interruptedError{fmt.Sprintf("interrupted after %d records; run it again to resume", p.Done)}
	case err != nil:
		return fmt.Errorf("sync failed: %w", err)
	case p.State == hubspotsource.SyncFailed:
		return fmt.Errorf("sync failed after %d records: %s", p.Done, p.Error)
	}
	return nil
}

// syncProgress shows a sync's progress as it reports it.
type syncProgress struct {
	bar     *progress
	w       io.Writer
	last    hubspotsource.Progress
	objType string
}

func newSyncProgress(req hubspotsource.SyncRequest, w io.Writer) *syncProgress {
	label := "catch-up"
	if req.Full {
		label = "full sync"
	}
	return &syncProgress{bar: newProgress(label, "records", "", 0, w), w: w}
}

func (s *syncProgress) report(p hubspotsource.Progress) {
	s.last = p
	s.bar.set(p.Done, p.Total)
}

func (s *syncProgress) finish() {
	if s.bar.closed {
		return
	}
	s.bar.finish()
	if s.last.State != "" {
		fmt.Fprintf(s.w, "sync of %s: %s, %d records read, %d calls appended\n", s.last.Source, s.last.State, s.last.Done, s.last.Emitted)
	}
}
