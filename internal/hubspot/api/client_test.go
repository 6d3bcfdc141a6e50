package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/hubspot/ratelimit"
)

const token = "pat-na1-secret-token"

// answer is one scripted reply.
type answer struct {
	status int
	header map[string]string
	body   string
}

func newServer(t *testing.T, answers ...answer) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		a := answers[min(n, len(answers)-1)]
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func newClient(t *testing.T, url string) *Client {
	t.Helper()
	budget, err := ratelimit.NewBudget(ratelimit.Free, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{BaseURL: url, Token: token, Timeout: 2 * time.Second}, budget, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAnswersAreClassified(t *testing.T) {
	tests := []struct {
		name  string
		ans   answer
		check func(t *testing.T, resp *Response, err error)
	}{
		{"a 200 is a response", answer{status: 200, body: `{"results":[]}`}, func(t *testing.T, resp *Response, err error) {
			if err != nil || resp.Status != 200 || string(resp.Body) != `{"results":[]}` {
				t.Fatalf("%v %v", resp, err)
			}
		}},
		{"a 207 multi-status is a response for the caller to read per input [O-err]", answer{status: 207, body: `{"status":"COMPLETE","numErrors":1}`}, func(t *testing.T, resp *Response, err error) {
			if err != nil || resp.Status != 207 {
				t.Fatalf("%v %v", resp, err)
			}
		}},
		{"a ten-secondly 429 is a rate limit error that waits for the window [C-429]", answer{status: 429, body: `{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}`}, func(t *testing.T, _ *Response, err error) {
			var rl *RateLimitError
			if !errors.As(err, &rl) || rl.Policy != "TEN_SECONDLY_ROLLING" || rl.RetryAfter < 9*time.Second {
				t.Fatalf("%#v", err)
			}
		}},
		{"a 423 waits at least 2 s [O-err]", answer{status: 423}, func(t *testing.T, _ *Response, err error) {
			var te *TransientError
			if !errors.As(err, &te) || te.RetryAfter < 2*time.Second || te.Status != 423 {
				t.Fatalf("%#v", err)
			}
		}},
		{"a 502 is transient with its Retry-After", answer{status: 502, header: map[string]string{"Retry-After": "7"}}, func(t *testing.T, _ *Response, err error) {
			var te *TransientError
			if !errors.As(err, &te) || te.RetryAfter != 7*time.Second {
				t.Fatalf("%#v", err)
			}
		}},
		{"a 501 is not transient", answer{status: 501}, func(t *testing.T, _ *Response, err error) {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("%#v", err)
			}
		}},
		{"a 403 is an auth error", answer{status: 403, body: `{"status":"error","message":"missing scopes","category":"MISSING_SCOPES"}`}, func(t *testing.T, _ *Response, err error) {
			var ae *AuthError
			if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "missing scopes") {
				t.Fatalf("%#v", err)
			}
		}},
		{"a 403 names the missing scope [O-objapis]", answer{status: 403, body: `{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","errors":[{"message":"One or more of the following scopes are required.","context":{"requiredGranularScopes":["crm.objects.contacts.write"]}}],"category":"MISSING_SCOPES","links":{"scopes":"https://developers.hubspot.com/scopes"}}`}, func(t *testing.T, _ *Response, err error) {
			var ae *AuthError
			if !errors.As(err, &ae) || strings.Join(ae.Scopes, ",") != "crm.objects.contacts.write" || !strings.Contains(ae.Problem(), "lacks the scope crm.objects.contacts.write") {
				t.Fatalf("%#v", err)
			}
		}},
		{"a 401 says the token is invalid or expired", answer{status: 401, body: `{"status":"error","message":"Authentication credentials not found.","category":"INVALID_AUTHENTICATION"}`}, func(t *testing.T, _ *Response, err error) {
			var ae *AuthError
			if !errors.As(err, &ae) || !strings.Contains(ae.Problem(), "invalid or expired") {
				t.Fatalf("%#v", err)
			}
		}},
		{"a missing property names it [O-objapis]", answer{status: 400, body: `{"status":"error","message":"Property values were not valid","errors":[{"message":"Property \"plan\" does not exist","code":"PROPERTY_DOESNT_EXIST","context":{"propertyName":["plan"]}}],"category":"VALIDATION_ERROR"}`}, func(t *testing.T, _ *Response, err error) {
			var re *RequestError
			if !errors.As(err, &re) || re.Detail.Category != "VALIDATION_ERROR" || strings.Join(re.Detail.PropertiesMissing(), ",") != "plan" {
				t.Fatalf("%#v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newServer(t, tt.ans)
			resp, err := newClient(t, srv.URL).Do(context.Background(), Standard, "POST", "/crm/v3/objects/contacts/batch/upsert", map[string]any{"inputs": []any{}})
			if err != nil && strings.Contains(err.Error(), token) {
				t.Fatalf("the token leaked into an error: %v", err)
			}
			tt.check(t, resp, err)
		})
	}
}

func TestADaily429PausesTheTokenWithoutFurtherCalls(t *testing.T) {
	srv, calls := newServer(t, answer{status: 429, body: `{"status":"error","message":"You have reached your daily limit.","errorType":"RATE_LIMIT","policyName":"DAILY"}`})
	c := newClient(t, srv.URL)
	_, err := c.Do(context.Background(), Standard, "GET", "/crm/v3/objects/contacts", nil)
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.Policy != "DAILY" {
		t.Fatalf("%#v", err)
	}
	_, err = c.Do(context.Background(), Standard, "GET", "/crm/v3/objects/contacts", nil)
	var te *TransientError
	if !errors.As(err, &te) || !te.Paused || te.RetryAfter <= 0 {
		t.Fatalf("the second call: %#v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d calls reached HubSpot; a paused token must make none", calls.Load())
	}
}

func TestHeadersCorrectTheBudgetExceptOnSearch(t *testing.T) {
	srv, _ := newServer(t, answer{status: 200, body: `{}`, header: map[string]string{
		"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "180", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}})
	c := newClient(t, srv.URL)
	if _, err := c.Do(context.Background(), Search, "POST", "/crm/v3/objects/companies/search", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if c.Budget().Burst.Max() != 100 {
		t.Fatal("a search answer changed the burst budget; search answers carry no rate-limit headers [O24-usage]")
	}
	if _, err := c.Do(context.Background(), Standard, "GET", "/crm/v3/objects/companies", nil); err != nil {
		t.Fatal(err)
	}
	if c.Budget().Burst.Max() != 190 {
		t.Fatalf("burst max %d after the service said 190", c.Budget().Burst.Max())
	}
}

func TestNetworkErrorsAreTransient(t *testing.T) {
	srv, _ := newServer(t, answer{status: 200})
	c := newClient(t, srv.URL)
	srv.Close()
	_, err := c.Do(context.Background(), Standard, "GET", "/crm/v3/objects/contacts?limit=1", nil)
	var te *TransientError
	if !errors.As(err, &te) || strings.Contains(err.Error(), token) {
		t.Fatalf("%#v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	budget, _ := ratelimit.NewBudget(ratelimit.Free, nil, nil)
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "token: is required"},
		{Config{Token: "t", BaseURL: "ftp://x"}, "url:"},
		{Config{Token: "t", Timeout: -1}, "timeout:"},
	} {
		if _, err := New(tt.cfg, budget, nil, nil); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %s", tt.cfg, err, tt.want)
		}
	}
}
