package signature_test

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/hubspot/signature"
)

// FuzzVerify checks that whatever Headers (v1 and v3), SignV1 and SignV2
// sign, Verify accepts, and that changing any single byte of what a version
// covers (method, URI, body, timestamp, the signature itself) makes Verify
// refuse, except a URI change that HubSpot's decoding maps to the same URI.
func FuzzVerify(f *testing.F) {
	for _, v := range v3Vectors {
		f.Add(v.secret, v.method, v.uri[len("https://"):], []byte(v.body), v.ms, uint(7), byte('x'))
	}
	f.Add(docSecret, "POST", "www.example.com/webhook_uri", []byte(docBody), int64(1564113600000), uint(0), byte(0))
	f.Add("s", "GET", "h/%3A%2F?%40=%21", []byte{}, int64(0), uint(3), byte('a'))
	f.Fuzz(func(t *testing.T, secret, method, uriRest string, body []byte, ms int64, pos uint, b byte) {
		uri := "https://" + uriRest
		ms &= math.MaxInt64
		ts := time.UnixMilli(ms)
		if secret == "" {
			r := signature.Request{Method: method, URI: uri, Body: body, Header: signature.Headers(secret, method, uri, body, ts)}
			if err := signature.Verify(secret, r, ts); !errors.Is(err, signature.ErrNoSecret) {
				t.Fatalf("no secret: Verify = %v, want ErrNoSecret", err)
			}
			return
		}
		uriOK := len(uriRest) > 0 && uriRest[0] != '/'

		// mutate replaces the byte at pos of s with b; ok is false when
		// that changes nothing.
		mutate := func(s string) (string, bool) {
			if len(s) == 0 {
				return s, false
			}
			c := []byte(s)
			i := pos % uint(len(c))
			if c[i] == b {
				return s, false
			}
			c[i] = b
			return string(c), true
		}

		versions := map[string]func() http.Header{
			"v1+v3": func() http.Header { return signature.Headers(secret, method, uri, body, ts) },
			"v1": func() http.Header {
				return http.Header{"X-Hubspot-Signature": {signature.SignV1(secret, body)}, "X-Hubspot-Signature-Version": {"v1"}}
			},
			"v2": func() http.Header {
				return http.Header{"X-Hubspot-Signature": {signature.SignV2(secret, method, uri, body)}, "X-Hubspot-Signature-Version": {"v2"}}
			},
		}
		for version, headers := range versions {
			request := func() signature.Request {
				return signature.Request{Method: method, URI: uri, Body: append([]byte(nil), body...), Header: headers()}
			}
			coversURI := version != "v1"
			err := signature.Verify(secret, request(), ts)
			if coversURI && !uriOK {
				if !errors.Is(err, signature.ErrURI) {
					t.Fatalf("%s, URI %q: Verify = %v, want ErrURI", version, uri, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: Verify refuses what was signed: %v", version, err)
			}

			refused := func(what string, r signature.Request) {
				t.Helper()
				if err := signature.Verify(secret, r, ts); err == nil {
					t.Fatalf("%s: Verify accepts the request with its %s changed at byte %d to %q", version, what, pos, b)
				}
			}
			if s, ok := mutate(string(body)); ok {
				r := request()
				r.Body = []byte(s)
				refused("body", r)
			}
			if !coversURI {
				continue
			}
			if s, ok := mutate(method); ok {
				r := request()
				r.Method = s
				refused("method", r)
			}
			if s, ok := mutate(uri); ok {
				r := request()
				r.URI = s
				sameSigned := version == "v1+v3" && signature.DecodeURI(s) == signature.DecodeURI(uri)
				if err := signature.Verify(secret, r, ts); sameSigned && err != nil && !errors.Is(err, signature.ErrURI) {
					t.Fatalf("%s: URI %q signs as %q like %q, yet Verify = %v", version, s, signature.DecodeURI(s), uri, err)
				} else if !sameSigned && err == nil {
					t.Fatalf("%s: Verify accepts the URI %q for %q", version, s, uri)
				}
			}
			for _, h := range []string{signature.HeaderSignature, signature.HeaderSignatureV3, signature.HeaderTimestamp} {
				r := request()
				if version == "v1+v3" && h == signature.HeaderSignature {
					continue // v3 is what is checked; v1 beside it is not.
				}
				if s, ok := mutate(r.Header.Get(h)); ok {
					r.Header.Set(h, s)
					refused(h, r)
				}
			}
		}
		if got := signature.Headers(secret, method, uri, body, ts).Get(signature.HeaderTimestamp); got != strconv.FormatInt(ms, 10) {
			t.Fatalf("timestamp header %q, want %d", got, ms)
		}
	})
}
