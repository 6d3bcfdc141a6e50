package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/internal/hubspot/ratelimit"
	"github.com/switchyard/switchyard/transforms"
)

// maxInputs is the object batch endpoints' limit ([O-objapis]).
const maxInputs = 100

// HubSpot delivers events to one HubSpot portal:
//
//   - identify upserts a contact (by email or Config.IDProperty); a
//     track's context.traits and properties.email update the contact too.
//     Events of one contact in a batch become one input, each property
//     taking its newest value by event timestamp.
//   - group writes the company of the website's domain, or of the groupId
//     in Config.CompanyIDProperty, and associates the user's contact with
//     it as soon as both ids are known. A domain is searched once (then
//     cached), so a company made before switchyard is reused; when none is
//     found the company is upserted by the unique property
//     switchyard_domain, so concurrent writers make one company.
//   - track, page and screen send custom behavioral events, each with a
//     uuid of its source and messageId, so HubSpot keeps one occurrence
//     however often the message is delivered.
//   - alias sends nothing: HubSpot has no alias merge by id.
//
// Within a batch contacts are written first, then companies, then events,
// so an event finds the contact an identify earlier in the batch made.
// HubSpot keeps each property's newest value and each event's occurredAt,
// so a user's calls need no stricter order than that, with one exception:
// once an event of a user gets Retry, the user's later events in the batch
// that a step still to come would send get Retry too (class held_back).
type HubSpot struct {
	cfg     Config
	name    string
	client  *api.Client
	log     *zap.Logger
	metrics *Metrics
	// state holds property times, HubSpot ids and the associations waiting
	// for a contact, across restarts.
	state *state
	// closing is held shared by each Send and exclusively by Close, so the
	// state is never closed under a Send; closed is set by Close.
	closing sync.RWMutex
	closed  bool

	// loading serializes property-list reads, so concurrent batches read
	// each list once.
	loading  sync.Mutex
	mu       sync.Mutex
	catalogs map[string]transforms.Catalog
	// ids caches the state's HubSpot ids: contacts by "u:"+userId,
	// "a:"+anonymousId and "e:"+email, companies by "d:"+domain and "g:"+groupId.
	ids          *lru.Cache[string, string]
	groupCreated map[string]bool
	// domainPropertyReady is set once the portal is known to have the
	// unique company property companies are upserted by.
	domainPropertyReady bool
	// defining serializes event definition calls; eventDefs holds the
	// definitions read or made, by event name.
	defining  sync.Mutex
	eventDefs map[string]*eventDefinition
	// announcedPause is the end of the last pause logged.
	announcedPause time.Time
	// refused, while HubSpot refuses the token, says why; "" while it
	// takes it.
	refused string
}

// NewClient returns an API client for cfg's token, with a rate budget of
// its own sized by cfg's tier and time zone. HubSpot limits a token, not a
// destination: a process gives every user of one token the same client.
// A nil httpClient means one with cfg's timeout.
func NewClient(cfg Config, httpClient *http.Client, log *zap.Logger) (*api.Client, error) {
	cfg, err := cfg.withClientDefaults()
	if err != nil {
		return nil, err
	}
	budget, err := ratelimit.NewBudget(ratelimit.Tier(cfg.Tier), cfg.Clock, cfg.TimeZone.Location)
	if err != nil {
		return nil, fmt.Errorf("tier: %w", err)
	}
	return api.New(api.Config{BaseURL: cfg.BaseURL, Token: cfg.Token, Timeout: time.Duration(cfg.Timeout)}, budget, httpClient, log)
}

// New returns a HubSpot destination named name that calls HubSpot through
// client (see NewClient). cfg's client settings (Token, BaseURL, Tier,
// TimeZone, Timeout, Clock) are not read: the client carries them.
func New(name string, cfg Config, client *api.Client, log *zap.Logger) (*HubSpot, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errors.New("hubspot: an API client is required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("destination", name))
	ids, _ := lru.New[string, string](300_000)
	h := &HubSpot{cfg: cfg, name: name, client: client, log: log, metrics: cfg.Metrics, catalogs: map[string]transforms.Catalog{},
		ids: ids, groupCreated: map[string]bool{}, eventDefs: map[string]*eventDefinition{}}
	stateDir := ""
	if cfg.StateDir != "" {
		stateDir = filepath.Join(cfg.StateDir, "state")
	}
	if h.state, err = openState(stateDir, log); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	if h.metrics != nil {
		h.metrics.budgets.watch(name, client.Budget())
	}
	return h, nil
}

// Close waits for running Sends, then releases the state; closing twice
// is harmless. A Send after Close gives every event Retry (class closed).
func (h *HubSpot) Close() error {
	h.closing.Lock()
	defer h.closing.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	if h.metrics != nil {
		h.metrics.budgets.forget(h.name, h.client.Budget())
	}
	return h.state.close()
}

// knownID returns the HubSpot id of a key ("u:"+userId, "a:"+anonymousId
// or "e:"+email for contacts, "d:"+domain or "g:"+groupId for companies), from the cache or
// else the state. An error reading the state is returned, not taken for an
// unknown key: the events that need the id are retried (stateReadFailed).
func (h *HubSpot) knownID(key string) (string, bool, error) {
	if id, ok := h.ids.Get(key); ok {
		return id, true, nil
	}
	id, ok, err := h.state.id(key)
	if err != nil {
		return "", false, fmt.Errorf("reading the HubSpot id of %s from the state: %w", key, err)
	}
	if ok {
		h.ids.Add(key, id)
	}
	return id, ok, nil
}

// stateReadFailed is the outcome of an event whose HubSpot ids could not be
// read from the state.
func stateReadFailed(err error) destinations.Outcome {
	return destinations.RetryLater("state", err.Error(), 0)
}

// rememberIDs caches and stores HubSpot ids, keyed as knownID reads them.
func (h *HubSpot) rememberIDs(ids map[string]string) {
	learned := make(map[string]string, len(ids))
	for key, id := range ids {
		if known, ok := h.ids.Get(key); !ok || known != id {
			h.ids.Add(key, id)
			learned[key] = id
		}
	}
	if err := h.state.setIDs(learned); err != nil {
		h.log.Warn("storing HubSpot ids", zap.Error(err))
	}
}

// call makes one API call and counts it under endpoint.
func (h *HubSpot) call(ctx context.Context, endpoint string, kind api.Kind, method, path string, body any) (*api.Response, error) {
	resp, err := h.client.Do(ctx, kind, method, path, body)
	h.observeAuth(err)
	if h.metrics != nil {
		outcome := "ok"
		switch {
		case isConflict(err):
			outcome = "conflict"
		case err != nil:
			outcome = outcomeOf(err).Class
		}
		h.metrics.calls.WithLabelValues(h.name, endpoint, outcome).Inc()
	}
	return resp, err
}

// observeAuth follows whether HubSpot takes the token: the first refusal
// (401, 403) after a working call logs one ERROR naming the problem, and
// the first success after refusals logs one INFO. Other failures say
// nothing about the token.
func (h *HubSpot) observeAuth(err error) {
	var ae *api.AuthError
	refused := ""
	switch {
	case errors.As(err, &ae):
		refused = ae.Problem()
	case err != nil:
		return
	}
	h.mu.Lock()
	was := h.refused
	h.refused = refused
	h.mu.Unlock()
	switch {
	case refused != "" && was == "":
		h.log.Error(refused+"; events are retried until the token works (see the README's HubSpot scopes)", zap.Int("status", ae.Status), zap.Strings("scopes", ae.Scopes))
	case refused == "" && was != "":
		h.log.Info("HubSpot takes the token again: recovered", zap.String("was", was))
	}
}

// Health implements destinations.HealthReporter: false while HubSpot
// refuses the token, with the problem; true again after a successful call.
func (h *HubSpot) Health() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refused == "", h.refused
}

// CheckToken makes the destination's first call (reading the contact
// property list, which every batch needs), so a token HubSpot refuses is
// reported at start rather than at the first event. The error is the
// call's, already logged and reflected in Health.
func (h *HubSpot) CheckToken(ctx context.Context) error {
	h.closing.RLock()
	defer h.closing.RUnlock()
	if h.closed {
		return errors.New("hubspot: the destination is closed")
	}
	return h.loadCatalog(ctx, "contacts")
}

// skip counts something not sent, by reason.
func (h *HubSpot) skip(reason string) {
	if h.metrics != nil {
		h.metrics.skipped.WithLabelValues(h.name, reason).Inc()
	}
}

// records counts records or events sent in batch calls.
func (h *HubSpot) records(kind string, n int) {
	if h.metrics != nil {
		h.metrics.records.WithLabelValues(h.name, kind).Add(float64(n))
	}
}

// Policy implements destinations.Destination. A batch closes at 100 users
// (one contact each, so one full call of 100 records however many events
// each user sent), at 500 events (the events endpoint's limit), or after
// MaxWait.
func (h *HubSpot) Policy() destinations.Policy {
	return destinations.Policy{MaxItems: maxEvents, MaxKeys: maxInputs, MaxWait: time.Duration(h.cfg.MaxWait), MaxInFlight: h.cfg.MaxInFlight}
}

// PausedUntil tells the router when the token's budget allows calls again,
// for example after HubSpot's daily limit.
func (h *HubSpot) PausedUntil() time.Time {
	until, _ := h.client.Budget().PausedUntil()
	return until
}

// reportPause says, in the log once per pause and in the paused gauge,
// whether the token's budget is paused.
func (h *HubSpot) reportPause() {
	until, reason := h.client.Budget().PausedUntil()
	h.mu.Lock()
	announce := !until.IsZero() && !until.Equal(h.announcedPause)
	h.announcedPause = until
	h.mu.Unlock()
	if announce {
		h.log.Warn("HubSpot calls paused", zap.Time("until", until), zap.String("reason", reason))
	}
	if h.metrics != nil {
		paused := 0.0
		if !until.IsZero() {
			paused = 1
		}
		h.metrics.paused.WithLabelValues(h.name).Set(paused)
	}
}

// SetShare takes owned of total parts of the token's burst allowance: the
// router calls it with the partitions its consumer-group member owns, so
// several router processes serving one token stay inside its limit
// together.
func (h *HubSpot) SetShare(owned, total int) {
	h.client.Budget().SetShare(owned, total)
}

// Send implements destinations.Destination.
func (h *HubSpot) Send(ctx context.Context, batch []destinations.Event) []destinations.Outcome {
	defer h.reportPause()
	s := &sending{h: h, batch: batch, out: make([]destinations.Outcome, len(batch)), set: make([]bool, len(batch)), notes: make([][]string, len(batch))}
	h.closing.RLock()
	defer h.closing.RUnlock()
	if h.closed {
		for i := range batch {
			s.finish(i, destinations.RetryLater("closed", "not sent: the destination is closed", 0))
		}
		return s.out
	}
	if err := ctx.Err(); err != nil {
		for i := range batch {
			s.finish(i, destinations.RetryLater("canceled", "not sent: "+err.Error(), 0))
		}
		return s.out
	}
	// Aliases send nothing; each is delivered at the end unless held back.
	alias := make([]bool, len(batch))
	// Events a HubSpot source read from this portal are not written back:
	// the destination learns HubSpot's property times from them.
	for i, ev := range batch {
		if h.fromThisPortal(ev) {
			s.finish(i, s.learn(ctx, ev))
		}
	}
	if !slices.Contains(s.set, false) {
		return s.out
	}
	for i, ev := range batch {
		if s.set[i] {
			continue
		}
		switch ev.Type() {
		case "identify", "track", "page", "screen", "group":
		case "alias":
			alias[i] = true
		default:
			s.finish(i, destinations.Dead("unsupported", fmt.Sprintf("%q calls are not sent to HubSpot", ev.Type())))
		}
	}
	for _, object := range []string{"contacts", "companies"} {
		if err := h.loadCatalog(ctx, object); err != nil {
			o := outcomeOf(err)
			for i := range batch {
				if !s.set[i] {
					s.finish(i, o)
				}
			}
			return s.out
		}
	}
	// Contacts go first; each later step sends nothing for a user whose
	// earlier event got Retry.
	s.contacts(ctx)
	s.findContacts(ctx)
	s.holdBack()
	s.audiences(ctx)
	s.holdBack()
	s.companies(ctx)
	s.flushLinks(ctx)
	s.holdBack()
	s.events(ctx)
	s.holdBack()
	for i := range batch {
		switch {
		case s.set[i]:
		case alias[i]:
			h.skip("alias")
			s.out[i] = destinations.Outcome{Result: destinations.Delivered, Reason: "alias: nothing sent; HubSpot merges contacts by email, not by alias", Class: "alias"}
		default:
			s.out[i] = destinations.Ok()
		}
		if len(s.notes[i]) > 0 && s.out[i].Result == destinations.Delivered && s.out[i].Reason == "" {
			s.out[i].Reason = strings.Join(s.notes[i], "; ")
			s.out[i].Class = "partial"
		}
	}
	return s.out
}

// sending is one Send call's state.
type sending struct {
	h     *HubSpot
	batch []destinations.Event
	out   []destinations.Outcome
	set   []bool
	notes [][]string
	// links are the associations to make once companies are written.
	links []link
}

// finish gives event i its final outcome unless it has one.
func (s *sending) finish(i int, o destinations.Outcome) {
	if !s.set[i] {
		s.out[i], s.set[i] = o, true
	}
}

// holdBack gives Retry to each event without an outcome yet that comes
// after an event of its user that got Retry: sending it could let it take
// effect before the retried one.
func (s *sending) holdBack() {
	if !slices.ContainsFunc(s.out, func(o destinations.Outcome) bool { return o.Result == destinations.Retry }) {
		return
	}
	retried := map[string]time.Duration{}
	for i, ev := range s.batch {
		after, held := retried[ev.Key()]
		switch {
		case held && !s.set[i]:
			s.finish(i, destinations.RetryLater("held_back", "held back: an earlier event of this user is being retried", after))
		case !held && s.set[i] && s.out[i].Result == destinations.Retry:
			retried[ev.Key()] = s.out[i].RetryAfter
		}
	}
}

func (s *sending) note(i int, format string, args ...any) {
	s.notes[i] = append(s.notes[i], fmt.Sprintf(format, args...))
}

func (h *HubSpot) options() transforms.Options {
	return transforms.Options{NestedJSON: h.cfg.NestedJSON, ClearNulls: h.cfg.ClearNulls, RegistrableDomain: h.cfg.RegistrableDomain}
}

// outcomeOf classifies a failed call for every event it carried.
func outcomeOf(err error) destinations.Outcome {
	var rl *api.RateLimitError
	var te *api.TransientError
	var ae *api.AuthError
	var re *api.RequestError
	switch {
	case errors.As(err, &rl):
		return destinations.Outcome{Result: destinations.Retry, RetryAfter: rl.RetryAfter, Class: "http_429", Reason: rl.Reason, Status: 429, Response: rl.Body}
	case errors.As(err, &te):
		class := "transient"
		if te.Paused {
			class = "paused"
		}
		return destinations.Outcome{Result: destinations.Retry, RetryAfter: te.RetryAfter, Class: class, Reason: te.Reason, Status: te.Status, Response: te.Body}
	case errors.As(err, &ae):
		return destinations.Outcome{Result: destinations.Retry, Class: "auth", Reason: ae.Reason + " (check the token and its scopes)", Status: ae.Status, Response: ae.Body}
	case errors.As(err, &re):
		if len(re.Detail.PropertiesMissing()) > 0 {
			return destinations.Outcome{Result: destinations.Retry, Class: "property_missing", Reason: re.Reason, Status: re.Status, Response: re.Body}
		}
		return destinations.Outcome{Result: destinations.DeadLetter, Class: "http_4xx", Reason: re.Reason, Status: re.Status, Response: re.Body}
	}
	return destinations.RetryLater("internal", err.Error(), 0)
}

// loadCatalog reads an object's property list once; it is read again after
// HubSpot says a property does not exist.
func (h *HubSpot) loadCatalog(ctx context.Context, object string) error {
	h.loading.Lock()
	defer h.loading.Unlock()
	h.mu.Lock()
	_, ok := h.catalogs[object]
	h.mu.Unlock()
	if ok {
		return nil
	}
	resp, err := h.call(ctx, "properties/list", api.Standard, http.MethodGet, "/crm/v3/properties/"+object, nil)
	if err != nil {
		return err
	}
	cat, err := transforms.ParseCatalog(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the %s property list: %w", object, err)
	}
	h.mu.Lock()
	h.catalogs[object] = cat
	h.mu.Unlock()
	return nil
}

func (h *HubSpot) catalog(object string) transforms.Catalog {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.catalogs[object]
}

// forgetCatalog makes the next batch read the property list again.
func (h *HubSpot) forgetCatalog(object string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.catalogs, object)
}

// ensureGroup creates the switchyard property group of an object unless
// this destination made it already or it exists.
func (h *HubSpot) ensureGroup(ctx context.Context, object string) error {
	h.mu.Lock()
	haveGroup := h.groupCreated[object]
	h.mu.Unlock()
	if haveGroup {
		return nil
	}
	_, err := h.call(ctx, "properties/groups", api.Standard, http.MethodPost, "/crm/v3/properties/"+object+"/groups",
		map[string]any{"name": "switchyard", "label": "switchyard"})
	if err != nil && !isConflict(err) {
		return fmt.Errorf("creating the switchyard property group: %w", err)
	}
	h.mu.Lock()
	h.groupCreated[object] = true
	h.mu.Unlock()
	return nil
}

// createProperty creates a property the portal lacks in the switchyard
// group, creating the group first.
func (h *HubSpot) createProperty(ctx context.Context, object string, p transforms.Property, value string) error {
	if err := h.ensureGroup(ctx, object); err != nil {
		return err
	}
	body := map[string]any{"name": p.Name, "label": p.Name, "type": p.Type, "fieldType": p.FieldType, "groupName": "switchyard"}
	switch {
	case p.FieldType == transforms.FieldBooleanCheckbox:
		body["options"] = []map[string]any{{"label": "Yes", "value": "true", "displayOrder": 0}, {"label": "No", "value": "false", "displayOrder": 1}}
	case p.Type == transforms.TypeEnumeration:
		var opts []map[string]any
		for i, v := range strings.Split(value, ";") {
			if v != "" {
				opts = append(opts, map[string]any{"label": v, "value": v, "displayOrder": i})
			}
		}
		body["options"] = opts
	}
	if _, err := h.call(ctx, "properties/create", api.Standard, http.MethodPost, "/crm/v3/properties/"+object, body); err != nil && !isConflict(err) {
		return fmt.Errorf("creating property %s: %w", p.Name, err)
	}
	h.mu.Lock()
	if cat := h.catalogs[object]; cat != nil {
		cat[p.Name] = p
	}
	h.mu.Unlock()
	return nil
}

// singular names one record of an object type.
func singular(object string) string {
	if object == "companies" {
		return "company"
	}
	return strings.TrimSuffix(object, "s")
}

func isConflict(err error) bool {
	var re *api.RequestError
	return errors.As(err, &re) && re.Status == http.StatusConflict
}

// mapProperties maps traits to an object's properties, creating unknown
// properties or noting them as skipped on each contributing event.
func (s *sending) mapProperties(ctx context.Context, object string, traits gjson.Result, idx []int) (map[string]string, error) {
	h := s.h
	var res transforms.Result
	if object == "contacts" {
		res = transforms.ContactProperties(traits, h.catalog(object), h.options())
	} else {
		res = transforms.CompanyProperties(traits, h.catalog(object), h.options())
	}
	mapping := mappingOf(object, res)
	for _, u := range res.Unknown {
		if h.cfg.AutoCreateProperties {
			if err := h.createProperty(ctx, object, u.Property, u.Value); err != nil {
				return nil, err
			}
			res.Properties[u.Property.Name] = u.Value
			mapping = append(mapping, Mapping{Object: object, Key: u.Key, Property: u.Property.Name, Value: u.Value, Created: true})
			continue
		}
		h.skip("unknown_property")
		for _, i := range idx {
			s.note(i, "skipped unknown %s property %s (trait %q); enable auto_create_properties or create it in HubSpot", singular(object), u.Property.Name, u.Key)
		}
		mapping = append(mapping, Mapping{Object: object, Key: u.Key, Property: u.Property.Name,
			Skipped: fmt.Sprintf("unknown %s property; enable auto_create_properties or create it in HubSpot", singular(object))})
	}
	for _, p := range res.Problems {
		h.skip(string(p.Kind))
		for _, i := range idx {
			s.note(i, "skipped %s", p.String())
		}
	}
	s.mapped(idx, mapping)
	return res.Properties, nil
}

// Mapping is what one key of an event's traits or properties became.
type Mapping struct {
	// Object is what the key was mapped for: contacts, companies or events.
	Object string
	// Key is the key as written; a nested key is its path joined with '.'.
	Key string
	// Property is the property it became; "" when it cannot be one.
	Property string
	// Value is the value sent; "" when the key was skipped.
	Value string
	// Skipped says why the key was not sent; "" when it was.
	Skipped string
	// Created is set when the property was created for it
	// (auto_create_properties).
	Created bool
}

// mappingOf lists the keys res sent and skipped, the sent ones first, by
// key.
func mappingOf(object string, res transforms.Result) []Mapping {
	var m []Mapping
	for name, key := range res.Keys {
		m = append(m, Mapping{Object: object, Key: key, Property: name, Value: res.Properties[name]})
	}
	sort.Slice(m, func(i, j int) bool { return m[i].Key < m[j].Key })
	for _, p := range res.Problems {
		m = append(m, Mapping{Object: object, Key: p.Key, Property: p.Name, Skipped: p.Reason})
	}
	return m
}

// mapped tells Config.Mapped, when set, what the keys of events idx became.
func (s *sending) mapped(idx []int, mapping []Mapping) {
	if s.h.cfg.Mapped == nil {
		return
	}
	for _, i := range idx {
		s.h.cfg.Mapped(i, mapping)
	}
}

// batchResult is the shape of object batch answers (200, 201 and 207).
type batchResult struct {
	Results []struct {
		ID                 string            `json:"id"`
		Properties         map[string]string `json:"properties"`
		ObjectWriteTraceID string            `json:"objectWriteTraceId"`
	} `json:"results"`
	Errors []batchError `json:"errors"`
}

// batchError is one input's error in a batch answer (207).
type batchError struct {
	Category string                  `json:"category"`
	Message  string                  `json:"message"`
	Context  map[string][]string     `json:"context"`
	Errors   []struct{ Code string } `json:"errors"`
	// Raw is the error as HubSpot wrote it, for the dead letter's response.
	Raw json.RawMessage `json:"-"`
}

func (e *batchError) UnmarshalJSON(b []byte) error {
	type fields batchError
	if err := json.Unmarshal(b, (*fields)(e)); err != nil {
		return err
	}
	e.Raw = slices.Clone(b)
	return nil
}

// input is one object input: the events it carries and what they set.
type input struct {
	// key names the record among those of its object ("e:"+email,
	// "u:"+userId, "d:"+domain, "g:"+groupId or "id:"+HubSpot id), and
	// keyProperty is the property holding its value, if any.
	key, keyProperty string
	idProperty       string // "" when the object is addressed by its HubSpot id
	id               string
	props            map[string]string
	// newest is the timestamp of the event each property's value came from.
	newest map[string]time.Time
	events []int
	// known is the record's HubSpot id as known before the write, whose
	// times learned from HubSpot count too; written is the id HubSpot
	// answered. Either is "" when there is none.
	known, written string
}

func (in *input) merge(props map[string]string, at time.Time) {
	for k, v := range props {
		if t, ok := in.newest[k]; ok && t.After(at) {
			continue
		}
		in.props[k], in.newest[k] = v, at
	}
}

// write sends inputs to an object batch endpoint in calls of up to 100,
// with objectWriteTraceIds so one bad input fails alone, and calls done with
// the HubSpot id of each input written. Events of failed inputs get their
// outcome; those of inputs HubSpot's answer names neither among its results
// nor among its errors are retried. It holds the inputs' record locks from
// the check of their property times until the new times are stored.
func (s *sending) write(ctx context.Context, object, op string, inputs []*input, done func(in *input, id string)) {
	if len(inputs) == 0 {
		return
	}
	keys := make([]string, 0, 2*len(inputs))
	known := make([]*input, 0, len(inputs))
	for _, in := range inputs {
		if err := s.h.knowRecord(in); err != nil {
			for _, i := range in.events {
				s.finish(i, stateReadFailed(err))
			}
			continue
		}
		keys = append(keys, object+"\x00"+in.key)
		if in.known != "" {
			keys = append(keys, object+"\x00id:"+in.known)
		}
		known = append(known, in)
	}
	inputs = known
	unlock, err := s.h.state.records.lock(ctx, keys)
	if err != nil {
		for _, in := range inputs {
			for _, i := range in.events {
				s.finish(i, destinations.RetryLater("canceled", "not sent: "+err.Error(), 0))
			}
		}
		return
	}
	defer unlock()
	inputs = s.withoutOlderValues(object, inputs)
	for start := 0; start < len(inputs); start += maxInputs {
		chunk := inputs[start:min(len(inputs), start+maxInputs)]
		body := make([]map[string]any, len(chunk))
		for k, in := range chunk {
			b := map[string]any{"properties": in.props, "objectWriteTraceId": strconv.Itoa(k)}
			if in.id != "" {
				b["id"] = in.id
			}
			if in.idProperty != "" {
				b["idProperty"] = in.idProperty
			}
			body[k] = b
		}
		s.h.records(object, len(chunk))
		resp, err := s.h.call(ctx, object+"/"+op, api.Standard, http.MethodPost, "/crm/v3/objects/"+object+"/batch/"+op, map[string]any{"inputs": body})
		if err != nil {
			o := outcomeOf(err)
			if o.Class == "property_missing" {
				s.h.forgetCatalog(object)
			}
			for _, in := range chunk {
				for _, i := range in.events {
					s.finish(i, o)
				}
			}
			continue
		}
		var res batchResult
		if err := json.Unmarshal(resp.Body, &res); err != nil {
			for _, in := range chunk {
				for _, i := range in.events {
					s.finish(i, destinations.RetryLater("response", "reading HubSpot's answer: "+err.Error(), 0))
				}
			}
			continue
		}
		answered := make([]bool, len(chunk))
		for _, e := range res.Errors {
			o := destinations.Outcome{Result: destinations.DeadLetter, Class: "hubspot_" + strings.ToLower(e.Category), Reason: "HubSpot refused the " + singular(object) + ": " + e.Message, Status: resp.Status, Response: api.Excerpt(e.Raw)}
			for _, d := range e.Errors {
				if d.Code == "PROPERTY_DOESNT_EXIST" {
					s.h.forgetCatalog(object)
					o.Result, o.Class = destinations.Retry, "property_missing"
				}
			}
			for _, trace := range e.Context["objectWriteTraceId"] {
				if k, err := strconv.Atoi(trace); err == nil && k >= 0 && k < len(chunk) {
					answered[k] = true
					for _, i := range chunk[k].events {
						s.finish(i, o)
					}
				}
			}
		}
		written := make([]*input, 0, len(res.Results))
		for _, r := range res.Results {
			k, err := strconv.Atoi(r.ObjectWriteTraceID)
			if err != nil || k < 0 || k >= len(chunk) {
				continue
			}
			answered[k] = true
			chunk[k].written = r.ID
			written = append(written, chunk[k])
			done(chunk[k], r.ID)
		}
		for k, in := range chunk {
			if !answered[k] {
				for _, i := range in.events {
					s.finish(i, destinations.RetryLater("response", "HubSpot's answer has neither a result nor an error for this "+singular(object), 0))
				}
			}
		}
		if err := s.h.state.recordTimes(object, written); err != nil {
			s.h.log.Warn("storing property times", zap.Error(err))
		}
	}
}

// knowRecord sets in.known to the HubSpot id of the input's record when the
// destination knows it.
func (h *HubSpot) knowRecord(in *input) error {
	if id, ok := strings.CutPrefix(in.key, "id:"); ok {
		in.known = id
		return nil
	}
	id, _, err := h.knownID(in.key)
	in.known = id
	return err
}

// withoutOlderValues drops from each input the values older than the ones
// already written to its record, noting them on its events. Inputs whose
// times cannot be read are retried.
func (s *sending) withoutOlderValues(object string, inputs []*input) []*input {
	kept := make([]*input, 0, len(inputs))
	for _, in := range inputs {
		dropped, err := s.h.state.dropOlder(object, in)
		if err != nil {
			for _, i := range in.events {
				s.finish(i, destinations.RetryLater("property_times", "reading the times of written properties: "+err.Error(), 0))
			}
			continue
		}
		if len(dropped) > 0 {
			sort.Strings(dropped)
			for _, i := range in.events {
				s.note(i, "kept %s as HubSpot has them: switchyard wrote them from newer events", strings.Join(dropped, ", "))
			}
			for range dropped {
				s.h.skip("older_than_written")
			}
		}
		kept = append(kept, in)
	}
	return kept
}

var (
	_ destinations.Destination    = (*HubSpot)(nil)
	_ destinations.Pauser         = (*HubSpot)(nil)
	_ destinations.Sharer         = (*HubSpot)(nil)
	_ destinations.Closer         = (*HubSpot)(nil)
	_ destinations.HealthReporter = (*HubSpot)(nil)
)
