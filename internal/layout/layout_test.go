// Package layout_test holds the import rules of the README's Layout section
// and checks that the packages keep them: each package of the module may
// import only the packages of the module its rule names.
package layout_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"path"
	"strings"
	"testing"
)

const module = "github.com/switchyard/switchyard"

// rule lists, for packages whose path matches pattern, the packages of the
// module they may import. A pattern or an allowed entry ending in "/..."
// matches the folder and everything below it.
type rule struct {
	pattern string
	allowed []string
}

// rules are tried in order; the first whose pattern matches applies. They
// mirror the README's Layout table.
var rules = []rule{
	{"cmd/...", []string{"..."}},
	{"schemas", nil},
	{"transforms", nil},
	{"transforms/hubspotsource", []string{"transforms"}},
	{"transforms/...", nil},
	{"internal/config", nil},
	{"internal/dedupe", nil},
	{"internal/waitlist", nil},
	{"internal/hubspot/ratelimit", nil},
	{"internal/hubspot/api", []string{"internal/hubspot/ratelimit"}},
	{"internal/hubspot/sandbox", []string{"internal/hubspot/signature"}},
	{"internal/hubspot/signature", nil},
	{"queue", nil},
	{"queue/...", []string{"queue", "queue/kafka", "internal/config", "internal/waitlist"}},
	{"ingest", []string{"queue", "schemas", "internal/dedupe", "internal/config"}},
	{"router", []string{"queue", "destinations", "schemas", "internal/dedupe", "internal/config"}},
	{"destinations", []string{"schemas"}},
	{"destinations/destinationtest", []string{"destinations", "schemas"}},
	{"destinations/webhook/...", []string{"destinations", "destinations/webhook", "schemas", "internal/config"}},
	{"destinations/drop", []string{"destinations", "schemas"}},
	{"destinations/hubspot", []string{"destinations", "schemas", "transforms", "internal/hubspot/api", "internal/hubspot/ratelimit", "internal/config"}},
	{"sources", []string{"queue", "schemas"}},
	{"sources/hubspot", []string{"queue", "schemas", "transforms", "transforms/...", "internal/hubspot/api", "internal/hubspot/ratelimit", "internal/hubspot/signature", "internal/config"}},
	{"ui", []string{"queue", "router", "schemas", "internal/config"}},
}

func matches(pattern, pkg string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// TestImportsFollowTheLayout fails when a package imports a package of the
// module that its rule does not allow, or when a package has no rule.
func TestImportsFollowTheLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		if pkg == "internal/layout" {
			continue
		}
		r, ok := ruleFor(pkg)
		if !ok {
			t.Errorf("%s has no import rule: add it here and to the README's Layout table", pkg)
			continue
		}
		checked++
		for _, imp := range fields[1:] {
			dep, inModule := strings.CutPrefix(imp, module+"/")
			if !inModule || allowed(r, dep) {
				continue
			}
			t.Errorf("%s imports %s, which its rule (%s: %v) does not allow", pkg, dep, r.pattern, r.allowed)
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d packages; go list printed:\n%s", checked, out)
	}
}

func ruleFor(pkg string) (rule, bool) {
	for _, r := range rules {
		if matches(r.pattern, pkg) {
			return r, true
		}
	}
	return rule{}, false
}

func allowed(r rule, dep string) bool {
	for _, a := range r.allowed {
		if matches(a, dep) {
			return true
		}
	}
	return false
}

// TestRulesMatch checks the pattern matching the rules rely on.
func TestRulesMatch(t *testing.T) {
	cases := []struct {
		pattern, pkg string
		want         bool
	}{
		{"queue", "queue", true},
		{"queue", "queue/kafka", false},
		{"queue/...", "queue/kafka/kafkatest", true},
		{"queue/...", "queue", true},
		{"queue/...", "queuex", false},
		{"...", "anything/at/all", true},
	}
	for _, c := range cases {
		if got := matches(c.pattern, c.pkg); got != c.want {
			t.Errorf("matches(%q, %q) = %v, want %v", c.pattern, c.pkg, got, c.want)
		}
	}
	if _, ok := ruleFor(path.Join("sources", "elsewhere", "deep")); ok {
		t.Error("a package under sources/ with no rule of its own got one")
	}
}
