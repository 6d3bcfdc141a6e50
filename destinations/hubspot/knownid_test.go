package hubspot

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
	"github.com/switchyard/switchyard/schemas"
)

// failingState returns a state whose table reads fail while the returned
// toggle is on.
func failingState(t *testing.T) (*state, *errorfs.Toggle) {
	t.Helper()
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsRead && strings.HasSuffix(op.Path, ".sst") {
			return errorfs.ErrInjected
		}
		return nil
	})}
	db, err := pebble.Open("state", &pebble.Options{FS: errorfs.Wrap(vfs.NewMem(), toggle), Cache: pebble.NewCache(0), Logger: storeLogger{zap.NewNop()}})
	if err != nil {
		t.Fatal(err)
	}
	return &state{db: db}, toggle
}

func TestAStateReadErrorIsRetriedNotDeadLettered(t *testing.T) {
	sb := sandbox.New(sandbox.Config{Tier: "professional", HubID: 4242})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	cfg := Config{Token: "pat-test", BaseURL: srv.URL, HubID: 4242, Tier: "professional"}
	newDestination := func() *HubSpot {
		h, err := NewWithOwnClient("crm", cfg, zap.NewNop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	event := func(raw string) []destinations.Event {
		return []destinations.Event{{Event: schemas.NewEvent([]byte(raw)), Attempt: 1}}
	}
	h := newDestination()
	if out := h.Send(context.Background(), event(`{"type":"identify","userId":"u1","traits":{"email":"ada@example.com"}}`)); out[0].Result != destinations.Delivered {
		t.Fatalf("identify: %+v", out[0])
	}
	contactID, _, _ := h.knownID("u:u1")
	h.Close()

	// Another instance knows the contact only from its state, whose reads
	// then fail.
	h = newDestination()
	defer h.Close()
	h.state.close()
	st, toggle := failingState(t)
	h.state = st
	if err := st.setIDs(map[string]string{"u:u1": contactID}); err != nil {
		t.Fatal(err)
	}
	if err := st.db.Flush(); err != nil {
		t.Fatal(err)
	}
	toggle.On()
	track := event(`{"type":"track","userId":"u1","event":"Report Exported"}`)
	out := h.Send(context.Background(), track)
	if out[0].Result != destinations.Retry || out[0].Class != "state" || !strings.Contains(out[0].Reason, "reading the HubSpot id of u:u1") {
		t.Fatalf("a track whose contact id cannot be read: %+v", out[0])
	}
	toggle.Off()
	out = h.Send(context.Background(), track)
	if out[0].Result != destinations.Delivered {
		t.Fatalf("the retry: %+v", out[0])
	}
	if events := sb.Events(); len(events) != 1 || events[0].ObjectID != contactID {
		t.Fatalf("occurrences %+v, want one on contact %s", events, contactID)
	}
}
