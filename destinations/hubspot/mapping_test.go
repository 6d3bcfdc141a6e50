package hubspot_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/destinations/hubspot"
)

// TestMappedTellsWhatEachKeyBecame checks that Config.Mapped hears, per
// event of the batch, the property each trait or event property became and
// why the others were skipped.
func TestMappedTellsWhatEachKeyBecame(t *testing.T) {
	p := newPortal(t)
	got := map[int][]string{}
	h := p.destination(t, hubspot.Config{Mapped: func(event int, mapping []hubspot.Mapping) {
		for _, m := range mapping {
			got[event] = append(got[event], fmt.Sprintf("%s %s->%s=%q skipped=%q", m.Object, m.Key, m.Property, m.Value, m.Skipped))
		}
	}})
	send(t, h,
		ev(`{"type":"identify","userId":"u1","traits":{"email":"a@example.com","firstName":"Ada","favourite colour":"red","2fa":true}}`),
		ev(`{"type":"track","userId":"u1","event":"Clicked","properties":{"email":"a@example.com","Button Name":"buy"}}`),
	)
	want := map[int][]string{
		0: {
			`contacts email->email="a@example.com" skipped=""`,
			`contacts firstName->firstname="Ada" skipped=""`,
			`contacts 2fa->="" skipped="cannot be a property name: it normalizes to \"2fa\", which does not start with a letter"`,
			`contacts favourite colour->favourite_colour="" skipped="unknown contact property; enable auto_create_properties or create it in HubSpot"`,
		},
		1: {
			`contacts email->email="a@example.com" skipped=""`,
			`events Button Name->button_name="buy" skipped=""`,
			`events email->email="a@example.com" skipped=""`,
		},
	}
	for i := range 2 {
		if strings.Join(got[i], "\n") != strings.Join(want[i], "\n") {
			t.Errorf("event %d mapped\n%s\nwant\n%s", i, strings.Join(got[i], "\n"), strings.Join(want[i], "\n"))
		}
	}
}
