package drop

import (
	"testing"

	"github.com/switchyard/switchyard/destinations/destinationtest"
)

func TestConformance(t *testing.T) {
	destinationtest.Run(t, func(t *testing.T) destinationtest.Target {
		return destinationtest.Target{Destination: New()}
	})
}
