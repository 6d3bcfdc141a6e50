package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/transforms/hubspotsource"
)

// Processor turns the notifications of the source's consumer group into
// Segment calls on the events topic: it gathers notifications for
// BatchWait (or BatchSize of them), coalesces them per record, reads the
// changed records, matches them to known users, appends the calls and only
// then commits the notifications.
type Processor struct {
	cfg     Config
	log     queue.Log
	hubspot *hubspotReader
	dir     *Directory
	metrics *Metrics
	logger  *zap.Logger
}

// NewProcessor returns the processor of source cfg, reading HubSpot with
// client (the token's shared client) and matching users with dir.
func NewProcessor(cfg Config, log queue.Log, client *api.Client, dir *Directory, m *Metrics, logger *zap.Logger) (*Processor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errNoClient
	}
	return &Processor{
		cfg: cfg, log: log, hubspot: &hubspotReader{client: client}, dir: dir, metrics: m,
		logger: logger.With(zap.String("source", cfg.Name), zap.String("component", "processor")),
	}, nil
}

// Run processes sub's notifications until ctx ends. A batch that fails is
// tried again, with a growing pause, and committed only once its calls are
// in the log.
func (p *Processor) Run(ctx context.Context, sub queue.Subscription) error {
	for {
		batch, err := p.gather(ctx, sub)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for pause := time.Second; ; pause = min(2*pause, 30*time.Second) {
			err := p.process(ctx, batch)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			p.logger.Warn("processing HubSpot notifications; trying again", zap.Duration("in", pause), zap.Error(err))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pause):
			}
		}
		if err := sub.Commit(ctx, batch...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("committing notifications: %w", err)
		}
	}
}

// gather waits for a notification, then gathers more until BatchWait has
// passed since the first or BatchSize are gathered.
func (p *Processor) gather(ctx context.Context, sub queue.Subscription) ([]queue.Message, error) {
	first, err := sub.Fetch(ctx)
	if err != nil {
		return nil, err
	}
	batch := []queue.Message{first}
	wait, cancel := context.WithTimeout(ctx, time.Duration(p.cfg.BatchWait))
	defer cancel()
	for len(batch) < p.cfg.BatchSize {
		m, err := sub.Fetch(wait)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			break
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// Change is one record the source is to read and emit: from a
// notification, or from the catch-up or a full sync.
type Change struct {
	ObjectType string
	ObjectID   string
	// OccurredAt is the newest change's time, epoch ms (0: unknown).
	OccurredAt int64
	// PropertyTimes holds, for properties a notification named, when they
	// changed (epoch ms).
	PropertyTimes map[string]int64
	// PortalID is the HubSpot account (hubId).
	PortalID int64
}

// process coalesces a batch's notifications into changes and emits them.
func (p *Processor) process(ctx context.Context, batch []queue.Message) error {
	changes, forget := p.coalesce(batch)
	for _, id := range forget {
		if err := p.dir.Forget(id); err != nil {
			return fmt.Errorf("forgetting contact %s: %w", id, err)
		}
		p.metrics.changes.WithLabelValues(p.cfg.Name, "contacts", "forgotten").Inc()
	}
	return p.Emit(ctx, changes)
}

// coalesce turns notifications into one change per record, the newest
// occurredAt winning, leaving out echoes of our own writes, deletions
// (and so the deletions that accompany a merge) and privacy-deleted
// contacts, which it returns.
func (p *Processor) coalesce(batch []queue.Message) ([]Change, []string) {
	byKey := map[string]*Change{}
	var order []string
	deleted := map[string]bool{}
	var forget []string
	add := func(typ, id string, n Notification) {
		if typ == "" || id == "" || p.mapping(typ).Empty() {
			return
		}
		key := typ + ":" + id
		c, ok := byKey[key]
		if !ok {
			c = &Change{ObjectType: typ, ObjectID: id, PropertyTimes: map[string]int64{}}
			byKey[key] = c
			order = append(order, key)
		}
		c.OccurredAt = max(c.OccurredAt, n.OccurredAt)
		if n.PortalID != 0 {
			c.PortalID = n.PortalID
		}
		if n.PropertyName != "" && n.OccurredAt > c.PropertyTimes[n.PropertyName] {
			c.PropertyTimes[n.PropertyName] = n.OccurredAt
		}
	}
	for _, m := range batch {
		n, err := parseNotification(gjson.ParseBytes(m.Value))
		if err != nil || n.Source != p.cfg.Name || n.ObjectType == "" {
			continue
		}
		if p.echo(n) {
			p.metrics.changes.WithLabelValues(p.cfg.Name, n.ObjectType, "echo").Inc()
			continue
		}
		switch n.Kind {
		case "privacyDeletion":
			if n.ObjectType == "contacts" {
				deleted["contacts:"+n.ObjectID] = true
				forget = append(forget, n.ObjectID)
			}
		case "deletion":
			p.metrics.changes.WithLabelValues(p.cfg.Name, n.ObjectType, "deleted").Inc()
		case "merge":
			add(n.ObjectType, n.Survivor(), n)
		case "associationChange":
			if gjson.GetBytes(m.Value, "associationRemoved").Bool() {
				continue
			}
			// A link to a company or a deal is emitted from that side.
			if n.ObjectType != "contacts" {
				add(n.ObjectType, n.ObjectID, Notification{PortalID: n.PortalID, OccurredAt: n.OccurredAt})
			} else if _, to, ok := strings.Cut(n.AssociationType, "_TO_"); ok {
				add(legacyTypes[strings.ToLower(to)], n.ToObjectID, Notification{PortalID: n.PortalID, OccurredAt: n.OccurredAt})
			}
		default: // creation, propertyChange, restore
			add(n.ObjectType, n.ObjectID, n)
		}
	}
	var changes []Change
	for _, key := range order {
		if !deleted[key] {
			changes = append(changes, *byKey[key])
		}
	}
	return changes, forget
}

// echo reports whether n is a change our own HubSpot destination made:
// changeSource INTEGRATION with the app's id as sourceId. The destination
// never merges or deletes for privacy, so a merge or a privacy deletion
// made with the app's token is never an echo.
func (p *Processor) echo(n Notification) bool {
	if n.ChangeSource != "INTEGRATION" || n.Kind == "merge" || n.Kind == "privacyDeletion" {
		return false
	}
	app := p.cfg.AppID
	if app == 0 {
		app = n.AppID
	}
	return app != 0 && n.SourceID == strconv.FormatInt(app, 10)
}

func (p *Processor) mapping(objectType string) Mapping {
	switch objectType {
	case "contacts":
		return p.cfg.Contacts
	case "companies":
		return p.cfg.Companies
	case "deals":
		return p.cfg.Deals
	}
	return Mapping{}
}

// Emit reads the changed records, builds the calls of those matched to
// known users and appends them to the events topic, returning once they
// are durable and the records are marked emitted.
func (p *Processor) Emit(ctx context.Context, changes []Change) error {
	byType := map[string][]Change{}
	for _, c := range changes {
		byType[c.ObjectType] = append(byType[c.ObjectType], c)
	}
	for _, typ := range objectTypes {
		if len(byType[typ]) == 0 || p.mapping(typ).Empty() {
			continue
		}
		props, _, err := p.properties(ctx, typ)
		if err != nil {
			return err
		}
		recs, err := p.hubspot.read(ctx, typ, ids(byType[typ]), props)
		if err != nil {
			return err
		}
		p.countMissing(typ, byType[typ], recs)
		if _, err := p.emitRecords(ctx, typ, recs, byType[typ]); err != nil {
			return err
		}
	}
	return nil
}

// appendTimeout bounds one append of a batch of calls.
const appendTimeout = 30 * time.Second

// objectTypes are the object types a source reads, in the order it emits them.
var objectTypes = []string{"contacts", "companies", "deals"}

// emitRecords builds the calls of records of objectType already read (with
// the properties that properties names), appends them, counts them and
// marks the records emitted at their UpdatedAt. changes are what the
// records were read for. It returns how many calls it appended.
func (p *Processor) emitRecords(ctx context.Context, objectType string, recs []Record, changes []Change) (int, error) {
	var msgs []queue.Message
	var emitted []Record
	var err error
	switch objectType {
	case "contacts":
		msgs, emitted, err = p.contacts(ctx, recs, changes)
	case "companies":
		msgs, emitted, err = p.companies(ctx, recs, changes)
	case "deals":
		msgs, emitted, err = p.deals(ctx, recs, changes)
	default:
		return 0, fmt.Errorf("the HubSpot source does not read %s", objectType)
	}
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	// An append once begun is seen through, so that a sync stopped by
	// its context either appended a page and marked it, or neither: a
	// cancelled append may still land and would be emitted again.
	appendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	if err := p.log.Publish(appendCtx, msgs...); err != nil {
		return 0, fmt.Errorf("appending to %s: %w", p.cfg.EventsTopic, err)
	}
	// Counted once appended, so a count never leads the log.
	for _, m := range msgs {
		p.metrics.calls.WithLabelValues(p.cfg.Name, gjson.GetBytes(m.Value, "type").String()).Inc()
		p.count(objectType, "emitted")
	}
	marks := make(map[string]int64, len(emitted))
	for _, rec := range emitted {
		if !rec.UpdatedAt.IsZero() {
			marks[rec.ID] = max(marks[rec.ID], rec.UpdatedAt.UnixMilli())
		}
	}
	if err := p.dir.MarkEmitted(objectType, marks); err != nil {
		return len(msgs), fmt.Errorf("marking %s emitted: %w", objectType, err)
	}
	return len(msgs), nil
}

// properties are what the source reads of objectType to emit it: the
// mapped properties and those that match or identify it, with the
// properties' types.
func (p *Processor) properties(ctx context.Context, objectType string) ([]string, map[string]string, error) {
	switch objectType {
	case "contacts":
		return p.readProperties(ctx, "contacts", p.matchProperties()...)
	case "companies":
		idProp := p.cfg.CompanyIDProperty
		if idProp == "" {
			idProp = "domain"
		}
		return p.readProperties(ctx, "companies", idProp)
	}
	return p.readProperties(ctx, objectType, "hs_lastmodifieddate")
}

// readProperties is what to read of objectType: the mapped properties (all
// the type has for "all") and extra.
func (p *Processor) readProperties(ctx context.Context, objectType string, extra ...string) ([]string, map[string]string, error) {
	types, err := p.hubspot.propertyTypes(ctx, objectType)
	if err != nil {
		return nil, nil, err
	}
	m := p.mapping(objectType)
	props := m.Properties()
	if m.All {
		for name := range types {
			props = append(props, name)
		}
	}
	props = append(props, extra...)
	slices.Sort(props)
	return slices.Compact(props), types, nil
}

// matchProperties are the contact properties that match a contact to a user.
func (p *Processor) matchProperties() []string {
	if p.cfg.Match == "email" {
		return []string{"email"}
	}
	return []string{"email", p.cfg.Match}
}

// userOf returns the user a contact record is matched to.
func (p *Processor) userOf(rec Record) (string, bool) {
	if p.dir.Forgotten(rec.ID) {
		return "", false
	}
	if p.cfg.Match == "email" {
		return p.dir.UserByEmail(rec.Properties["email"])
	}
	id := rec.Properties[p.cfg.Match]
	if id == "" {
		return "", false
	}
	return id, p.dir.Known(id) || !p.cfg.onlyKnown()
}

func ids(changes []Change) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.ObjectID
	}
	return out
}

// changeOf finds the change a record was read for: by its id, or, for a
// merged-away id HubSpot resolved to its survivor, the first change
// without a record of its own.
func changeOf(changes []Change, rec Record) Change {
	for _, c := range changes {
		if c.ObjectID == rec.ID {
			return c
		}
	}
	if len(changes) > 0 {
		c := changes[0]
		c.ObjectID, c.PropertyTimes = rec.ID, nil
		return c
	}
	return Change{ObjectID: rec.ID}
}

// origin is what every call made from a change carries about where it
// came from.
func (p *Processor) origin(c Change) hubspotsource.Origin {
	return hubspotsource.Origin{Source: p.cfg.Name, HubID: c.PortalID, ReceivedAt: p.cfg.Now()}
}

// record is rec as transforms/hubspotsource reads a record. A mapped
// property a notification named carries the notification's time as its
// newest history entry, so that its time is when it changed rather than
// the record's last modification.
func record(rec Record, times map[string]int64) gjson.Result {
	out := struct {
		ID         string                    `json:"id"`
		Properties map[string]string         `json:"properties"`
		History    map[string][]historyEntry `json:"propertiesWithHistory,omitempty"`
		UpdatedAt  string                    `json:"updatedAt,omitempty"`
	}{ID: rec.ID, Properties: rec.Properties}
	if !rec.UpdatedAt.IsZero() {
		out.UpdatedAt = rec.UpdatedAt.UTC().Format(hubspotsource.TimeLayout)
	}
	for name, ms := range times {
		value, ok := rec.Properties[name]
		if !ok {
			continue
		}
		if out.History == nil {
			out.History = map[string][]historyEntry{}
		}
		out.History[name] = []historyEntry{{Value: value, Timestamp: time.UnixMilli(ms).UTC().Format(hubspotsource.TimeLayout)}}
	}
	raw, _ := json.Marshal(out) // strings and maps of strings always marshal
	return gjson.ParseBytes(raw)
}

// historyEntry is one entry of a record's propertiesWithHistory.
type historyEntry struct {
	Value     string `json:"value"`
	Timestamp string `json:"timestamp"`
}

// invalid counts and logs a record the transform refused: it is left out,
// so that one bad record does not hold up the others.
func (p *Processor) invalid(typ, id string, err error) {
	p.count(typ, "invalid")
	p.logger.Warn("a HubSpot record does not make a call; leaving it out", zap.String("object_type", typ), zap.String("object_id", id), zap.Error(err))
}

func (p *Processor) count(typ, outcome string) {
	p.metrics.changes.WithLabelValues(p.cfg.Name, typ, outcome).Inc()
}

// contacts builds an identify for each contact of recs matched to a user,
// returning the calls and the records they were built from.
func (p *Processor) contacts(ctx context.Context, recs []Record, changes []Change) ([]queue.Message, []Record, error) {
	_, types, err := p.properties(ctx, "contacts")
	if err != nil {
		return nil, nil, err
	}
	var out []queue.Message
	var emitted []Record
	seen := map[string]bool{}
	for _, rec := range recs {
		if seen[rec.ID] {
			continue
		}
		seen[rec.ID] = true
		userID, ok := p.userOf(rec)
		if !ok {
			p.count("contacts", "unknown_user")
			continue
		}
		c := changeOf(changes, rec)
		value, err := hubspotsource.Identify(p.origin(c), record(rec, c.PropertyTimes), userID, p.cfg.Contacts.transform(), types)
		if err != nil {
			p.invalid("contacts", rec.ID, err)
			continue
		}
		out = append(out, queue.Message{Topic: p.cfg.EventsTopic, Key: []byte(userID), Value: value})
		emitted = append(emitted, rec)
	}
	return out, emitted, nil
}

func (p *Processor) countMissing(typ string, changes []Change, recs []Record) {
	if n := len(changes) - len(recs); n > 0 {
		p.metrics.changes.WithLabelValues(p.cfg.Name, typ, "not_found").Add(float64(n))
	}
}

// associatedUsers reads the contacts associated with each of recs (of
// objectType) and the users those contacts are matched to.
func (p *Processor) associatedUsers(ctx context.Context, objectType string, recs []Record) (links map[string][]string, users map[string]string, err error) {
	recIDs := make([]string, len(recs))
	for i, rec := range recs {
		recIDs[i] = rec.ID
	}
	links, err = p.hubspot.associations(ctx, objectType, "contacts", recIDs)
	if err != nil {
		return nil, nil, err
	}
	var contactIDs []string
	for _, cs := range links {
		contactIDs = append(contactIDs, cs...)
	}
	users, err = p.knownContacts(ctx, contactIDs)
	if err != nil {
		return nil, nil, err
	}
	return links, users, nil
}

// knownContacts returns, for contact ids, the users they are matched to.
func (p *Processor) knownContacts(ctx context.Context, contactIDs []string) (map[string]string, error) {
	slices.Sort(contactIDs)
	contactIDs = slices.Compact(contactIDs)
	recs, err := p.hubspot.read(ctx, "contacts", contactIDs, p.matchProperties())
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	for _, rec := range recs {
		if userID, ok := p.userOf(rec); ok {
			users[rec.ID] = userID
		}
	}
	return users, nil
}

// companies builds a group call for each company of recs to each of its
// contacts matched to a user. The groupId is the company_id_property's
// value, else the company's domain.
func (p *Processor) companies(ctx context.Context, recs []Record, changes []Change) ([]queue.Message, []Record, error) {
	_, types, err := p.properties(ctx, "companies")
	if err != nil {
		return nil, nil, err
	}
	var withID []Record
	groupIDs := map[string]string{}
	for _, rec := range recs {
		groupID, err := hubspotsource.GroupID(record(rec, nil), p.cfg.CompanyIDProperty)
		if err != nil {
			p.count("companies", "no_group_id")
			continue
		}
		groupIDs[rec.ID] = groupID
		withID = append(withID, rec)
	}
	links, users, err := p.associatedUsers(ctx, "companies", withID)
	if err != nil {
		return nil, nil, err
	}
	var out []queue.Message
	var emitted []Record
records:
	for _, rec := range withID {
		c := changeOf(changes, rec)
		var calls []queue.Message
		for _, contactID := range links[rec.ID] {
			userID, ok := users[contactID]
			if !ok {
				continue
			}
			value, err := hubspotsource.Group(p.origin(c), record(rec, c.PropertyTimes), groupIDs[rec.ID], userID, p.cfg.Companies.transform(), types)
			if err != nil {
				p.invalid("companies", rec.ID, err)
				continue records
			}
			calls = append(calls, queue.Message{Topic: p.cfg.EventsTopic, Key: []byte(userID), Value: value})
		}
		if len(calls) == 0 {
			p.count("companies", "unknown_user")
			continue
		}
		out = append(out, calls...)
		emitted = append(emitted, rec)
	}
	return out, emitted, nil
}

// deals builds, for each deal of recs, an identify of each associated
// contact matched to a user with the deal's mapped fields as traits, when
// the deal is that contact's most recently modified one.
func (p *Processor) deals(ctx context.Context, recs []Record, changes []Change) ([]queue.Message, []Record, error) {
	_, types, err := p.properties(ctx, "deals")
	if err != nil {
		return nil, nil, err
	}
	links, users, err := p.associatedUsers(ctx, "deals", recs)
	if err != nil {
		return nil, nil, err
	}
	newest, err := p.newestDeals(ctx, users)
	if err != nil {
		return nil, nil, err
	}
	var out []queue.Message
	var emitted []Record
records:
	for _, rec := range recs {
		c := changeOf(changes, rec)
		var calls []queue.Message
		for _, contactID := range links[rec.ID] {
			userID, ok := users[contactID]
			if !ok || newest[contactID] != rec.ID {
				continue
			}
			value, err := hubspotsource.DealTraits(p.origin(c), record(rec, c.PropertyTimes), userID, p.cfg.Deals.transform(), types)
			if err != nil {
				p.invalid("deals", rec.ID, err)
				continue records
			}
			calls = append(calls, queue.Message{Topic: p.cfg.EventsTopic, Key: []byte(userID), Value: value})
		}
		if len(calls) == 0 {
			p.count("deals", "unknown_user")
			continue
		}
		out = append(out, calls...)
		emitted = append(emitted, rec)
	}
	return out, emitted, nil
}

// newestDeals returns each contact's most recently modified deal.
func (p *Processor) newestDeals(ctx context.Context, users map[string]string) (map[string]string, error) {
	var contactIDs []string
	for id := range users {
		contactIDs = append(contactIDs, id)
	}
	slices.Sort(contactIDs)
	links, err := p.hubspot.associations(ctx, "contacts", "deals", contactIDs)
	if err != nil {
		return nil, err
	}
	var dealIDs []string
	for _, ds := range links {
		dealIDs = append(dealIDs, ds...)
	}
	slices.Sort(dealIDs)
	dealIDs = slices.Compact(dealIDs)
	recs, err := p.hubspot.read(ctx, "deals", dealIDs, []string{"hs_lastmodifieddate"})
	if err != nil {
		return nil, err
	}
	modified := map[string]time.Time{}
	for _, rec := range recs {
		modified[rec.ID] = rec.UpdatedAt
	}
	newest := map[string]string{}
	for contactID, ds := range links {
		for _, d := range ds {
			best, ok := newest[contactID]
			if !ok || modified[d].After(modified[best]) || (modified[d].Equal(modified[best]) && d > best) {
				newest[contactID] = d
			}
		}
	}
	return newest, nil
}

// errNoClient is returned when a processor is built without a client.
var errNoClient = errors.New("the HubSpot source needs an API client")
