package main

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// readmeConfig returns the YAML example of the README's configuration
// section.
func readmeConfig(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Configuration\n")
	if !ok {
		t.Fatal("the README has no configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the configuration section has no yaml block")
	}
	return m[1]
}

// TestReadmeConfigListsEverySetting loads the README's example with the
// real loader and checks that it shows every key the config structs have,
// so the documentation cannot drift from the code.
func TestReadmeConfigListsEverySetting(t *testing.T) {
	example := readmeConfig(t)
	anyValue := func(string) (string, bool) { return "from-env", true }
	if _, err := parseConfig([]byte(example), anyValue); err != nil {
		t.Fatalf("the README example does not load: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(example), &doc); err != nil {
		t.Fatal(err)
	}
	shown := make(map[string]bool)
	documentedKeys(doc.Content[0], "", shown)
	var missing []string
	for _, key := range settingKeys(reflect.TypeOf(config{}), "") {
		if !shown[key] {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("the README's configuration example lacks %s", strings.Join(missing, ", "))
	}
}

// documentedKeys records the key paths of a YAML document, with list
// indexes left out (destinations.name).
func documentedKeys(n *yaml.Node, path string, shown map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := join(path, n.Content[i].Value)
			shown[key] = true
			documentedKeys(n.Content[i+1], key, shown)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			documentedKeys(item, path, shown)
		}
	}
}

// settingKeys returns the key paths of every setting of struct type t.
func settingKeys(t reflect.Type, path string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			keys = append(keys, settingKeys(f.Type, path)...)
			continue
		}
		if name == "-" {
			continue
		}
		if name == "" {
			// Every exported field is a setting or says it is not.
			keys = append(keys, t.String()+"."+f.Name+" (no yaml tag)")
			continue
		}
		key := join(path, name)
		keys = append(keys, key)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshalerType) {
			keys = append(keys, settingKeys(ft, key)...)
		}
	}
	return keys
}
