package router

import (
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/schemas"
)

// header is what the router reads of every event, found in one pass over
// its top-level fields. Each field has the value the schemas.Event accessor
// of the same name returns.
type header struct {
	// messageID is the event's own; source and key share the message's
	// bytes, for as long as it is accepted.
	messageID, source string
	key               []byte
	receivedAt        time.Time
	integrations      gjson.Result
}

// headerOf returns msg's header: from the schemas.EventHeader the gateway
// gave it when it has one, else read from its fields.
func headerOf(msg queue.Message) header {
	if raw, ok := queue.HeaderValue(msg.Headers, schemas.EventHeaderKey); ok {
		if eh, err := schemas.ParseEventHeader(raw); err == nil {
			h := header{messageID: strings.Clone(eh.MessageID), source: eh.Source, key: msg.Key, receivedAt: eh.ReceivedAt}
			if eh.HasIntegrations {
				h.integrations = gjson.GetBytes(msg.Value, "integrations")
			}
			return h
		}
	}
	return readHeader(msg.Value)
}

// readHeader reads raw's header. Like a gjson path, it takes the first of
// repeated fields.
func readHeader(raw []byte) header {
	if len(raw) == 0 {
		return header{}
	}
	var messageID, userID, anonymousID, integrations, receivedAt, switchyard gjson.Result
	first := func(dst *gjson.Result, v gjson.Result) {
		if !dst.Exists() {
			*dst = v
		}
	}
	// The results point into raw rather than a copy of it: raw does not
	// change while the event is in use, and only messageID outlives it.
	gjson.Parse(schemas.BytesString(raw)).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "messageId":
			first(&messageID, v)
		case "userId":
			first(&userID, v)
		case "anonymousId":
			first(&anonymousID, v)
		case "integrations":
			first(&integrations, v)
		case "receivedAt":
			first(&receivedAt, v)
		case "_switchyard":
			first(&switchyard, v)
		}
		return true
	})
	h := header{
		messageID:    strings.Clone(messageID.String()),
		source:       switchyard.Get("source").String(),
		key:          []byte(schemas.KeyFrom(userID, anonymousID)),
		integrations: integrations,
	}
	if receivedAt.Type == gjson.String {
		if t, err := schemas.ParseTime(receivedAt.Str); err == nil {
			h.receivedAt = t
		}
	}
	return h
}
