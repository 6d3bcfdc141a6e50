package hubspot_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// gauges gathers reg's gauges, keyed by name and label values
// ("switchyard_hubspot_budget_used{crm,10s}").
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if m.GetGauge() == nil {
				continue
			}
			var values []string
			for _, l := range m.GetLabel() {
				values = append(values, l.GetValue())
			}
			out[f.GetName()+"{"+strings.Join(values, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestBudgetGaugesFollowCallsAndAPause(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	midnight := time.Date(2027, 1, 16, 0, 0, 0, 0, ny)
	// The clock all but stands: every call falls in the same 10 s and the
	// same second.
	clock := newLoadClock(midnight.Add(-time.Hour), 1e-9)
	sb := sandbox.New(sandbox.Config{Tier: "professional", HubID: hubID, Now: clock.Now, TimeZone: ny})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	p := &portal{sandbox: sb, srv: srv}
	reg := prometheus.NewRegistry()
	m, err := hubspot.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hubspot.NewWithOwnClient("crm", hubspot.Config{Token: "pat-test", BaseURL: srv.URL, HubID: hubID, Tier: "professional",
		TimeZone: config.TimeZone{Location: ny}, Clock: clock, Metrics: m}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, want map[string]float64) {
		t.Helper()
		got := gauges(t, reg)
		for key, v := range want {
			if got[key] != v {
				t.Errorf("%s: %s = %v, want %v", when, key, got[key], v)
			}
		}
	}
	noPause := func(when string) {
		t.Helper()
		for key := range gauges(t, reg) {
			if strings.HasPrefix(key, "switchyard_hubspot_pause_info") {
				t.Errorf("%s: %s while not paused", when, key)
			}
		}
	}

	check("before any call", map[string]float64{
		"switchyard_hubspot_budget_limit{crm,10s}":           190,
		"switchyard_hubspot_budget_limit{crm,search}":        5,
		"switchyard_hubspot_budget_limit{crm,daily}":         0,
		"switchyard_hubspot_budget_used{crm,10s}":            0,
		"switchyard_hubspot_budget_daily_reset_seconds{crm}": float64(midnight.Unix()),
		"switchyard_hubspot_paused_until_seconds{crm}":       0,
	})
	noPause("before any call")

	send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"b@example.com"}}`))
	calls := float64(countCalls(p, "/"))
	if calls == 0 {
		t.Fatal("the identify made no call")
	}
	check("after an identify", map[string]float64{
		"switchyard_hubspot_budget_limit{crm,daily}": 625000,
		"switchyard_hubspot_budget_used{crm,10s}":    calls,
		"switchyard_hubspot_budget_used{crm,daily}":  calls,
		"switchyard_hubspot_budget_used{crm,search}": 0,
	})

	send(t, h, ev(`{"type":"group","userId":"u1","groupId":"g1","traits":{"name":"Acme","website":"acme.example"}}`))
	searches := float64(countCalls(p, "/search"))
	if searches == 0 {
		t.Fatal("the group made no search")
	}
	check("after a group", map[string]float64{
		"switchyard_hubspot_budget_used{crm,search}": searches,
		"switchyard_hubspot_budget_used{crm,10s}":    float64(countCalls(p, "/")) - searches,
	})

	h.SetShare(1, 2)
	check("with half the token", map[string]float64{"switchyard_hubspot_budget_limit{crm,10s}": 95})
	h.SetShare(1, 1)

	sb.ExhaustDaily()
	if out := send(t, h, ev(`{"type":"identify","userId":"u2","traits":{"email":"d@example.com"}}`)); out[0].Result != destinations.Retry {
		t.Fatalf("after the daily limit: %+v", out[0])
	}
	check("after a DAILY 429", map[string]float64{
		"switchyard_hubspot_budget_used{crm,daily}":    625000,
		"switchyard_hubspot_paused_until_seconds{crm}": float64(midnight.Unix()),
		"switchyard_hubspot_paused{crm}":               1,
	})
	var reason string
	for key, v := range gauges(t, reg) {
		if rest, ok := strings.CutPrefix(key, "switchyard_hubspot_pause_info{crm,"); ok && v == 1 {
			reason = strings.TrimSuffix(rest, "}")
		}
	}
	if !strings.Contains(reason, "daily limit") {
		t.Errorf("pause reason %q, want the daily limit", reason)
	}

	clock.Advance(time.Hour + time.Second)
	check("after midnight", map[string]float64{
		"switchyard_hubspot_budget_used{crm,daily}":          0,
		"switchyard_hubspot_budget_limit{crm,daily}":         625000,
		"switchyard_hubspot_paused_until_seconds{crm}":       0,
		"switchyard_hubspot_budget_daily_reset_seconds{crm}": float64(midnight.AddDate(0, 0, 1).Unix()),
	})
	noPause("after midnight")

	h.Close()
	for key := range gauges(t, reg) {
		if strings.HasPrefix(key, "switchyard_hubspot_budget_") {
			t.Errorf("%s exported after Close", key)
		}
	}
}
