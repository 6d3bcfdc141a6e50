package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	sessionCookie = "switchyard_ui_session"
	csrfHeader    = "X-CSRF-Token"
	csrfField     = "csrf"
	sessionLife   = 12 * time.Hour
)

// session is what a signed cookie carries: an id and when it ends. It holds
// no part of the admin token.
type session struct {
	id      [16]byte
	expires time.Time
}

// auth signs sessions and checks requests. The signing key is derived from
// the admin token, so every process with the same token accepts the same
// sessions and changing the token ends them all; with no token it is random.
type auth struct {
	token string
	key   []byte
	now   func() time.Time
}

func newAuth(token string, now func() time.Time) (*auth, error) {
	a := &auth{token: token, now: now}
	if token != "" {
		m := hmac.New(sha256.New, []byte(token))
		m.Write([]byte("switchyard ui session key"))
		a.key = m.Sum(nil)
	} else {
		a.key = make([]byte, 32)
		if _, err := rand.Read(a.key); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *auth) sign(data []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write(data)
	return m.Sum(nil)
}

// newSession makes a session and the cookie value that carries it.
func (a *auth) newSession() (session, string, error) {
	var s session
	if _, err := rand.Read(s.id[:]); err != nil {
		return s, "", err
	}
	s.expires = a.now().Add(sessionLife).Truncate(time.Second)
	payload := make([]byte, 24)
	copy(payload, s.id[:])
	binary.BigEndian.PutUint64(payload[16:], uint64(s.expires.Unix()))
	value := base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(a.sign(payload))
	return s, value, nil
}

// parseSession checks a cookie value's signature and expiry.
func (a *auth) parseSession(value string) (session, bool) {
	var s session
	p, sig, ok := strings.Cut(value, ".")
	if !ok {
		return s, false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || len(payload) != 24 || !hmac.Equal(mac, a.sign(payload)) {
		return s, false
	}
	copy(s.id[:], payload)
	s.expires = time.Unix(int64(binary.BigEndian.Uint64(payload[16:])), 0)
	if !a.now().Before(s.expires) {
		return s, false
	}
	return s, true
}

// csrfToken is the session's token for write actions: a signature of its
// id, so it needs no storage and is useless without the session cookie.
func (a *auth) csrfToken(s session) string {
	return base64.RawURLEncoding.EncodeToString(a.sign(append([]byte("csrf:"), s.id[:]...)))
}

// tokenMatches compares a presented admin token in constant time.
func (a *auth) tokenMatches(presented string) bool {
	if a.token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(presented), []byte(a.token)) == 1
}

// caller is who a request comes from, once authenticated.
type caller struct {
	session *session // nil for a bearer-token caller
	bearer  bool
}

var (
	errUnauthenticated = errors.New("authentication required")
	errNotLoopback     = errors.New("no admin token is configured, so the page answers only loopback clients")
)

// authenticate finds the caller of r: a valid session cookie, or the admin
// token as a bearer token. With no admin token configured only loopback
// clients are let in.
func (a *auth) authenticate(r *http.Request) (caller, error) {
	if a.token == "" && !isLoopback(r.RemoteAddr) {
		return caller{}, errNotLoopback
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") && a.tokenMatches(strings.TrimSpace(tok)) {
			return caller{bearer: true}, nil
		}
		return caller{}, errUnauthenticated
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if s, ok := a.parseSession(c.Value); ok {
			return caller{session: &s}, nil
		}
	}
	return caller{}, errUnauthenticated
}

// checkWrite refuses a write action that may come from another site: the
// Origin (or Sec-Fetch-Site) must say same origin, and a session caller must
// send the session's CSRF token in the X-CSRF-Token header or the csrf form
// field. A bearer caller sends no ambient credentials, so it needs no token.
func (a *auth) checkWrite(r *http.Request, c caller) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	if c.bearer {
		return nil
	}
	if c.session == nil {
		return errUnauthenticated
	}
	presented := r.Header.Get(csrfHeader)
	if presented == "" {
		presented = r.PostFormValue(csrfField)
	}
	if subtle.ConstantTimeCompare([]byte(presented), []byte(a.csrfToken(*c.session))) != 1 {
		return errors.New("missing or wrong CSRF token")
	}
	return nil
}

// sameOrigin refuses requests a browser marks as coming from another site.
func sameOrigin(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return errors.New("cross-site request refused (Sec-Fetch-Site: " + site + ")")
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return errors.New("cross-origin request refused (Origin: " + origin + ")")
	}
	return nil
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// setSessionCookie sends value as the session cookie: HttpOnly, SameSite
// Strict, scoped to the page's path, Secure when the request came over TLS.
func setSessionCookie(w http.ResponseWriter, r *http.Request, value string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/ui",
		Expires:  expires,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}
