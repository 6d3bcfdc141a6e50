package hubspot

import (
	"errors"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/internal/hubspot/ratelimit"
)

// Config configures a HubSpot destination instance. Zero fields take the
// defaults given.
type Config struct {
	// Token is a private-app token or an OAuth access token. Required.
	Token string
	// BaseURL is the API root. Default https://api.hubapi.com.
	BaseURL string
	// HubID is the portal id, which custom event names carry
	// (pe{HubID}_name). Required for track, page and screen.
	HubID int64
	// Tier sizes the rate limits: free, starter, professional, enterprise,
	// api-add-on or oauth. Default free.
	Tier string
	// TimeZone is the account's time zone, in which the daily limit resets.
	// Default UTC.
	TimeZone *time.Location

	// IDProperty is the contact property identify upserts by: "email"
	// (traits.email) or a unique property that holds the app's user id
	// (userId). Default "email".
	IDProperty string
	// CompanyIDProperty, when set, is a unique company property holding the
	// groupId: groups without a website are upserted by it.
	CompanyIDProperty string
	// RegistrableDomain matches companies by their registrable domain
	// (shop.example.co.uk becomes example.co.uk). Default false.
	RegistrableDomain bool
	// AutoCreateProperties creates properties the portal lacks, in the
	// "switchyard" property group, with a type inferred from the value.
	// Default false: such traits are skipped and the skip is recorded on
	// the event's outcome.
	AutoCreateProperties bool
	// ClearNulls sends null traits as "", clearing the property. Default
	// false: nulls are skipped.
	ClearNulls bool
	// NestedJSON sends nested trait objects as JSON text instead of
	// flattening them with '_'. Default false.
	NestedJSON bool

	// EventNames maps track event names to fully qualified custom event
	// names (pe{HubID}_...). Unmapped events get pe{HubID}_{normalized name}.
	EventNames map[string]string
	// PageEvent and ScreenEvent name the custom events page and screen
	// calls become. Defaults "page_viewed" and "screen_viewed".
	PageEvent, ScreenEvent string
	// SkipPages and SkipScreens send nothing for page and screen calls.
	SkipPages, SkipScreens bool
	// SkipEventDefinitions stops the destination from defining the custom
	// events it names itself, and their properties, before sending them.
	// Default false: they are defined the first time they are sent.
	SkipEventDefinitions bool

	// Lists maps Segment Engage audience keys (properties.audience_key of
	// "Audience Entered" and "Audience Exited" tracks) to the ILS ids of
	// MANUAL or SNAPSHOT contact lists. Those tracks add the contact to, or
	// remove it from, the list, and are still sent as behavioral events.
	// Audience events with other keys are only behavioral events. Default
	// none.
	Lists map[string]string

	// MaxWait is how long a batch collects events before it is sent; longer
	// windows coalesce more events of one contact into one input. Default
	// 500ms.
	MaxWait time.Duration
	// MaxInFlight caps the batches sent at once. Default 2.
	MaxInFlight int
	// Timeout bounds one API call. Default 30s.
	Timeout time.Duration

	// StateDir, when set, keeps state across restarts: the company id found
	// for each domain (so it is not searched again) and the associations
	// waiting for a contact. Default: none (kept in memory only).
	StateDir string
	// Metrics, when set, counts calls, records and skips.
	Metrics *Metrics

	// Clock paces the rate limits and times the daily pause. Default the
	// wall clock; tests inject their own.
	Clock ratelimit.Clock
}

func (c Config) withDefaults() (Config, error) {
	if c.Token == "" {
		return c, errors.New("token: is required (or leave it empty in serve to use the sandbox)")
	}
	if c.Tier == "" {
		c.Tier = string(ratelimit.Free)
	}
	if _, err := ratelimit.TierBurst(ratelimit.Tier(c.Tier)); err != nil {
		return c, fmt.Errorf("tier: %w", err)
	}
	if c.HubID < 0 {
		return c, errors.New("hub_id: must be a portal id")
	}
	for key, id := range c.Lists {
		if key == "" {
			return c, errors.New("lists: an audience key is empty")
		}
		if !isListID(id) {
			return c, fmt.Errorf("lists: audience %q: list id %q is not an ILS list id (digits only)", key, id)
		}
	}
	if c.TimeZone == nil {
		c.TimeZone = time.UTC
	}
	if c.IDProperty == "" {
		c.IDProperty = "email"
	}
	if c.PageEvent == "" {
		c.PageEvent = "page_viewed"
	}
	if c.ScreenEvent == "" {
		c.ScreenEvent = "screen_viewed"
	}
	if c.MaxWait < 0 || c.MaxInFlight < 0 || c.Timeout < 0 {
		return c, errors.New("max_wait, max_in_flight and timeout must not be negative")
	}
	if c.MaxWait == 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 2
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	return c, nil
}

// isListID reports whether id looks like an ILS list id: a number.
func isListID(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
