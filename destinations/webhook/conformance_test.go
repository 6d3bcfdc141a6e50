package webhook

import (
	"net/http"
	"testing"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/destinationtest"
	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
)

// conformanceTarget builds a webhook against a webhooktest server that
// fails an event's request by a scripted 503.
func conformanceTarget(t *testing.T, cfg Config) destinationtest.Target {
	srv := webhooktest.NewServer(t)
	cfg.URL = srv.URL
	w, err := New("hook", cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return destinationtest.Target{
		Destination: w,
		FailEvent: func(ev destinations.Event) {
			srv.Script(ev.MessageID(), http.StatusServiceUnavailable)
		},
		// One request per event: a failure is that event's alone. A
		// batched request's failure is every event's in it.
		SeparatesUsers: !cfg.Batch,
	}
}

func TestConformanceOneRequestPerEvent(t *testing.T) {
	destinationtest.Run(t, func(t *testing.T) destinationtest.Target {
		return conformanceTarget(t, Config{})
	})
}

func TestConformanceBatchedRequests(t *testing.T) {
	destinationtest.Run(t, func(t *testing.T) destinationtest.Target {
		return conformanceTarget(t, Config{Batch: true})
	})
}
