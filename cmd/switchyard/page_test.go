package main

import (
	"context"
	"testing"

	"github.com/switchyard/switchyard/ui"
)

// testPage is a delivery page over an empty registry, without a token,
// ending with the test.
func testPage(t *testing.T) *deliveryPage {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p, err := newDeliveryPage(ctx, "", newRegistry(), nil, ui.LiveConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
