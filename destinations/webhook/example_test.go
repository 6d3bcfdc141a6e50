package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/webhook"
	"github.com/switchyard/switchyard/schemas"
)

func Example() {
	// An endpoint that is briefly unavailable for one event.
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"messageId":"m1"`) {
			w.Header().Set("Retry-After", "30")
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		}
	}))
	defer endpoint.Close()

	hook, err := webhook.New("hooks", webhook.Config{
		URL:     endpoint.URL,
		Headers: map[string]string{"Authorization": "Bearer token"},
	}, zap.NewNop(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	batch := []destinations.Event{
		{Event: schemas.NewEvent([]byte(`{"type":"track","event":"Signed Up","messageId":"m1","userId":"u1"}`)), Attempt: 1},
		{Event: schemas.NewEvent([]byte(`{"type":"track","event":"Logged In","messageId":"m2","userId":"u1"}`)), Attempt: 1},
		{Event: schemas.NewEvent([]byte(`{"type":"identify","messageId":"m3","userId":"u2"}`)), Attempt: 1},
	}
	for i, o := range hook.Send(context.Background(), batch) {
		fmt.Printf("%s: %s %s %s\n", batch[i].MessageID(), o.Result, o.RetryAfter, o.Reason)
	}
	// Output:
	// m1: retry 30s webhook answered 503 Service Unavailable: down for maintenance
	// m2: retry 30s held back: an earlier event of this user is being retried
	// m3: delivered 0s
}
