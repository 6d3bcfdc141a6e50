package queue

import (
	"encoding/json"
	"time"
)

// DeadLetter is the value of a message on the dead-letter topic: the original
// message and why it could not be accepted or delivered.
type DeadLetter struct {
	// Reason says, for a person, what was wrong.
	Reason string `json:"reason"`
	// Stage is where the message failed: "gateway" for messages the gateway
	// refused, otherwise the name of the destination that gave up on it.
	Stage string `json:"stage"`
	// Class groups reasons, as the router's dead-letter counter labels
	// them (for example "http_4xx" or "retry_window"); empty for messages
	// the gateway refused.
	Class string `json:"class,omitempty"`
	// Source is the name of the source whose write key sent the message.
	Source string `json:"source,omitempty"`
	// Attempts counts delivery attempts; 0 for messages refused at the gateway.
	Attempts int `json:"attempts"`
	// LastStatus is the last HTTP status a destination answered, if any.
	LastStatus int `json:"lastStatus,omitempty"`
	// LastResponse is a short excerpt of the last response body, if any.
	LastResponse string `json:"lastResponse,omitempty"`
	// FailedAt is when the message was dead-lettered.
	FailedAt time.Time `json:"failedAt"`
	// Message is the message as it was received or as it sat in the log.
	Message json.RawMessage `json:"message"`
}
