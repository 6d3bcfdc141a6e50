package ui

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Syncs are the HubSpot sources' syncs the process runs: the catch-ups and
// full syncs the admin endpoint (POST /admin/sources/{source}/sync) and the
// catch-up schedule start.
type Syncs interface {
	// Progress returns one SourceSync for each source the process syncs,
	// with the running sync's progress or the last one's.
	Progress() []SourceSync
	// StartFull starts a full sync of source as the admin endpoint does,
	// returning once it runs; ErrSyncRunning while a sync of source runs.
	StartFull(source string) error
}

// ErrSyncRunning is what Syncs.StartFull returns while a sync of the
// source runs.
var ErrSyncRunning = errors.New("a sync of this source is running")

// SourceSync is a source's running or last sync.
type SourceSync struct {
	Source string
	// Kind is "catch-up" or "full"; "" when no sync of the source ran in
	// this process.
	Kind string
	// State is "running", "done", "failed" or "interrupted".
	State string
	// ObjectType is the type being read, or last read.
	ObjectType string
	// Done counts the records read (for a resumed full sync, those of the
	// run it resumed too), Emitted the calls appended; Total is how many
	// records HubSpot counts to read, 0 when unknown.
	Done, Emitted, Total int64
	Started, Updated     time.Time
	// Error says why a failed or interrupted sync ended.
	Error string
}

// Sync states, as SourceSync.State has them.
const (
	syncRunning = "running"
	syncDone    = "done"
	syncFailed  = "failed"
)

// syncRow is a source's sync on the overview.
type syncRow struct {
	Source     string
	Ran        bool
	Kind       string
	State      string
	StateClass string // the chip's class: good, bad or none
	ObjectType string
	Read       string // records read, of the total when known
	Percent    string // "" when the total is not known
	Emitted    int64
	Rate       string // records read per second over rateWindow, while running
	Left       string // the estimated time left, while running with a known total
	Started    string
	Took       string // how long it ran, once it ended
	Error      string
	// Previous is the last sync the page saw end before the running one
	// started; nil when it saw none.
	Previous *syncRow
}

// syncWatch follows the sources' syncs from sample to sample, for their
// rates and the last one each source finished.
type syncWatch struct {
	mu       sync.Mutex
	samples  map[string][]syncSample // by source, oldest first, over rateWindow
	finished map[string]SourceSync   // the last ended sync seen, by source
}

type syncSample struct {
	at      time.Time
	started time.Time
	done    int64
}

// rows reads syncs at now and returns the overview's rows; none when syncs
// is nil.
func (w *syncWatch) rows(syncs Syncs, now time.Time) []syncRow {
	if syncs == nil {
		return nil
	}
	list := syncs.Progress()
	slices.SortFunc(list, func(a, b SourceSync) int { return strings.Compare(a.Source, b.Source) })
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.samples == nil {
		w.samples, w.finished = map[string][]syncSample{}, map[string]SourceSync{}
	}
	out := make([]syncRow, 0, len(list))
	for _, p := range list {
		switch {
		case p.Kind == "":
			delete(w.samples, p.Source)
			out = append(out, syncRow{Source: p.Source})
		case p.State != syncRunning:
			delete(w.samples, p.Source)
			w.finished[p.Source] = p
			out = append(out, syncRowOf(p, -1))
		default:
			row := syncRowOf(p, w.rate(p, now))
			if prev, ok := w.finished[p.Source]; ok && prev.Started.Before(p.Started) {
				r := syncRowOf(prev, -1)
				row.Previous = &r
			}
			out = append(out, row)
		}
	}
	return out
}

// rate keeps p's sample at now and returns its records read per second
// since the oldest sample of the same sync within rateWindow; -1 before
// there are two.
func (w *syncWatch) rate(p SourceSync, now time.Time) float64 {
	var kept []syncSample
	for _, s := range w.samples[p.Source] {
		if s.started.Equal(p.Started) && now.Sub(s.at) <= rateWindow {
			kept = append(kept, s)
		}
	}
	kept = append(kept, syncSample{at: now, started: p.Started, done: p.Done})
	w.samples[p.Source] = kept
	first := kept[0]
	dt := now.Sub(first.at).Seconds()
	if dt <= 0 {
		return -1
	}
	return float64(p.Done-first.done) / dt
}

// syncRowOf renders p; rate is its records per second, negative when not
// known.
func syncRowOf(p SourceSync, rate float64) syncRow {
	row := syncRow{
		Source: p.Source, Ran: true, Kind: p.Kind, State: p.State, ObjectType: p.ObjectType,
		Read: strconv.FormatInt(p.Done, 10), Emitted: p.Emitted, Error: p.Error,
		Rate: "–", Left: "–", Started: p.Started.UTC().Format(time.RFC3339),
	}
	if row.ObjectType == "" {
		row.ObjectType = "–"
	}
	switch p.State {
	case syncDone:
		row.StateClass = "good"
	case syncFailed:
		row.StateClass = "bad"
	}
	if p.Total > 0 {
		row.Read += " of " + strconv.FormatInt(p.Total, 10)
		row.Percent = strconv.FormatInt(min(100, p.Done*100/p.Total), 10) + "%"
	}
	if p.State != syncRunning {
		row.Took = p.Updated.Sub(p.Started).Round(time.Second).String()
		return row
	}
	if rate >= 0 {
		row.Rate = formatRate(rate) + "/s"
		if p.Total > p.Done && rate > 0 {
			left := time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second))
			row.Left = "about " + left.Round(time.Second).String()
		}
	}
	return row
}

// serveStartFullSync starts a full sync of the source the form names, then
// sends the browser back to the overview.
func (h *Handler) serveStartFullSync(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Syncs == nil {
		http.Error(w, "this process syncs no HubSpot source", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	source := r.PostFormValue("source")
	if !slices.ContainsFunc(h.cfg.Syncs.Progress(), func(s SourceSync) bool { return s.Source == source }) {
		http.Error(w, fmt.Sprintf("this process syncs no HubSpot source named %q", source), http.StatusNotFound)
		return
	}
	switch err := h.cfg.Syncs.StartFull(source); {
	case errors.Is(err, ErrSyncRunning):
		http.Error(w, fmt.Sprintf("a sync of source %s is running; its progress is on the overview", source), http.StatusConflict)
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	}
}

// syncSources are the sources the page's "Start full sync" buttons name.
func (h *Handler) syncSources() []string {
	if h.cfg.Syncs == nil {
		return nil
	}
	var names []string
	for _, s := range h.cfg.Syncs.Progress() {
		names = append(names, s.Source)
	}
	slices.Sort(names)
	return names
}
