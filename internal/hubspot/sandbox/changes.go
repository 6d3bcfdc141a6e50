package sandbox

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ChangeKind is what a change did, named as the webhook subscription types
// name it ([O24-wh] §1.2 of hubspot-source.md).
type ChangeKind string

// The kinds of change the journal records.
const (
	ChangeCreation          ChangeKind = "creation"
	ChangePropertyChange    ChangeKind = "propertyChange"
	ChangeDeletion          ChangeKind = "deletion"
	ChangeMerge             ChangeKind = "merge"
	ChangeAssociationChange ChangeKind = "associationChange"
	ChangePrivacyDeletion   ChangeKind = "privacyDeletion"
)

// Change sources, as webhook notifications and property histories carry
// them (§1.3 of hubspot-source.md): CRM_UI for a person in HubSpot's UI
// ([O24-wh]); INTEGRATION, with the writing app's id as sourceId, for a
// write through the API with an app's token ([C] a delivered
// contact.creation with "changeSource":"INTEGRATION","sourceId":"9318066"
// equal to its appId).
const (
	SourceCRMUI       = "CRM_UI"
	SourceIntegration = "INTEGRATION"
)

// Change is one entry of the sandbox's change journal: what a webhook
// notification reports. One action can make several entries, as HubSpot
// sends several notifications for it (§1.3, §5 of hubspot-source.md): a
// creation is followed by a propertyChange for each property it set; a
// merge is followed by a deletion of each merged-away id; a privacy
// deletion is followed by a deletion; an association is recorded once per
// side.
type Change struct {
	// Seq is the entry's position in the journal, from 0.
	Seq  int        `json:"seq"`
	Kind ChangeKind `json:"kind"`
	// ObjectType is "contacts", "companies" or "deals"; ObjectTypeID is
	// 0-1, 0-2 or 0-3.
	ObjectType   string    `json:"objectType"`
	ObjectTypeID string    `json:"objectTypeId"`
	ObjectID     int64     `json:"objectId"`
	OccurredAt   time.Time `json:"occurredAt"`
	// ChangeSource is CRM_UI or INTEGRATION; SourceID is "userId:N" for a
	// UI edit and the app id for an API write; AppID is the writing app's id
	// (0 for a UI edit).
	ChangeSource string `json:"changeSource"`
	SourceID     string `json:"sourceId"`
	AppID        int64  `json:"appId,omitempty"`

	// Property and Value: the property that changed and its new value ("" when
	// cleared), for propertyChange.
	Property string `json:"propertyName,omitempty"`
	Value    string `json:"propertyValue,omitempty"`

	// For merge: the primary record, the records merged into it, the
	// resulting record (a new id unless Config.MergeKeepsPrimaryID) and how
	// many property values came from the merged records.
	PrimaryObjectID         int64   `json:"primaryObjectId,omitempty"`
	MergedObjectIDs         []int64 `json:"mergedObjectIds,omitempty"`
	NewObjectID             int64   `json:"newObjectId,omitempty"`
	NumberOfPropertiesMoved int     `json:"numberOfPropertiesMoved,omitempty"`

	// For associationChange: the link from ObjectID to ToObjectID, its type
	// as the webhook names it (CONTACT_TO_COMPANY, DEAL_TO_CONTACT...),
	// whether it was removed and whether it is a primary association.
	ToObjectType         string `json:"toObjectType,omitempty"`
	ToObjectID           int64  `json:"toObjectId,omitempty"`
	AssociationType      string `json:"associationType,omitempty"`
	AssociationTypeID    int    `json:"associationTypeId,omitempty"`
	AssociationRemoved   bool   `json:"associationRemoved,omitempty"`
	IsPrimaryAssociation bool   `json:"isPrimaryAssociation,omitempty"`
}

// origin is who made a change.
type origin struct {
	source   string
	sourceID string
	appID    int64
}

// journal is the change journal. It outlives Reset, so that a reader's
// position stays valid. Guarded by Server.mu.
type journal struct {
	changes []Change
	// grown is closed, and replaced, when changes are added.
	grown chan struct{}
}

// Changes returns the journal's entries from position from on, and the
// position after them (from for the next call).
func (s *Server) Changes(from int) ([]Change, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.journal.changes)
	if from < 0 {
		from = 0
	}
	if from >= n {
		return nil, n
	}
	out := make([]Change, n-from)
	copy(out, s.journal.changes[from:])
	for i := range out {
		out[i].MergedObjectIDs = append([]int64(nil), out[i].MergedObjectIDs...)
	}
	return out, n
}

// ChangesAdded returns a channel that is closed when the next change is
// recorded, so a reader of Changes can wait for more.
func (s *Server) ChangesAdded() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal.grown == nil {
		s.journal.grown = make(chan struct{})
	}
	return s.journal.grown
}

// record appends a change from o. Callers hold s.mu.
func (s *Server) record(o origin, c Change) {
	c.Seq = len(s.journal.changes)
	c.ObjectTypeID = objectTypeIDs[c.ObjectType]
	c.ChangeSource, c.SourceID, c.AppID = o.source, o.sourceID, o.appID
	if c.OccurredAt.IsZero() {
		c.OccurredAt = s.cfg.Now()
	}
	s.journal.changes = append(s.journal.changes, c)
	if s.journal.grown != nil {
		close(s.journal.grown)
		s.journal.grown = nil
	}
}

// apiOrigin is the origin of a write through the API: the app the request's
// token belongs to.
func (s *Server) apiOrigin(r *http.Request) origin {
	token, _ := bearer(r)
	id := s.AppID(token)
	return origin{source: SourceIntegration, sourceID: strconv.FormatInt(id, 10), appID: id}
}

// uiOrigin is the origin of an edit in HubSpot's UI by the portal's user.
func (s *Server) uiOrigin() origin {
	return origin{source: SourceCRMUI, sourceID: "userId:" + strconv.FormatInt(s.cfg.UIUserID, 10)}
}

// AppID returns the id of the app a token belongs to: Config.AppIDs's entry
// for it, else Config.AppID.
func (s *Server) AppID(token string) int64 {
	if id, ok := s.cfg.AppIDs[token]; ok {
		return id
	}
	return s.cfg.AppID
}

// associationTypeName is the webhook's name of a link from one type to
// another, e.g. DEAL_TO_CONTACT ([O24-wh]).
func associationTypeName(from, to string) string {
	return strings.ToUpper(singularLower(from)) + "_TO_" + strings.ToUpper(singularLower(to))
}

// primaryTypes are the association type ids of primary associations
// ([O-assoc], [O24-assoc-types]): contact to company 1 and back 2, deal to
// company 5 and back 6.
var primaryTypes = map[int]bool{1: true, 2: true, 5: true, 6: true}
