// Package api is switchyard's HubSpot HTTP client: it authenticates, paces
// every call through the token's ratelimit.Budget, learns from the
// rate-limit headers, and classifies each answer into a typed error. It
// never retries: the router does.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/hubspot/ratelimit"
)

// DefaultBaseURL is HubSpot's API host.
const DefaultBaseURL = "https://api.hubapi.com"

// Config configures a Client.
type Config struct {
	// BaseURL is the API root. Default https://api.hubapi.com.
	BaseURL string
	// Token is a private-app token or an OAuth access token, sent as a
	// Bearer token. Required. It is never logged.
	Token string
	// Timeout bounds one call. Default 30s.
	Timeout time.Duration
}

// Client calls HubSpot's API with one token. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	token  string
	http   *http.Client
	budget *ratelimit.Budget
	log    *zap.Logger
}

// New returns a client that spends budget. A nil httpClient means one with
// cfg.Timeout.
func New(cfg Config, budget *ratelimit.Budget, httpClient *http.Client, log *zap.Logger) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("url: %q is not an http or https URL", cfg.BaseURL)
	}
	if cfg.Token == "" {
		return nil, errors.New("token: is required")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("timeout: must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: cfg.Timeout}
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Client{base: base, token: cfg.Token, http: httpClient, budget: budget, log: log}, nil
}

// Budget returns the token's budget.
func (c *Client) Budget() *ratelimit.Budget { return c.budget }

// Kind says which limit a call spends.
type Kind int

const (
	// Standard calls spend the 10-second burst window and the daily budget.
	Standard Kind = iota
	// Search calls spend the search window; their answers carry no
	// rate-limit headers.
	Search
	// Events calls (custom behavioral events) spend their own window.
	Events
)

// Response is a successful answer (2xx, including 207 Multi-Status).
type Response struct {
	Status int
	Body   []byte
}

// Do sends one call: it waits for the budget, sends body (marshalled to
// JSON unless it is nil or already []byte), and returns the answer or a
// classified error: *RateLimitError, *TransientError, *RequestError, or
// *AuthError.
func (c *Client) Do(ctx context.Context, kind Kind, method, path string, body any) (*Response, error) {
	if until, reason := c.budget.PausedUntil(); !until.IsZero() {
		return nil, &TransientError{Reason: "paused: " + reason, RetryAfter: until.Sub(c.budget.Now()), Paused: true}
	}
	window := c.budget.Burst
	switch kind {
	case Search:
		window = c.budget.Search
	case Events:
		window = c.budget.Events
	}
	if err := window.Wait(ctx); err != nil {
		return nil, &TransientError{Reason: "waiting for the rate limit: " + err.Error()}
	}
	var payload []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		payload = b
	default:
		var err error
		if payload, err = json.Marshal(b); err != nil {
			return nil, fmt.Errorf("encoding the %s %s body: %w", method, path, err)
		}
	}
	u := c.base.JoinPath(path)
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u = c.base.JoinPath(path[:i])
		u.RawQuery = path[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("building the %s %s request: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The URL holds no secret, but the error may echo it; the token is
		// only in a header, which errors never show.
		return nil, &TransientError{Reason: fmt.Sprintf("calling %s %s: %v", method, path, unwrapURLError(err))}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, &TransientError{Reason: fmt.Sprintf("reading the %s %s answer: %v", method, path, err), Status: resp.StatusCode}
	}
	if kind != Search {
		c.budget.Observe(resp.Header)
	}
	if ce := c.log.Check(zap.DebugLevel, "hubspot call"); ce != nil {
		ce.Write(zap.String("method", method), zap.String("path", path), zap.Int("status", resp.StatusCode), zap.Int("bytes", len(raw)))
	}
	return c.classify(kind, method, path, resp, raw)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// classify turns an answer into a Response or a typed error.
func (c *Client) classify(kind Kind, method, path string, resp *http.Response, raw []byte) (*Response, error) {
	status := resp.StatusCode
	if status >= 200 && status < 300 {
		return &Response{Status: status, Body: raw}, nil
	}
	e := parseError(raw)
	what := fmt.Sprintf("HubSpot answered %s %s with %d", method, path, status)
	if e.Message != "" {
		what += ": " + e.Message
	}
	retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"))
	switch {
	case status == http.StatusTooManyRequests:
		policy := e.PolicyName
		if policy == "" && kind == Search {
			policy = "SECONDLY"
		}
		wait := c.budget.RateLimited(policy, retryAfter)
		return nil, &RateLimitError{Policy: policy, RetryAfter: wait, Reason: what, Body: Excerpt(raw)}
	case status == http.StatusLocked:
		// [O-err] the lock lasts 2 s: wait at least that long.
		return nil, &TransientError{Status: status, RetryAfter: max(retryAfter, 2*time.Second), Reason: what, Body: Excerpt(raw)}
	case status == 477:
		// [O-err] the account is migrating between data-hosting locations.
		return nil, &TransientError{Status: status, RetryAfter: retryAfter, Reason: what, Body: Excerpt(raw)}
	case status == http.StatusRequestTimeout || status >= 500 && status != http.StatusNotImplemented:
		return nil, &TransientError{Status: status, RetryAfter: retryAfter, Reason: what, Body: Excerpt(raw)}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return nil, &AuthError{Status: status, Reason: what, Body: Excerpt(raw), Scopes: e.RequiredScopes()}
	default:
		return nil, &RequestError{Status: status, Reason: what, Body: Excerpt(raw), Detail: e}
	}
}

// ErrorBody is HubSpot's error shape; every field is optional [O-err].
type ErrorBody struct {
	Status        string        `json:"status"`
	Message       string        `json:"message"`
	Category      string        `json:"category"`
	SubCategory   string        `json:"subCategory"`
	CorrelationID string        `json:"correlationId"`
	ErrorType     string        `json:"errorType"`
	PolicyName    string        `json:"policyName"`
	Errors        []ErrorDetail `json:"errors"`
	Context       ErrorContext  `json:"context"`
}

// ErrorDetail is one entry of an error's errors array.
type ErrorDetail struct {
	Message string       `json:"message"`
	Code    string       `json:"code"`
	Context ErrorContext `json:"context"`
}

// ErrorContext maps names to values, for example propertyName or
// objectWriteTraceId.
type ErrorContext map[string][]string

func parseError(raw []byte) ErrorBody {
	var e ErrorBody
	_ = json.Unmarshal(raw, &e) // any body, JSON or not, is allowed
	return e
}

// PropertiesMissing returns the names of properties HubSpot says do not
// exist (code PROPERTY_DOESNT_EXIST).
func (e ErrorBody) PropertiesMissing() []string {
	var names []string
	for _, d := range e.Errors {
		if d.Code == "PROPERTY_DOESNT_EXIST" {
			names = append(names, d.Context["propertyName"]...)
		}
	}
	return names
}

// RequiredScopes returns the scopes a MISSING_SCOPES error names
// (errors[].context.requiredGranularScopes [O-objapis]).
func (e ErrorBody) RequiredScopes() []string {
	var scopes []string
	for _, d := range e.Errors {
		scopes = append(scopes, d.Context["requiredGranularScopes"]...)
	}
	return append(scopes, e.Context["requiredGranularScopes"]...)
}

// Excerpt is the start of a response body as errors and dead letters carry
// it: at most 512 bytes of valid UTF-8, with "…" when cut.
func Excerpt(raw []byte) string {
	const limit = 512
	if len(raw) <= limit {
		return strings.ToValidUTF8(string(raw), "")
	}
	return strings.ToValidUTF8(string(raw[:limit]), "") + "…"
}

// parseRetryAfter reads seconds or an HTTP date; 0 when absent or invalid.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(min(s, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// RateLimitError is a 429: Policy is HubSpot's policyName
// (TEN_SECONDLY_ROLLING, DAILY, SECONDLY) and RetryAfter how long to wait.
type RateLimitError struct {
	Policy     string
	RetryAfter time.Duration
	Reason     string
	Body       string
}

func (e *RateLimitError) Error() string { return e.Reason }

// TransientError is a failure worth retrying: a network error, 408, 423,
// 477, a 5xx other than 501, or a paused budget.
type TransientError struct {
	Status     int
	RetryAfter time.Duration
	Reason     string
	Body       string
	// Paused is set when no call was made because the budget is paused.
	Paused bool
}

func (e *TransientError) Error() string { return e.Reason }

// AuthError is a 401 or 403: the token is wrong or lacks a scope. It is not
// the events' fault, so they are retried while someone fixes the token.
type AuthError struct {
	Status int
	Reason string
	Body   string
	// Scopes are the scopes a 403 names as required, if any.
	Scopes []string
}

func (e *AuthError) Error() string { return e.Reason }

// Problem says, for a person, what is wrong with the token: invalid or
// expired (401), or missing a scope (403, naming the scopes HubSpot named).
func (e *AuthError) Problem() string {
	if e.Status != http.StatusForbidden {
		return "HubSpot refuses the token (401): it is invalid or expired"
	}
	if len(e.Scopes) == 0 {
		return "HubSpot refuses the call (403): the token lacks a required scope"
	}
	return "HubSpot refuses the call (403): the token lacks the scope " + strings.Join(e.Scopes, ", ")
}

// RequestError is any other 4xx (and 501): the request itself is wrong.
// Detail holds HubSpot's error body.
type RequestError struct {
	Status int
	Reason string
	Body   string
	Detail ErrorBody
}

func (e *RequestError) Error() string { return e.Reason }
