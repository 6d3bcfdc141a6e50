package ingest

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
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
		if _, err := gw.prepare(item, &req); err != nil {
			b.Fatal(err)
		}
	}
}
