package ui

import (
	"fmt"
	"math"
	"time"
)

// budgetCell is one budget window: Known is false when the process does
// not export it, or (daily) HubSpot has not reported a limit.
type budgetCell struct {
	Known             bool
	Used, Limit, Left float64
}

// hubspotDest is the HubSpot part of a destination's row at now, prev
// being its reading rateWindow before.
func hubspotDest(d, prev *destReading, now time.Time) *hubspotDestRow {
	row := &hubspotDestRow{Paused: d.paused, Calls: max(0, d.calls-prev.calls), CallsToday: d.callsToday}
	cell := func(window string) budgetCell {
		w := d.budget[window]
		if w == nil || w.limit <= 0 {
			return budgetCell{}
		}
		return budgetCell{Known: true, Used: w.used, Limit: w.limit, Left: max(0, w.limit-w.used)}
	}
	row.Burst, row.Daily, row.Search = cell("10s"), cell("daily"), cell("search")
	if d.dailyReset > 0 {
		at := unixTime(d.dailyReset)
		row.DailyReset = at.Format(clockFormat) + " (" + formatIn(at.Sub(now)) + ")"
	}
	// The pause's end, read at the scrape, says more than the paused gauge,
	// which is set after each send.
	if d.hasPausedUntil {
		row.Paused = d.pausedUntil > 0
	}
	if row.Paused {
		row.PauseReason = d.pauseReason
		if d.pausedUntil > 0 {
			at := unixTime(d.pausedUntil)
			row.PausedUntil, row.PausedAt, row.PausedIn = at.Format(clockFormat), at.Format(time.RFC3339), formatIn(at.Sub(now))
		}
	}
	return row
}

// clockFormat shows a time of day on the page.
const clockFormat = "15:04:05 UTC"

// unixTime is the UTC time of Unix seconds.
func unixTime(sec float64) time.Time {
	return time.UnixMilli(int64(math.Round(sec * 1000))).UTC()
}

// formatIn says how far off d is: "in 42 s", "in 7 min", "in 3 h 5 min",
// rounding up, or "now".
func formatIn(d time.Duration) string {
	if d <= 0 {
		return "now"
	}
	if d < time.Minute {
		return fmt.Sprintf("in %d s", int(math.Ceil(d.Seconds())))
	}
	m := int(math.Ceil(d.Minutes()))
	if m < 60 {
		return fmt.Sprintf("in %d min", m)
	}
	return fmt.Sprintf("in %d h %d min", m/60, m%60)
}
