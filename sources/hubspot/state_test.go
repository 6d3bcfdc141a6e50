package hubspot

import (
	"testing"

	"go.uber.org/zap"
)

func TestCheckpointsAndEmittedMarksSurviveAReopen(t *testing.T) {
	cfg := Config{Name: "crm-in", DataDir: t.TempDir()}
	d, err := OpenDirectory(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	type mark struct{ After string }
	var m mark
	if ok, err := d.Checkpoint("full", &m); ok || err != nil {
		t.Fatalf("a new store has a checkpoint: %v %v", ok, err)
	}
	if err := d.SetCheckpoint("full", mark{After: "200"}); err != nil {
		t.Fatal(err)
	}
	if err := d.MarkEmitted("contacts", map[string]int64{"1": 50, "2": 70}); err != nil {
		t.Fatal(err)
	}
	if err := d.MarkEmitted("contacts", map[string]int64{"1": 40}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	if d, err = OpenDirectory(cfg, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if ok, err := d.Checkpoint("full", &m); !ok || err != nil || m.After != "200" {
		t.Fatalf("checkpoint after reopening: %v %v %+v", ok, err, m)
	}
	if got := d.Emitted("contacts", "1"); got != 50 {
		t.Errorf("an older mark replaced a newer one: %d", got)
	}
	if got := d.Emitted("companies", "2"); got != 0 {
		t.Errorf("marks are not kept per object type: %d", got)
	}
	if err := d.Forget("2"); err != nil {
		t.Fatal(err)
	}
	if got := d.Emitted("contacts", "2"); got != 0 {
		t.Errorf("a privacy deletion kept the contact's mark: %d", got)
	}
}
