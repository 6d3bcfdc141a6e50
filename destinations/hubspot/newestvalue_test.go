package hubspot_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
)

// timedValue is a property value and the time it was set at.
type timedValue struct {
	value string
	at    time.Time
}

// appEvent is an identify the app sent: a contact's values at one time.
type appEvent struct {
	contact int
	at      time.Time
	values  map[string]string
}

// Random interleavings of app identifies (new, late and replayed), edits
// made in HubSpot (reported by a HubSpot source of this portal, with every
// mapped property as HubSpot holds it, the destination's own writes
// included at the time HubSpot took them) and restarts of the destination
// on its state directory. After every step HubSpot holds, for every
// property, the value with the newest time, whether the app or a person in
// HubSpot set it.
func TestHubSpotAlwaysHoldsTheNewestValueOfAppEventsAndHubSpotEdits(t *testing.T) {
	for seed := range uint64(25) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runNewestValueModel(t, seed) })
	}
}

func runNewestValueModel(t *testing.T, seed uint64) {
	const contacts, steps = 3, 60
	properties := []string{"firstname", "lastname", "jobtitle"}
	rng := rand.New(rand.NewPCG(seed, 1))
	p := newPortal(t)
	dir := t.TempDir()
	h := p.destination(t, hubspot.Config{StateDir: dir})
	defer func() { h.Close() }()

	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	// Edits happen at now, an even second; app events at odd seconds with
	// a distinct millisecond each, so no two times are equal.
	now := base
	// newest is the model: per contact and property, the newest value set.
	newest := make([]map[string]timedValue, contacts)
	// reported is what HubSpot holds and the time it reports for it.
	reported := make([]map[string]timedValue, contacts)
	ids := make([]string, contacts)
	for c := range contacts {
		newest[c], reported[c] = map[string]timedValue{}, map[string]timedValue{}
	}
	var sent []appEvent
	var history []string
	counter := 0
	email := func(c int) string { return fmt.Sprintf("c%d@example.com", c) }
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d: %s\nsteps:\n  %s", seed, fmt.Sprintf(format, args...), strings.Join(history, "\n  "))
	}

	for step := range steps {
		now = now.Add(2 * time.Second)
		switch r := rng.IntN(10); {
		case r < 5: // a batch of app identifies
			var batch []appEvent
			for range 1 + rng.IntN(3) {
				if len(sent) > 0 && rng.IntN(3) == 0 {
					batch = append(batch, sent[rng.IntN(len(sent))])
					continue
				}
				counter++
				e := appEvent{contact: rng.IntN(contacts), values: map[string]string{},
					at: now.Add(time.Second - time.Duration(rng.IntN(6))*2*time.Second + time.Duration(counter)*time.Millisecond)}
				for _, name := range properties {
					if rng.IntN(2) == 0 {
						e.values[name] = fmt.Sprintf("app%d", counter)
					}
				}
				if len(e.values) == 0 {
					e.values[properties[rng.IntN(len(properties))]] = fmt.Sprintf("app%d", counter)
				}
				batch = append(batch, e)
				sent = append(sent, e)
			}
			events := make([]destinations.Event, len(batch))
			for k, e := range batch {
				var traits strings.Builder
				for _, name := range slices.Sorted(maps.Keys(e.values)) {
					fmt.Fprintf(&traits, ",%q:%q", name, e.values[name])
				}
				events[k] = appIdentify(fmt.Sprintf("u%d", e.contact), email(e.contact), e.at, traits.String())
				history = append(history, fmt.Sprintf("%d app c%d at %s %v", step, e.contact, e.at.Format("15:04:05.000"), e.values))
				for name, v := range e.values {
					if cur, ok := newest[e.contact][name]; !ok || e.at.After(cur.at) {
						newest[e.contact][name] = timedValue{v, e.at}
					}
				}
			}
			for k, o := range send(t, h, events...) {
				if o.Result != destinations.Delivered {
					fail("app event %d of step %d: %+v", k, step, o)
				}
			}
			// HubSpot reports the destination's writes at the time it took them.
			for c := range contacts {
				rec, ok := contactByEmail(p, email(c))
				if !ok {
					continue
				}
				ids[c] = rec.ID
				for _, name := range properties {
					if v, ok := rec.Properties[name]; ok && v != "" && v != reported[c][name].value {
						reported[c][name] = timedValue{v, now}
					}
				}
			}
		case r < 8: // a person edits a contact in HubSpot; the source reports it
			c := rng.IntN(contacts)
			if ids[c] == "" {
				continue
			}
			counter++
			edit := map[string]string{properties[rng.IntN(len(properties))]: fmt.Sprintf("rep%d", counter)}
			if rng.IntN(2) == 0 {
				edit[properties[rng.IntN(len(properties))]] = fmt.Sprintf("rep%d", counter)
			}
			p.editInHubSpot(t, ids[c], edit)
			history = append(history, fmt.Sprintf("%d edit c%d at %s %v", step, c, now.Format("15:04:05.000"), edit))
			for name, v := range edit {
				newest[c][name] = timedValue{v, now}
				reported[c][name] = timedValue{v, now}
			}
			props := map[string]hubSpotValue{}
			for name, v := range reported[c] {
				props[name] = hubSpotValue{v.value, stamp(v.at)}
			}
			if rng.IntN(2) == 0 {
				props["email"] = hubSpotValue{email(c), stamp(base)}
			}
			o := send(t, h, sourceIdentify(t, hubID, fmt.Sprintf("u%d", c), ids[c], now, nil, props))[0]
			if o.Result != destinations.Delivered || o.Class != "from_this_portal" {
				fail("the source's event of step %d: %+v", step, o)
			}
		default: // a restart
			history = append(history, fmt.Sprintf("%d restart", step))
			if err := h.Close(); err != nil {
				fail("closing: %v", err)
			}
			h = p.destination(t, hubspot.Config{StateDir: dir})
		}

		for c := range contacts {
			rec, ok := contactByEmail(p, email(c))
			if !ok {
				if len(newest[c]) > 0 {
					fail("after step %d contact c%d is missing", step, c)
				}
				continue
			}
			for name, want := range newest[c] {
				if got := rec.Properties[name]; got != want.value {
					fail("after step %d contact c%d has %s = %q, want %q (set at %s)", step, c, name, got, want.value, want.at.Format("15:04:05.000"))
				}
			}
		}
	}
}
