package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/tidwall/gjson"
)

// benchPageToken is the admin token of the processes BenchmarkPageUnderLoad
// runs.
const benchPageToken = "bench-page-admin-token"

// BenchmarkPageUnderLoad measures the delivery page of `gateway` (embedded
// log) and of `serve` (embedded log, a drop destination) while idle and
// while BenchmarkIngest's /v1/batch load (100 events per request, 50
// connections) runs, with a signed-in browser's requests: the Overview with
// every asset it references (time and bytes on the wire, cold cache), the
// gaps between the overview stream's updates and any update missed, the
// dead letters page, the live events page, its stream's first event and
// the event's detail. It also reports the process's events/s under the
// same load with the page never opened. BENCH_DURATION (default 20s) is the
// length of each phase. Run it with `make bench-page`.
func BenchmarkPageUnderLoad(b *testing.B) {
	duration, _ := benchEnv(b)
	sc := loadScenario{name: "/v1/batch, 100 events per request", path: "/v1/batch", perRequest: 100, connections: 50}
	var runs []pageRun
	for i := 0; i < b.N; i++ {
		runs = runs[:0]
		for _, role := range []string{"gateway", "serve"} {
			runs = append(runs, runPageUnderLoad(b, role, sc, duration))
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "role\tload\toverview loads\toverview ms p50/p99/max\toverview KB\tupdates\tgap ms p50/p99/max\tmissed\tdead letters ms p50/p99\tlive page ms p50/p99\tfirst live event ms p50/p99\tevent detail ms p50/p99\tfailed\t\n")
	for _, r := range runs {
		for _, p := range []struct {
			name string
			s    *pageStats
		}{{"idle", &r.idle}, {"batch x100, 50 conns", &r.loaded}} {
			s := p.s
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%.1f\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t\n", r.role, p.name,
				len(s.overview), pcts(s.overview, true), float64(slices.Max(append(s.overviewBytes, 0)))/1024,
				len(s.gaps), pcts(s.gaps, true), s.missed,
				pcts(s.deadLetters, false), pcts(s.livePage, false), pcts(s.liveFirst, false), pcts(s.liveEvent, false), s.failed)
		}
	}
	w.Flush()
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "role\tpage\tevents/s\trequests/s\tp50 ms\tp99 ms\tnon-200\tCPU ms per 1,000 events\t\n")
	for _, r := range runs {
		for _, p := range []struct {
			name string
			l    loadResult
			cpu  time.Duration
		}{{"never opened", r.closed, r.closedCPU}, {"open", r.open, r.openCPU}} {
			fmt.Fprintf(w, "%s\t%s\t%.0f\t%.0f\t%.2f\t%.2f\t%d\t%.1f\t\n", r.role, p.name, p.l.eventsPerSec, p.l.requestsPerSec, ms(p.l.p50), ms(p.l.p99), p.l.failed, ms(p.cpu))
		}
	}
	w.Flush()
	for _, r := range runs {
		fmt.Printf("%s idle: %.1f%% of a CPU with no page open, %.1f%% while the page loads as above\n", r.role, 100*r.quietCPU, 100*r.idleCPU)
	}
	fmt.Printf("each phase %s; the page's sampler ticks every 1s; overview KB is the most one cold load read off the wire\n", duration)
	fmt.Printf("over and over, 250 ms apart, the browser loads the Overview with an empty cache, the dead letters and live events pages, opens the live stream until its first event and loads that event; %d CPUs\n", numCPU())
	for _, r := range runs {
		for _, s := range []*pageStats{&r.idle, &r.loaded} {
			if s.firstErr != nil {
				fmt.Printf("%s: first failure: %v\n", r.role, s.firstErr)
			}
		}
	}
}

// pageRun is one role's measurements.
type pageRun struct {
	role         string
	idle, loaded pageStats
	closed, open loadResult // the load with the page never opened, and open
	// closedCPU and openCPU are the process's CPU time per 1,000 accepted
	// events under those loads.
	closedCPU, openCPU time.Duration
	// quietCPU and idleCPU are the share of one CPU the idle process used
	// with no page open, and while the browser loaded the page over and over.
	quietCPU, idleCPU float64
}

// pageStats is what a browser saw of the page over one phase.
type pageStats struct {
	overview      []time.Duration // HTML and every asset, cold cache
	overviewBytes []int64         // read off the wire per overview load
	gaps          []time.Duration // between the overview stream's updates
	missed        uint64          // updates the stream skipped (by their ids)
	deadLetters   []time.Duration
	livePage      []time.Duration
	liveFirst     []time.Duration // from opening the live stream to its first event
	liveEvent     []time.Duration // one event's detail
	failed        int
	firstErr      error
}

func (s *pageStats) fail(err error) {
	s.failed++
	if s.firstErr == nil {
		s.firstErr = err
	}
}

// pcts formats p50/p99 (and max) of ds in milliseconds.
func pcts(ds []time.Duration, withMax bool) string {
	if len(ds) == 0 {
		return "–"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) float64 { return ms(s[min(len(s)-1, int(float64(len(s))*p))]) }
	if withMax {
		return fmt.Sprintf("%.1f/%.1f/%.1f", at(0.5), at(0.99), ms(s[len(s)-1]))
	}
	return fmt.Sprintf("%.1f/%.1f", at(0.5), at(0.99))
}

// runPageUnderLoad measures role's page idle and under sc, and the load's
// figures with the page open and, on a fresh process, never opened.
func runPageUnderLoad(b *testing.B, role string, sc loadScenario, duration time.Duration) pageRun {
	b.Helper()
	run := pageRun{role: role}

	srv := startPageBench(b, role)
	run.closed, run.closedCPU = loadWithCPU(b, srv, sc, duration)
	srv.stop(b, syscall.SIGTERM)

	srv = startPageBench(b, role)
	defer srv.stop(b, syscall.SIGTERM)
	if err := seedPageBench(srv.addr); err != nil {
		b.Fatal(err)
	}
	br, err := signIn(srv.addr)
	if err != nil {
		b.Fatal(err)
	}
	// Two samples, so the overview has rates and the seed's rows.
	pid := srv.cmd.Process.Pid
	cpu0, begin := cpuTime(pid), time.Now()
	time.Sleep(2500 * time.Millisecond)
	cpu1, mid := cpuTime(pid), time.Now()
	run.idle = br.measure(duration, true)
	run.quietCPU = (cpu1 - cpu0).Seconds() / mid.Sub(begin).Seconds()
	run.idleCPU = (cpuTime(pid) - cpu1).Seconds() / time.Since(mid).Seconds()

	// The load warms up for 2 s before its measured duration; the page is
	// measured over the same span.
	done := make(chan pageStats)
	go func() {
		time.Sleep(2 * time.Second)
		done <- br.measure(duration, false)
	}()
	run.open, run.openCPU = loadWithCPU(b, srv, sc, duration)
	run.loaded = <-done
	return run
}

// loadWithCPU runs loadServer and returns, besides its result, the CPU
// time the process used per 1,000 events it accepted over the whole run,
// warm-up included.
func loadWithCPU(b *testing.B, srv *server, sc loadScenario, duration time.Duration) (loadResult, time.Duration) {
	b.Helper()
	const accepted = `switchyard_gateway_messages_total{outcome="accepted"}`
	events0, _ := scrapeCounter(srv.addr, accepted)
	cpu0 := cpuTime(srv.cmd.Process.Pid)
	res := loadServer(b, "embedded", srv, sc, duration)
	cpu := cpuTime(srv.cmd.Process.Pid) - cpu0
	events, _ := scrapeCounter(srv.addr, accepted)
	if events <= events0 {
		b.Fatalf("the load added no accepted event (%v before, %v after)", events0, events)
	}
	return res, time.Duration(float64(cpu) * 1000 / (events - events0))
}

// cpuTime is the user and system CPU time pid has used, from /proc (in
// clock ticks of 1/100 s, as on every Linux the benchmarks run on).
func cpuTime(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command's ")" start at the third, the state;
	// utime and stime are the 14th and 15th.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100
}

// startPageBench starts role on the embedded log with the admin token and
// write key bench-key; serve gets a drop destination.
func startPageBench(b *testing.B, role string) *server {
	b.Helper()
	suffix := uniqueSuffix()
	yaml := fmt.Sprintf("log_level: warn\nlog:\n  events_topic: page-events-%s\n  dlq_topic: page-dlq-%s\n", suffix, suffix)
	if role == "serve" {
		yaml += "destinations:\n  - name: bench\n    type: drop\n"
	}
	cfgPath := writeConfig(b, yaml)
	return start(b, freeAddr(b), role, "--config", cfgPath, "--data-dir", filepath.Join(b.TempDir(), "data"),
		"--write-key", "bench-key", "--admin-token", benchPageToken)
}

// seedDeadLetters is how many invalid calls seedPageBench posts, each a
// dead letter: more than the dead letters page shows at once.
const seedDeadLetters = 200

// seedPageBench posts a batch of 100 valid track calls and seedDeadLetters
// identify calls without an id, which the gateway dead-letters, so the
// overview has rows and the dead letters page a full page.
func seedPageBench(addr string) error {
	var items []string
	for i := range 100 {
		items = append(items, fmt.Sprintf(`{"type":"track","userId":"seed-%d","event":"Seeded","messageId":"seed-%d"}`, i, i))
	}
	for i := range seedDeadLetters {
		items = append(items, fmt.Sprintf(`{"type":"identify","messageId":"no-ids-%d"}`, i))
	}
	return postCall(addr, "/v1/batch", `{"batch":[`+strings.Join(items, ",")+`]}`)
}

// postCall posts body to path with the write key bench-key.
func postCall(addr, path, body string) error {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	req.SetBasicAuth("bench-key", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
	return nil
}

// benchBrowser is a signed-in browser of the page.
type benchBrowser struct {
	addr   string
	cookie *http.Cookie
	warm   *http.Client // for navigations after the first load, connections kept
}

// signIn posts the admin token to the login form, as the page's form does,
// and keeps the session cookie.
func signIn(addr string) (*benchBrowser, error) {
	form := url.Values{"token": {benchPageToken}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/ui/login", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+addr)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "switchyard_ui_session" {
			return &benchBrowser{addr: addr, cookie: c, warm: &http.Client{Timeout: 30 * time.Second}}, nil
		}
	}
	return nil, fmt.Errorf("login: %s and no session cookie", resp.Status)
}

func (br *benchBrowser) request(ctx context.Context, path string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+br.addr+path, nil)
	req.AddCookie(br.cookie)
	req.Header.Set("Accept-Encoding", "gzip")
	return req
}

// get fetches path with client and returns its body, gunzipped, failing
// unless the answer is 200 and contains want.
func (br *benchBrowser) get(client *http.Client, path, want string) ([]byte, error) {
	resp, err := client.Do(br.request(context.Background(), path))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != 200 || !bytes.Contains(raw, []byte(want)) {
		return nil, fmt.Errorf("GET %s: %s, %d bytes without %q", path, resp.Status, len(raw), want)
	}
	return raw, nil
}

// assetRef finds the assets a page references.
var assetRef = regexp.MustCompile(`(?:href|src)="(/ui/assets/[^"]+)"`)

// loadOverview loads the Overview as a browser with an empty cache does:
// GET /ui (and its redirect), then every asset the HTML references, six at
// a time. It returns the time taken and the bytes read off the wire.
func (br *benchBrowser) loadOverview() (time.Duration, int64, error) {
	var wire atomic.Int64
	dialer := &net.Dialer{}
	tr := &http.Transport{
		MaxConnsPerHost: 6, DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, n: &wire}, nil
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	begin := time.Now()
	html, err := br.get(client, "/ui", `id="overview"`)
	if err != nil {
		return 0, 0, err
	}
	refs := assetRef.FindAllSubmatch(html, -1)
	if len(refs) == 0 {
		return 0, 0, errors.New("the overview references no asset")
	}
	errs := make(chan error, len(refs))
	for _, ref := range refs {
		go func() {
			_, err := br.get(client, string(ref[1]), "")
			errs <- err
		}()
	}
	for range refs {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	return time.Since(begin), wire.Load(), err
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// sseReader reads server-sent events.
type sseReader struct {
	r *bufio.Reader
}

// next returns the next event's name ("" for message), id and data, or the
// comment of a comment-only block as name ":".
func (s *sseReader) next() (name string, id uint64, data string, err error) {
	var lines []string
	comment := ""
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", 0, "", err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if lines == nil && name == "" && id == 0 {
				if comment != "" {
					return ":", 0, comment, nil
				}
				continue // a retry: block, or a blank line
			}
			return name, id, strings.Join(lines, "\n"), nil
		case strings.HasPrefix(line, ":"):
			comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			id, _ = strconv.ParseUint(line[len("id: "):], 10, 64)
		case strings.HasPrefix(line, "data: "):
			lines = append(lines, line[len("data: "):])
		}
	}
}

// openStream opens /ui/stream with query, which ends with ctx.
func (br *benchBrowser) openStream(ctx context.Context, query string) (*sseReader, io.Closer, error) {
	resp, err := http.DefaultClient.Do(br.request(ctx, "/ui/stream"+query))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("GET /ui/stream%s: %s", query, resp.Status)
	}
	return &sseReader{r: bufio.NewReader(resp.Body)}, resp.Body, nil
}

// watchOverview reads the overview stream until ctx ends, recording the
// gaps between updates (the first event, the catch-up, is not one) and the
// updates missed.
func (br *benchBrowser) watchOverview(ctx context.Context, s *pageStats) error {
	r, body, err := br.openStream(ctx, "")
	if err != nil {
		return err
	}
	defer body.Close()
	var last time.Time
	var lastID uint64
	for {
		name, id, _, err := r.next()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("the overview stream ended: %w", err)
		}
		if name != "" {
			continue // chart points, heartbeats
		}
		now := time.Now()
		if !last.IsZero() {
			s.gaps = append(s.gaps, now.Sub(last))
			if id > lastID+1 {
				s.missed += id - lastID - 1
			}
		}
		last, lastID = now, id
	}
}

// firstLiveEvent opens the live events stream and returns the time until
// its first event arrives, and that event's partition and offset. With
// poke it posts one call once the stream is open, for an idle gateway
// appends none. It gives up after 10 s, or when ctx ends.
func (br *benchBrowser) firstLiveEvent(ctx context.Context, poke bool) (time.Duration, int64, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	begin := time.Now()
	r, body, err := br.openStream(ctx, "?live=1")
	if err != nil {
		return 0, 0, 0, err
	}
	defer body.Close()
	for {
		name, _, data, err := r.next()
		if err != nil {
			return 0, 0, 0, fmt.Errorf("the live stream: %w", err)
		}
		switch name {
		case ":":
			if data == "tap" && poke {
				if err := postCall(br.addr, "/v1/track", fmt.Sprintf(`{"userId":"poke","event":"Poke","messageId":"poke-%s"}`, uniqueSuffix())); err != nil {
					return 0, 0, 0, err
				}
			}
		case "tap":
			return time.Since(begin), gjson.Get(data, "partition").Int(), gjson.Get(data, "offset").Int(), nil
		}
	}
}

// timed runs f and appends its time to *ds, or counts its failure.
func timed(s *pageStats, ds *[]time.Duration, f func() error) {
	begin := time.Now()
	if err := f(); err != nil {
		s.fail(err)
		return
	}
	*ds = append(*ds, time.Since(begin))
}

// measure watches the overview stream for duration while loading the
// pages over and over, a quarter of a second apart.
func (br *benchBrowser) measure(duration time.Duration, poke bool) pageStats {
	var s pageStats
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var watched sync.WaitGroup
	var watchStats pageStats
	watched.Add(1)
	go func() {
		defer watched.Done()
		if err := br.watchOverview(ctx, &watchStats); err != nil {
			watchStats.fail(err)
		}
	}()
	for ctx.Err() == nil {
		if d, n, err := br.loadOverview(); err != nil {
			s.fail(err)
		} else {
			s.overview = append(s.overview, d)
			s.overviewBytes = append(s.overviewBytes, n)
		}
		timed(&s, &s.deadLetters, func() error {
			_, err := br.get(br.warm, "/ui/deadletters", `data-deadletter=`)
			return err
		})
		timed(&s, &s.livePage, func() error {
			_, err := br.get(br.warm, "/ui/live", `id="events"`)
			return err
		})
		// Under load, the load may stop while the live stream waits for an
		// event: a phase that ends first counts no failure.
		d, partition, offset, err := br.firstLiveEvent(ctx, poke)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			s.fail(err)
		default:
			s.liveFirst = append(s.liveFirst, d)
			timed(&s, &s.liveEvent, func() error {
				_, err := br.get(br.warm, fmt.Sprintf("/ui/live/event?partition=%d&offset=%d", partition, offset), `class="event"`)
				return err
			})
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	watched.Wait()
	s.gaps, s.missed = watchStats.gaps, watchStats.missed
	s.failed += watchStats.failed
	if s.firstErr == nil {
		s.firstErr = watchStats.firstErr
	}
	return s
}
