package hubspot

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// messageIDSpace is the UUIDv5 namespace of the source's messageIds.
var messageIDSpace = uuid.MustParse("6f1c1f0e-4a9e-5b8e-9d2a-2f6c3f0b7a11")

// messageID is deterministic in the source, the object and its version
// (the record's last-modified time in ms): reading the same state of a
// record twice gives the same messageId, which the router dedupes.
func messageID(source, objectType, objectID string, version int64) string {
	return "hubspot-" + uuid.NewSHA1(messageIDSpace, []byte(source+"\x00"+objectType+"\x00"+objectID+"\x00"+strconv.FormatInt(version, 10))).String()
}

// origin is what every call of one record carries about where it came
// from.
type origin struct {
	source     string
	hubID      int64
	objectType string
	objectID   string
	// timestamp is the change's time; receivedAt when the source appended it.
	timestamp, receivedAt time.Time
}

// propertyTime is one HubSpot property's value and time, as
// _switchyard.hubspot.properties carries them.
type propertyTime struct {
	Value     string `json:"value"`
	Timestamp string `json:"timestamp"`
}

// mapped returns the record's mapped properties as traits, renamed and
// typed, and as _switchyard.hubspot.properties, under their HubSpot names
// with their times (the change's time for a property a notification named,
// else the record's last modification).
func mapped(rec Record, m Mapping, types map[string]string, times map[string]int64, skip map[string]bool) (map[string]any, map[string]propertyTime) {
	traits := map[string]any{}
	props := map[string]propertyTime{}
	for name, value := range rec.Properties {
		if skip[name] {
			continue
		}
		trait, ok := m.Trait(name)
		if !ok {
			continue
		}
		traits[trait] = typed(value, types[name])
		at := rec.UpdatedAt
		if ms, ok := times[name]; ok {
			at = time.UnixMilli(ms)
		}
		props[name] = propertyTime{Value: value, Timestamp: formatTime(at)}
	}
	return traits, props
}

// typed reads a HubSpot property value (always a string) by its type:
// numbers, booleans, and dates and datetimes as ISO 8601 (a datetime's
// epoch milliseconds too). An empty value of a typed property is null.
func typed(value, typ string) any {
	switch typ {
	case "number":
		if value == "" {
			return nil
		}
		if f, err := strconv.ParseFloat(value, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return int64(f)
			}
			return f
		}
	case "bool":
		switch strings.ToLower(value) {
		case "true":
			return true
		case "false":
			return false
		case "":
			return nil
		}
	case "datetime", "date":
		if value == "" {
			return nil
		}
		if ms, err := strconv.ParseInt(value, 10, 64); err == nil {
			t := time.UnixMilli(ms).UTC()
			if typ == "date" {
				return t.Format(time.DateOnly)
			}
			return formatTime(t)
		}
		if t, err := time.Parse(time.RFC3339Nano, value); err == nil {
			if typ == "date" {
				return t.UTC().Format(time.DateOnly)
			}
			return formatTime(t)
		}
	}
	return value
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// identify builds an identify call for userID with traits, from o.
func identify(o origin, userID, contactID, msgID string, traits map[string]any, props map[string]propertyTime) ([]byte, error) {
	call := base(o, msgID, props)
	call["type"] = "identify"
	call["userId"] = userID
	call["traits"] = traits
	call["context"] = map[string]any{"externalIds": []map[string]string{
		{"id": contactID, "type": "hubspot_contact_id", "collection": "users", "encoding": "none"},
	}}
	return json.Marshal(call)
}

// group builds a group call of userID to groupID with traits, from o.
func group(o origin, userID, groupID, msgID string, traits map[string]any, props map[string]propertyTime) ([]byte, error) {
	call := base(o, msgID, props)
	call["type"] = "group"
	call["userId"] = userID
	call["groupId"] = groupID
	call["traits"] = traits
	call["context"] = map[string]any{"externalIds": []map[string]string{
		{"id": o.objectID, "type": "hubspot_company_id", "collection": "groups", "encoding": "none"},
	}}
	return json.Marshal(call)
}

func base(o origin, msgID string, props map[string]propertyTime) map[string]any {
	return map[string]any{
		"messageId":  msgID,
		"timestamp":  formatTime(o.timestamp),
		"receivedAt": formatTime(o.receivedAt),
		"_switchyard": map[string]any{
			"source": o.source,
			"hubspot": map[string]any{
				"hubId":      o.hubID,
				"objectType": o.objectType,
				"objectId":   o.objectID,
				"properties": props,
			},
		},
	}
}
