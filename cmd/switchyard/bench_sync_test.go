package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	hubspotsource "github.com/switchyard/switchyard/sources/hubspot"
)

// The free tier's allowances the syncs are read against: the token's
// calls per 10-second window, the search calls per second, and the
// records a page of each carries.
const (
	freeTierCallsPer10s = 100
	searchesPerSecond   = 5
	searchPageRecords   = 200
	readPageRecords     = 100
)

// syncEndpoints are the sandbox endpoints (as its stats name them) a full
// sync calls in the token's 10-second window; the rest of that window's
// calls are the destination's, and so are the batch reads the destination
// counts as its own (readEndpoint).
var syncEndpoints = map[string]bool{
	readEndpoint:                          true,
	listEndpoint:                          true,
	"GET /account-info/v3/details":        true,
	"GET /crm/v3/properties/{objectType}": true,
}

// listEndpoint is the list of every record, which the full sync reads
// upwards with.
const listEndpoint = "GET /crm/v3/objects/{objectType}"

// readEndpoint is the batch read, which the full sync reads records with
// and the destination looks contacts up with.
const readEndpoint = "POST /crm/v3/objects/{objectType}/batch/read"

const searchEndpoint = "POST /crm/v3/objects/{objectType}/search"

// benchSourceCatchUp makes env.records users known and their contacts
// (through the hubspot destination), edits every contact in the sandbox
// with no webhook reaching serve, and times one catch-up through serve's
// admin endpoint to its end: records/s against the search ceiling and the
// searches it made.
func benchSourceCatchUp(b *testing.B, env sourceBenchEnv) []sourceFigure {
	rig := startSourceRig(b, env, false)
	contacts := rig.knownContacts(b, env.records)
	// serve's first scheduled catch-up (no checkpoint yet) ends before the
	// edits, so that the measured one finds them all.
	rig.waitSyncIdle(b)

	var failed atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(contacts); i = int(next.Add(1) - 1) {
				if status := rig.edit(contacts[i], "c"+fmt.Sprint(i)); status/100 != 2 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("the sandbox refused %d of %d edits", n, len(contacts))
	}

	rig.setLatency(b, env.latency)
	before := rig.sandboxCalls(b)
	p := rig.sync(b, `{}`, nil)
	after := rig.sandboxCalls(b)
	if p.State != hubspotsource.SyncDone {
		b.Fatalf("the catch-up ended %s: %s", p.State, p.Error)
	}
	searches := after.calls[searchEndpoint] - before.calls[searchEndpoint]
	took := p.Updated.Sub(p.Started)
	perSec := float64(p.Done) / took.Seconds()
	ceiling := float64(searchesPerSecond * searchPageRecords)
	name := fmt.Sprintf("catch-up (%d edited contacts)", len(contacts))
	return []sourceFigure{
		{name, "records/s", fmt.Sprintf("%.0f (%.0f%%)", perSec, 100*perSec/ceiling), fmt.Sprintf("search ceiling %.0f records/s; the first second's %d searches at once", ceiling, searchesPerSecond)},
		{name, "time to its end", fmtMS(took), ""},
		{name, "records read, calls appended", fmt.Sprintf("%d, %d", p.Done, p.Emitted), fmt.Sprintf("%d edited", len(contacts))},
		{name, "search calls", fmt.Sprintf("%d (%.1f/s)", searches, float64(searches)/took.Seconds()), fmt.Sprintf("%d/s allowed", searchesPerSecond)},
		{name, "search calls answered 429", fmt.Sprint(after.limited[searchEndpoint] - before.limited[searchEndpoint]), ""},
	}
}

// benchSourceFullSync makes env.fullRecords users known and their contacts,
// then runs one full sync with the destination idle and one while
// env.rate identifies/s through the gateway keep the hubspot destination
// calling HubSpot, and returns each one's records/s and share of the
// token's 10-second budget.
func benchSourceFullSync(b *testing.B, env sourceBenchEnv) []sourceFigure {
	rig := startSourceRig(b, env, false)
	rig.knownContacts(b, env.fullRecords)
	rig.waitSyncIdle(b)
	rig.setLatency(b, env.latency)
	// Nothing else of the token's in the window the idle run starts in.
	rig.waitQuiet(b, 11*time.Second)
	figures := rig.measureFull(b, fmt.Sprintf("full sync (%d contacts), destination idle", env.fullRecords))

	stop := rig.identifyLoad(b, env.rate, env.fullRecords)
	// The load's calls fill the window the busy run starts in.
	time.Sleep(12 * time.Second)
	figures = append(figures, rig.measureFull(b, fmt.Sprintf("full sync (%d contacts), destination busy (%d identifies/s)", env.fullRecords, env.rate))...)
	if sent, refused := stop(); refused > 0 {
		b.Fatalf("the gateway refused %d of %d identify batches", refused, sent)
	}
	return figures
}

// measureFull runs one full sync and reads it at every 10 s from its
// start: records/s and the token's calls (the sync's, the rest's) over
// its whole 10-second windows.
func (r *sourceRig) measureFull(b *testing.B, name string) []sourceFigure {
	type mark struct {
		calls sandboxCallCounts
		done  int64
	}
	start := r.sandboxCalls(b)
	var marks []mark
	t0 := time.Now()
	p := r.sync(b, `{"full":true}`, func(pr hubspotsource.Progress) {
		// Called while the sync runs: a mark at each whole window.
		if time.Since(t0) >= time.Duration(len(marks)+1)*10*time.Second {
			marks = append(marks, mark{r.sandboxCalls(b), pr.Done})
		}
	})
	if p.State != hubspotsource.SyncDone {
		b.Fatalf("the full sync ended %s: %s", p.State, p.Error)
	}
	took := p.Updated.Sub(p.Started)
	overall := float64(p.Done) / took.Seconds()
	figures := []sourceFigure{
		{name, "records/s, start to end", fmt.Sprintf("%.0f", overall), "the window's first allowance included"},
		{name, "records read, calls appended", fmt.Sprintf("%d, %d", p.Done, p.Emitted), ""},
	}
	if len(marks) == 0 {
		return append(figures, sourceFigure{name, "budget share", "not measured", "the sync took under 10 s: raise BENCH_FULL_RECORDS"})
	}
	last := marks[len(marks)-1]
	windows := len(marks)
	seconds := float64(windows * 10)
	syncCalls, otherCalls := last.calls.since(start)
	budget := windows * freeTierCallsPer10s
	left := budget - otherCalls
	perSec := float64(last.done) / seconds
	ceiling := float64(freeTierCallsPer10s / 10 * readPageRecords)
	return append(figures,
		sourceFigure{name, fmt.Sprintf("records/s, first %d windows of 10 s", windows), fmt.Sprintf("%.0f (%.0f%%)", perSec, 100*perSec/ceiling), fmt.Sprintf("free tier %.0f records/s", ceiling)},
		sourceFigure{name, "token's calls in those windows", fmt.Sprintf("%d sync + %d destination of %d (%.1f%%)", syncCalls, otherCalls, budget, 100*float64(syncCalls+otherCalls)/float64(budget)), ""},
		sourceFigure{name, "sync's share of what the destination left", fmt.Sprintf("%.1f%%", 100*float64(syncCalls)/float64(max(left, 1))), "goal >= 95%"},
		sourceFigure{name, "calls answered 429", fmt.Sprint(last.calls.limitedTotal() - start.limitedTotal()), ""},
	)
}

// sync asks serve for a sync (body: a SyncRequest) through its admin
// endpoint and follows it to its end, calling during (may be nil) with
// each progress read while it runs; it returns the last progress.
func (r *sourceRig) sync(b *testing.B, body string, during func(hubspotsource.Progress)) hubspotsource.Progress {
	b.Helper()
	endpoint := "http://" + r.serve.addr + "/admin/sources/" + benchSourceName + "/sync"
	resp, err := r.client.Post(endpoint, "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("POST %s: %d %s", endpoint, resp.StatusCode, raw)
	}
	for {
		p := r.syncProgress(b)
		if p.State != hubspotsource.SyncRunning {
			return p
		}
		if during != nil {
			during(p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncProgress reads the progress of serve's running or last sync; the
// zero Progress when none ran.
func (r *sourceRig) syncProgress(b *testing.B) hubspotsource.Progress {
	b.Helper()
	resp, err := r.client.Get("http://" + r.serve.addr + "/admin/sources/" + benchSourceName + "/sync")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p hubspotsource.Progress
	switch resp.StatusCode {
	case http.StatusNotFound:
		return p
	case http.StatusOK:
		if err := json.Unmarshal(raw, &p); err != nil {
			b.Fatalf("the sync's progress: %v: %s", err, raw)
		}
		return p
	}
	b.Fatalf("GET the sync's progress: %d %s", resp.StatusCode, raw)
	return p
}

// setLatency makes the sandbox answer every API call d later.
func (r *sourceRig) setLatency(b *testing.B, d time.Duration) {
	b.Helper()
	resp, err := r.client.Post(r.sandbox+"/_sandbox/latency", "application/json", strings.NewReader(fmt.Sprintf(`{"ms":%d}`, d.Milliseconds())))
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b.Fatalf("setting the sandbox's latency: %d", resp.StatusCode)
	}
}

// waitSyncIdle waits until no sync of the source runs.
func (r *sourceRig) waitSyncIdle(b *testing.B) {
	b.Helper()
	eventuallyTrueWithin(b, 2*time.Minute, "no sync runs", func() bool {
		return r.syncProgress(b).State != hubspotsource.SyncRunning
	})
}

// waitQuiet waits until the sandbox has answered no API call for d.
func (r *sourceRig) waitQuiet(b *testing.B, d time.Duration) {
	b.Helper()
	last, since := r.sandboxCalls(b).total(), time.Now()
	for deadline := time.Now().Add(2*time.Minute + d); time.Since(since) < d; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the sandbox did not go quiet for %s", d)
		}
		if n := r.sandboxCalls(b).total(); n != last {
			last, since = n, time.Now()
		}
	}
}

// identifyLoad posts rate identifies a second through the gateway, ten
// batches a second, each of the users bench-u0..users-1 in turn with a
// firstName of its own, so the hubspot destination writes them. stop ends
// it and returns the batches sent and those not answered 200.
func (r *sourceRig) identifyLoad(b *testing.B, rate, users int) (stop func() (sent, refused int64)) {
	var sent, refused atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			var items []string
			for i := 0; i < max(1, rate/10); i++ {
				u := n % users
				items = append(items, fmt.Sprintf(`{"type":"identify","userId":"bench-u%d","traits":{"email":"u%d@bench.example","firstName":"L%d"}}`, u, u, n))
				n++
			}
			req, _ := http.NewRequest(http.MethodPost, "http://"+r.serve.addr+"/v1/batch", strings.NewReader(`{"batch":[`+strings.Join(items, ",")+`]}`))
			req.SetBasicAuth("bench-key", "")
			sent.Add(1)
			resp, err := r.client.Do(req)
			if err != nil {
				refused.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				refused.Add(1)
			}
		}
	}()
	return func() (int64, int64) {
		close(done)
		<-finished
		return sent.Load(), refused.Load()
	}
}

// sandboxCallCounts is the sandbox's API calls by endpoint: those it
// admitted (any status but 429) and those it refused with 429, and the
// destination's batch reads among them.
type sandboxCallCounts struct {
	calls, limited map[string]int
	// destinationReads is the batch reads the hubspot destination counts
	// as made and not refused with 429.
	destinationReads int
}

// sandboxCalls reads the sandbox's request counts.
func (r *sourceRig) sandboxCalls(b *testing.B) sandboxCallCounts {
	b.Helper()
	c := sandboxCallCounts{calls: map[string]int{}, limited: map[string]int{}}
	sandboxGet(b, r.sandbox, "/_sandbox/stats").Get("endpoints").ForEach(func(endpoint, statuses gjson.Result) bool {
		statuses.ForEach(func(status, n gjson.Result) bool {
			if status.String() == "429" {
				c.limited[endpoint.String()] += int(n.Int())
			} else {
				c.calls[endpoint.String()] += int(n.Int())
			}
			return true
		})
		return true
	})
	families, err := scrapeMetrics(r.serve.addr)
	if err != nil {
		b.Fatalf("reading serve's metrics: %v", err)
	}
	for _, m := range families["switchyard_hubspot_calls_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["destination"] == "crm" && labels["endpoint"] == "contacts/read" && labels["outcome"] != "http_429" {
			c.destinationReads += int(m.GetCounter().GetValue())
		}
	}
	return c
}

// total is every call counted, the refused ones too.
func (c sandboxCallCounts) total() int {
	n := c.limitedTotal()
	for _, v := range c.calls {
		n += v
	}
	return n
}

func (c sandboxCallCounts) limitedTotal() int {
	n := 0
	for _, v := range c.limited {
		n += v
	}
	return n
}

// since splits the calls admitted in the token's 10-second window since
// from into the full sync's and the others' (searches have a window of
// their own and are left out).
func (c sandboxCallCounts) since(from sandboxCallCounts) (syncCalls, otherCalls int) {
	for endpoint, n := range c.calls {
		if endpoint == searchEndpoint {
			continue
		}
		d := n - from.calls[endpoint]
		if syncEndpoints[endpoint] {
			syncCalls += d
		} else {
			otherCalls += d
		}
	}
	reads := c.destinationReads - from.destinationReads
	return syncCalls - reads, otherCalls + reads
}
