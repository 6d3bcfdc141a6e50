package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
)

// testDLQ is an embedded log in a temporary directory with a dead-letter
// topic, and a replay that records what it was handed.
type testDLQ struct {
	log      *embedded.Log
	mu       sync.Mutex
	replayed []string // destination/partition/offset
}

func newTestDLQ(t testing.TB, partitions int) *testDLQ {
	t.Helper()
	l, err := embedded.Open(embedded.Config{Dir: t.TempDir(), Partitions: partitions}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &testDLQ{log: l}
}

// add publishes n dead letters of stage, class and reason, one at a time
// so that their log times increase, numbering their messageIds from first.
func (d *testDLQ) add(t testing.TB, n, first int, stage, class, reason string) {
	t.Helper()
	for i := range n {
		id := first + i
		v, _ := json.Marshal(queue.DeadLetter{Reason: fmt.Sprintf("%s #%d", reason, id), Stage: stage, Class: class, Attempts: 3, LastStatus: 400,
			LastResponse: `{"status":"error","message":"Property values were not valid"}`, FailedAt: time.Now(),
			Message: json.RawMessage(fmt.Sprintf(`{"type":"identify","messageId":"m%d","userId":"u%d","writeKey":"wk-secret"}`, id, id))})
		if err := d.log.Publish(context.Background(), queue.Message{Topic: "dlq", Key: []byte(fmt.Sprint("u", id)), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
}

// replay reads the topic as the real replay does and records what pick
// chose, reporting progress one at a time: the dead letters of class
// retry_window are refused again, for the reason they were refused, and
// the others delivered.
func (d *testDLQ) replay(ctx context.Context, destination string, pick func(queue.Message) bool, progress func(ReplayProgress)) error {
	rng, err := queue.ReadRange(ctx, d.log, "dlq", queue.Position{Kind: queue.First}, queue.Position{Kind: queue.Last})
	if err != nil {
		return err
	}
	defer rng.Close()
	var picked []queue.Message
	var dls []queue.DeadLetter
	for {
		m, err := rng.Fetch(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		var dl queue.DeadLetter
		if json.Unmarshal(m.Value, &dl) == nil && dl.Stage == destination && pick(m) {
			picked = append(picked, m)
			dls = append(dls, dl)
		}
	}
	p := ReplayProgress{Picked: int64(len(picked))}
	for i, m := range picked {
		time.Sleep(20 * time.Millisecond)
		d.mu.Lock()
		d.replayed = append(d.replayed, fmt.Sprintf("%s/%d/%d", destination, m.Partition, m.Offset))
		d.mu.Unlock()
		if dls[i].Class == "retry_window" {
			p.Refused++
			p.AddReason(dls[i].Reason)
		} else {
			p.Delivered++
		}
		progress(p)
	}
	return nil
}

func (d *testDLQ) replayedNow() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.replayed...)
}

func newDLQHandler(t testing.TB, token string, d *testDLQ) *Handler {
	t.Helper()
	h, err := New(Config{
		AdminToken:  token,
		Metrics:     newTestMetrics().reg,
		Context:     t.Context(),
		DeadLetters: DeadLetters{Log: d.log, Topic: "dlq", Replay: d.replay},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Handler)
}

var messageIDCell = regexp.MustCompile(`<td>(m\d+)</td>`)

// getPage returns a list page's body, the messageIds on it in order and the
// link to the next page.
func getPage(t *testing.T, base, path string, cookie *http.Cookie) (string, []string, string) {
	t.Helper()
	resp := do(t, noRedirect(), "GET", base+path, nil, map[string]string{"Cookie": cookie.Name + "=" + cookie.Value})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	var ids []string
	for _, m := range messageIDCell.FindAllStringSubmatch(string(body), -1) {
		ids = append(ids, m[1])
	}
	next := ""
	if m := regexp.MustCompile(`id="next-page" href="([^"]+)"|href="([^"]+)" id="next-page"`).FindStringSubmatch(string(body)); m != nil {
		next = strings.ReplaceAll(m[1]+m[2], "&amp;", "&")
	}
	return string(body), ids, next
}

func TestDeadLettersPageThroughTheWholeTopicNewestFirst(t *testing.T) {
	d := newTestDLQ(t, 4)
	const n = 1200 // past deadLetterChunk in each partition and past several pages
	d.add(t, n, 0, "hubspot", "http_4xx", "HubSpot refused the contact")
	srv := httptest.NewServer(newDLQHandler(t, testToken, d))
	defer srv.Close()
	cookie := login(t, srv.URL)

	var all []string
	path := "/ui/deadletters?limit=120"
	for pages := 0; path != ""; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		_, ids, next := getPage(t, srv.URL, path, cookie)
		if next != "" && len(ids) != 120 {
			t.Fatalf("page %d has %d dead letters, want 120", pages, len(ids))
		}
		all = append(all, ids...)
		path = next
	}
	if len(all) != n {
		t.Fatalf("paged through %d dead letters, want %d", len(all), n)
	}
	for i, id := range all {
		if want := fmt.Sprintf("m%d", n-1-i); id != want {
			t.Fatalf("dead letter %d is %s, want %s (newest first, none twice)", i, id, want)
		}
	}
}

func TestDeadLettersFilter(t *testing.T) {
	d := newTestDLQ(t, 3)
	d.add(t, 300, 0, "hubspot", "http_4xx", "HubSpot refused the contact")
	d.add(t, 5, 300, "hubspot", "retry_window", "still failing after the 1h retry window")
	d.add(t, 300, 305, "webhook", "http_4xx", "the receiver answered 400")
	d.add(t, 2, 605, "gateway", "", "invalid JSON")
	srv := httptest.NewServer(newDLQHandler(t, testToken, d))
	defer srv.Close()
	cookie := login(t, srv.URL)

	count := func(q url.Values) []string {
		var all []string
		path := "/ui/deadletters?" + q.Encode()
		for path != "" {
			var ids []string
			_, ids, path = getPage(t, srv.URL, path, cookie)
			all = append(all, ids...)
		}
		return all
	}
	if got := count(url.Values{"destination": {"hubspot"}, "class": {"retry_window"}}); strings.Join(got, " ") != "m304 m303 m302 m301 m300" {
		t.Errorf("hubspot retry_window: %v", got)
	}
	if got := count(url.Values{"destination": {"webhook"}}); len(got) != 300 || got[0] != "m604" || got[299] != "m305" {
		t.Errorf("webhook: %d dead letters, from %v", len(got), got[:min(2, len(got))])
	}
	if got := count(url.Values{"class": {"http_4xx"}}); len(got) != 600 {
		t.Errorf("http_4xx: %d dead letters, want 600", len(got))
	}
	if got := count(url.Values{"reason": {"INVALID json"}}); strings.Join(got, " ") != "m606 m605" {
		t.Errorf("reason containing invalid json: %v", got)
	}
	if got := count(url.Values{"reason": {"no such reason"}}); len(got) != 0 {
		t.Errorf("a reason nothing has: %v", got)
	}
	// The gateway's refusals have no destination: they cannot be selected.
	body, _, _ := getPage(t, srv.URL, "/ui/deadletters?destination=gateway", cookie)
	if strings.Contains(body, `name="pick"`) {
		t.Error("a gateway refusal can be selected for replay")
	}
	// A cursor of the wrong shape is refused with a reason.
	resp := do(t, noRedirect(), "GET", srv.URL+"/ui/deadletters?before=1,2", nil, map[string]string{"Cookie": cookie.Name + "=" + cookie.Value})
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 400 || !strings.Contains(string(b), "3 partitions") {
		t.Errorf("a two-partition cursor: %d %s", resp.StatusCode, b)
	}
}

func TestDeadLetterShowsItsEventReasonAndResponse(t *testing.T) {
	d := newTestDLQ(t, 2)
	d.add(t, 3, 0, "hubspot", "hubspot_validation_error", "HubSpot refused the contact: Property values were not valid")
	srv := httptest.NewServer(newDLQHandler(t, testToken, d))
	defer srv.Close()
	cookie := login(t, srv.URL)
	body, _, _ := getPage(t, srv.URL, "/ui/deadletters", cookie)
	link := regexp.MustCompile(`href="(/ui/deadletters/\d+/\d+)"`).FindStringSubmatch(body)
	if link == nil {
		t.Fatalf("no dead letter links on the list:\n%s", body)
	}
	resp := do(t, noRedirect(), "GET", srv.URL+link[1], nil, map[string]string{"Cookie": cookie.Name + "=" + cookie.Value})
	b, _ := io.ReadAll(resp.Body)
	page := string(b)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", link[1], resp.StatusCode, page)
	}
	for _, want := range []string{"Property values were not valid", "hubspot_validation_error", `data-field="attempts">3<`, `data-field="status">400<`, "&#34;messageId&#34;: &#34;m2&#34;", "Replay this dead letter"} {
		if !strings.Contains(page, want) {
			t.Errorf("the dead letter's page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "wk-secret") {
		t.Error("the dead letter's page shows the write key")
	}
	resp = do(t, noRedirect(), "GET", srv.URL+"/ui/deadletters/0/99999", nil, map[string]string{"Cookie": cookie.Name + "=" + cookie.Value})
	if resp.StatusCode != 404 {
		t.Errorf("a dead letter that is not there: %d", resp.StatusCode)
	}
}

func TestDeadLetterRoutesAndReplayRefuseWithoutAuth(t *testing.T) {
	d := newTestDLQ(t, 1)
	d.add(t, 1, 0, "hubspot", "http_4xx", "refused")
	srv := httptest.NewServer(newDLQHandler(t, testToken, d))
	defer srv.Close()
	c := noRedirect()
	pick := url.Values{"pick": {"hubspot/0/0"}}
	for _, tc := range []struct {
		method, path string
		body         url.Values
		hdr          map[string]string
		want         int
	}{
		{"GET", "/ui/deadletters", nil, nil, http.StatusSeeOther},
		{"GET", "/ui/deadletters/0/0", nil, nil, http.StatusSeeOther},
		{"GET", "/ui/deadletters/replays", nil, nil, 401},
		{"POST", "/ui/deadletters/replay", pick, nil, 401},
		{"POST", "/ui/deadletters/replay", pick, map[string]string{"Authorization": "Bearer wrong"}, 401},
		{"POST", "/ui/deadletters/replay", pick, map[string]string{"Cookie": sessionCookie + "=forged.value"}, 401},
	} {
		resp := do(t, c, tc.method, srv.URL+tc.path, tc.body, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %v: status %d, want %d", tc.method, tc.path, tc.hdr, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusSeeOther && resp.Header.Get("Location") != "/ui/login" {
			t.Errorf("%s %s sends to %q, want /ui/login", tc.method, tc.path, resp.Header.Get("Location"))
		}
	}
	// With a session, a replay without its CSRF token, or from another
	// site, is refused.
	cookie := login(t, srv.URL)
	withCookie := map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}
	if resp := do(t, c, "POST", srv.URL+"/ui/deadletters/replay", pick, withCookie); resp.StatusCode != 403 {
		t.Errorf("replay without the CSRF token: %d, want 403", resp.StatusCode)
	}
	csrf := csrfOf(t, srv.URL, cookie)
	crossSite := map[string]string{"Cookie": withCookie["Cookie"], "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
	body := url.Values{"pick": {"hubspot/0/0"}, "csrf": {csrf}}
	if resp := do(t, c, "POST", srv.URL+"/ui/deadletters/replay", body, crossSite); resp.StatusCode != 403 {
		t.Errorf("a cross-site replay: %d, want 403", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond)
	if got := d.replayedNow(); len(got) != 0 {
		t.Fatalf("refused replays replayed %v", got)
	}
	// Bad selections are refused with a reason.
	for _, bad := range []url.Values{{}, {"pick": {"hubspot/x/0"}}, {"pick": {"gateway/0/0"}}, {"all": {"1"}}, {"all": {"1"}, "destination": {"hubspot"}, "max": {"0"}}} {
		bad.Set("csrf", csrf)
		if resp := do(t, c, "POST", srv.URL+"/ui/deadletters/replay", bad, withCookie); resp.StatusCode != 400 {
			t.Errorf("replay of %v: %d, want 400", bad, resp.StatusCode)
		}
	}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, base string, cookie *http.Cookie) string {
	t.Helper()
	body, _, _ := getPage(t, base, "/ui/deadletters", cookie)
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the dead-letter page has no CSRF field")
	}
	return m[1]
}

func TestReplaySelectedAndAllMatching(t *testing.T) {
	d := newTestDLQ(t, 2)
	d.add(t, 10, 0, "hubspot", "http_4xx", "refused")
	d.add(t, 4, 10, "hubspot", "retry_window", "still failing")
	srv := httptest.NewServer(newDLQHandler(t, testToken, d))
	defer srv.Close()
	cookie := login(t, srv.URL)
	withCookie := map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}
	csrf := csrfOf(t, srv.URL, cookie)
	c := noRedirect()
	wait := func() string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			resp := do(t, c, "GET", srv.URL+"/ui/deadletters/replays", nil, withCookie)
			b, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(b), "hx-trigger") {
				return string(b)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the replay did not finish")
		return ""
	}

	resp := do(t, c, "POST", srv.URL+"/ui/deadletters/replay", url.Values{"csrf": {csrf}, "pick": {"hubspot/0/1", "hubspot/1/0"}}, withCookie)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("replay of two selected: %d", resp.StatusCode)
	}
	if got := wait(); !strings.Contains(got, "2 of 2 delivered<") || !strings.Contains(got, "done at") {
		t.Errorf("the replays fragment after two selected: %s", got)
	}
	if got := d.replayedNow(); strings.Join(got, " ") != "hubspot/0/1 hubspot/1/0" && strings.Join(got, " ") != "hubspot/1/0 hubspot/0/1" {
		t.Errorf("replayed %v, want the two selected", got)
	}

	resp = do(t, c, "POST", srv.URL+"/ui/deadletters/replay", url.Values{"csrf": {csrf}, "all": {"1"}, "destination": {"hubspot"}, "class": {"retry_window"}, "max": {"3"}}, withCookie)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/deadletters?class=retry_window&destination=hubspot" {
		t.Fatalf("replay of all matching: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := wait(); !regexp.MustCompile(`0 of 3 delivered, 3 refused again: <span data-field="refusals">still failing #1\d; still failing #1\d; still failing #1\d</span></span>`).MatchString(got) {
		t.Errorf("the replays fragment after all matching, at most 3: %s", got)
	}
	if got := d.replayedNow(); len(got) != 5 {
		t.Errorf("replayed %v, want 2 then 3", got)
	}
}
