package ingest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
)

// BenchmarkPrepare measures merging, enriching and validating one typical
// message of a batch.
func BenchmarkPrepare(b *testing.B) {
	gw, err := New(Config{Sources: []Source{{Name: "s", WriteKeys: []string{"k"}}}}, nil, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	body := fmt.Sprintf(`{"batch":[%s],"context":{"library":{"name":"analytics-go","version":"3.0.0"}},"sentAt":"2026-11-22T19:01:33.000Z"}`,
		`{"type":"track","userId":"user-1","event":"Order Completed","messageId":"c1-r1-e1","timestamp":"2026-11-22T19:01:32.346Z","properties":{"orderId":"o-1","total":42.5,"currency":"EUR","products":[{"id":"p1","price":10},{"id":"p2","price":32.5}]}}`)
	root := gjson.Parse(body)
	item := root.Get("batch.0")
	req := request{source: "s", receivedAt: received, ip: "127.0.0.1", context: root.Get("context"), sentAt: root.Get("sentAt")}
	b.ReportAllocs()
	for b.Loop() {
		req.arena = req.arena[:0]
		if _, err := prepareOne(gw, item, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatchRequest measures what the gateway does for one batch of 100
// messages (one op) before it publishes them: reading and authenticating the request,
// checking sizes and preparing every message.
func BenchmarkBatchRequest(b *testing.B) {
	const events = 100
	gw, err := New(Config{Sources: []Source{{Name: "s", WriteKeys: []string{"k"}}}}, nil, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	items := make([]string, events)
	for i := range items {
		items[i] = fmt.Sprintf(`{"type":"track","userId":"user-%d","event":"Order Completed","messageId":"c1-r1-e%d","timestamp":"2026-11-22T19:01:32.346Z","properties":{"orderId":"o-1","total":42.5,"currency":"EUR","products":[{"id":"p1","price":10},{"id":"p2","price":32.5}]}}`, i, i)
	}
	body := []byte(fmt.Sprintf(`{"batch":[%s],"writeKey":"k","context":{"library":{"name":"analytics-go","version":"3.0.0"}},"sentAt":"2026-11-22T19:01:33.000Z"}`, strings.Join(items, ",")))
	fctx := &fasthttp.RequestCtx{}
	fctx.Request.Header.SetMethod(fiber.MethodPost)
	fctx.Request.SetRequestURI("/v1/batch")
	fctx.Request.SetBody(body)
	c := gw.App().AcquireCtx(fctx)
	defer gw.App().ReleaseCtx(c)
	b.ReportAllocs()
	for b.Loop() {
		scratch := takeScratch()
		req, items, err := gw.readRequest(c, route{path: "/v1/batch"}, scratch)
		if err != nil {
			b.Fatal(err)
		}
		if err := gw.checkSizes(items); err != nil {
			b.Fatal(err)
		}
		if _, valid, err := gw.prepareAll(items, &req); err != nil || len(valid) != events {
			b.Fatalf("%d valid, %v", len(valid), err)
		}
		releaseScratch(scratch)
	}
}

// countingLog takes every Publish at once, so BenchmarkHandler measures the
// gateway alone.
type countingLog struct {
	queue.Log
	messages atomic.Int64
}

func (l *countingLog) Publish(_ context.Context, msgs ...queue.Message) error {
	l.messages.Add(int64(len(msgs)))
	return nil
}

// BenchmarkHandler measures a whole request through the gateway's Fiber
// handler, middleware included, on a log that takes every append at once:
// single /v1/track calls and /v1/batch requests of 100 events, each event
// with a messageId of its own. It reports the cost per event.
func BenchmarkHandler(b *testing.B) {
	for _, tc := range []struct {
		name, path string
		events     int
	}{{"track", "/v1/track", 1}, {"batch100", "/v1/batch", 100}} {
		b.Run(tc.name, func(b *testing.B) {
			log := &countingLog{}
			gw, err := New(Config{Sources: []Source{{Name: "s", WriteKeys: []string{"k"}}}}, log, zap.NewNop(), prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			handler := gw.App().Handler()
			var fctx fasthttp.RequestCtx
			var body []byte
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				n++
				body = benchBody(body[:0], n, tc.events)
				fctx.Request.Reset()
				fctx.Response.Reset()
				fctx.Request.Header.SetMethod(fiber.MethodPost)
				fctx.Request.SetRequestURI(tc.path)
				fctx.Request.Header.SetContentType("application/json")
				fctx.Request.Header.Set("Authorization", "Basic azo=")
				fctx.Request.SetBody(body)
				handler(&fctx)
				if fctx.Response.StatusCode() != fiber.StatusOK {
					b.Fatalf("%d %s", fctx.Response.StatusCode(), fctx.Response.Body())
				}
			}
			if got := log.messages.Load(); got != int64(n*tc.events) {
				b.Fatalf("%d messages stored, want %d", got, n*tc.events)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*tc.events), "ns/event")
		})
	}
}

// benchBody writes a request of events track calls (a single call when 1)
// whose messageIds no other request has.
func benchBody(dst []byte, request, events int) []byte {
	event := func(dst []byte, i int) []byte {
		return fmt.Appendf(dst, `{"type":"track","userId":"user-%d","event":"Order Completed","messageId":"r%d-e%d","timestamp":"2026-11-22T19:01:32.346Z","properties":{"orderId":"o-%d","total":42.5,"currency":"EUR","products":[{"id":"p1","price":10},{"id":"p2","price":32.5}]},"context":{"library":{"name":"analytics-go","version":"3.0.0"}}}`,
			i%10, request, i, request)
	}
	if events == 1 {
		return event(dst, 0)
	}
	dst = append(dst, `{"batch":[`...)
	for i := range events {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = event(dst, i)
	}
	return append(dst, `],"sentAt":"2026-11-22T19:01:33.000Z"}`...)
}
