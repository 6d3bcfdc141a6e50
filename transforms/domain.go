package transforms

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Domain turns a website into the domain HubSpot matches companies by:
//
//   - surrounding spaces, the scheme ("https://", or a leading "//"),
//     userinfo ("user:pass@"), the port, the path, the query and the
//     fragment are stripped, as is a trailing '.';
//   - the host is mapped for lookup (IDNA 2008 / UTS 46, non-transitional,
//     as browsers do): lowercased, and international names become punycode,
//     so "https://www.bücher.de/x" gives "xn--bcher-kva.de";
//   - leading "www." labels are stripped, unless what is left has no dot
//     or is a public suffix ("www.co.uk" and "www.github.io" stay as they
//     are);
//   - with registrable set, the host is reduced to its registrable domain,
//     the public suffix plus one label ("shop.example.co.uk" gives
//     "example.co.uk"); private suffixes count, so "acme.github.io" stays
//     "acme.github.io".
//
// A value that does not name a public host is an error: an empty value, an
// IP address (a company is not found by its server's address), a name
// without a dot ("localhost", "intranet"), a name under the special-use
// top-level domains localhost, local, internal, invalid and test, a name
// that is itself a public suffix ("co.uk"), a name whose last label is
// numeric, and a name that is not valid IDNA or longer than DNS allows.
//
// The result is lowercase ASCII labels of letters, digits and '-' joined by
// '.', at most 253 bytes, and Domain(result, registrable) returns result.
func Domain(website string, registrable bool) (string, error) {
	host, err := websiteHost(website)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(host, "[") {
		return "", fmt.Errorf("website %s is an IP address, not a domain", quote(website))
	}
	if !utf8.ValidString(host) {
		return "", fmt.Errorf("website %s is not valid UTF-8", quote(website))
	}
	ascii, err := idna.Lookup.ToASCII(host)
	if err == nil && strings.Contains(ascii, "xn--") {
		// Punycode must read back to the same name.
		var again string
		if again, err = idna.Lookup.ToASCII(ascii); err == nil && again != ascii {
			err = fmt.Errorf("punycode %q does not read back", ascii)
		}
	}
	if err != nil {
		return "", fmt.Errorf("website %s does not hold a valid domain name: %v", quote(website), err)
	}
	if _, err := netip.ParseAddr(ascii); err == nil {
		return "", fmt.Errorf("website %s is an IP address, not a domain", quote(website))
	}
	if err := checkDNS(ascii); err != nil {
		return "", fmt.Errorf("website %s: %v", quote(website), err)
	}
	for strings.HasPrefix(ascii, "www.") && isSite(ascii[len("www."):]) {
		ascii = ascii[len("www."):]
	}
	if err := checkPublic(ascii); err != nil {
		return "", fmt.Errorf("website %s: %v", quote(website), err)
	}
	if registrable {
		reg, err := publicsuffix.EffectiveTLDPlusOne(ascii)
		if err != nil {
			return "", fmt.Errorf("website %s has no registrable domain: %v", quote(website), err)
		}
		ascii = reg
	}
	return ascii, nil
}

// websiteHost cuts the host out of a website value.
func websiteHost(website string) (string, error) {
	s := strings.TrimSpace(website)
	if s == "" {
		return "", errors.New("website is empty")
	}
	if i := strings.Index(s, "://"); i >= 0 && isScheme(s[:i]) {
		s = s[i+len("://"):]
	} else if strings.HasPrefix(s, "//") {
		s = s[len("//"):]
	}
	if i := strings.IndexAny(s, "/?#\\"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if strings.HasPrefix(s, "[") {
		return s, nil // an IPv6 literal; the caller reports it
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", fmt.Errorf("website %s has no host", quote(website))
	}
	return s, nil
}

// isScheme reports whether s is a URL scheme: a letter, then letters,
// digits, '+', '-' or '.'.
func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // lowercase letters; digits and "+-." are unchanged or rejected below
		switch {
		case 'a' <= c && c <= 'z':
		case i > 0 && (isDigit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'):
		default:
			return false
		}
	}
	return true
}

// checkDNS checks label characters and lengths of an ASCII host.
func checkDNS(host string) error {
	if len(host) > 253 {
		return fmt.Errorf("the host has %d characters, more than the 253 DNS allows", len(host))
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" {
			return errors.New("the host has an empty label")
		}
		if len(label) > 63 {
			return fmt.Errorf("the label %s has more than the 63 characters DNS allows", quote(label))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isLower(c) && !isDigit(c) && c != '-' {
				return fmt.Errorf("the label %s holds %q", quote(label), c)
			}
		}
	}
	return nil
}

// checkPublic refuses hosts that cannot be a company's public domain.
func checkPublic(host string) error {
	dot := strings.LastIndexByte(host, '.')
	if dot < 0 {
		return fmt.Errorf("%s has no dot, so it is not a public domain", quote(host))
	}
	tld := host[dot+1:]
	switch tld {
	case "localhost", "local", "internal", "invalid", "test":
		return fmt.Errorf("%s is under the special-use domain .%s", quote(host), tld)
	}
	if strings.Trim(tld, "0123456789") == "" {
		return fmt.Errorf("%s ends in a numeric label, so it is not a domain", quote(host))
	}
	if isPublicSuffix(host) {
		return fmt.Errorf("%s is a public suffix, not a domain", quote(host))
	}
	return nil
}

// isSite reports whether host can stand without a "www." before it: it has
// a dot and is not a public suffix, ICANN or private.
func isSite(host string) bool {
	suffix, _ := publicsuffix.PublicSuffix(host)
	return strings.Contains(host, ".") && suffix != host
}

// isPublicSuffix reports whether host is an ICANN public suffix such as
// "com" or "co.uk".
func isPublicSuffix(host string) bool {
	suffix, icann := publicsuffix.PublicSuffix(host)
	return icann && suffix == host
}
