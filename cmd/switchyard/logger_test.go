package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestARepeatedMessageIsWrittenABoundedNumberOfTimes logs 100,000 dead
// letters of one reason and checks the log holds at most logBurst of them
// per second, while other messages still get through.
func TestARepeatedMessageIsWrittenABoundedNumberOfTimes(t *testing.T) {
	var out bytes.Buffer
	logger, err := newLogger("info", &out)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	logger = logger.With(zap.String("component", "router"))
	for i := range n {
		logger.Info("dead-lettered", zap.Int("attempts", i), zap.String("reason", "the contact has no email"))
	}
	logger.Warn("a different message")
	logger.Error("a different message") // another level: counted apart
	got := strings.Count(out.String(), `"dead-lettered"`)
	// The loop may straddle a second or two on a slow machine.
	if got == 0 || got > 3*logBurst {
		t.Fatalf("%d of %d repeated lines written, want between 1 and %d", got, n, 3*logBurst)
	}
	if strings.Count(out.String(), `"a different message"`) != 2 {
		t.Fatalf("a message logged once was dropped:\n%s", out.String()[max(0, out.Len()-500):])
	}
	t.Logf("%d dead letters of one reason wrote %d lines", n, got)
}
