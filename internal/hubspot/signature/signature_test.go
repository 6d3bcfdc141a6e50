package signature_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/hubspot/signature"
)

// docSecret and docBody are the inputs of the worked examples in HubSpot's
// "v1 request validation" and "v2 request validation" pages
// (https://developers.hubspot.com/docs/faq/v1-request-validation,
// https://developers.hubspot.com/docs/faq/v2-request-validation).
const (
	docSecret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
	docBody   = `[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]`
	docURI    = "https://www.example.com/webhook_uri"
)

// TestSignV1DocumentedVector checks the v1 example of HubSpot's page.
func TestSignV1DocumentedVector(t *testing.T) {
	const want = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
	if got := signature.SignV1(docSecret, []byte(docBody)); got != want {
		t.Fatalf("SignV1 = %s, want %s", got, want)
	}
	r := signature.Request{Method: "POST", URI: docURI, Body: []byte(docBody), Header: http.Header{}}
	r.Header.Set(signature.HeaderSignature, want)
	r.Header.Set(signature.HeaderSignatureVersion, "v1")
	if err := signature.Verify(docSecret, r, time.Now()); err != nil {
		t.Fatalf("Verify of the documented v1 request: %v", err)
	}
}

// TestSignV2DocumentedVectors checks the GET and POST examples of HubSpot's
// v2 page.
func TestSignV2DocumentedVectors(t *testing.T) {
	cases := []struct{ method, body, want string }{
		{"GET", "", "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"},
		{"POST", `{"example_field":"example_value"}`, "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"},
	}
	for _, c := range cases {
		if got := signature.SignV2(docSecret, c.method, docURI, []byte(c.body)); got != c.want {
			t.Errorf("SignV2(%s) = %s, want %s", c.method, got, c.want)
		}
		r := signature.Request{Method: c.method, URI: docURI, Body: []byte(c.body), Header: http.Header{}}
		r.Header.Set(signature.HeaderSignature, c.want)
		r.Header.Set(signature.HeaderSignatureVersion, "v2")
		if err := signature.Verify(docSecret, r, time.Now()); err != nil {
			t.Errorf("Verify of the documented v2 %s request: %v", c.method, err)
		}
	}
}

// v3Vectors were computed from HubSpot's v3 formula, base64(HMAC-SHA256(
// secret, method + decoded URI + body + timestamp)) with Python's hmac
// module (the GET one also with `openssl dgst -sha256 -hmac`), over the URI
// written out decoded by hand (signed) for the encoded one a request carries
// (uri).
var v3Vectors = []struct {
	name, secret, method, uri, signed, body string
	ms                                      int64
	want                                    string
}{
	{
		name: "documented request", secret: docSecret, method: "POST", uri: docURI, signed: docURI, body: docBody,
		ms: 1564113600000, want: "DxmVAjFNa2xfF3YgQjdZP6TNcok9k1oaH7UXombPtvw=",
	},
	{
		name: "GET, empty body", secret: docSecret, method: "GET", uri: docURI, signed: docURI, body: "",
		ms: 1564113600000, want: "Gkm1X/9XKW8USz3+Zmf3yrn0IrT/aQ596p5Jt9o7xsY=",
	},
	{
		name:   "all twelve escapes of HubSpot's table decoded",
		secret: "another-secret", method: "POST",
		uri:    "https://hooks.example.com/hubspot/webhooks/crm-in?redirect=https%3A%2F%2Fapp.example.com%2Fcb%3Fa%3D1&who=me%40example.com&x=%21%24%27%28%29%2A%2C%3B",
		signed: "https://hooks.example.com/hubspot/webhooks/crm-in?redirect=https://app.example.com/cb?a%3D1&who=me@example.com&x=!$'()*,;",
		body:   `{"k":"vé"}`, ms: 1764547200123, want: "DvdKmzw2j2mnkVcUuWQOzw3ZAxnP5KACqcWO6G7vIp0=",
	},
	{
		name:   "escapes outside the table kept",
		secret: "another-secret", method: "POST",
		uri:    "https://hooks.example.com/p%20q?x=%25%3a%3D%253A",
		signed: "https://hooks.example.com/p%20q?x=%25%3a%3D%253A",
		body:   `[]`, ms: 1764547200123, want: "S8uI8ythu+JK5h8JlhwjrQ7okMzN8z0p4GaDrzehg10=",
	},
}

// TestSignV3Vectors checks SignV3 and Verify against the vectors, for the
// encoded URI and for its decoded form alike.
func TestSignV3Vectors(t *testing.T) {
	for _, v := range v3Vectors {
		t.Run(v.name, func(t *testing.T) {
			ts := time.UnixMilli(v.ms)
			for _, uri := range []string{v.uri, v.signed} {
				if got := signature.SignV3(v.secret, v.method, uri, []byte(v.body), ts); got != v.want {
					t.Errorf("SignV3(%q) = %s, want %s", uri, got, v.want)
				}
				r := v3Request(v.method, uri, v.body, v.want, strconv.FormatInt(v.ms, 10))
				if err := signature.Verify(v.secret, r, ts.Add(time.Second)); err != nil {
					t.Errorf("Verify(%q): %v", uri, err)
				}
			}
		})
	}
}

// TestDecodeURI checks the v3 decoding rule of HubSpot's guide: exactly the
// twelve escapes of its table, as written there (uppercase hex), are
// decoded, wherever they are; nothing else is.
func TestDecodeURI(t *testing.T) {
	cases := map[string]string{
		"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
		"%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
		"https://h.example.com/a%2Fb?q=%3F%3F": "https://h.example.com/a/b?q=??",
		"https://h.example.com/?a=1&b=2":       "https://h.example.com/?a=1&b=2",
		// Not in the table: left as they are.
		"%20": "%20", "%25": "%25", "%3D": "%3D", "%26": "%26", "%2B": "%2B", "%23": "%23",
		"%C3%A9": "%C3%A9", "%5B%5D": "%5B%5D",
		// The table writes uppercase hex; lowercase is another string.
		"%3a": "%3a", "%2f": "%2f",
		// One pass: a decoded % would be a new escape, but %25 is not
		// decoded, and no decoded character is a %.
		"%253A": "%253A", "%%3A3A": "%:3A", "%3": "%3", "%": "%",
		"://?@!$'()*,;": "://?@!$'()*,;",
	}
	for in, want := range cases {
		if got := signature.DecodeURI(in); got != want {
			t.Errorf("DecodeURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func v3Request(method, uri, body, sig, ts string) signature.Request {
	r := signature.Request{Method: method, URI: uri, Body: []byte(body), Header: http.Header{}}
	r.Header.Set(signature.HeaderSignatureV3, sig)
	r.Header.Set(signature.HeaderTimestamp, ts)
	return r
}

// TestVerifyTimestamps checks the 5-minute window of v3 on both sides, to
// the millisecond, and unreadable timestamps. The boundary follows HubSpot's
// guide, whose sample rejects when currentTime - timestamp > 300000 ms, so a
// request exactly 5 minutes old passes. (hubspot-api-client 12.0.0 truncates
// the timestamp to seconds and rejects at 300 s or more; it has no check for
// the future.)
func TestVerifyTimestamps(t *testing.T) {
	const secret, uri, body = "s3cret", "https://hooks.example.com/in", `[{"objectId":1}]`
	signed := time.UnixMilli(1764547200000)
	sig := signature.SignV3(secret, "POST", uri, []byte(body), signed)
	ts := strconv.FormatInt(signed.UnixMilli(), 10)
	cases := []struct {
		name string
		now  time.Time
		want error
	}{
		{"same instant", signed, nil},
		{"exactly 5 minutes old", signed.Add(signature.Tolerance), nil},
		{"5 minutes and 1 ms old", signed.Add(signature.Tolerance + time.Millisecond), signature.ErrStale},
		{"an hour old", signed.Add(time.Hour), signature.ErrStale},
		{"exactly 5 minutes ahead", signed.Add(-signature.Tolerance), nil},
		{"5 minutes and 1 ms ahead", signed.Add(-signature.Tolerance - time.Millisecond), signature.ErrFuture},
	}
	for _, c := range cases {
		err := signature.Verify(secret, v3Request("POST", uri, body, sig, ts), c.now)
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
	for _, bad := range []string{"", "abc", "+" + ts, "-" + ts, ts + ".0", "1.7645472e12", " " + ts, "99999999999999999999"} {
		err := signature.Verify(secret, v3Request("POST", uri, body, sig, bad), signed)
		if !errors.Is(err, signature.ErrTimestamp) {
			t.Errorf("timestamp %q: Verify = %v, want ErrTimestamp", bad, err)
		}
	}
	// A signature over another timestamp than the header's does not match.
	later := strconv.FormatInt(signed.UnixMilli()+1, 10)
	if err := signature.Verify(secret, v3Request("POST", uri, body, sig, later), signed); !errors.Is(err, signature.ErrMismatch) {
		t.Errorf("timestamp changed by 1 ms: Verify = %v, want ErrMismatch", err)
	}
}

// signed returns a request signed with version v1, v2 or v3, at now.
func signed(t *testing.T, version, secret, method, uri, body string, now time.Time) signature.Request {
	t.Helper()
	r := signature.Request{Method: method, URI: uri, Body: []byte(body), Header: http.Header{}}
	switch version {
	case "v1":
		r.Header.Set(signature.HeaderSignature, signature.SignV1(secret, r.Body))
		r.Header.Set(signature.HeaderSignatureVersion, "v1")
	case "v2":
		r.Header.Set(signature.HeaderSignature, signature.SignV2(secret, method, uri, r.Body))
		r.Header.Set(signature.HeaderSignatureVersion, "v2")
	case "v3":
		r.Header.Set(signature.HeaderSignatureV3, signature.SignV3(secret, method, uri, r.Body, now))
		r.Header.Set(signature.HeaderTimestamp, strconv.FormatInt(now.UnixMilli(), 10))
	default:
		t.Fatalf("no signature version %q", version)
	}
	return r
}

// TestVerifyRefusesTampering changes one part of a signed request at a time:
// each version refuses a change to what it covers (v1: the body; v2 and v3:
// method, URI and body), another secret and an altered signature.
func TestVerifyRefusesTampering(t *testing.T) {
	const secret, method, uri, body = "s3cret", "POST", "https://hooks.example.com/hubspot/webhooks/crm-in?portal=62515", `[{"objectId":1,"propertyValue":"a"}]`
	now := time.UnixMilli(1764547200000)
	type change struct {
		name   string
		apply  func(*signature.Request)
		covers map[string]bool
	}
	all := map[string]bool{"v1": true, "v2": true, "v3": true}
	noV1 := map[string]bool{"v2": true, "v3": true}
	changes := []change{
		{"body", func(r *signature.Request) { r.Body = []byte(strings.Replace(string(r.Body), `"a"`, `"b"`, 1)) }, all},
		{"body truncated", func(r *signature.Request) { r.Body = r.Body[:len(r.Body)-1] }, all},
		{"body emptied", func(r *signature.Request) { r.Body = nil }, all},
		{"method", func(r *signature.Request) { r.Method = "PUT" }, noV1},
		{"method case", func(r *signature.Request) { r.Method = "post" }, noV1},
		{"path", func(r *signature.Request) { r.URI = strings.Replace(r.URI, "crm-in", "crm-out", 1) }, noV1},
		{"query", func(r *signature.Request) { r.URI += "&x=1" }, noV1},
		{"scheme", func(r *signature.Request) { r.URI = strings.Replace(r.URI, "https:", "http:", 1) }, noV1},
		{"host", func(r *signature.Request) { r.URI = strings.Replace(r.URI, "hooks.", "internal.", 1) }, noV1},
		{"signature", func(r *signature.Request) {
			for _, h := range []string{signature.HeaderSignature, signature.HeaderSignatureV3} {
				if s := r.Header.Get(h); s != "" {
					r.Header.Set(h, flipLast(s))
				}
			}
		}, all},
	}
	for _, version := range []string{"v1", "v2", "v3"} {
		if err := signature.Verify(secret, signed(t, version, secret, method, uri, body, now), now); err != nil {
			t.Fatalf("%s: the untouched request is refused: %v", version, err)
		}
		if err := signature.Verify("other-secret", signed(t, version, secret, method, uri, body, now), now); !errors.Is(err, signature.ErrMismatch) {
			t.Errorf("%s, another secret: Verify = %v, want ErrMismatch", version, err)
		}
		for _, c := range changes {
			r := signed(t, version, secret, method, uri, body, now)
			c.apply(&r)
			err := signature.Verify(secret, r, now)
			if c.covers[version] && !errors.Is(err, signature.ErrMismatch) {
				t.Errorf("%s, changed %s: Verify = %v, want ErrMismatch", version, c.name, err)
			}
			if !c.covers[version] && err != nil {
				t.Errorf("%s does not sign the %s, yet changing it gives %v", version, c.name, err)
			}
		}
	}
}

func flipLast(s string) string {
	b := []byte(s)
	i := len(b) - 1
	if b[i] == '=' {
		i--
	}
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestVerifyChoosesTheVersion checks which signature Verify reads: v3 where
// present, without falling back to v1 when v3 fails; else the version the
// header names; and the errors for requests it cannot check.
func TestVerifyChoosesTheVersion(t *testing.T) {
	const secret, method, uri, body = "s3cret", "POST", "https://hooks.example.com/in", `[]`
	now := time.UnixMilli(1764547200000)
	both := signature.Request{Method: method, URI: uri, Body: []byte(body), Header: signature.Headers(secret, method, uri, []byte(body), now)}
	if err := signature.Verify(secret, both, now); err != nil {
		t.Fatalf("Headers' request is refused: %v", err)
	}

	forgedV3 := both
	forgedV3.Header = both.Header.Clone()
	forgedV3.Header.Set(signature.HeaderSignatureV3, flipLast(both.Header.Get(signature.HeaderSignatureV3)))
	if err := signature.Verify(secret, forgedV3, now); !errors.Is(err, signature.ErrMismatch) {
		t.Errorf("a bad v3 next to a good v1: Verify = %v, want ErrMismatch (no fallback)", err)
	}
	staleV3 := both
	if err := signature.Verify(secret, staleV3, now.Add(time.Hour)); !errors.Is(err, signature.ErrStale) {
		t.Errorf("a stale v3 next to a good v1: Verify = %v, want ErrStale (no fallback)", err)
	}

	// Without v3, as private apps send, the v1 signature is checked.
	v1Only := both
	v1Only.Header = both.Header.Clone()
	v1Only.Header.Del(signature.HeaderSignatureV3)
	v1Only.Header.Del(signature.HeaderTimestamp)
	if err := signature.Verify(secret, v1Only, now.Add(time.Hour)); err != nil {
		t.Errorf("v1 alone: Verify = %v", err)
	}
	v1Only.Body = []byte(`[{}]`)
	if err := signature.Verify(secret, v1Only, now); !errors.Is(err, signature.ErrMismatch) {
		t.Errorf("v1 alone, body changed: Verify = %v, want ErrMismatch", err)
	}

	refusals := []struct {
		name   string
		secret string
		header http.Header
		uri    string
		want   error
	}{
		{"no signature headers", secret, http.Header{}, uri, signature.ErrUnsigned},
		{"timestamp alone", secret, http.Header{signature.HeaderTimestamp: {"1764547200000"}}, uri, signature.ErrUnsigned},
		{"v1 signature without version", secret, http.Header{"X-Hubspot-Signature": {signature.SignV1(secret, []byte(body))}}, uri, signature.ErrVersion},
		{"unknown version", secret, http.Header{"X-Hubspot-Signature": {signature.SignV1(secret, []byte(body))}, "X-Hubspot-Signature-Version": {"v4"}}, uri, signature.ErrVersion},
		{"v3 without timestamp", secret, http.Header{"X-Hubspot-Signature-V3": {both.Header.Get(signature.HeaderSignatureV3)}}, uri, signature.ErrTimestamp},
		{"no secret configured", "", both.Header, uri, signature.ErrNoSecret},
		{"v3 with a path for a URI", secret, both.Header, "/in", signature.ErrURI},
		{"v3 with a host-less URI", secret, both.Header, "https:///in", signature.ErrURI},
		{"v2 with a path for a URI", secret, http.Header{"X-Hubspot-Signature": {signature.SignV2(secret, method, "/in", []byte(body))}, "X-Hubspot-Signature-Version": {"v2"}}, "/in", signature.ErrURI},
	}
	for _, c := range refusals {
		r := signature.Request{Method: method, URI: c.uri, Body: []byte(body), Header: c.header}
		if err := signature.Verify(c.secret, r, now); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

// TestHeaders checks the headers the sandbox sends: v1 and v3 with their
// companions, each valid on its own.
func TestHeaders(t *testing.T) {
	const secret, method, uri, body = "s3cret", "POST", "https://hooks.example.com/in?a=%3A", `[{"objectId":7}]`
	now := time.UnixMilli(1764547200456)
	h := signature.Headers(secret, method, uri, []byte(body), now)
	want := map[string]string{
		signature.HeaderSignature:        signature.SignV1(secret, []byte(body)),
		signature.HeaderSignatureVersion: "v1",
		signature.HeaderSignatureV3:      signature.SignV3(secret, method, uri, []byte(body), now),
		signature.HeaderTimestamp:        "1764547200456",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("Headers set %d headers, want %d: %v", len(h), len(want), h)
	}
}

// TestErrorsKeepSecretsOut checks that no refusal mentions the secret or a
// signature Verify computed.
func TestErrorsKeepSecretsOut(t *testing.T) {
	const secret, method, uri, body = "very-secret-value", "POST", "https://hooks.example.com/in", `[]`
	now := time.UnixMilli(1764547200000)
	for _, version := range []string{"v1", "v2", "v3"} {
		r := signed(t, version, secret, method, uri, body, now)
		want := []string{secret, signature.SignV1(secret, r.Body), signature.SignV2(secret, method, uri, r.Body), signature.SignV3(secret, method, uri, r.Body, now)}
		r.Body = []byte(`[1]`)
		want = append(want, signature.SignV1(secret, r.Body), signature.SignV2(secret, method, uri, r.Body), signature.SignV3(secret, method, uri, r.Body, now))
		err := signature.Verify(secret, r, now)
		if err == nil {
			t.Fatalf("%s: a changed body verified", version)
		}
		for _, w := range want {
			if strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q contains %q", version, err, w)
			}
		}
	}
}
