package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
)

// retentionConfigFile writes a config with one webhook destination named
// hook and the given embedded log settings, with retention checked every
// 100ms.
func retentionConfigFile(t *testing.T, url, logSettings string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`sources:
  - name: app
    write_keys: [k]
log:
  partitions: 2
  retention_check_interval: 100ms
%s
destinations:
  - name: hook
    type: webhook
    backoff_min: 10ms
    backoff_max: 100ms
    shutdown_timeout: 1s
    webhook:
      url: %s
`, logSettings, url))
}

const lostSeries = `switchyard_log_retention_lost_total{group="switchyard-hook",topic="events"}`

// TestRetentionWaitsForADestinationThatIsDown keeps a destination failing
// well past retention_age and across a restart, as a day's pause on
// HubSpot's daily limit would: with the default hard limits every event is
// delivered once it recovers, and nothing is counted as lost.
func TestRetentionWaitsForADestinationThatIsDown(t *testing.T) {
	receiver := webhooktest.NewServer(t)
	receiver.Fail(503)
	cfgPath := retentionConfigFile(t, receiver.URL, "  retention_age: 1s")
	dataDir, addr := t.TempDir(), freeAddr(t)
	srv := start(t, addr, "serve", "--config", cfgPath, "--data-dir", dataDir)
	ids := postAll(t, addr, "down", 200)
	eventuallyTrue(t, "the receiver refused as many events as were posted", func() bool { return len(receiver.Received()) >= len(ids) })
	// Every event is refused for three times retention_age, over many
	// retention checks.
	time.Sleep(3 * time.Second)
	srv.stop(t, syscall.SIGTERM)

	srv = start(t, addr, "serve", "--config", cfgPath, "--data-dir", dataDir)
	time.Sleep(500 * time.Millisecond) // five retention checks before the destination recovers
	receiver.Recover()
	waitDelivered(t, receiver, ids, 60*time.Second)
	if lost, ok := scrapeCounter(addr, lostSeries); ok && lost != 0 {
		t.Fatalf("%s = %v, want 0", lostSeries, lost)
	}
	srv.stop(t, syscall.SIGTERM)
	t.Logf("%d events refused for over 3s with retention_age 1s, all delivered after a restart", len(ids))
}

// TestRetentionPastTheHardAgeCountsWhatTheGroupLost checks that messages
// deleted at retention_hard_age before the group committed them are
// counted in the metric and named in a WARN line.
func TestRetentionPastTheHardAgeCountsWhatTheGroupLost(t *testing.T) {
	receiver := webhooktest.NewServer(t)
	receiver.Fail(503)
	cfgPath := retentionConfigFile(t, receiver.URL, "  retention_age: 1s\n  retention_hard_age: 2s")
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--config", cfgPath, "--data-dir", t.TempDir())
	postAll(t, addr, "lost", 100)
	eventuallyTrue(t, "retention counted 100 messages lost", func() bool {
		lost, _ := scrapeCounter(addr, lostSeries)
		return lost == 100
	})
	logs := srv.logs()
	if !strings.Contains(logs, `"level":"warn"`) || !strings.Contains(logs, "had not committed") || !strings.Contains(logs, `"group":"switchyard-hook"`) {
		t.Fatalf("no WARN line names the group's lost messages:\n%s", logs)
	}
	srv.stop(t, syscall.SIGTERM)
}
