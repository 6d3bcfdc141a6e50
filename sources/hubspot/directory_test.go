package hubspot

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
)

// TestCatchUpAppliesTheLogToItsEndAndReturns checks that CatchUp learns
// every user identified before it began, applies a privacy deletion, and
// returns without waiting for more, then resumes from where it stopped.
func TestCatchUpAppliesTheLogToItsEndAndReturns(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	log, err := embedded.Open(embedded.Config{Dir: t.TempDir(), Partitions: 3}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cfg := Config{Name: "crm-in", DataDir: t.TempDir()}.WithDefaults()
	d, err := OpenDirectory(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	identify := func(from, to int) {
		var msgs []queue.Message
		for i := from; i < to; i++ {
			msgs = append(msgs, queue.Message{Topic: cfg.EventsTopic, Key: fmt.Appendf(nil, "u-%d", i),
				Value: fmt.Appendf(nil, `{"type":"identify","userId":"u-%d","traits":{"email":"user%d@example.com"}}`, i, i)})
		}
		if err := log.Publish(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	identify(0, 50)
	own := fmt.Sprintf(`{"type":"identify","userId":"u-1","_switchyard":{"source":%q,"hubspot":{"objectType":"contacts","objectId":"77"}}}`, cfg.Name)
	if err := log.Publish(ctx, queue.Message{Topic: cfg.EventsTopic, Key: []byte("u-1"), Value: []byte(own)}); err != nil {
		t.Fatal(err)
	}
	if err := d.CatchUp(ctx, log); err != nil {
		t.Fatalf("CatchUp: %v", err)
	}
	for i := range 50 {
		if id, ok := d.UserByEmail(fmt.Sprintf("USER%d@example.com", i)); !ok || id != fmt.Sprintf("u-%d", i) {
			t.Fatalf("user %d after CatchUp: %q %v", i, id, ok)
		}
	}

	identify(50, 60)
	deletion := fmt.Sprintf(`{"objectId":77,"subscriptionType":"contact.privacyDeletion","occurredAt":1,"_switchyard":{"source":%q}}`, cfg.Name)
	if err := log.Publish(ctx, queue.Message{Topic: cfg.NotificationsTopic, Key: []byte("contacts:77"), Value: []byte(deletion)}); err != nil {
		t.Fatal(err)
	}
	if err := d.CatchUp(ctx, log); err != nil {
		t.Fatalf("second CatchUp: %v", err)
	}
	if id, ok := d.UserByEmail("user55@example.com"); !ok || id != "u-55" {
		t.Fatalf("a user identified before the second CatchUp: %q %v", id, ok)
	}
	if !d.Forgotten("77") || d.Known("u-1") {
		t.Fatalf("the privacy deletion was not applied: forgotten %v, u-1 known %v", d.Forgotten("77"), d.Known("u-1"))
	}
}
