package hubspot

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
	"github.com/switchyard/switchyard/schemas"
)

func TestStateKeepsWhatItIsGivenAcrossOpens(t *testing.T) {
	dir := t.TempDir()
	st, err := openState(dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	in := &input{key: "e:ann@example.com", keyProperty: "email",
		props:  map[string]string{"email": "ann@example.com", "jobtitle": "CTO", "city": "Oslo"},
		newest: map[string]time.Time{"email": at, "jobtitle": at, "city": at.Add(-time.Hour)}}
	if err := st.recordTimes("contacts", []*input{in}); err != nil {
		t.Fatal(err)
	}
	st.setIDs(map[string]string{"u:ann": "101", "d:acme.example": "7"})
	st.addPending("u:bob", "7")
	st.addPending("u:bob", "8")
	st.addPending("u:bo", "9") // a user whose id is a prefix of another's
	if _, err := openState(dir, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "held by another process") {
		t.Fatalf("a second open of a held state: %v", err)
	}
	st.close()

	st, err = openState(dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	older := &input{key: "e:ann@example.com", keyProperty: "email",
		props:  map[string]string{"email": "ann@example.com", "jobtitle": "Intern", "city": "Bergen", "phone": "1"},
		newest: map[string]time.Time{"email": at.Add(-time.Minute), "jobtitle": at.Add(-time.Minute), "city": at.Add(-time.Minute), "phone": at.Add(-time.Minute)}}
	dropped, err := st.dropOlder("contacts", older)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dropped, []string{"jobtitle"}) || older.props["email"] == "" || older.props["city"] != "Bergen" || older.props["phone"] != "1" {
		t.Fatalf("dropped %v, left %v: want only jobtitle dropped (city's written value is older still, email names the record)", dropped, older.props)
	}
	if dropped, _ := st.dropOlder("companies", &input{key: "e:ann@example.com", props: map[string]string{"jobtitle": "x"},
		newest: map[string]time.Time{"jobtitle": at.Add(-time.Minute)}}); dropped != nil {
		t.Fatalf("times of a contact applied to a company: %v", dropped)
	}
	if id, ok, _ := st.id("u:ann"); !ok || id != "101" {
		t.Fatalf("id of u:ann: %q %v", id, ok)
	}
	if _, ok, _ := st.id("u:nobody"); ok {
		t.Fatal("an id for a key never stored")
	}
	got, err := st.pending("u:bob")
	if err != nil || !slices.Equal(got, []string{"7", "8"}) {
		t.Fatalf("pending for bob: %v %v", got, err)
	}
	if got, _ := st.pending("u:bo"); !slices.Equal(got, []string{"9"}) {
		t.Fatalf("pending for bo: %v", got)
	}
	if err := st.removePending([][2]string{{"u:bob", "7"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.pending("u:bob"); !slices.Equal(got, []string{"8"}) {
		t.Fatalf("pending for bob after 7 was made: %v", got)
	}
}

func TestDamagedTimesAreAnErrorNotAGuess(t *testing.T) {
	st, err := openState("", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	st.db.Set(timesKey("contacts", "u:x"), []byte{5, 'a', 'b'}, nil)
	_, err = st.dropOlder("contacts", &input{key: "u:x", props: map[string]string{"a": "1"}, newest: map[string]time.Time{"a": time.Now()}})
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("err = %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A waiting association is forgotten only once made: a crash during the
// call must not lose it. It is made once, however many events its user
// has in the batch.
func TestAWaitingAssociationIsKeptUntilMade(t *testing.T) {
	srv := httptest.NewServer(sandbox.New(sandbox.Config{Tier: "professional", HubID: 1}))
	defer srv.Close()
	var h *HubSpot
	var storedDuringCall []string
	var associateBody []byte
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/batch/associate/default") {
			storedDuringCall, _ = h.state.pending("u:late")
			associateBody, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(associateBody))
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	h, err := NewWithOwnClient("crm", Config{Token: "t", BaseURL: srv.URL, HubID: 1, Tier: "professional", StateDir: t.TempDir()}, zap.NewNop(), client)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	event := func(raw string) destinations.Event {
		return destinations.Event{Event: schemas.NewEvent([]byte(raw)), Attempt: 1}
	}
	h.Send(context.Background(), []destinations.Event{event(`{"type":"group","userId":"late","groupId":"g","traits":{"website":"acme.example"}}`)})
	out := h.Send(context.Background(), []destinations.Event{
		event(`{"type":"identify","userId":"late","traits":{"email":"late@acme.example"}}`),
		event(`{"type":"identify","userId":"late","traits":{"email":"late@acme.example","firstName":"L"}}`)})
	if out[0].Result != destinations.Delivered || out[1].Result != destinations.Delivered {
		t.Fatalf("%+v", out)
	}
	if n := len(gjson.GetBytes(associateBody, "inputs").Array()); n != 1 {
		t.Fatalf("the association call has %d inputs, want 1: %s", n, associateBody)
	}
	if len(storedDuringCall) != 1 {
		t.Fatalf("stored during the association call: %v, want the company: a crash then would lose it", storedDuringCall)
	}
	if left, _ := h.state.pending("u:late"); len(left) != 0 {
		t.Fatalf("still waiting after it was made: %v", left)
	}
}

// Batches lock overlapping sets of records given in any order: each record
// has one holder at a time, and no two batches wait for each other forever.
func TestRecordLocksExcludeAndNeverDeadlock(t *testing.T) {
	var l recordLocks
	keys := []string{"companies\x00d:a", "companies\x00d:b", "contacts\x00e:c", "contacts\x00e:d", "contacts\x00u:e"}
	var mu sync.Mutex
	holders := map[string]int{}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for range 200 {
				set := slices.Clone(keys)
				rnd.Shuffle(len(set), func(i, j int) { set[i], set[j] = set[j], set[i] })
				set = set[:1+rnd.IntN(len(set))]
				set = append(set, set[0]) // a record twice in one batch
				unlock, err := l.lock(context.Background(), set)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, k := range set[:len(set)-1] {
					if holders[k]++; holders[k] > 1 {
						t.Errorf("%q has %d holders", k, holders[k])
					}
				}
				mu.Unlock()
				time.Sleep(time.Duration(rnd.IntN(50)) * time.Microsecond)
				mu.Lock()
				for _, k := range set[:len(set)-1] {
					holders[k]--
				}
				mu.Unlock()
				unlock()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("the batches still wait for each other after 30 s")
	}
	if len(l.locks) != 0 {
		t.Errorf("%d locks left after every batch released them", len(l.locks))
	}

	t.Run("a batch whose context ends while waiting releases what it took", func(t *testing.T) {
		unlockB, err := l.lock(context.Background(), []string{"b"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := l.lock(ctx, []string{"a", "b"}); err == nil {
			t.Fatal("took b while another batch held it")
		}
		unlockA, err := l.lock(context.Background(), []string{"a"})
		if err != nil {
			t.Fatal(err)
		}
		unlockA()
		unlockB()
		if len(l.locks) != 0 {
			t.Errorf("%d locks left", len(l.locks))
		}
	})
}
