package hubspot

import (
	"net/http"

	"go.uber.org/zap"
)

// NewWithOwnClient builds a destination whose API client and rate budget
// are its own, as a process with one destination on the token has.
func NewWithOwnClient(name string, cfg Config, log *zap.Logger, httpClient *http.Client) (*HubSpot, error) {
	client, err := NewClient(cfg, httpClient, log)
	if err != nil {
		return nil, err
	}
	return New(name, cfg, client, log)
}
