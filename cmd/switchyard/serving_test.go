package main

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/queue/embedded"
)

// TestGatewayShutdownClosesConnectionsThatSentNothing opens a connection
// to the gateway and sends nothing on it, as a client's connection pool
// may: the gateway's shutdown closes it after the grace instead of
// waiting out the 30s read timeout, as fasthttp alone does.
func TestGatewayShutdownClosesConnectionsThatSentNothing(t *testing.T) {
	log, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	for _, closing := range []bool{false, true} {
		gw, err := ingest.New(ingest.Config{Sources: []ingest.Source{{Name: "app", WriteKeys: []string{"k"}}}, EventsTopic: "events", DLQTopic: "dlq"}, log, zap.NewNop(), newRegistry())
		if err != nil {
			t.Fatal(err)
		}
		app := gw.App()
		srv := httpServer{serve: app.Listener, shutdown: app.ShutdownWithContext}
		if closing {
			srv = serveClosingFresh(app.Listener, app.ShutdownWithContext, 200*time.Millisecond)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.serve(ln) //nolint:errcheck // ends with shutdown
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		time.Sleep(100 * time.Millisecond) // accepted
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		began := time.Now()
		err = srv.shutdown(ctx)
		took := time.Since(began)
		cancel()
		switch {
		case closing && (err != nil || took > 2*time.Second):
			t.Errorf("the shutdown took %v (%v), want the grace and a little", took, err)
		case !closing && err == nil:
			t.Errorf("fasthttp alone shut down in %v with a connection that sent nothing; the closing is no longer needed", took)
		}
	}
}
