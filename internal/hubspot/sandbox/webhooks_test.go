package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
	"github.com/switchyard/switchyard/internal/hubspot/signature"
)

// The tests in this file check the webhooks the sandbox sends as HubSpot;
// each names the section of shared/reference/hubspot-source.md and the
// source tag of the fact it checks.

const hookSecret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"

// hookNote is a notification as a receiver decodes it; numbers that
// HubSpot sends as JSON numbers are int64 here, so a string fails to
// decode.
type hookNote struct {
	EventID                 int64   `json:"eventId"`
	SubscriptionID          int64   `json:"subscriptionId"`
	PortalID                int64   `json:"portalId"`
	AppID                   int64   `json:"appId"`
	OccurredAt              int64   `json:"occurredAt"`
	SubscriptionType        string  `json:"subscriptionType"`
	AttemptNumber           int     `json:"attemptNumber"`
	ObjectID                int64   `json:"objectId"`
	ChangeSource            string  `json:"changeSource"`
	SourceID                string  `json:"sourceId"`
	PropertyName            string  `json:"propertyName"`
	PropertyValue           *string `json:"propertyValue"`
	PrimaryObjectID         int64   `json:"primaryObjectId"`
	MergedObjectIDs         []int64 `json:"mergedObjectIds"`
	NewObjectID             int64   `json:"newObjectId"`
	NumberOfPropertiesMoved *int    `json:"numberOfPropertiesMoved"`
	AssociationType         string  `json:"associationType"`
	FromObjectID            int64   `json:"fromObjectId"`
	ToObjectID              int64   `json:"toObjectId"`
	AssociationRemoved      *bool   `json:"associationRemoved"`
	IsPrimaryAssociation    *bool   `json:"isPrimaryAssociation"`

	raw string
}

// hookRequest is one request the receiver got.
type hookRequest struct {
	at     time.Time
	notes  []hookNote
	header http.Header
	// refused is why the signature did not verify, nil when it did.
	refused error
}

// hookReceiver is an app's webhook target: it verifies each request's
// signature with signature.Verify, records it, and answers 401 to a
// refused one, else what answer says for the request's number (from 0).
type hookReceiver struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(n int, r *http.Request) int

	mu          sync.Mutex
	requests    []hookRequest
	inFlight    int
	maxInFlight int
}

func newHookReceiver(t *testing.T, answer func(n int, r *http.Request) int) *hookReceiver {
	t.Helper()
	h := &hookReceiver{t: t, answer: answer}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) url() string { return h.srv.URL + "/hubspot/webhooks/crm-in" }

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.inFlight++
	h.maxInFlight = max(h.maxInFlight, h.inFlight)
	n := len(h.requests)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inFlight--
		h.mu.Unlock()
	}()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		h.t.Errorf("reading a webhook: %v", err)
		return
	}
	req := hookRequest{at: time.Now(), header: r.Header.Clone()}
	req.refused = signature.Verify(hookSecret, signature.Request{Method: r.Method, URI: h.srv.URL + r.URL.RequestURI(), Header: r.Header, Body: body}, time.Now())
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		h.t.Errorf("a webhook body is not a JSON array: %v: %s", err, body)
	}
	for _, raw := range raws {
		var note hookNote
		if err := json.Unmarshal(raw, &note); err != nil {
			h.t.Errorf("a notification does not decode: %v: %s", err, raw)
		}
		note.raw = string(raw)
		req.notes = append(req.notes, note)
	}
	h.mu.Lock()
	h.requests = append(h.requests, req)
	h.mu.Unlock()
	if req.refused != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	status := http.StatusNoContent
	if h.answer != nil {
		status = h.answer(n, r)
	}
	w.WriteHeader(status)
}

// got returns the requests received so far.
func (h *hookReceiver) got() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests)
}

// accepted returns the notifications of the requests whose signature
// verified, in the order received.
func (h *hookReceiver) accepted() []hookNote {
	var out []hookNote
	for _, r := range h.got() {
		if r.refused == nil {
			out = append(out, r.notes...)
		}
	}
	return out
}

// waitNotes waits until n notifications are accepted.
func (h *hookReceiver) waitNotes(t *testing.T, n int, within time.Duration) []hookNote {
	t.Helper()
	waitUntil(t, within, func() bool { return len(h.accepted()) >= n })
	return h.accepted()
}

func waitUntil(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startWebhooks runs SendWebhooks until the test ends.
func startWebhooks(t *testing.T, s *sandbox.Server, cfg sandbox.WebhookConfig) {
	t.Helper()
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = hookSecret
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.SendWebhooks(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("SendWebhooks: %v", err)
		}
	})
}

// journalEnd is the change journal's current end, for WebhookConfig.From.
func journalEnd(s *sandbox.Server) int {
	_, end := s.Changes(0)
	return end
}

func edit(t *testing.T, s *sandbox.Server, path, props string) sandboxResp {
	t.Helper()
	return callAs(t, s, "", "POST", "/_sandbox/edit/"+path, `{"properties":{`+props+`}}`)
}

// §1.3 [O24-wh]: a propertyChange notification carries the common fields
// (eventId, subscriptionId, portalId, appId, occurredAt in ms,
// subscriptionType, attemptNumber from 0, objectId as a number,
// changeSource) plus propertyName and propertyValue, the new value as a
// string; sourceId "userId:N" for a person's edit [C-prismatic]. §1.7
// [O24-val], [O-cl-v3sig]: each request carries v1 and v3 signatures, which
// verify with the client secret.
func TestWebhookUIEditArrivesSigned(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{})
	id := createContacts(t, s, 1)[0]
	h := newHookReceiver(t, nil)
	startWebhooks(t, s, sandbox.WebhookConfig{TargetURL: h.url(), From: journalEnd(s)})

	edited := time.Now()
	mustStatus(t, edit(t, s, "contacts/"+id, `"firstname":"Ada"`), 200)
	notes := h.waitNotes(t, 1, time.Second)
	if late := h.got()[0].at.Sub(edited); late > time.Second {
		t.Errorf("the edit arrived %s later, want within a second", late)
	}
	n := notes[0]
	wantID, _ := strconv.ParseInt(id, 10, 64)
	if n.SubscriptionType != "contact.propertyChange" || n.ObjectID != wantID || n.PropertyName != "firstname" ||
		n.PropertyValue == nil || *n.PropertyValue != "Ada" || n.ChangeSource != "CRM_UI" || n.SourceID != "userId:45678" ||
		n.PortalID != 12345678 || n.AppID != 1160452 || n.AttemptNumber != 0 || n.EventID == 0 || n.SubscriptionID == 0 ||
		n.OccurredAt != clock.Now().UnixMilli() {
		t.Errorf("notification %s", n.raw)
	}
	if !strings.Contains(n.raw, `"objectId":`+id+`,`) || !strings.Contains(n.raw, `"attemptNumber":0`) {
		t.Errorf("objectId or attemptNumber is not a JSON number: %s", n.raw)
	}
	if len(notes) != 1 {
		t.Errorf("%d notifications for one property edit, want 1", len(notes))
	}

	req := h.got()[0]
	for _, name := range []string{signature.HeaderSignature, signature.HeaderSignatureVersion, signature.HeaderSignatureV3, signature.HeaderTimestamp} {
		if req.header.Get(name) == "" {
			t.Errorf("no %s header", name)
		}
	}
	// Without v3, Verify checks v1: it must hold on its own too.
	v1Only := req.header.Clone()
	v1Only.Del(signature.HeaderSignatureV3)
	body, _ := json.Marshal(rawNotes(req.notes))
	if err := signature.Verify(hookSecret, signature.Request{Method: "POST", URI: h.url(), Header: v1Only, Body: body}, time.Now()); err != nil {
		t.Errorf("the v1 signature does not verify: %v", err)
	}

	// §1.2 [O24-wh]: a creation notifies contact.creation, and each property
	// it sets a propertyChange.
	mustStatus(t, edit(t, s, "contacts", `"email":"grace@example.com"`), 201)
	notes = h.waitNotes(t, 3, time.Second)
	if notes[1].SubscriptionType != "contact.creation" || notes[2].SubscriptionType != "contact.propertyChange" ||
		notes[2].PropertyName != "email" || *notes[2].PropertyValue != "grace@example.com" || notes[1].ObjectID != notes[2].ObjectID {
		t.Errorf("a UI creation sent %s, %s", notes[1].raw, notes[2].raw)
	}
	// The sender counts a request once it has read the answer, a moment
	// after the receiver has the notifications.
	waitUntil(t, 2*time.Second, func() bool { return s.WebhookStats().Delivered == 3 })
	if st := s.WebhookStats(); st.Requests != st.Succeeded || st.Failed != 0 || st.Delivered != 3 {
		t.Errorf("stats %+v", st)
	}
}

// rawNotes rebuilds a request body from its notifications.
func rawNotes(notes []hookNote) []json.RawMessage {
	out := make([]json.RawMessage, len(notes))
	for i, n := range notes {
		out[i] = json.RawMessage(n.raw)
	}
	return out
}

// §1.4 [O24-wh]: "Each request can contain up to 100 events", and HubSpot
// keeps at most 10 requests in flight ("a concurrency limit of 10"),
// maxConcurrentRequests being configurable.
func TestWebhookBatchesAndConcurrency(t *testing.T) {
	for _, limit := range []int{0, 3} {
		want := limit
		if want == 0 {
			want = 10
		}
		t.Run(fmt.Sprintf("max %d", want), func(t *testing.T) {
			s, _ := newSandbox(t, sandbox.Config{})
			id := createContacts(t, s, 1)[0]
			gate := make(chan struct{})
			h := newHookReceiver(t, func(int, *http.Request) int {
				<-gate
				return 200
			})
			startWebhooks(t, s, sandbox.WebhookConfig{TargetURL: h.url(), MaxConcurrentRequests: limit, From: journalEnd(s)})
			inFlight := func() int {
				h.mu.Lock()
				defer h.mu.Unlock()
				return h.inFlight
			}
			// One change at a time until every slot holds a request.
			for i := range want {
				mustStatus(t, edit(t, s, "contacts/"+id, fmt.Sprintf(`"firstname":"v%d"`, i)), 200)
				waitUntil(t, 2*time.Second, func() bool { return inFlight() == i+1 })
			}
			for i := want; i < 250; i++ {
				mustStatus(t, edit(t, s, "contacts/"+id, fmt.Sprintf(`"firstname":"v%d"`, i)), 200)
			}
			time.Sleep(100 * time.Millisecond)
			if n := inFlight(); n != want {
				t.Errorf("%d requests in flight with %d allowed", n, want)
			}
			close(gate)
			notes := h.waitNotes(t, 250, 5*time.Second)
			events := map[int64]bool{}
			for _, n := range notes {
				events[n.EventID] = true
			}
			if len(notes) != 250 || len(events) != 250 {
				t.Errorf("%d notifications, %d distinct, want 250", len(notes), len(events))
			}
			var sizes []int
			for _, r := range h.got() {
				sizes = append(sizes, len(r.notes))
			}
			sort.Ints(sizes)
			if big := sizes[len(sizes)-1]; big != 100 {
				t.Errorf("batch sizes %v, want 250 in batches of at most 100, full ones among them", sizes)
			}
			if h.maxInFlight != want {
				t.Errorf("at most %d requests in flight, want %d", h.maxInFlight, want)
			}
			// The sender counts a request once it has read the answer, a
			// moment after the receiver has the notifications.
			waitUntil(t, 2*time.Second, func() bool { return s.WebhookStats().Succeeded >= len(sizes) })
			if st := s.WebhookStats(); st.Delivered != 250 || st.Requests != len(sizes) || st.Succeeded != len(sizes) {
				t.Errorf("stats %+v after %d requests", st, len(sizes))
			}
		})
	}
}

// §1.5 [O24-wh], [O24-err]: a request answered with any 4xx or 5xx is
// retried, and attemptNumber counts the attempts from 0; HubSpot gives up
// after 10 retries (here the configured schedule's length).
func TestWebhookRetriesFailedRequests(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	id := createContacts(t, s, 1)[0]
	h := newHookReceiver(t, func(n int, _ *http.Request) int {
		if n < 2 {
			return 500
		}
		return 200
	})
	startWebhooks(t, s, sandbox.WebhookConfig{TargetURL: h.url(), RetryDelays: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}, From: journalEnd(s)})
	mustStatus(t, edit(t, s, "contacts/"+id, `"firstname":"Ada"`), 200)
	waitUntil(t, 2*time.Second, func() bool { return s.WebhookStats().Succeeded == 1 })
	reqs := h.got()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if len(r.notes) != 1 || r.refused != nil || r.notes[0].AttemptNumber != i || r.notes[0].EventID != reqs[0].notes[0].EventID ||
			r.notes[0].PropertyName != "firstname" {
			t.Errorf("request %d: %+v", i, r)
		}
	}
	if st := s.WebhookStats(); st.Requests != 3 || st.Failed != 2 || st.Delivered != 1 || st.Dropped != 0 || !strings.Contains(st.LastError, "500") {
		t.Errorf("stats %+v", st)
	}

	// A notification whose last retry fails is dropped.
	s2, _ := newSandbox(t, sandbox.Config{})
	id2 := createContacts(t, s2, 1)[0]
	always := newHookReceiver(t, func(int, *http.Request) int { return 400 })
	startWebhooks(t, s2, sandbox.WebhookConfig{TargetURL: always.url(), RetryDelays: []time.Duration{10 * time.Millisecond}, From: journalEnd(s2)})
	mustStatus(t, edit(t, s2, "contacts/"+id2, `"firstname":"Ada"`), 200)
	waitUntil(t, 2*time.Second, func() bool { return s2.WebhookStats().Dropped == 1 })
	time.Sleep(50 * time.Millisecond)
	if st := s2.WebhookStats(); st.Requests != 2 || st.Failed != 2 || st.Delivered != 0 {
		t.Errorf("a 400 twice with one retry: stats %+v", st)
	}
}

// §1.5 [O24-err]: a request fails when "your service takes longer than five
// seconds to send back a response", and is retried.
func TestWebhookSlowReceiverIsRetried(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	id := createContacts(t, s, 1)[0]
	h := newHookReceiver(t, func(n int, r *http.Request) int {
		if n == 0 {
			select {
			case <-time.After(5500 * time.Millisecond):
			case <-r.Context().Done():
			}
		}
		return 200
	})
	startWebhooks(t, s, sandbox.WebhookConfig{TargetURL: h.url(), RetryDelays: []time.Duration{10 * time.Millisecond}, From: journalEnd(s)})
	start := time.Now()
	mustStatus(t, edit(t, s, "contacts/"+id, `"firstname":"Ada"`), 200)
	waitUntil(t, 7*time.Second, func() bool { return s.WebhookStats().Succeeded == 1 })
	took := time.Since(start)
	reqs := h.got()
	if len(reqs) != 2 || reqs[1].notes[0].AttemptNumber != 1 {
		t.Fatalf("requests %+v, want a retry with attemptNumber 1", reqs)
	}
	if took < 5*time.Second || took > 6*time.Second {
		t.Errorf("the retry came %s after the change, want just after the 5 s timeout", took)
	}
	if st := s.WebhookStats(); st.Failed != 1 || st.Delivered != 1 {
		t.Errorf("stats %+v", st)
	}
}

// §1.5 [O24-err]: a connection failure is a failure, and retried.
func TestWebhookConnectionErrorIsRetried(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	id := createContacts(t, s, 1)[0]
	gone := httptest.NewServer(http.NotFoundHandler())
	target := gone.URL + "/hooks"
	gone.Close()
	startWebhooks(t, s, sandbox.WebhookConfig{TargetURL: target, RetryDelays: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}, From: journalEnd(s)})
	mustStatus(t, edit(t, s, "contacts/"+id, `"firstname":"Ada"`), 200)
	waitUntil(t, 2*time.Second, func() bool { return s.WebhookStats().Dropped == 1 })
	if st := s.WebhookStats(); st.Succeeded != 0 || st.Failed != 3 || !strings.Contains(st.LastError, "refused") {
		t.Errorf("stats %+v, want three failed attempts of one notification", st)
	}
}

// §1.3 [O24-wh], [O-cl-subtypes]: a merge notifies *.merge with
// primaryObjectId, mergedObjectIds, newObjectId and
// numberOfPropertiesMoved; §5 [C-amp]: plus a deletion of each id merged
// away, and no propertyChange. §1.3 [O24-wh]: a privacy deletion also
// notifies contact.deletion.
func TestWebhookMergeAndPrivacyDeletion(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	ids := createContacts(t, s, 3)
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/batch/update", `{"inputs":[{"id":"`+ids[1]+`","properties":{"jobtitle":"CTO"}}]}`), 200)
	h := newHookReceiver(t, nil)
	startWebhooks(t, s, sandbox.WebhookConfig{TargetURL: h.url(), From: journalEnd(s)})

	r := call(t, s, "POST", "/crm/v3/objects/contacts/merge", fmt.Sprintf(`{"primaryObjectId":%q,"objectIdToMerge":%q}`, ids[0], ids[1]))
	mustStatus(t, r, 200)
	merged := r.get("id").Int()
	notes := h.waitNotes(t, 3, time.Second)
	time.Sleep(100 * time.Millisecond)
	notes = h.accepted()
	var got []string
	for _, n := range notes {
		got = append(got, fmt.Sprintf("%s %d", n.SubscriptionType, n.ObjectID))
	}
	want := []string{fmt.Sprintf("contact.merge %d", merged), "contact.deletion " + ids[1], "contact.deletion " + ids[0]}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("a merge sent %v, want %v", got, want)
	}
	m := notes[0]
	if fmt.Sprint(m.PrimaryObjectID) != ids[0] || fmt.Sprint(m.MergedObjectIDs) != "["+ids[1]+"]" || m.NewObjectID != merged ||
		m.NumberOfPropertiesMoved == nil || *m.NumberOfPropertiesMoved != 1 || m.ChangeSource != "INTEGRATION" || m.SourceID != "1160452" {
		t.Errorf("merge notification %s", m.raw)
	}

	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/gdpr-delete", `{"objectId":"`+ids[2]+`"}`), 204)
	notes = h.waitNotes(t, 5, time.Second)
	if notes[3].SubscriptionType != "contact.privacyDeletion" || notes[4].SubscriptionType != "contact.deletion" ||
		fmt.Sprint(notes[3].ObjectID) != ids[2] || fmt.Sprint(notes[4].ObjectID) != ids[2] {
		t.Errorf("a privacy deletion sent %s, %s", notes[3].raw, notes[4].raw)
	}
}

// §1.3 [O24-wh]: associationChange "will fire two events for both sides of
// the association", with associationType (CONTACT_TO_COMPANY...),
// fromObjectId, toObjectId, associationRemoved and isPrimaryAssociation.
func TestWebhookAssociationOncePerSide(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	contact := createContacts(t, s, 1)[0]
	company := createCompanies(t, s, 1)[0]
	h := newHookReceiver(t, nil)
	startWebhooks(t, s, sandbox.WebhookConfig{TargetURL: h.url(), From: journalEnd(s)})
	mustStatus(t, call(t, s, "PUT", "/crm/v4/objects/contacts/"+contact+"/associations/default/companies/"+company, ""), 200)
	h.waitNotes(t, 2, time.Second)
	time.Sleep(100 * time.Millisecond)
	notes := h.accepted()
	if len(notes) != 2 {
		t.Fatalf("%d notifications for one association, want 2", len(notes))
	}
	c, co := notes[0], notes[1]
	if c.SubscriptionType != "contact.associationChange" || c.AssociationType != "CONTACT_TO_COMPANY" ||
		fmt.Sprint(c.FromObjectID) != contact || fmt.Sprint(c.ToObjectID) != company || fmt.Sprint(c.ObjectID) != contact ||
		c.AssociationRemoved == nil || *c.AssociationRemoved || c.IsPrimaryAssociation == nil {
		t.Errorf("contact side %s", c.raw)
	}
	if co.SubscriptionType != "company.associationChange" || co.AssociationType != "COMPANY_TO_CONTACT" ||
		fmt.Sprint(co.FromObjectID) != company || fmt.Sprint(co.ToObjectID) != contact {
		t.Errorf("company side %s", co.raw)
	}
}

// §1.2 [O24-wh]: propertyChange subscriptions are per property, and none
// exists for hs_lastmodifieddate or num_unique_conversion_events.
func TestWebhookSubscribedProperties(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	id := createContacts(t, s, 1)[0]
	h := newHookReceiver(t, nil)
	startWebhooks(t, s, sandbox.WebhookConfig{TargetURL: h.url(), Properties: map[string][]string{"contacts": {"lastname"}}, From: journalEnd(s)})
	mustStatus(t, edit(t, s, "contacts/"+id, `"firstname":"Ada","lastname":"Lovelace"`), 200)
	h.waitNotes(t, 1, time.Second)
	time.Sleep(100 * time.Millisecond)
	if notes := h.accepted(); len(notes) != 1 || notes[0].PropertyName != "lastname" {
		t.Errorf("subscribed to lastname only, got %v", notes)
	}

	for _, bad := range []sandbox.WebhookConfig{
		{TargetURL: "/relative", ClientSecret: "s"},
		{TargetURL: "ftp://example.com/x", ClientSecret: "s"},
		{TargetURL: "https://example.com/x"},
		{TargetURL: "https://example.com/x", ClientSecret: "s", BatchSize: 101},
		{TargetURL: "https://example.com/x", ClientSecret: "s", MaxConcurrentRequests: -1},
		{TargetURL: "https://example.com/x", ClientSecret: "s", RetryDelays: []time.Duration{-time.Second}},
		{TargetURL: "https://example.com/x", ClientSecret: "s", Properties: map[string][]string{"deals": {"hs_lastmodifieddate"}}},
		{TargetURL: "https://example.com/x", ClientSecret: "s", Properties: map[string][]string{"tickets": {"subject"}}},
	} {
		if err := s.SendWebhooks(context.Background(), bad); err == nil {
			t.Errorf("SendWebhooks(%+v) started", bad)
		}
	}
}

// §1.6 [O24-wh]: HubSpot "does not guarantee that you'll receive these
// notifications in the order they occurred"; the shuffle switch mixes them
// within and across requests.
func TestWebhookShuffle(t *testing.T) {
	order := func(shuffle bool) ([]int64, []hookRequest) {
		s, _ := newSandbox(t, sandbox.Config{})
		id := createContacts(t, s, 1)[0]
		from := journalEnd(s)
		for i := range 250 {
			mustStatus(t, edit(t, s, "contacts/"+id, fmt.Sprintf(`"firstname":"v%d"`, i)), 200)
		}
		s.SetWebhookSwitches(sandbox.WebhookSwitches{Shuffle: shuffle})
		h := newHookReceiver(t, nil)
		startWebhooks(t, s, sandbox.WebhookConfig{TargetURL: h.url(), MaxConcurrentRequests: 1, From: from})
		var ids []int64
		for _, n := range h.waitNotes(t, 250, 5*time.Second) {
			ids = append(ids, n.EventID)
		}
		return ids, h.got()
	}
	plain, plainReqs := order(false)
	if !slices.IsSorted(plain) || len(plainReqs) != 3 {
		t.Fatalf("without the switch: %d requests, sorted %v", len(plainReqs), slices.IsSorted(plain))
	}
	firstBatch := slices.Clone(plain[:100])
	shuffled, reqs := order(true)
	if slices.IsSorted(shuffled) {
		t.Error("shuffled notifications arrived in order")
	}
	across := 0
	for _, n := range reqs[0].notes {
		if !slices.Contains(firstBatch, n.EventID) {
			across++
		}
	}
	if across == 0 {
		t.Error("the first shuffled request holds the same notifications as without shuffling")
	}
	if slices.Sort(shuffled); !slices.Equal(shuffled, plain) {
		t.Error("shuffling lost or added notifications")
	}
}

// §1.6 [O24-wh]: "it is possible that HubSpot will send you the same
// notification multiple times"; the duplicate switch sends a share of them
// twice, identical. The delay switch holds a share back so later changes
// overtake them.
func TestWebhookDuplicateAndDelay(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	id := createContacts(t, s, 1)[0]
	h := newHookReceiver(t, nil)
	s.SetWebhookSwitches(sandbox.WebhookSwitches{DuplicateRatio: 0.5})
	startWebhooks(t, s, sandbox.WebhookConfig{TargetURL: h.url(), From: journalEnd(s)})
	for i := range 10 {
		mustStatus(t, edit(t, s, "contacts/"+id, fmt.Sprintf(`"firstname":"v%d"`, i)), 200)
	}
	h.waitNotes(t, 15, 2*time.Second)
	time.Sleep(100 * time.Millisecond)
	seen := map[int64][]string{}
	for _, n := range h.accepted() {
		seen[n.EventID] = append(seen[n.EventID], n.raw)
	}
	twice := 0
	for _, raws := range seen {
		if len(raws) == 2 && raws[0] == raws[1] {
			twice++
		}
	}
	if len(seen) != 10 || twice != 5 || len(h.accepted()) != 15 {
		t.Errorf("%d notifications of %d events, %d sent twice identical; want 15 of 10, 5 twice", len(h.accepted()), len(seen), twice)
	}

	s2, _ := newSandbox(t, sandbox.Config{})
	id2 := createContacts(t, s2, 1)[0]
	late := newHookReceiver(t, nil)
	s2.SetWebhookSwitches(sandbox.WebhookSwitches{DelayRatio: 0.5, Delay: 300 * time.Millisecond})
	startWebhooks(t, s2, sandbox.WebhookConfig{TargetURL: late.url(), From: journalEnd(s2)})
	mustStatus(t, edit(t, s2, "contacts/"+id2, `"firstname":"first"`), 200)
	mustStatus(t, edit(t, s2, "contacts/"+id2, `"firstname":"second"`), 200)
	late.waitNotes(t, 2, 2*time.Second)
	reqs := late.got()
	if len(reqs) != 2 || *reqs[0].notes[0].PropertyValue != "first" || *reqs[1].notes[0].PropertyValue != "second" ||
		reqs[1].at.Sub(reqs[0].at) < 250*time.Millisecond {
		t.Errorf("with every other notification delayed 300 ms: %+v", reqs)
	}
}

// §1.7 [O24-val]: a receiver must refuse a v3 timestamp older than 5
// minutes, and a signature made with another secret; the switches make the
// sandbox send both, through its /_sandbox/ controls too, and the refused
// requests count as failures and are retried (§1.5 [O24-err]: any 4xx).
func TestWebhookStaleAndWrongSignatures(t *testing.T) {
	for _, c := range []struct {
		switches string
		want     error
	}{
		{`{"staleTimestamp":true}`, signature.ErrStale},
		{`{"wrongSecret":true}`, signature.ErrMismatch},
	} {
		t.Run(c.switches, func(t *testing.T) {
			s, _ := newSandbox(t, sandbox.Config{})
			id := createContacts(t, s, 1)[0]
			h := newHookReceiver(t, nil)
			mustStatus(t, callAs(t, s, "", "POST", "/_sandbox/webhooks/switches", c.switches), 204)
			startWebhooks(t, s, sandbox.WebhookConfig{TargetURL: h.url(), RetryDelays: []time.Duration{10 * time.Millisecond}, From: journalEnd(s)})
			mustStatus(t, edit(t, s, "contacts/"+id, `"firstname":"Ada"`), 200)
			waitUntil(t, 2*time.Second, func() bool { return len(h.got()) == 2 })
			for _, r := range h.got() {
				if !errors.Is(r.refused, c.want) {
					t.Errorf("receiver's verdict %v, want %v", r.refused, c.want)
				}
			}
			r := callAs(t, s, "", "GET", "/_sandbox/webhooks", "")
			mustStatus(t, r, 200)
			waitUntil(t, time.Second, func() bool { return s.WebhookStats().Dropped == 1 })
			r = callAs(t, s, "", "GET", "/_sandbox/webhooks", "")
			if r.get("stats.requests").Int() != 2 || r.get("stats.failed").Int() != 2 || r.get("stats.dropped").Int() != 1 ||
				r.get("stats.delivered").Int() != 0 || !strings.Contains(r.get("stats.lastError").String(), "401") {
				t.Errorf("GET /_sandbox/webhooks: %s", r.body)
			}

			// {} turns the switches off: the next change verifies.
			mustStatus(t, callAs(t, s, "", "POST", "/_sandbox/webhooks/switches", `{}`), 204)
			mustStatus(t, edit(t, s, "contacts/"+id, `"firstname":"Grace"`), 200)
			if notes := h.waitNotes(t, 1, time.Second); *notes[0].PropertyValue != "Grace" {
				t.Errorf("after clearing the switches: %s", notes[0].raw)
			}
		})
	}
	s, _ := newSandbox(t, sandbox.Config{})
	mustStatus(t, callAs(t, s, "", "POST", "/_sandbox/webhooks/switches", `{"duplicateRatio":2}`), 400)
}
