package hubspot_test

import (
	"net/http"
	"testing"

	"github.com/switchyard/switchyard/destinations/destinationtest"
	"github.com/switchyard/switchyard/destinations/hubspot"
)

func TestConformance(t *testing.T) {
	destinationtest.Run(t, func(t *testing.T) destinationtest.Target {
		p := newPortal(t)
		return destinationtest.Target{
			Destination: p.destination(t, hubspot.Config{}),
			// The sandbox fails requests by count, whatever they carry.
			FailRequests: func(n int) { p.sandbox.FailNext(n, http.StatusServiceUnavailable) },
		}
	})
}
