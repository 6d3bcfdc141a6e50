package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"

	"github.com/google/uuid"
)

// errorBody is HubSpot's error body ([O-err], [S] Error and StandardError).
// CorrelationID is set on top-level errors; errors inside a 207 response
// carry Status, Category, Message, Errors and Context.
type errorBody struct {
	Status        string              `json:"status"`
	Message       string              `json:"message"`
	CorrelationID string              `json:"correlationId,omitempty"`
	Errors        []errorDetail       `json:"errors,omitempty"`
	Category      string              `json:"category"`
	SubCategory   string              `json:"subCategory,omitempty"`
	Context       map[string][]string `json:"context,omitempty"`
	Links         map[string]string   `json:"links,omitempty"`
}

type errorDetail struct {
	Message string              `json:"message"`
	Code    string              `json:"code,omitempty"`
	Context map[string][]string `json:"context,omitempty"`
}

// standardError is an error inside a batch answer (207): hubspot-api-client
// 12.0.0's StandardError requires status, category, message, errors,
// context and links, even when empty; subCategory is optional.
type standardError struct {
	Status      string              `json:"status"`
	Category    string              `json:"category"`
	SubCategory string              `json:"subCategory,omitempty"`
	Message     string              `json:"message"`
	Errors      []errorDetail       `json:"errors"`
	Context     map[string][]string `json:"context"`
	Links       map[string]string   `json:"links"`
}

// asStandardError is e as an error inside a batch answer.
func asStandardError(e *errorBody) standardError {
	out := standardError{Status: "error", Category: e.Category, SubCategory: e.SubCategory, Message: e.Message,
		Errors: e.Errors, Context: e.Context, Links: e.Links}
	if out.Errors == nil {
		out.Errors = []errorDetail{}
	}
	if out.Context == nil {
		out.Context = map[string][]string{}
	}
	if out.Links == nil {
		out.Links = map[string]string{}
	}
	return out
}

// statusOf maps an error category to the HTTP status the sandbox answers
// it with when it fails a whole request.
func statusOf(category string) int {
	switch category {
	case "CONFLICT":
		return http.StatusConflict
	case "OBJECT_NOT_FOUND":
		return http.StatusNotFound
	default:
		return http.StatusBadRequest
	}
}

func newError(category, message string) *errorBody {
	return &errorBody{Status: "error", Category: category, Message: message}
}

func writeError(w http.ResponseWriter, status int, category, message string, e *errorBody) {
	if e == nil {
		e = newError(category, message)
	}
	out := *e
	out.Status = "error"
	out.CorrelationID = uuid.NewString()
	writeJSON(w, status, out)
}

// missingScopes is the 403 body of a token that lacks scope: category
// MISSING_SCOPES, errors[0].context.requiredGranularScopes and links.scopes
// [O-objapis].
func missingScopes(scope string) *errorBody {
	e := newError("MISSING_SCOPES", "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.")
	e.Errors = []errorDetail{{Message: "One or more of the following scopes are required.", Context: map[string][]string{"requiredGranularScopes": {scope}}}}
	e.Links = map[string]string{"scopes": "https://developers.hubspot.com/scopes"}
	return e
}

// fail writes e as the whole request's error.
func fail(w http.ResponseWriter, e *errorBody) {
	writeError(w, statusOf(e.Category), e.Category, e.Message, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func marshal(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return string(bytes.TrimRight(buf.Bytes(), "\n"))
}

// propIssue is one invalid property value of one input.
type propIssue struct {
	name, code, message string
}

// propertyError builds the "Property values were not valid" error: a
// message embedding a JSON array of the invalid values, one errors[] entry
// per property with context.propertyName, category VALIDATION_ERROR
// ([O-objapis] PROPERTY_DOESNT_EXIST, [C-date] INVALID_DATE).
func propertyError(hubID int64, issues []propIssue) *errorBody {
	sort.Slice(issues, func(i, j int) bool { return issues[i].name < issues[j].name })
	type entry struct {
		IsValid               bool   `json:"isValid"`
		Message               string `json:"message"`
		Error                 string `json:"error"`
		Name                  string `json:"name"`
		LocalizedErrorMessage string `json:"localizedErrorMessage"`
		PortalID              int64  `json:"portalId"`
	}
	entries := make([]entry, len(issues))
	e := newError("VALIDATION_ERROR", "")
	for i, is := range issues {
		entries[i] = entry{Message: is.message, Error: is.code, Name: is.name, LocalizedErrorMessage: is.message, PortalID: hubID}
		e.Errors = append(e.Errors, errorDetail{
			Message: is.message,
			Code:    is.code,
			Context: map[string][]string{"propertyName": {is.name}},
		})
	}
	e.Message = "Property values were not valid: " + marshal(entries)
	return e
}

// rateLimitBody is the 429 body ([O24-usage] DAILY, [C-429] TEN_SECONDLY_ROLLING).
type rateLimitBody struct {
	Status        string `json:"status"`
	Message       string `json:"message"`
	ErrorType     string `json:"errorType"`
	CorrelationID string `json:"correlationId"`
	PolicyName    string `json:"policyName"`
	GroupName     string `json:"groupName,omitempty"`
	RequestID     string `json:"requestId"`
}

func (s *Server) writeRateLimited(w http.ResponseWriter, v verdict) {
	p := v.rejected
	body := rateLimitBody{
		Status:        "error",
		Message:       p.message,
		ErrorType:     "RATE_LIMIT",
		CorrelationID: uuid.NewString(),
		PolicyName:    p.policy,
		RequestID:     uuid.NewString(),
	}
	if p.policy == "TEN_SECONDLY_ROLLING" {
		body.GroupName = "publicapi:private-app-api-calls-ten-secondly:" + strconv.FormatInt(s.cfg.HubID, 10)
	}
	if s.cfg.SendRetryAfter {
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfterSeconds))
	}
	writeJSON(w, http.StatusTooManyRequests, body)
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND",
		"No endpoint "+r.Method+" "+r.URL.Path+" in the HubSpot sandbox.", nil)
}
