package ingest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
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
		if _, err := gw.prepare(item, &req); err != nil {
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
		req, payload, err := gw.readRequest(c, route{path: "/v1/batch"})
		if err != nil {
			b.Fatal(err)
		}
		items := payload.Array()
		if err := gw.checkSizes(items); err != nil {
			b.Fatal(err)
		}
		if _, valid, err := gw.prepareAll(items, &req); err != nil || len(valid) != events {
			b.Fatalf("%d valid, %v", len(valid), err)
		}
	}
}
