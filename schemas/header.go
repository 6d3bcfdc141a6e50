package schemas

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// EventHeaderKey names the log message header in which the gateway gives
// what every router reads of an event, so that routers need not parse the
// event for it. An event without the header (one another producer wrote)
// is read from its fields instead.
const EventHeaderKey = "switchyard-event"

// EventHeader is what the router reads of every event: the values the
// Event accessors MessageID, Source and ReceivedAt return, and whether the
// event has a top-level integrations field. The event's key is the log
// message's key.
type EventHeader struct {
	MessageID, Source string
	// ReceivedAt is as the event's receivedAt field holds it: UTC, to the
	// millisecond; zero when there is none.
	ReceivedAt      time.Time
	HasIntegrations bool
}

// eventHeaderVersion is the first byte of an encoded EventHeader.
const eventHeaderVersion = 1

// AppendEventHeader appends h, encoded, to dst: a version byte, a flags
// byte (1: has integrations), receivedAt in unix milliseconds (varint; 0
// for none) and the source and messageId, each after its length (uvarint).
func AppendEventHeader(dst []byte, h EventHeader) []byte {
	var flags byte
	if h.HasIntegrations {
		flags |= 1
	}
	var ms int64
	if !h.ReceivedAt.IsZero() {
		ms = h.ReceivedAt.UnixMilli()
	}
	dst = append(dst, eventHeaderVersion, flags)
	dst = binary.AppendVarint(dst, ms)
	dst = binary.AppendUvarint(dst, uint64(len(h.Source)))
	dst = append(dst, h.Source...)
	dst = binary.AppendUvarint(dst, uint64(len(h.MessageID)))
	return append(dst, h.MessageID...)
}

// ParseEventHeader decodes what AppendEventHeader encoded. The header's
// strings share b's bytes, so reading one allocates nothing: b must not
// change while they are in use, and a string kept longer than b must be
// cloned.
func ParseEventHeader(b []byte) (EventHeader, error) {
	if len(b) < 2 {
		return EventHeader{}, errors.New("event header: too short")
	}
	if b[0] != eventHeaderVersion {
		return EventHeader{}, fmt.Errorf("event header: version %d, want %d", b[0], eventHeaderVersion)
	}
	if b[1]&^1 != 0 {
		return EventHeader{}, fmt.Errorf("event header: unknown flags %#x", b[1])
	}
	h := EventHeader{HasIntegrations: b[1]&1 != 0}
	rest := b[2:]
	ms, n := binary.Varint(rest)
	if n <= 0 {
		return EventHeader{}, errors.New("event header: bad receivedAt")
	}
	if ms != 0 {
		h.ReceivedAt = time.UnixMilli(ms).UTC()
	}
	rest = rest[n:]
	var source, messageID []byte
	var err error
	if source, rest, err = uvarintPrefixed(rest); err != nil {
		return EventHeader{}, fmt.Errorf("event header: source: %w", err)
	}
	if messageID, rest, err = uvarintPrefixed(rest); err != nil {
		return EventHeader{}, fmt.Errorf("event header: messageId: %w", err)
	}
	if len(rest) != 0 {
		return EventHeader{}, fmt.Errorf("event header: %d bytes after its end", len(rest))
	}
	h.Source, h.MessageID = BytesString(source), BytesString(messageID)
	return h, nil
}

func uvarintPrefixed(b []byte) (field, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, errors.New("bad length")
	}
	return b[w : w+int(n)], b[w+int(n):], nil
}

// BytesString returns b as a string that shares b's bytes, without a copy:
// b must not change while the string is in use.
func BytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
