package router

import (
	"testing"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/schemas"
)

func TestTheHeaderReadsWhatTheEventsAccessorsReturn(t *testing.T) {
	for _, raw := range []string{
		`{"type":"track","userId":"u1","messageId":"m1","receivedAt":"2026-11-22T19:01:32.346Z","_switchyard":{"source":"web"}}`,
		`{"anonymousId":"a1","messageId":"m2","properties":{"userId":"inner","messageId":"inner"},"_switchyard":{"source":"app"}}`,
		`{"userId":42,"anonymousId":"a2","messageId":"m\"3\u00e9","receivedAt":"2026-11-22T19:01:32Z"}`,
		`{"userId":"","anonymousId":7.5,"integrations":{"All":false,"hook":true}}`,
		`{"userId":null,"messageId":"first","messageId":"second","receivedAt":"not a time","integrations":true}`,
		` { "userId" : "spaced" , "_switchyard" : { "other" : 1 , "source" : "s" } } `,
		`{}`,
		``,
		`not json`,
	} {
		ev := schemas.NewEvent([]byte(raw))
		h := readHeader([]byte(raw))
		if h.messageID != ev.MessageID() || h.source != ev.Source() || string(h.key) != ev.Key() ||
			!h.receivedAt.Equal(ev.ReceivedAt()) || h.integrations.Raw != ev.Get("integrations").Raw {
			t.Errorf("%s: header %+v; the event's accessors give messageId %q, source %q, key %q, receivedAt %v, integrations %s",
				raw, h, ev.MessageID(), ev.Source(), ev.Key(), ev.ReceivedAt(), ev.Get("integrations").Raw)
		}
		if wantedBy(h.integrations, "hook") != Wanted(ev, "hook") {
			t.Errorf("%s: wanted by hook differs", raw)
		}
	}
}

// TestTheEventHeaderStandsForTheFields: a message with the gateway's event
// header gives the header the fields would, reading integrations only when
// the header says the event has them; one whose header does not parse is
// read from its fields.
func TestTheEventHeaderStandsForTheFields(t *testing.T) {
	for _, raw := range []string{
		`{"type":"track","userId":"u1","messageId":"m1","receivedAt":"2026-11-22T19:01:32.346Z","_switchyard":{"source":"web"}}`,
		`{"userId":"u2","messageId":"m2","integrations":{"All":false,"hook":true},"receivedAt":"2026-11-22T19:01:32.000Z","_switchyard":{"source":"app"}}`,
		`{"anonymousId":"a3","messageId":"m3","integrations":null,"_switchyard":{"source":"app"}}`,
	} {
		want := readHeader([]byte(raw))
		ev := schemas.NewEvent([]byte(raw))
		eh := schemas.EventHeader{MessageID: want.messageID, Source: want.source, ReceivedAt: want.receivedAt, HasIntegrations: ev.Get("integrations").Exists()}
		msg := queue.Message{Key: []byte(want.key), Value: []byte(raw),
			Headers: []queue.Header{{Key: "other", Value: []byte("x")}, {Key: schemas.EventHeaderKey, Value: schemas.AppendEventHeader(nil, eh)}}}
		if got := headerOf(msg); got.messageID != want.messageID || got.source != want.source || string(got.key) != string(want.key) ||
			!got.receivedAt.Equal(want.receivedAt) || got.integrations.Raw != want.integrations.Raw {
			t.Errorf("%s: from the event header %+v; from the fields %+v", raw, got, want)
		}
		msg.Headers[1].Value = []byte{9, 9}
		msg.Key = []byte("not the key")
		if got := headerOf(msg); string(got.key) != string(want.key) || got.messageID != want.messageID {
			t.Errorf("%s: with a header that does not parse: %+v; want the fields' %+v", raw, got, want)
		}
	}
}
