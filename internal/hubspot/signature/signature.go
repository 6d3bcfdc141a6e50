// Package signature signs and verifies the requests HubSpot sends to a
// webhook target, in the three versions of HubSpot's "Validating requests"
// guide (https://developers.hubspot.com/docs/api/webhooks/validating-requests,
// and its newer copy at .../apps/developer-platform/build-apps/authentication/request-validation):
//
//   - v3: X-HubSpot-Signature-v3 is base64(HMAC-SHA256(client secret,
//     method + URI + body + timestamp)), with the timestamp in
//     X-HubSpot-Request-Timestamp (epoch milliseconds). The URI is the full
//     target URL, scheme and host included, with the escapes of
//     [DecodeURI] decoded.
//   - v1: X-HubSpot-Signature is hex(SHA-256(client secret + body)), with
//     X-HubSpot-Signature-Version: v1. HubSpot sends it with CRM object
//     webhooks, next to v3; private apps' webhooks are described as signed
//     with it, and may come without v3.
//   - v2: X-HubSpot-Signature is hex(SHA-256(client secret + method + URI +
//     body)), with X-HubSpot-Signature-Version: v2 (workflow actions, CRM
//     cards). The URI is used exactly as requested, without decoding.
//
// The webhook receiver verifies with [Verify]; the sandbox, playing HubSpot,
// signs with [Headers]. Errors never carry the secret or an expected
// signature.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The request headers HubSpot signs with. http.Header canonicalizes their
// case (X-Hubspot-Signature-V3); header names are case-insensitive.
const (
	// HeaderSignature holds the v1 or v2 signature, in lowercase hex.
	HeaderSignature = "X-HubSpot-Signature"
	// HeaderSignatureVersion says which of v1 and v2 HeaderSignature is.
	HeaderSignatureVersion = "X-HubSpot-Signature-Version"
	// HeaderSignatureV3 holds the v3 signature, in standard base64.
	HeaderSignatureV3 = "X-HubSpot-Signature-v3"
	// HeaderTimestamp holds the time HubSpot signed a v3 request, in epoch
	// milliseconds, as decimal digits.
	HeaderTimestamp = "X-HubSpot-Request-Timestamp"
)

// Tolerance is how far a v3 timestamp may be from the verifier's clock:
// HubSpot's guide says to reject a request whose timestamp is older than
// 5 minutes (its sample: currentTime - timestamp > 300000 ms rejects). A
// timestamp more than Tolerance ahead of the clock is refused as well, so a
// captured request cannot be replayed for longer than HubSpot intends.
const Tolerance = 5 * time.Minute

// Why Verify refused a request. Verify wraps them with details (which
// header, how old), so test with errors.Is.
var (
	// ErrNoSecret: the verifier has no client secret to check with.
	ErrNoSecret = errors.New("no client secret configured")
	// ErrUnsigned: the request has neither X-HubSpot-Signature-v3 nor
	// X-HubSpot-Signature.
	ErrUnsigned = errors.New("request is not signed")
	// ErrVersion: X-HubSpot-Signature comes without an
	// X-HubSpot-Signature-Version of v1 or v2.
	ErrVersion = errors.New("unsupported signature version")
	// ErrTimestamp: a v3 signature without a readable
	// X-HubSpot-Request-Timestamp.
	ErrTimestamp = errors.New("missing or malformed request timestamp")
	// ErrStale: the v3 timestamp is more than Tolerance in the past.
	ErrStale = errors.New("request timestamp is too old")
	// ErrFuture: the v3 timestamp is more than Tolerance in the future.
	ErrFuture = errors.New("request timestamp is in the future")
	// ErrURI: the request URI Verify was given is not an absolute http or
	// https URL, so it cannot be the target URL HubSpot signed.
	ErrURI = errors.New("request URI is not an absolute http(s) URL")
	// ErrMismatch: the signature does not match the request: forged, altered
	// in transit, signed with another secret, or verified against another
	// URI than HubSpot's configured target URL.
	ErrMismatch = errors.New("signature does not match")
)

// Request is what a signature covers.
type Request struct {
	// Method is the HTTP method as sent, e.g. "POST".
	Method string
	// URI is the full public URL of the request as HubSpot's configured
	// target URL has it: scheme, host, path and query in their original
	// order (https://hooks.example.com/hubspot/webhooks/crm-in?x=1), not
	// the address a proxy forwarded to.
	URI string
	// Header holds the request's headers.
	Header http.Header
	// Body is the raw request body, byte for byte.
	Body []byte
}

// uriDecoder decodes the percent-escapes HubSpot's guide lists for v3, and
// only those: %3A : , %2F / , %3F ? , %40 @ , %21 ! , %24 $ , %27 ' , %28 ( ,
// %29 ) , %2A * , %2C , and %3B ; (source: "Validating requests", v3
// section, step "decode any URL-encoded characters listed in the following
// table"). The table writes them in uppercase hex, as HubSpot encodes; other
// escapes (%20, %25, lowercase %3a, ...) stay as they are. One left-to-right
// pass, so %253A stays %253A.
var uriDecoder = strings.NewReplacer(
	"%3A", ":",
	"%2F", "/",
	"%3F", "?",
	"%40", "@",
	"%21", "!",
	"%24", "$",
	"%27", "'",
	"%28", "(",
	"%29", ")",
	"%2A", "*",
	"%2C", ",",
	"%3B", ";",
)

// DecodeURI returns uri as v3 signs it: with the twelve escapes of HubSpot's
// table (%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B) decoded and
// everything else unchanged.
func DecodeURI(uri string) string {
	return uriDecoder.Replace(uri)
}

// SignV3 returns the X-HubSpot-Signature-v3 value of a request sent at ts:
// base64(HMAC-SHA256(secret, method + DecodeURI(uri) + body + ts in epoch
// milliseconds)).
func SignV3(secret, method, uri string, body []byte, ts time.Time) string {
	return signV3(secret, method, uri, body, strconv.FormatInt(ts.UnixMilli(), 10))
}

// signV3 signs with the timestamp as the header carries it: the signed
// string holds the header's text, not a reformatted number.
func signV3(secret, method, uri string, body []byte, ts string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(method))
	mac.Write([]byte(DecodeURI(uri)))
	mac.Write(body)
	mac.Write([]byte(ts))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SignV1 returns the v1 X-HubSpot-Signature value of a request:
// hex(SHA-256(secret + body)).
func SignV1(secret string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(secret))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// SignV2 returns the v2 X-HubSpot-Signature value of a request:
// hex(SHA-256(secret + method + uri + body)), with uri exactly as requested.
func SignV2(secret, method, uri string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(secret))
	h.Write([]byte(method))
	h.Write([]byte(uri))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Headers returns the signature headers HubSpot puts on a webhook request
// sent at ts: v1 (X-HubSpot-Signature, X-HubSpot-Signature-Version: v1) and
// v3 (X-HubSpot-Signature-v3, X-HubSpot-Request-Timestamp).
func Headers(secret, method, uri string, body []byte, ts time.Time) http.Header {
	h := make(http.Header, 4)
	h.Set(HeaderSignature, SignV1(secret, body))
	h.Set(HeaderSignatureVersion, "v1")
	h.Set(HeaderSignatureV3, SignV3(secret, method, uri, body, ts))
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.UnixMilli(), 10))
	return h
}

// Verify checks r's signature with the client secret at time now. It
// verifies v3 when X-HubSpot-Signature-v3 is present (and then only v3: a
// failed v3 is not retried as v1), else X-HubSpot-Signature by its
// X-HubSpot-Signature-Version, v1 or v2. v1 and v2 carry no timestamp, so
// they cannot be checked for age. It returns nil for a genuine request, else
// an error wrapping one of the Err values above.
func Verify(secret string, r Request, now time.Time) error {
	if secret == "" {
		return fmt.Errorf("signature: %w", ErrNoSecret)
	}
	if v3 := r.Header.Get(HeaderSignatureV3); v3 != "" {
		return verifyV3(secret, r, v3, now)
	}
	sig := r.Header.Get(HeaderSignature)
	if sig == "" {
		return fmt.Errorf("signature: %w: no %s or %s header", ErrUnsigned, HeaderSignatureV3, HeaderSignature)
	}
	switch version := r.Header.Get(HeaderSignatureVersion); version {
	case "v1":
		return compare(SignV1(secret, r.Body), sig, "v1")
	case "v2":
		if err := checkURI(r.URI); err != nil {
			return err
		}
		return compare(SignV2(secret, r.Method, r.URI, r.Body), sig, "v2")
	default:
		return fmt.Errorf("signature: %w: %s is %q, want v1 or v2", ErrVersion, HeaderSignatureVersion, version)
	}
}

func verifyV3(secret string, r Request, sig string, now time.Time) error {
	ts := r.Header.Get(HeaderTimestamp)
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strings.Trim(ts, "0123456789") != "" {
		return fmt.Errorf("signature: %w: %s is %q, want epoch milliseconds", ErrTimestamp, HeaderTimestamp, ts)
	}
	age := now.Sub(time.UnixMilli(ms))
	if age > Tolerance {
		return fmt.Errorf("signature: %w: signed %s ago, more than %s", ErrStale, age.Round(time.Millisecond), Tolerance)
	}
	if age < -Tolerance {
		return fmt.Errorf("signature: %w: signed %s ahead of this clock, more than %s", ErrFuture, (-age).Round(time.Millisecond), Tolerance)
	}
	if err := checkURI(r.URI); err != nil {
		return err
	}
	return compare(signV3(secret, r.Method, r.URI, r.Body, ts), sig, "v3")
}

// checkURI refuses a URI that cannot be a target URL, so that a receiver
// configured without its public URL gets a clear error rather than a
// mismatch on every request.
func checkURI(uri string) error {
	lower := strings.ToLower(uri)
	for _, scheme := range []string{"https://", "http://"} {
		if rest, ok := strings.CutPrefix(lower, scheme); ok && rest != "" && rest[0] != '/' {
			return nil
		}
	}
	return fmt.Errorf("signature: %w: %q", ErrURI, uri)
}

// compare tells whether got is the expected signature, in constant time.
func compare(want, got, version string) error {
	if hmac.Equal([]byte(want), []byte(got)) {
		return nil
	}
	return fmt.Errorf("signature: %w: %s signature", ErrMismatch, version)
}
