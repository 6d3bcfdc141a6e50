package hubspot

import (
	"errors"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/hubspot/ratelimit"
)

// Config configures a HubSpot destination instance. Zero fields take the
// defaults given. The yaml keys are those of a destination's hubspot section
// in the config file. Token, BaseURL, Tier, TimeZone, Timeout and Clock
// configure the token's API client (see NewClient), which destinations on
// one token share.
type Config struct {
	// Token is a private-app token or an OAuth access token. Required.
	Token string `yaml:"token"`
	// BaseURL is the API root. Default https://api.hubapi.com.
	BaseURL string `yaml:"url"`
	// HubID is the portal id, which custom event names carry
	// (pe{HubID}_name). Required for track, page and screen. Events a
	// HubSpot source read from this portal (_switchyard.hubspot.hubId equal
	// to HubID) are not written back: the destination learns HubSpot's
	// property times from them. Unset, every event from a HubSpot source is
	// taken as from this portal; set it to have another portal's events
	// written.
	HubID int64 `yaml:"hub_id"`
	// Tier sizes the rate limits: free, starter, professional, enterprise,
	// api-add-on or oauth. Default free.
	Tier string `yaml:"tier"`
	// TimeZone is the account's time zone, in which the daily limit resets,
	// as an IANA name such as Europe/Paris. Default UTC.
	TimeZone config.TimeZone `yaml:"time_zone"`

	// IDProperty is the contact property identify upserts by: "email"
	// (traits.email) or a unique property that holds the app's user id
	// (userId). Default "email".
	IDProperty string `yaml:"id_property"`
	// CompanyIDProperty, when set, is a unique company property holding the
	// groupId: groups without a website are upserted by it.
	CompanyIDProperty string `yaml:"company_id_property"`
	// RegistrableDomain matches companies by their registrable domain
	// (shop.example.co.uk becomes example.co.uk). Default false.
	RegistrableDomain bool `yaml:"registrable_domain"`
	// AutoCreateProperties creates properties the portal lacks, in the
	// "switchyard" property group, with a type inferred from the value.
	// Default false: such traits are skipped and the skip is recorded on
	// the event's outcome.
	AutoCreateProperties bool `yaml:"auto_create_properties"`
	// ClearNulls sends null traits as "", clearing the property. Default
	// false: nulls are skipped.
	ClearNulls bool `yaml:"clear_nulls"`
	// NestedJSON sends nested trait objects as JSON text instead of
	// flattening them with '_'. Default false.
	NestedJSON bool `yaml:"nested_json"`

	// EventNames maps track event names to fully qualified custom event
	// names (pe{HubID}_...). Unmapped events get pe{HubID}_{normalized name}.
	EventNames map[string]string `yaml:"event_names"`
	// PageEvent and ScreenEvent name the custom events page and screen
	// calls become. Defaults "page_viewed" and "screen_viewed".
	PageEvent   string `yaml:"page_event"`
	ScreenEvent string `yaml:"screen_event"`
	// SkipPages and SkipScreens send nothing for page and screen calls.
	SkipPages   bool `yaml:"skip_pages"`
	SkipScreens bool `yaml:"skip_screens"`
	// SkipEventDefinitions stops the destination from defining the custom
	// events it names itself, and their properties, before sending them.
	// Default false: they are defined the first time they are sent.
	SkipEventDefinitions bool `yaml:"skip_event_definitions"`

	// Lists maps Segment Engage audience keys (properties.audience_key of
	// "Audience Entered" and "Audience Exited" tracks) to the ILS ids of
	// MANUAL or SNAPSHOT contact lists. Those tracks add the contact to, or
	// remove it from, the list, and are still sent as behavioral events.
	// Audience events with other keys are only behavioral events. Default
	// none.
	Lists map[string]string `yaml:"lists"`

	// MaxWait is how long a batch collects events before it is sent; longer
	// windows coalesce more events of one contact into one input. Default
	// 500ms.
	MaxWait config.Duration `yaml:"max_wait"`
	// MaxInFlight caps the batches sent at once. Default 2.
	MaxInFlight int `yaml:"max_in_flight"`
	// Timeout bounds one API call. Default 30s.
	Timeout config.Duration `yaml:"timeout"`

	// StateDir, when set, keeps state across restarts: the company id found
	// for each domain (so it is not searched again) and the associations
	// waiting for a contact. Default: none (kept in memory only).
	StateDir string `yaml:"-"`
	// Metrics, when set, counts calls, records and skips.
	Metrics *Metrics `yaml:"-"`
	// Mapped, when set, is told what each key of an event's traits or
	// properties became, by the event's index in the batch given to Send,
	// once for each object the event writes. A dry run shows it.
	Mapped func(event int, mapping []Mapping) `yaml:"-"`

	// Clock paces the rate limits and times the daily pause. Default the
	// wall clock; tests inject their own.
	Clock ratelimit.Clock `yaml:"-"`
}

// withClientDefaults validates and fills in the settings of the token's
// API client.
func (c Config) withClientDefaults() (Config, error) {
	if c.Token == "" {
		return c, errors.New("token: is required (or leave it empty to use the sandbox)")
	}
	if c.Tier == "" {
		c.Tier = string(ratelimit.Free)
	}
	if _, err := ratelimit.TierBurst(ratelimit.Tier(c.Tier)); err != nil {
		return c, fmt.Errorf("tier: %w", err)
	}
	if c.TimeZone.Location == nil {
		c.TimeZone.Location = time.UTC
	}
	if c.Timeout < 0 {
		return c, errors.New("timeout: must not be negative")
	}
	if c.Timeout == 0 {
		c.Timeout = config.Duration(30 * time.Second)
	}
	return c, nil
}

// withDefaults validates and fills in the destination's own settings.
func (c Config) withDefaults() (Config, error) {
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
	if c.IDProperty == "" {
		c.IDProperty = "email"
	}
	if c.PageEvent == "" {
		c.PageEvent = "page_viewed"
	}
	if c.ScreenEvent == "" {
		c.ScreenEvent = "screen_viewed"
	}
	if c.MaxWait < 0 || c.MaxInFlight < 0 {
		return c, errors.New("max_wait and max_in_flight must not be negative")
	}
	if c.MaxWait == 0 {
		c.MaxWait = config.Duration(500 * time.Millisecond)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 2
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
