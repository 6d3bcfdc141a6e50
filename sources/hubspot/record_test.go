package hubspot

import (
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/transforms/hubspotsource"
)

// TestPropertyTimesComeFromTheNotifications checks the calls' property
// times: a property a notification named changed at its occurredAt, the
// others at the record's last modification; a cleared one is not carried.
func TestPropertyTimesComeFromTheNotifications(t *testing.T) {
	updated := time.Date(2026, 12, 1, 10, 0, 5, 0, time.UTC)
	changed := time.Date(2026, 12, 1, 10, 0, 1, 0, time.UTC)
	rec := Record{ID: "1001", Properties: map[string]string{"firstname": "Ada", "lifecyclestage": "customer"}, UpdatedAt: updated}
	m := Mapping{Fields: map[string]string{"firstname": "first_name", "lifecyclestage": "lifecycle_stage", "hs_lead_status": "lead_status"}}
	o := hubspotsource.Origin{Source: "crm-in", HubID: 777, ReceivedAt: updated}
	times := map[string]int64{"firstname": changed.UnixMilli(), "hs_lead_status": changed.UnixMilli()}
	raw, err := hubspotsource.Identify(o, record(rec, times), "u-ada", m.transform(), nil)
	if err != nil {
		t.Fatal(err)
	}
	call := string(raw)
	for path, want := range map[string]string{
		"_switchyard.hubspot.properties.firstname.timestamp":      "2026-12-01T10:00:01.000Z",
		"_switchyard.hubspot.properties.lifecyclestage.timestamp": "2026-12-01T10:00:05.000Z",
		"traits.first_name": "Ada",
		"timestamp":         "2026-12-01T10:00:05.000Z",
	} {
		if got := gjson.Get(call, path).String(); got != want {
			t.Errorf("%s = %q, want %q in %s", path, got, want, call)
		}
	}
	if gjson.Get(call, "_switchyard.hubspot.properties.hs_lead_status.timestamp").String() != "" {
		t.Errorf("a property the record lacks is carried: %s", call)
	}
}
