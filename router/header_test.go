package router

import (
	"testing"

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
		if h.messageID != ev.MessageID() || h.source != ev.Source() || h.key != ev.Key() ||
			!h.receivedAt.Equal(ev.ReceivedAt()) || h.integrations.Raw != ev.Get("integrations").Raw {
			t.Errorf("%s: header %+v; the event's accessors give messageId %q, source %q, key %q, receivedAt %v, integrations %s",
				raw, h, ev.MessageID(), ev.Source(), ev.Key(), ev.ReceivedAt(), ev.Get("integrations").Raw)
		}
		if wantedBy(h.integrations, "hook") != Wanted(ev, "hook") {
			t.Errorf("%s: wanted by hook differs", raw)
		}
	}
}
