package hubspot_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
	"github.com/switchyard/switchyard/schemas"
	"github.com/switchyard/switchyard/transforms"
)

// handlerTransport answers requests with an http.Handler in process: no
// sockets, so a benchmark measures the destination and the sandbox only.
// It keeps the last upsert body it carried.
type handlerTransport struct {
	h http.Handler

	mu         sync.Mutex
	lastUpsert []byte
}

func (t *handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if req.URL.Path == "/crm/v3/objects/contacts/batch/upsert" {
			t.mu.Lock()
			t.lastUpsert = body
			t.mu.Unlock()
		}
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// transformRounds is how many batches of 100 identifies one benchmark
// operation sends: 10,000 events, so that -benchtime 1x still measures a
// steady state rather than one batch.
const transformRounds = 100

func benchBatches() [][]destinations.Event {
	batches := make([][]destinations.Event, transformRounds)
	now := time.Now()
	for r := range batches {
		batch := make([]destinations.Event, 100)
		for i := range batch {
			msg := loadIdentify(r*100+i, now)
			batch[i] = destinations.Event{Event: schemas.NewEvent(msg.Value), Attempt: 1}
		}
		batches[r] = batch
	}
	return batches
}

// BenchmarkTransform measures the cost of turning identify events into
// HubSpot requests, per event:
//
//   - send: HubSpot.Send of batches of 100 identifies against a sandbox
//     answering in process (no sockets), with limits high enough never to
//     throttle. The figure includes the sandbox's own work.
//   - sandbox: the sandbox alone answering the same upsert bodies, so that
//     send minus sandbox is the destination's share.
//   - properties: transforms.ContactProperties alone, one event's traits
//     against a new portal's contact properties.
func BenchmarkTransform(b *testing.B) {
	batches := benchBatches()
	events := float64(transformRounds * 100)
	results := map[string][2]float64{} // events/s, allocs/event

	b.Run("send", func(b *testing.B) {
		sb := sandbox.New(sandbox.Config{Tier: "api-add-on", HubID: hubID, TenSecondlyLimit: math.MaxInt32, DailyLimit: math.MaxInt32})
		transport := &handlerTransport{h: sb}
		h, err := hubspot.NewWithOwnClient("hubspot", hubspot.Config{Token: "pat-bench", BaseURL: "http://sandbox.invalid", HubID: hubID, Tier: "api-add-on", StateDir: b.TempDir()},
			zap.NewNop(), &http.Client{Transport: transport})
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		ctx := context.Background()
		checkDelivered(b, h.Send(ctx, batches[0])) // loads the property lists and learns the limits
		rate, allocs := measure(b, events, func() {
			for _, batch := range batches {
				checkDelivered(b, h.Send(ctx, batch))
			}
		})
		results["send"] = [2]float64{rate, allocs}
	})

	b.Run("sandbox", func(b *testing.B) {
		// Capture the upsert bodies Send makes, then replay them.
		sb := sandbox.New(sandbox.Config{Tier: "api-add-on", HubID: hubID, TenSecondlyLimit: math.MaxInt32, DailyLimit: math.MaxInt32})
		transport := &handlerTransport{h: sb}
		h, err := hubspot.NewWithOwnClient("hubspot", hubspot.Config{Token: "pat-bench", BaseURL: "http://sandbox.invalid", HubID: hubID, Tier: "api-add-on"},
			zap.NewNop(), &http.Client{Transport: transport})
		if err != nil {
			b.Fatal(err)
		}
		bodies := make([][]byte, len(batches))
		for i, batch := range batches {
			checkDelivered(b, h.Send(context.Background(), batch))
			transport.mu.Lock()
			bodies[i] = transport.lastUpsert
			transport.mu.Unlock()
		}
		rate, allocs := measure(b, events, func() {
			for _, body := range bodies {
				req := httptest.NewRequest(http.MethodPost, "/crm/v3/objects/contacts/batch/upsert", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer pat-bench")
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				sb.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("sandbox answered %d: %s", rec.Code, rec.Body)
				}
			}
		})
		results["sandbox"] = [2]float64{rate, allocs}
	})

	b.Run("properties", func(b *testing.B) {
		raw, _ := sandbox.DefaultProperties("contacts")
		cat, err := transforms.ParseCatalog(raw)
		if err != nil {
			b.Fatal(err)
		}
		traits := make([]gjson.Result, 0, int(events))
		for _, batch := range batches {
			for _, ev := range batch {
				traits = append(traits, ev.Get("traits"))
			}
		}
		rate, allocs := measure(b, events, func() {
			for _, tr := range traits {
				if res := transforms.ContactProperties(tr, cat, transforms.Options{}); len(res.Properties) == 0 {
					b.Fatal("no properties")
				}
			}
		})
		results["properties"] = [2]float64{rate, allocs}
	})

	if s, ok := results["send"]; ok {
		line := fmt.Sprintf("transform (GOMAXPROCS %d): Send with the sandbox %.0f events/s, %.1f allocs/event", runtime.GOMAXPROCS(0), s[0], s[1])
		if sb, ok := results["sandbox"]; ok {
			perEvent := 1/s[0] - 1/sb[0]
			line += fmt.Sprintf("; sandbox alone %.0f events/s, %.1f allocs/event; destination's share about %.0f events/s, %.1f allocs/event",
				sb[0], sb[1], 1/perEvent, s[1]-sb[1])
		}
		if p, ok := results["properties"]; ok {
			line += fmt.Sprintf("; ContactProperties alone %.0f events/s, %.1f allocs/event", p[0], p[1])
		}
		// A benchmark with sub-benchmarks prints none of its own log.
		fmt.Println(line)
	}
}

// measure runs op b.N times, each handling events events, and reports
// events/s, ns/event and allocs/event.
func measure(b *testing.B, events float64, op func()) (rate, allocs float64) {
	b.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		op()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	n := events * float64(b.N)
	rate = n / elapsed.Seconds()
	allocs = float64(after.Mallocs-before.Mallocs) / n
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/n, "ns/event")
	b.ReportMetric(allocs, "allocs/event")
	return rate, allocs
}

func checkDelivered(b *testing.B, out []destinations.Outcome) {
	b.Helper()
	for i, o := range out {
		if o.Result != destinations.Delivered {
			b.Fatalf("event %d: %+v", i, o)
		}
	}
}

// benchDuration is how long each phase of BenchmarkDeliveryFreeTier offers
// load: BENCH_DURATION (a Go duration), default 30s.
func benchDuration(b *testing.B) time.Duration {
	v := os.Getenv("BENCH_DURATION")
	if v == "" {
		return 30 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("BENCH_DURATION=%q: want a positive Go duration such as 30s", v)
	}
	return d
}

// freeTierCeiling is the free tier's contacts per second: 100 calls per
// 10 s, 100 contacts per call.
const freeTierCeiling = 1000

// deliveryPhase is the outcome of offering load for a while.
type deliveryPhase struct {
	name            string
	offered         float64 // identifies per second
	delivered       float64 // events finished per second while load was offered, after the first 10 s window when the phase is over 15 s
	recordsPerCall  float64
	calls, tooMany  int
	deadLetters     int
	p50, p99, worst time.Duration // receivedAt to the contact's creation in the sandbox
}

// BenchmarkDeliveryFreeTier runs the router, the embedded log and the
// destination against a free-tier sandbox over HTTP, in two phases of
// BENCH_DURATION each: identifies for distinct contacts offered at 1,500/s,
// above the 1,000/s ceiling, to see how much of the ceiling is used; then at
// 500/s, half the ceiling, to see the latency from receivedAt to the
// contact's creation in HubSpot. It prints figures and asserts none.
//
//	BENCH_DURATION=20s go test -run '^$' -bench DeliveryFreeTier -benchtime 1x ./destinations/hubspot/
func BenchmarkDeliveryFreeTier(b *testing.B) {
	d := benchDuration(b)
	above := runDeliveryPhase(b, "above the ceiling", 1500, d, false)
	half := runDeliveryPhase(b, "half the ceiling", 500, d, true)

	b.ReportMetric(above.delivered, "contacts/s")
	b.ReportMetric(100*above.delivered/freeTierCeiling, "%ceiling")
	b.ReportMetric(above.recordsPerCall, "records/call")
	b.ReportMetric(float64(above.tooMany+half.tooMany), "429s")
	b.ReportMetric(float64(half.p50.Milliseconds()), "p50-ms")
	b.ReportMetric(float64(half.p99.Milliseconds()), "p99-ms")

	var t bytes.Buffer
	fmt.Fprintf(&t, "delivery to a free-tier sandbox (ceiling %d contacts/s), %s per phase\n", freeTierCeiling, d)
	fmt.Fprintf(&t, "%-18s %9s %11s %9s %12s %6s %5s %5s %8s %8s %8s\n",
		"phase", "offered/s", "delivered/s", "%ceiling", "records/call", "calls", "429s", "dlq", "p50", "p99", "max")
	for _, ph := range []deliveryPhase{above, half} {
		lat := func(x time.Duration) string {
			if !ph.hasLatency() {
				return "-"
			}
			return x.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&t, "%-18s %9.0f %11.0f %8.1f%% %12.1f %6d %5d %5d %8s %8s %8s\n",
			ph.name, ph.offered, ph.delivered, 100*ph.delivered/freeTierCeiling, ph.recordsPerCall,
			ph.calls, ph.tooMany, ph.deadLetters, lat(ph.p50), lat(ph.p99), lat(ph.worst))
	}
	b.Log("\n" + t.String())
}

func (ph deliveryPhase) hasLatency() bool { return ph.p50 > 0 }

// runDeliveryPhase offers rate identifies per second for d to a fresh
// pipeline. With latency set it then lets the pipeline drain and measures
// each contact's receivedAt-to-creation time.
func runDeliveryPhase(b *testing.B, name string, rate float64, d time.Duration, latency bool) deliveryPhase {
	b.Helper()
	p := newPipeline(b, pipelineConfig{})
	stop := p.start(b)

	received := map[string]time.Time{} // email -> receivedAt
	published := 0
	start := time.Now()
	ctx := context.Background()
	// The first 10-second window starts empty, so its calls come on top of
	// the steady rate; when the phase is long enough, throughput is counted
	// from the end of that first window.
	from, finishedAtFrom := start, int64(0)
	tick := time.NewTicker(10 * time.Millisecond)
	for now := start; now.Sub(start) < d; now = <-tick.C {
		if from == start && d > 15*time.Second && now.Sub(start) >= 10*time.Second {
			from, finishedAtFrom = now, p.finished.Load()
		}
		due := int(rate * now.Sub(start).Seconds())
		if due <= published {
			continue
		}
		at := time.Now()
		msgs := loadIdentifies(published, due, at)
		if err := p.log.Publish(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
		for i := published; i < due; i++ {
			received[loadEmail(i)] = at
		}
		published = due
	}
	tick.Stop()
	end := time.Now()
	delivered := p.finished.Load() - finishedAtFrom

	if latency {
		p.waitFinished(b, int64(published), time.Minute)
	}
	stop()

	ph := deliveryPhase{name: name, offered: float64(published) / end.Sub(start).Seconds(), delivered: float64(delivered) / end.Sub(from).Seconds()}
	ph.calls = p.totalCalls()
	ph.tooMany = p.answers(http.StatusTooManyRequests)
	ph.deadLetters = len(p.deadLetters(b))
	contacts := p.sandbox.Contacts()
	if up := p.upserts(); up > 0 {
		ph.recordsPerCall = float64(len(contacts)) / float64(up)
	}
	if latency {
		var lat []time.Duration
		for _, c := range contacts {
			if at, ok := received[c.Properties["email"]]; ok {
				lat = append(lat, c.CreatedAt.Sub(at))
			}
		}
		slices.Sort(lat)
		if len(lat) > 0 {
			ph.p50, ph.p99, ph.worst = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
		}
	}
	return ph
}
