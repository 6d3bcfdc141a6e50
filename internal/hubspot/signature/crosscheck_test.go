package signature_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/hubspot/signature"
)

// The cross-check runs testdata/hubspot-signature/crosscheck.py with the
// virtualenv scripts/sdk-deps.sh installs HubSpot's Python clients in
// (testdata/hubspot-schemas, hubspot-api-client pinned at 12.0.0).
const (
	crosscheckPython = "../../../testdata/hubspot-schemas/.venv/bin/python"
	crosscheckScript = "../../../testdata/hubspot-signature/crosscheck.py"
	libraryVersion   = "12.0.0"
)

// libCase is one request as crosscheck.py takes it; Signature is set for
// the cases it verifies.
type libCase struct {
	Signature string `json:"signature,omitempty"`
	Secret    string `json:"secret"`
	Method    string `json:"method"`
	URI       string `json:"uri"`
	Body      string `json:"body"`
	Version   string `json:"version"`
	Timestamp string `json:"timestamp"`
}

type libAnswer struct {
	Library    string   `json:"library"`
	Signatures []string `json:"signatures"`
	Verdicts   []string `json:"verdicts"`
}

// runLibrary has HubSpot's client sign the sign cases and verify the verify
// cases.
func runLibrary(t *testing.T, sign, verify []libCase) libAnswer {
	t.Helper()
	if _, err := os.Stat(crosscheckPython); err != nil {
		t.Fatalf("%s is missing: install HubSpot's Python clients with scripts/sdk-deps.sh", crosscheckPython)
	}
	in, err := json.Marshal(map[string][]libCase{"sign": append([]libCase{}, sign...), "verify": append([]libCase{}, verify...)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, crosscheckPython, crosscheckScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crosscheck.py: %v\n%s", err, stderr.String())
	}
	var a libAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("crosscheck.py printed %q: %v", out, err)
	}
	if a.Library != libraryVersion {
		t.Fatalf("crosscheck.py ran hubspot-api-client %s, want %s (the pin of testdata/hubspot-schemas/requirements.txt)", a.Library, libraryVersion)
	}
	if len(a.Signatures) != len(sign) || len(a.Verdicts) != len(verify) {
		t.Fatalf("crosscheck.py answered %d signatures and %d verdicts for %d and %d cases", len(a.Signatures), len(a.Verdicts), len(sign), len(verify))
	}
	return a
}

// request is c as a received request, carrying the signature sig.
func (c libCase) request(sig string) signature.Request {
	r := signature.Request{Method: c.Method, URI: c.URI, Body: []byte(c.Body), Header: http.Header{}}
	if c.Version == "v3" {
		r.Header.Set(signature.HeaderSignatureV3, sig)
		r.Header.Set(signature.HeaderTimestamp, c.Timestamp)
	} else {
		r.Header.Set(signature.HeaderSignature, sig)
		r.Header.Set(signature.HeaderSignatureVersion, c.Version)
	}
	return r
}

// goSign signs c with this package.
func goSign(t *testing.T, c libCase) string {
	t.Helper()
	switch c.Version {
	case "v1":
		return signature.SignV1(c.Secret, []byte(c.Body))
	case "v2":
		return signature.SignV2(c.Secret, c.Method, c.URI, []byte(c.Body))
	case "v3":
		ms, err := strconv.ParseInt(c.Timestamp, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return signature.SignV3(c.Secret, c.Method, c.URI, []byte(c.Body), time.UnixMilli(ms))
	}
	t.Fatalf("no version %q", c.Version)
	return ""
}

// Pieces of generated URIs. HubSpot's client does not decode the URI (see
// TestLibraryDoesNotDecodeTheURI), so the v3 cases where both must agree
// carry none of the twelve escapes of HubSpot's table; they do carry those
// characters literally, and escapes outside the table. v1 and v2 do not
// decode, so their URIs take the table's escapes too.
var (
	uriPlain    = strings.Split("a b c x y z 0 7 9 - . _ ~ crm-in hubspot webhooks", " ")
	uriLiteral  = strings.Split(": @ ! $ ' ( ) * , ; / ?", " ")
	uriKept     = strings.Split("%20 %25 %3D %26 %2B %23 %C3%A9 %E6%97%A5 %3a %2f %7E", " ")
	uriDecoded  = strings.Split("%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B", " ")
	bodyPieces  = []string{`{"objectId":`, `123`, `"propertyValue":"`, `é`, `日本`, `😀`, `\"`, `\\`, `\n`, "\n", "\t", ` `, `,`, `]`, `[`, `}`, `null`, `%3A`, `+`, `=`}
	secretChars = "abcdef0123456789-"
)

func pick(rng *rand.Rand, s []string) string { return s[rng.IntN(len(s))] }

func genURI(rng *rand.Rand, withTableEscapes bool) string {
	var b strings.Builder
	b.WriteString(pick(rng, []string{"https://", "http://"}))
	b.WriteString(pick(rng, []string{"hooks.example.com", "switchyard.internal:8080", "127.0.0.1:3000"}))
	part := func() string {
		switch n := rng.IntN(10); {
		case n < 5:
			return pick(rng, uriPlain)
		case n < 7:
			return pick(rng, uriLiteral)
		case n < 9 || !withTableEscapes:
			return pick(rng, uriKept)
		default:
			return pick(rng, uriDecoded)
		}
	}
	for range 1 + rng.IntN(3) {
		b.WriteString("/")
		for range 1 + rng.IntN(4) {
			b.WriteString(part())
		}
	}
	if rng.IntN(4) > 0 {
		b.WriteString("?")
		for i := range 1 + rng.IntN(3) {
			if i > 0 {
				b.WriteString("&")
			}
			b.WriteString(pick(rng, uriPlain) + "=")
			for range rng.IntN(5) {
				b.WriteString(part())
			}
		}
	}
	return b.String()
}

func genBody(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(40) {
		if rng.IntN(3) == 0 {
			b.WriteRune(rune(0x20 + rng.IntN(0x5f)))
		} else {
			b.WriteString(pick(rng, bodyPieces))
		}
	}
	return b.String()
}

func genSecret(rng *rand.Rand) string {
	b := make([]byte, 36)
	for i := range b {
		b[i] = secretChars[rng.IntN(len(secretChars))]
	}
	return string(b)
}

// genCases makes n requests of each version, signed at times up to a
// minute before now.
func genCases(rng *rand.Rand, n int, now time.Time) []libCase {
	var cases []libCase
	for _, version := range []string{"v1", "v2", "v3"} {
		for range n {
			cases = append(cases, libCase{
				Secret:    genSecret(rng),
				Method:    pick(rng, []string{"POST", "POST", "POST", "GET", "PUT"}),
				URI:       genURI(rng, version != "v3"),
				Body:      genBody(rng),
				Version:   version,
				Timestamp: strconv.FormatInt(now.Add(-time.Duration(rng.IntN(60_000))*time.Millisecond).UnixMilli(), 10),
			})
		}
	}
	return cases
}

// TestAgreesWithHubSpotsClient cross-checks this package with
// hubspot-api-client's hubspot.utils.signature.Signature in both
// directions, over generated requests of all three versions: what the
// library signs, Verify accepts (and Sign gives the same string); what Sign
// signs, the library's is_valid accepts. Signatures with another secret,
// and a v3 request 10 minutes old, are refused by both.
func TestAgreesWithHubSpotsClient(t *testing.T) {
	now := time.Now()
	rng := rand.New(rand.NewPCG(9, 2026))
	toSign := genCases(rng, 40, now)

	var toVerify []libCase
	var wantVerdicts []string
	for _, c := range genCases(rng, 40, now) {
		good := c
		good.Signature = goSign(t, c)
		forged := c
		other := c
		other.Secret = genSecret(rng)
		forged.Signature = goSign(t, other)
		toVerify = append(toVerify, good, forged)
		wantVerdicts = append(wantVerdicts, "valid", "invalid")
	}
	stale := libCase{Secret: "s3cret", Method: "POST", URI: "https://hooks.example.com/in", Body: "[]", Version: "v3",
		Timestamp: strconv.FormatInt(now.Add(-10*time.Minute).UnixMilli(), 10)}
	stale.Signature = goSign(t, stale)
	toVerify = append(toVerify, stale)
	wantVerdicts = append(wantVerdicts, "bad timestamp")

	a := runLibrary(t, toSign, toVerify)

	for i, c := range toSign {
		if got := goSign(t, c); got != a.Signatures[i] {
			t.Errorf("%s %s %q body %q: the library signs %s, Sign gives %s", c.Version, c.Method, c.URI, c.Body, a.Signatures[i], got)
		}
		if err := signature.Verify(c.Secret, c.request(a.Signatures[i]), now); err != nil {
			t.Errorf("%s %s %q body %q: Verify of the library's signature: %v", c.Version, c.Method, c.URI, c.Body, err)
		}
	}
	for i, c := range toVerify {
		if a.Verdicts[i] != wantVerdicts[i] {
			t.Errorf("%s %s %q body %q: the library says %s of this package's request, want %s", c.Version, c.Method, c.URI, c.Body, a.Verdicts[i], wantVerdicts[i])
		}
	}
	if err := signature.Verify(stale.Secret, stale.request(stale.Signature), now); !errors.Is(err, signature.ErrStale) {
		t.Errorf("the 10-minute-old v3 request: Verify = %v, want ErrStale", err)
	}
}

// TestLibraryDoesNotDecodeTheURI pins down where HubSpot's client and
// HubSpot's documentation part. The documentation's v3 steps ("Validating
// requests", https://developers.hubspot.com/docs/api/webhooks/validating-requests
// and .../apps/developer-platform/build-apps/authentication/request-validation)
// decode %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B in the URI before
// signing; hubspot-api-client 12.0.0's Signature.get_signature hashes
// http_uri as it is given. This package follows the documentation: for a
// URI holding those escapes, its v3 signature is the library's signature of
// the decoded URI (written out by hand here), not of the encoded one.
func TestLibraryDoesNotDecodeTheURI(t *testing.T) {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	type pair struct{ encoded, decoded string }
	pairs := []pair{
		{v3Vectors[2].uri, v3Vectors[2].signed},
		{"https://hooks.example.com/hubspot/webhooks/crm-in%3Bv%3D2?next=%2Fhome%3Fa%40b", "https://hooks.example.com/hubspot/webhooks/crm-in;v%3D2?next=/home?a@b"},
	}
	var toSign, toVerify []libCase
	for _, p := range pairs {
		for _, uri := range []string{p.encoded, p.decoded} {
			toSign = append(toSign, libCase{Secret: "s3cret", Method: "POST", URI: uri, Body: `[{"objectId":1}]`, Version: "v3", Timestamp: ts})
		}
		goSig := goSign(t, libCase{Secret: "s3cret", Method: "POST", URI: p.encoded, Body: `[{"objectId":1}]`, Version: "v3", Timestamp: ts})
		for _, uri := range []string{p.encoded, p.decoded} {
			toVerify = append(toVerify, libCase{Signature: goSig, Secret: "s3cret", Method: "POST", URI: uri, Body: `[{"objectId":1}]`, Version: "v3", Timestamp: ts})
		}
	}
	a := runLibrary(t, toSign, toVerify)
	for i, p := range pairs {
		encodedSig, decodedSig := a.Signatures[2*i], a.Signatures[2*i+1]
		request := toSign[2*i]
		if err := signature.Verify("s3cret", request.request(decodedSig), time.Now()); err != nil {
			t.Errorf("%q: Verify of the library's signature of the decoded URI: %v", p.encoded, err)
		}
		if err := signature.Verify("s3cret", request.request(encodedSig), time.Now()); !errors.Is(err, signature.ErrMismatch) {
			t.Errorf("%q: Verify of the library's signature of the encoded URI = %v, want ErrMismatch (the documentation decodes)", p.encoded, err)
		}
		if got := fmt.Sprint(a.Verdicts[2*i], " ", a.Verdicts[2*i+1]); got != "invalid valid" {
			t.Errorf("%q: the library says %s of this package's signature for the encoded and decoded URI, want invalid valid", p.encoded, got)
		}
	}
}

// TestLibraryTakesFutureTimestamps pins down the other difference: the
// library's is_valid accepts a v3 timestamp 10 minutes ahead of its clock
// (it only checks the age); Verify refuses it, so a request cannot be
// signed ahead to stretch HubSpot's 5-minute window.
func TestLibraryTakesFutureTimestamps(t *testing.T) {
	now := time.Now()
	c := libCase{Secret: "s3cret", Method: "POST", URI: "https://hooks.example.com/in", Body: "[]", Version: "v3",
		Timestamp: strconv.FormatInt(now.Add(10*time.Minute).UnixMilli(), 10)}
	c.Signature = goSign(t, c)
	a := runLibrary(t, nil, []libCase{c})
	if a.Verdicts[0] != "valid" {
		t.Errorf("the library says %s of a request signed 10 minutes ahead, want valid", a.Verdicts[0])
	}
	if err := signature.Verify(c.Secret, c.request(c.Signature), now); !errors.Is(err, signature.ErrFuture) {
		t.Errorf("Verify = %v, want ErrFuture", err)
	}
}
