package hubspot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIDFileRemembersAcrossOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "company-ids.jsonl")
	f, ids, err := openIDFile(path)
	if err != nil || len(ids) != 0 {
		t.Fatalf("%v %v", ids, err)
	}
	f.add("d:acme.com", "101")
	f.add("d:globex.example", "102")
	f.add("d:acme.com", "103") // a later id for the same key wins
	f.close()
	// A crash mid-write leaves a torn line; it is ignored.
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, append(raw, []byte(`{"k":"d:torn`)...), 0o644)

	f, ids, err = openIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids["d:acme.com"] != "103" || ids["d:globex.example"] != "102" {
		t.Fatalf("reopened: %v", ids)
	}
	// What is added after a torn line is read back whole.
	f.add("d:initech.example", "104")
	f.close()
	f, ids, err = openIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	if ids["d:initech.example"] != "104" {
		t.Fatalf("the pair added after a torn line was lost: %v", ids)
	}
}
