package hubspot

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Notification is one HubSpot webhook notification, as the receiver stores
// it and the processor reads it (the fields of §1.3 of HubSpot's webhooks
// guide that the source uses).
type Notification struct {
	// ObjectType is contacts, companies or deals; "" for a type the source
	// does not read (tickets, products...).
	ObjectType string
	// Kind is the subscription type's event: creation, propertyChange,
	// deletion, merge, restore, associationChange or privacyDeletion.
	Kind     string
	ObjectID string
	// OccurredAt is when the change happened, epoch milliseconds.
	OccurredAt int64
	PortalID   int64
	AppID      int64
	// ChangeSource and SourceID say who made the change: INTEGRATION with
	// the writing app's id for an API write.
	ChangeSource string
	SourceID     string
	// PropertyName is the changed property of a propertyChange.
	PropertyName string
	// MergedObjectIDs and the survivor of a merge: NewObjectID, else
	// PrimaryObjectID.
	MergedObjectIDs []string
	PrimaryObjectID string
	NewObjectID     string
	// FromObjectID and ToObjectID of an associationChange, with its type
	// (CONTACT_TO_COMPANY...).
	AssociationType string
	ToObjectID      string
	// Source is the _switchyard.source the receiver added.
	Source string
}

// legacyTypes maps the legacy subscription types' prefixes to object types.
var legacyTypes = map[string]string{"contact": "contacts", "company": "companies", "deal": "deals"}

// typeIDs maps objectTypeId, in generic object.* notifications, to object
// types.
var typeIDs = map[string]string{"0-1": "contacts", "0-2": "companies", "0-3": "deals"}

// parseNotification reads one notification. The type is subscriptionType,
// else the 2024 guide's eventType; object.* notifications name the type by
// objectTypeId.
func parseNotification(n gjson.Result) (Notification, error) {
	if !n.IsObject() {
		return Notification{}, errors.New("must be a JSON object")
	}
	typ := n.Get("subscriptionType").String()
	if typ == "" {
		typ = n.Get("eventType").String()
	}
	prefix, kind, ok := strings.Cut(typ, ".")
	if !ok || kind == "" {
		return Notification{}, fmt.Errorf("subscriptionType %q is not of the form object.event", typ)
	}
	id := idString(n.Get("objectId"))
	if id == "" {
		return Notification{}, errors.New("objectId is missing")
	}
	out := Notification{
		ObjectType:      legacyTypes[prefix],
		Kind:            kind,
		ObjectID:        id,
		OccurredAt:      n.Get("occurredAt").Int(),
		PortalID:        n.Get("portalId").Int(),
		AppID:           n.Get("appId").Int(),
		ChangeSource:    n.Get("changeSource").String(),
		SourceID:        n.Get("sourceId").String(),
		PropertyName:    n.Get("propertyName").String(),
		PrimaryObjectID: idString(n.Get("primaryObjectId")),
		NewObjectID:     idString(n.Get("newObjectId")),
		AssociationType: n.Get("associationType").String(),
		ToObjectID:      idString(n.Get("toObjectId")),
		Source:          n.Get("_switchyard.source").String(),
	}
	if prefix == "object" {
		out.ObjectType = typeIDs[n.Get("objectTypeId").String()]
	}
	for _, m := range n.Get("mergedObjectIds").Array() {
		out.MergedObjectIDs = append(out.MergedObjectIDs, idString(m))
	}
	return out, nil
}

// idString reads an id HubSpot sends as a number (or a string).
func idString(v gjson.Result) string {
	switch v.Type {
	case gjson.Number:
		return strconv.FormatInt(v.Int(), 10)
	case gjson.String:
		return v.Str
	}
	return ""
}

// Key is the notification's log key, objectType:objectId: notifications of
// one record share a partition.
func (n Notification) Key() string { return n.ObjectType + ":" + n.ObjectID }

// Survivor is the record a merge leaves: the new record, else the primary.
func (n Notification) Survivor() string {
	if n.NewObjectID != "" {
		return n.NewObjectID
	}
	if n.PrimaryObjectID != "" {
		return n.PrimaryObjectID
	}
	return n.ObjectID
}
