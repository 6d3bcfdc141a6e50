package hubspot

import (
	"errors"
	"time"
)

// SyncRequest asks for one sync of a source.
type SyncRequest struct {
	// Full pages through every record of the mapped types, resuming an
	// interrupted full sync; else the catch-up runs.
	Full bool `json:"full"`
	// Since starts the catch-up at this time instead of its checkpoint.
	Since time.Time `json:"since,omitzero"`
}

// Progress is a sync's progress, as `switchyard sync`, the admin endpoint
// and the logs show it.
type Progress struct {
	Source string `json:"source"`
	// Kind is "catch-up" or "full".
	Kind string `json:"kind"`
	// State is "running", "done", "failed" or "interrupted".
	State string `json:"state"`
	// ObjectType is the type being read now.
	ObjectType string `json:"object_type"`
	// Done counts the records read so far; for a resumed full sync it
	// includes those of the run it resumed.
	Done int64 `json:"done"`
	// Total is how many records there are to read, as HubSpot counts
	// them; 0 when unknown.
	Total int64 `json:"total"`
	// Emitted counts the calls appended.
	Emitted int64     `json:"emitted"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	Error   string    `json:"error,omitempty"`
}

// Sync states.
const (
	SyncRunning     = "running"
	SyncDone        = "done"
	SyncFailed      = "failed"
	SyncInterrupted = "interrupted"
)

// ErrSyncRunning is the answer to a sync asked for while one of the same
// source runs.
var ErrSyncRunning = errors.New("a sync of this source is running")
