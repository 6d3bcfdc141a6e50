package hubspot_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// refusingPortal is a sandbox that accepts only the token "granted", and a
// destination that calls it with "pat-test", logging to the returned logs.
func refusingPortal(t *testing.T) (*sandbox.Server, *hubspot.HubSpot, *observer.ObservedLogs) {
	t.Helper()
	sb := sandbox.New(sandbox.Config{Tier: "professional", HubID: hubID, Tokens: []string{"granted"}})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := hubspot.Config{Token: "pat-test", BaseURL: srv.URL, HubID: hubID, Tier: "professional"}
	h, err := hubspot.NewWithOwnClient("crm", cfg, zap.New(core), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return sb, h, logs
}

func sendBatches(t *testing.T, h *hubspot.HubSpot, n int, want destinations.Result) {
	t.Helper()
	for b := 0; b < n; b++ {
		for i, o := range send(t, h, ev(fmt.Sprintf(`{"type":"identify","messageId":"m%d","userId":"u%d","traits":{"email":"u%d@example.com"}}`, b, b, b))) {
			if o.Result != want {
				t.Fatalf("batch %d event %d: %+v, want %s", b, i, o, want)
			}
		}
	}
}

func levelCount(logs *observer.ObservedLogs, level zapcore.Level) []observer.LoggedEntry {
	return logs.FilterLevelExact(level).All()
}

func TestARefusedTokenIsLoggedOnceReportedUnhealthyAndRecovers(t *testing.T) {
	sb, h, logs := refusingPortal(t)
	if ok, reason := h.Health(); !ok {
		t.Fatalf("unhealthy before any call: %s", reason)
	}
	if err := h.CheckToken(context.Background()); err == nil {
		t.Fatal("CheckToken: no error for a refused token")
	}
	sendBatches(t, h, 20, destinations.Retry)
	errs := levelCount(logs, zapcore.ErrorLevel)
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "invalid or expired") {
		t.Fatalf("want one ERROR naming the token's problem, got %+v", errs)
	}
	if strings.Contains(errs[0].Message, "pat-test") {
		t.Fatalf("the ERROR shows the token: %s", errs[0].Message)
	}
	if ok, reason := h.Health(); ok || !strings.Contains(reason, "401") {
		t.Fatalf("Health = %v, %q; want unhealthy with the 401", ok, reason)
	}

	sb.AcceptToken("pat-test")
	sendBatches(t, h, 5, destinations.Delivered)
	if ok, reason := h.Health(); !ok || reason != "" {
		t.Fatalf("Health after the token works = %v, %q", ok, reason)
	}
	infos := logs.FilterMessageSnippet("recovered").All()
	if len(infos) != 1 || infos[0].Level != zapcore.InfoLevel {
		t.Fatalf("want one INFO recovered, got %+v", infos)
	}
	if n := len(levelCount(logs, zapcore.ErrorLevel)); n != 1 {
		t.Fatalf("%d ERRORs after recovering, want still 1", n)
	}
}

func TestAMissingScopeIsNamed(t *testing.T) {
	sb, h, logs := refusingPortal(t)
	sb.AcceptToken("pat-test")
	sb.RequireScope("crm.objects.contacts.write")
	sendBatches(t, h, 10, destinations.Retry)
	errs := levelCount(logs, zapcore.ErrorLevel)
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "403") || !strings.Contains(errs[0].Message, "crm.objects.contacts.write") {
		t.Fatalf("want one ERROR naming the scope, got %+v", errs)
	}
	if ok, reason := h.Health(); ok || !strings.Contains(reason, "crm.objects.contacts.write") {
		t.Fatalf("Health = %v, %q", ok, reason)
	}
	sb.RequireScope("")
	sendBatches(t, h, 1, destinations.Delivered)
	if ok, _ := h.Health(); !ok {
		t.Fatal("still unhealthy once the scope is granted")
	}
	if n := len(logs.FilterMessageSnippet("recovered").All()); n != 1 {
		t.Fatalf("%d recovered lines, want 1", n)
	}
}

func TestOtherFailuresLeaveTheDestinationHealthy(t *testing.T) {
	sb, h, _ := refusingPortal(t)
	sb.AcceptToken("pat-test")
	sb.FailNext(50, 503)
	sendBatches(t, h, 3, destinations.Retry)
	if ok, reason := h.Health(); !ok {
		t.Fatalf("a 503 made the destination unhealthy: %s", reason)
	}
}
