package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard/switchyard/schemas"
)

// Tester runs a destination's dry run: the requests the destination would
// send for some Segment calls, computed without sending anything and without
// touching the destination's state.
type Tester interface {
	// Destinations names the destinations that have a dry run, in the
	// order the page offers them.
	Destinations() []string
	// DryRun runs calls, each the JSON object of one Segment call, through
	// the named destination's dry run.
	DryRun(ctx context.Context, destination string, calls []json.RawMessage) (TesterResult, error)
}

// TesterResult is what a dry run found.
type TesterResult struct {
	// Batches holds the requests, grouped as the destination's batcher
	// groups the calls.
	Batches []TesterBatch
	// Calls holds one entry per call given, in order.
	Calls []TesterCall
}

// TesterBatch is one batch of calls and the requests it made.
type TesterBatch struct {
	// First and Last are the indexes of the batch's first and last call.
	First, Last int
	Requests    []TesterRequest
}

// TesterRequest is one HTTP request the destination would send.
type TesterRequest struct {
	Method string
	// Path is the path and query.
	Path string
	// Body is the JSON body; nil when there is none.
	Body json.RawMessage
}

// TesterCall is what became of one call.
type TesterCall struct {
	// Result is the destination's outcome: delivered, retry or dead_letter.
	Result string
	// Class and Reason say why, when the outcome has a reason.
	Class, Reason string
	// Mapping lists what each trait or event property became.
	Mapping []TesterMapping
}

// TesterMapping is what one trait or event property of a call became.
type TesterMapping struct {
	// Object is what it was mapped for: contacts, companies or events.
	Object string
	// Key is the trait or property as written (nested paths joined with '.').
	Key string
	// Property is the property it became; "" when it cannot be one.
	Property string
	// Value is the value sent; "" when skipped.
	Value string
	// Skipped says why it was not sent; "" when it was.
	Skipped string
	// Created is set when the dry run created the property for it.
	Created bool
}

const (
	// testerMaxInput caps the pasted calls: Segment's batch limit.
	testerMaxInput = 500 << 10
	// testerMaxCalls caps the calls of one dry run.
	testerMaxCalls = 500
	// testerTimeout bounds one dry run.
	testerTimeout = 30 * time.Second
)

// testerValidator checks the calls as the gateway does.
var testerValidator = sync.OnceValues(schemas.NewValidator)

// testerView is the tester page's and result fragment's data.
type testerView struct {
	CSRF         string
	NoToken      bool
	Destinations []string
	Destination  string
	Input        string
	Result       *testerOutcome
}

// testerOutcome is what the result fragment shows.
type testerOutcome struct {
	// Error is why nothing ran: bad input or a failed dry run.
	Error   string
	Batches []testerBatchView
	Calls   []testerCallView
}

type testerBatchView struct {
	N           int // 1-based
	First, Last int // 1-based
	Requests    []testerRequestView
}

type testerRequestView struct {
	Method, Path, Body string
}

type testerCallView struct {
	N       int // 1-based
	Type    string
	Invalid string // why the gateway would refuse it; "" when valid
	TesterCall
}

func (h *Handler) testerDestinations() []string {
	if h.cfg.Tester == nil {
		return nil
	}
	return h.cfg.Tester.Destinations()
}

func (h *Handler) serveTester(w http.ResponseWriter, r *http.Request, s session) {
	v := testerView{NoToken: h.cfg.AdminToken == "", Destinations: h.testerDestinations()}
	if len(v.Destinations) > 0 {
		v.Destination = v.Destinations[0]
	}
	if s.expires.After(time.Time{}) {
		v.CSRF = h.auth.csrfToken(s)
	}
	h.writePage(w, r, http.StatusOK, "tester", v)
}

// serveTesterRun runs the dry run of the posted calls and answers the
// result fragment (422 for input it cannot run); a form posted without
// htmx gets the whole page with the result.
func (h *Handler) serveTesterRun(w http.ResponseWriter, r *http.Request) {
	status, out := h.testerRun(r)
	if r.Header.Get("HX-Request") == "" {
		v := testerView{NoToken: h.cfg.AdminToken == "", Destinations: h.testerDestinations(),
			Destination: r.PostFormValue("destination"), Input: r.PostFormValue("calls"), Result: out}
		if c, err := h.auth.authenticate(r); err == nil && c.session != nil {
			v.CSRF = h.auth.csrfToken(*c.session)
		}
		h.writePage(w, r, status, "tester", v)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	body, err := h.render("tester-result", out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	w.Write([]byte(body))
}

func (h *Handler) testerRun(r *http.Request) (int, *testerOutcome) {
	if err := r.ParseForm(); err != nil {
		return http.StatusBadRequest, &testerOutcome{Error: "The form could not be read: " + err.Error()}
	}
	dests := h.testerDestinations()
	if len(dests) == 0 {
		return http.StatusNotFound, &testerOutcome{Error: "No destination has a dry run: configure a hubspot destination."}
	}
	dest := r.PostFormValue("destination")
	if dest == "" && len(dests) == 1 {
		dest = dests[0]
	}
	if !slices.Contains(dests, dest) {
		return http.StatusUnprocessableEntity, &testerOutcome{Error: fmt.Sprintf("%q is not a destination with a dry run; choose one of %s.", dest, strings.Join(dests, ", "))}
	}
	text := r.PostFormValue("calls")
	if len(text) > testerMaxInput {
		return http.StatusRequestEntityTooLarge, &testerOutcome{Error: fmt.Sprintf("The calls are too large: the tester takes at most %d KB.", testerMaxInput>>10)}
	}
	calls, err := parseCalls(text)
	if err != nil {
		return http.StatusUnprocessableEntity, &testerOutcome{Error: err.Error()}
	}
	validator, err := testerValidator()
	if err != nil {
		return http.StatusInternalServerError, &testerOutcome{Error: "The call schemas did not load: " + err.Error()}
	}
	out := &testerOutcome{}
	var valid []json.RawMessage
	var validN []int // index in out.Calls of each valid call
	for i, c := range calls {
		cv := testerCallView{N: i + 1, Type: typeOf(c)}
		if err := validator.Validate(c); err != nil {
			cv.Invalid = err.Error()
		} else {
			valid = append(valid, c)
			validN = append(validN, i)
		}
		out.Calls = append(out.Calls, cv)
	}
	if len(valid) == 0 {
		return http.StatusUnprocessableEntity, out
	}
	ctx, cancel := context.WithTimeout(r.Context(), testerTimeout)
	defer cancel()
	res, err := h.cfg.Tester.DryRun(ctx, dest, valid)
	if err != nil {
		return http.StatusInternalServerError, &testerOutcome{Error: "The dry run failed: " + err.Error(), Calls: out.Calls}
	}
	if len(res.Calls) != len(valid) {
		return http.StatusInternalServerError, &testerOutcome{Error: fmt.Sprintf("The dry run answered for %d calls, not %d.", len(res.Calls), len(valid))}
	}
	for j, c := range res.Calls {
		out.Calls[validN[j]].TesterCall = c
	}
	for _, b := range res.Batches {
		bv := testerBatchView{N: len(out.Batches) + 1, First: validN[b.First] + 1, Last: validN[b.Last] + 1}
		for _, rq := range b.Requests {
			bv.Requests = append(bv.Requests, testerRequestView{Method: rq.Method, Path: rq.Path, Body: indentJSON(rq.Body)})
		}
		out.Batches = append(out.Batches, bv)
	}
	return http.StatusOK, out
}

// parseCalls reads the pasted calls: one call, an array of calls, or a
// batch body ({"batch": [...]}).
func parseCalls(text string) ([]json.RawMessage, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errors.New("Paste one or more Segment calls: a call, an array of calls or a batch body ({\"batch\": [...]}).")
	}
	dec := json.NewDecoder(strings.NewReader(text))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("The input is not valid JSON: %s.", jsonErrorAt(text, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("The input is not valid JSON: %s.", positionIn(text, int(dec.InputOffset()), "there is more after the first value; paste several calls as an array"))
	}
	var items []json.RawMessage
	switch v[0] {
	case '[':
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, fmt.Errorf("The input is not valid JSON: %v.", err)
		}
	case '{':
		var body struct {
			Batch json.RawMessage `json:"batch"`
		}
		if err := json.Unmarshal(v, &body); err != nil {
			return nil, fmt.Errorf("The input is not valid JSON: %v.", err)
		}
		if len(body.Batch) == 0 || string(body.Batch) == "null" {
			items = []json.RawMessage{v}
			break
		}
		if err := json.Unmarshal(body.Batch, &items); err != nil {
			return nil, errors.New("The batch body's \"batch\" is not an array of calls.")
		}
	default:
		return nil, errors.New("The input is neither a call (a JSON object), an array of calls nor a batch body.")
	}
	if len(items) == 0 {
		return nil, errors.New("The input holds no call.")
	}
	if len(items) > testerMaxCalls {
		return nil, fmt.Errorf("The input holds %d calls; the tester runs at most %d at once.", len(items), testerMaxCalls)
	}
	for i, it := range items {
		if len(it) == 0 || it[0] != '{' {
			return nil, fmt.Errorf("Call %d is not a JSON object.", i+1)
		}
	}
	return items, nil
}

// jsonErrorAt describes a decoding error with its line and column.
func jsonErrorAt(text string, err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		// Offset counts the byte in error.
		return positionIn(text, int(syn.Offset)-1, syn.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "it ends before the value does"
	}
	return err.Error()
}

// positionIn prefixes msg with the line and column of offset in text.
func positionIn(text string, offset int, msg string) string {
	offset = min(offset, len(text))
	before := text[:offset]
	line := strings.Count(before, "\n") + 1
	col := offset - strings.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d: %s", line, col, msg)
}

// typeOf returns a call's type, or "" when it has none.
func typeOf(call json.RawMessage) string {
	var c struct {
		Type any `json:"type"`
	}
	json.Unmarshal(call, &c)
	s, _ := c.Type.(string)
	return s
}

// indentJSON indents a request body for the page; "" for none.
func indentJSON(body json.RawMessage) string {
	if len(body) == 0 {
		return ""
	}
	var b bytes.Buffer
	if err := json.Indent(&b, body, "", "  "); err != nil {
		return string(body)
	}
	return b.String()
}
