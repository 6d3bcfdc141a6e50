package schemas

import (
	"testing"
	"time"
)

func TestEventHeaderRoundTrips(t *testing.T) {
	for _, h := range []EventHeader{
		{},
		{MessageID: "m-1", Source: "web", ReceivedAt: time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.UTC), HasIntegrations: true},
		{MessageID: "ü\"\x00", Source: ""},
		{ReceivedAt: time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)},
	} {
		got, err := ParseEventHeader(AppendEventHeader(nil, h))
		if err != nil || got != h {
			t.Errorf("%+v came back as %+v (%v)", h, got, err)
		}
	}
}

// FuzzParseEventHeader: any bytes either fail to parse or parse into a
// header that encodes back to them.
func FuzzParseEventHeader(f *testing.F) {
	f.Add(AppendEventHeader(nil, EventHeader{MessageID: "m", Source: "s", ReceivedAt: time.UnixMilli(1).UTC(), HasIntegrations: true}))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseEventHeader(b)
		if err != nil {
			return
		}
		if again := AppendEventHeader(nil, h); string(again) != string(b) {
			// Varints have one shortest form; others parse but differ.
			if h2, err := ParseEventHeader(again); err != nil || h2 != h {
				t.Fatalf("%x parsed as %+v, which encodes to %x, parsed as %+v (%v)", b, h, again, h2, err)
			}
		}
	})
}
