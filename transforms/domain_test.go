package transforms

import (
	"regexp"
	"strings"
	"testing"
)

func TestDomain(t *testing.T) {
	tests := []struct {
		name        string
		website     string
		registrable bool
		want        string
		wantErr     string
	}{
		{"A bare domain is kept.", "example.com", false, "example.com", ""},
		{"The scheme, www. and path are stripped.", "https://www.example.com/pricing", false, "example.com", ""},
		{"Case is folded.", "HTTPS://WWW.Example.COM", false, "example.com", ""},
		{"Port, path and query are stripped, subdomains kept.", "http://Shop.Example.co.uk:8080/path?q=1", false, "shop.example.co.uk", ""},
		{"The registrable domain is kept when asked.", "http://Shop.Example.co.uk:8080/path?q=1", true, "example.co.uk", ""},
		{"A fragment is stripped.", "example.com#team", false, "example.com", ""},
		{"Userinfo is stripped.", "https://user:secret@example.com/", false, "example.com", ""},
		{"A scheme-relative URL is read.", "//cdn.example.com/x.js", false, "cdn.example.com", ""},
		{"A trailing dot is stripped.", "example.com.", false, "example.com", ""},
		{"Surrounding spaces are stripped.", "  example.com  ", false, "example.com", ""},
		{"An international name becomes punycode.", "https://www.bücher.de/x", false, "xn--bcher-kva.de", ""},
		{"An international name in capitals becomes punycode.", "BÜCHER.DE", false, "xn--bcher-kva.de", ""},
		{"Punycode is kept.", "xn--bcher-kva.de", false, "xn--bcher-kva.de", ""},
		{"ß is kept as an international letter, not turned into ss.", "straße.de", false, "xn--strae-oqa.de", ""},
		{"Repeated www. labels are stripped.", "www.www.example.com", false, "example.com", ""},
		{"www. before a public suffix is kept.", "www.co.uk", false, "www.co.uk", ""},
		{"A private suffix's site is its own registrable domain.", "https://acme.github.io/docs", true, "acme.github.io", ""},
		{"An empty website is an error.", "  ", false, "", "website is empty"},
		{"A scheme alone is an error.", "https://", false, "", "has no host"},
		{"localhost is an error.", "http://localhost:3000", false, "", "has no dot"},
		{"A name under .localhost is an error.", "app.localhost", false, "", "special-use"},
		{"A name under .local is an error.", "printer.local", false, "", "special-use"},
		{"An IPv4 address is an error.", "http://192.168.1.10/admin", false, "", "IP address"},
		{"An IPv6 address is an error.", "http://[::1]:8080/", false, "", "IP address"},
		{"A public suffix is an error.", "co.uk", false, "", "public suffix"},
		{"A private suffix has no registrable domain.", "github.io", true, "", "no registrable domain"},
		{"An underscore is not allowed in a host.", "my_site.com", false, "", "not hold a valid domain name"},
		{"A label over 63 characters is an error.", strings.Repeat("a", 64) + ".com", false, "", "63"},
		{"A numeric last label is an error.", "1.2.3.4.5", false, "", "numeric label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Domain(tt.website, tt.registrable)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Domain(%q) = %q, %v; want an error containing %q", tt.website, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Domain(%q) = %q, %v; want %q", tt.website, got, err, tt.want)
			}
		})
	}
}

var domainShape = regexp.MustCompile(`^[a-z0-9-]+(\.[a-z0-9-]+)+$`)

func FuzzDomain(f *testing.F) {
	for _, s := range []string{"https://www.bücher.de/x", "http://Shop.Example.co.uk:8080/path?q=1", "localhost", "[::1]", "a@b@c.com", "xn--", "www.co.uk", "http://%41.com", "ＥＸＡＭＰＬＥ．com", "xn--bcher-kva.de."} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, website string, registrable bool) {
		d, err := Domain(website, registrable)
		if err != nil {
			return
		}
		if !domainShape.MatchString(d) || len(d) > 253 {
			t.Fatalf("Domain(%q) = %q, not a lowercase ASCII domain", website, d)
		}
		again, err := Domain(d, registrable)
		if err != nil || again != d {
			t.Fatalf("Domain is not idempotent: %q -> %q -> %q, %v", website, d, again, err)
		}
	})
}
