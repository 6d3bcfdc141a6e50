package hubspot

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the counters of every HubSpot source of a process, labelled
// by source. Build them once per registry with NewMetrics.
type Metrics struct {
	// requests counts webhook requests by result: accepted, unauthorized,
	// invalid, unavailable.
	requests *prometheus.CounterVec
	// refused counts unauthorized webhook requests by reason: unsigned,
	// stale, future, mismatch, malformed.
	refused *prometheus.CounterVec
	// notifications counts notifications stored by the receiver.
	notifications *prometheus.CounterVec
	// changes counts what the processor did with the changes it read, by
	// object type and outcome: emitted, echo, unknown_user, deleted,
	// forgotten, not_found, no_group_id, invalid.
	changes *prometheus.CounterVec
	// calls counts the Segment calls appended to the events topic, by type.
	calls *prometheus.CounterVec
	// syncRecords counts the records the catch-up and full syncs read, by
	// kind and object type.
	syncRecords *prometheus.CounterVec
	// syncRuns counts the syncs that ended, by kind and outcome: done,
	// failed, interrupted.
	syncRuns *prometheus.CounterVec
	// catchUpCheckpoint is each type's catch-up checkpoint, the newest
	// modification it has seen, in Unix seconds.
	catchUpCheckpoint *prometheus.GaugeVec
	// emailEvents counts the email events the poller read, by outcome:
	// emitted, unknown_user, invalid.
	emailEvents *prometheus.CounterVec
	// emailPolls counts the email events polls by result: ok, failed.
	emailPolls *prometheus.CounterVec
	// emailCheckpoint is the created time of the newest email event
	// handled, in seconds since the epoch.
	emailCheckpoint *prometheus.GaugeVec
}

// NewMetrics registers the sources' metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_source_webhook_requests_total",
			Help: "HubSpot webhook requests by source and result: accepted, unauthorized (forged, stale or unsigned; nothing stored), invalid (not a JSON array of notifications), unavailable (the log refused).",
		}, []string{"source", "result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_source_webhook_refused_total",
			Help: "HubSpot webhook requests answered 401, by source and reason: unsigned, stale, future, mismatch, malformed.",
		}, []string{"source", "reason"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_source_notifications_total",
			Help: "HubSpot webhook notifications appended to the notifications topic, by source.",
		}, []string{"source"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_source_changes_total",
			Help: "Changed HubSpot records the processor handled, by source, object type and outcome: emitted, echo (our own write), unknown_user (no known user matched), deleted, forgotten (privacy deletion), not_found, no_group_id (a company without its groupId), invalid (a record that makes no valid call; logged).",
		}, []string{"source", "object_type", "outcome"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_source_calls_total",
			Help: "Segment calls a HubSpot source appended to the events topic, by source and type.",
		}, []string{"source", "type"}),
		syncRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_source_sync_records_total",
			Help: "HubSpot records the catch-up (kind catch-up) and full syncs (kind full) read, by source, kind and object type.",
		}, []string{"source", "kind", "object_type"}),
		syncRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_source_sync_runs_total",
			Help: "HubSpot source syncs that ended, by source, kind (catch-up, full) and outcome: done, failed, interrupted.",
		}, []string{"source", "kind", "outcome"}),
		catchUpCheckpoint: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_hubspot_source_catch_up_checkpoint_seconds",
			Help: "The catch-up's checkpoint of a HubSpot source, by object type: the newest modification it has read, in Unix seconds.",
		}, []string{"source", "object_type"}),
		emailEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_source_email_events_total",
			Help: "HubSpot email events the poller read, by source and outcome: emitted (a track appended), unknown_user (the recipient is no known user), invalid (an event that makes no track; logged).",
		}, []string{"source", "outcome"}),
		emailPolls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_source_email_polls_total",
			Help: "Polls of HubSpot's email events API, by source and result: ok, failed (logged; tried again).",
		}, []string{"source", "result"}),
		emailCheckpoint: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_hubspot_source_email_events_checkpoint_seconds",
			Help: "The created time of the newest HubSpot email event a source has handled, in seconds since the epoch.",
		}, []string{"source"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.refused, m.notifications, m.changes, m.calls,
		m.syncRecords, m.syncRuns, m.catchUpCheckpoint, m.emailEvents, m.emailPolls, m.emailCheckpoint} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
