// Package webhooktest is a scripted webhook receiver for tests: it records
// every event it receives and answers each with a status from a script.
//
//	srv := webhooktest.NewServer(t)
//	srv.Script("m1", 500, 500) // the first two deliveries of m1 fail
//	// ... deliver to srv.URL ...
//	err := srv.WaitFor(ctx, func(s *webhooktest.Server) bool { return s.Delivered("m1") == 1 })
package webhooktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// Delivery is one event as the server received it.
type Delivery struct {
	// Seq is the event's arrival order among all events received, from 0.
	// The events of one batched request arrive in their array order.
	Seq int
	// Request is the arrival order of the HTTP request that carried the
	// event, from 0; the events of one batched request share it.
	Request int
	// Batched is whether the event came inside a JSON array.
	Batched bool
	// MessageID is the event's messageId.
	MessageID string
	// Attempt is the request's X-Switchyard-Attempt header, or 0.
	Attempt int
	// Body is the event's raw JSON.
	Body []byte
	// Header is the request's header.
	Header http.Header
	// Status is what the server answered the request.
	Status int
}

// Server is an httptest server that receives webhook requests. Its methods
// are safe for concurrent use.
type Server struct {
	*httptest.Server

	mu        sync.Mutex
	scripts   map[string][]int
	failing   int // 0 unless Fail was called
	latency   time.Duration
	received  []Delivery
	requests  int
	delivered map[string]int
	changed   chan struct{} // closed and replaced on every request
}

// NewServer starts a server that is closed when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		scripts:   make(map[string][]int),
		delivered: make(map[string]int),
		changed:   make(chan struct{}),
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Script sets the answers to the next deliveries of messageID, one status
// per delivery, after any not yet used; once they are used up, deliveries
// get 200. For example Script("m1", 500, 500, 200).
func (s *Server) Script(messageID string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[messageID] = append(s.scripts[messageID], statuses...)
}

// Fail makes every request get status, until Recover. Scripts are not used
// meanwhile.
func (s *Server) Fail(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = status
}

// Recover ends Fail: requests get their scripted answers again.
func (s *Server) Recover() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = 0
}

// SetLatency makes every later request wait d before it is answered, as a
// slow receiver does.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Received returns a copy of every event received so far, in arrival order.
func (s *Server) Received() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.received))
	copy(out, s.received)
	return out
}

// Delivered counts the deliveries of messageID that got a 2xx answer.
func (s *Server) Delivered(messageID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered[messageID]
}

// Distinct counts the messageIds that got at least one 2xx delivery.
func (s *Server) Distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.delivered)
}

// WaitFor returns nil once cond holds, checking it now and after every
// request the server records, or ctx's error wrapped if ctx ends first.
// cond may call the server's methods.
func (s *Server) WaitFor(ctx context.Context, cond func(*Server) bool) error {
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if cond(s) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the webhook server: %w", ctx.Err())
		}
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, `{"error":"only POST is accepted"}`, http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, `{"error":"reading the body failed"}`, http.StatusBadRequest)
		return
	}
	events, batched, err := splitEvents(body)
	if err != nil {
		http.Error(w, strconv.Quote(err.Error()), http.StatusBadRequest)
		return
	}
	attempt, _ := strconv.Atoi(r.Header.Get("X-Switchyard-Attempt"))
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	time.Sleep(latency)

	status := s.record(r.Header, events, batched, attempt)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status < 200 || status > 299 {
		fmt.Fprintf(w, `{"error":"scripted %d"}`, status)
	}
}

// record answers a request from the scripts, records its events and wakes
// WaitFor. A request gets the first failure among its events' answers, or
// 200 when none fails.
func (s *Server) record(header http.Header, events []json.RawMessage, batched bool, attempt int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	status := http.StatusOK
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = gjson.GetBytes(e, "messageId").String()
		answer := http.StatusOK
		if s.failing == 0 {
			if script := s.scripts[ids[i]]; len(script) > 0 {
				answer, s.scripts[ids[i]] = script[0], script[1:]
			}
		}
		if !is2xx(answer) && is2xx(status) {
			status = answer
		}
	}
	if s.failing != 0 {
		status = s.failing
	}
	for i, e := range events {
		s.received = append(s.received, Delivery{
			Seq:       len(s.received),
			Request:   s.requests,
			Batched:   batched,
			MessageID: ids[i],
			Attempt:   attempt,
			Body:      bytes.Clone(e),
			Header:    header.Clone(),
			Status:    status,
		})
		if is2xx(status) {
			s.delivered[ids[i]]++
		}
	}
	s.requests++
	close(s.changed)
	s.changed = make(chan struct{})
	return status
}

// splitEvents reads a body of one event object or an array of them.
func splitEvents(body []byte) (events []json.RawMessage, batched bool, err error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(body, &events); err != nil {
			return nil, true, fmt.Errorf("reading the event array: %w", err)
		}
		for i, e := range events {
			if !gjson.ParseBytes(e).IsObject() {
				return nil, true, fmt.Errorf("event %d of the array is not a JSON object", i)
			}
		}
		return events, true, nil
	}
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, false, fmt.Errorf("the body is not a JSON object or array")
	}
	return []json.RawMessage{body}, false, nil
}

func is2xx(status int) bool { return status >= 200 && status <= 299 }
