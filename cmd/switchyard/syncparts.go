package main

import (
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/queue"
	hubspotsource "github.com/switchyard/switchyard/sources/hubspot"
)

// hubspotParts builds what runs besides a hubspot source's processor: its
// catch-up and full sync (hubspotsource.Syncer) and its email-events
// poller (hubspotsource.EmailPoller). Every command uses these; tests give
// doubles of their own.
var hubspotParts = sourceParts{
	newSyncer: func(p *hubspotsource.Processor, dir *hubspotsource.Directory, logger *zap.Logger) syncer {
		return hubspotsource.NewSyncer(p, dir, logger)
	},
	newEmailPoller: func(cfg hubspotsource.Config, log queue.Log, client *api.Client, dir *hubspotsource.Directory, m *hubspotsource.Metrics, logger *zap.Logger) (runner, error) {
		e, err := hubspotsource.NewEmailPoller(cfg, log, client, dir, m, logger)
		if err != nil {
			return nil, err
		}
		return e.Run, nil
	},
}
