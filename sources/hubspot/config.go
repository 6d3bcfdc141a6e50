// Package hubspot is HubSpot as a source: a webhook receiver that appends
// HubSpot's signed notifications to the log, a directory of the app's known
// users learned from the log, and a processor that turns the changed
// contacts, companies and deals into Segment calls on the events topic.
package hubspot

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/transforms/hubspotsource"
)

// Config configures one HubSpot source. The yaml keys are those of a
// source's hubspot block in the config file; Name, DataDir and the topics
// are set from the rest of the file.
type Config struct {
	// Name names the source: _switchyard.source on every call it emits,
	// its webhook path /hubspot/webhooks/{name}, its consumer group
	// switchyard-source-{name} and its state directory. Required.
	Name string `yaml:"-"`

	// Token is a private-app or OAuth token with the read scopes of the
	// mapped object types. It shares its client and rate budget with every
	// hubspot destination on the same URL and token. Required.
	Token string `yaml:"token"`
	// URL is HubSpot's API root. Default https://api.hubapi.com.
	URL string `yaml:"url"`
	// ClientSecret is the app's (or private app's) client secret, which
	// verifies the webhooks' signatures. Required.
	ClientSecret string `yaml:"client_secret"`
	// PublicURL is the scheme and host of the target URL configured in
	// HubSpot, such as https://switchyard.example.com: HubSpot signs that
	// URL, so behind a load balancer or TLS proxy the receiver rebuilds it
	// from this. Default: the request's own scheme and Host (or, with
	// TrustForwardedHeaders, X-Forwarded-Proto and X-Forwarded-Host).
	PublicURL string `yaml:"public_url"`
	// TrustForwardedHeaders rebuilds the signed URL from X-Forwarded-Proto
	// and X-Forwarded-Host when PublicURL is not set. Only behind a proxy
	// that sets them. Default false.
	TrustForwardedHeaders bool `yaml:"trust_forwarded_headers"`

	// Match is how a contact is matched to a user of the app: "email" (by
	// the email the app's identify calls carry), or the name of a contact
	// property holding the app's userId. Default "email".
	Match string `yaml:"match"`
	// OnlyKnownUsers emits calls only for users the log has seen (a userId
	// of an identify call). With false, a contact whose match property
	// holds a userId is emitted whether or not the app has sent it; a
	// contact matched by email still needs a known user. Default true.
	OnlyKnownUsers *bool `yaml:"only_known_users"`
	// Contacts, Companies and Deals map HubSpot properties to trait names;
	// the word "all" maps every property under its own name. Default none:
	// the type is not read.
	Contacts  Mapping `yaml:"contacts"`
	Companies Mapping `yaml:"companies"`
	Deals     Mapping `yaml:"deals"`
	// CompanyIDProperty names the company property holding the app's
	// groupId. Default: the company's domain is the groupId.
	CompanyIDProperty string `yaml:"company_id_property"`
	// AppID is the id of the HubSpot app whose token the hubspot
	// destination writes with: changes it made (changeSource INTEGRATION,
	// sourceId the app id) are echoes and emit nothing. Default: the appId
	// each notification carries, which is the receiving app's, the same app
	// when the destination uses the source's token.
	AppID int64 `yaml:"app_id"`

	// EmailEvents polls HubSpot's marketing email events every
	// EmailEventsInterval (default 5m). Default false.
	EmailEvents         bool            `yaml:"email_events"`
	EmailEventsInterval config.Duration `yaml:"email_events_interval"`
	// CatchUpInterval is how often the catch-up searches for changes the
	// webhooks missed. Default 24h.
	CatchUpInterval config.Duration `yaml:"catch_up_interval"`
	// CatchUpOverlap is how far before its checkpoint the catch-up searches
	// again, for HubSpot's search lag: a record changed just before the
	// checkpoint may not have been searchable yet. Records already emitted
	// are not emitted again. Default 5m.
	CatchUpOverlap config.Duration `yaml:"catch_up_overlap"`

	// BatchWait is how long the processor gathers notifications before it
	// reads the changed records; BatchSize caps the notifications gathered.
	// Defaults 500ms and 500: at 100 changed contacts a second, two batch/read
	// calls a second, and a change in the log within a second.
	BatchWait config.Duration `yaml:"batch_wait"`
	BatchSize int             `yaml:"batch_size"`

	// DataDir is the process's data directory; the source keeps its state
	// in DataDir/sources/{name}. Set by the data_dir setting.
	DataDir string `yaml:"-"`
	// EventsTopic receives the calls the source emits and is where the
	// directory learns users. Default "events".
	EventsTopic string `yaml:"-"`
	// NotificationsTopic receives the webhook notifications. Default
	// "hubspot-notifications".
	NotificationsTopic string `yaml:"-"`

	// Now is the clock. Default time.Now.
	Now func() time.Time `yaml:"-"`
}

// Mapping maps HubSpot property names to trait names, or maps every
// property under its own name (the word "all" in the config file).
type Mapping struct {
	// All maps every property of the type under its own name.
	All bool
	// Fields maps property names to trait names.
	Fields map[string]string
}

// UnmarshalYAML reads a mapping of property names to trait names, or the
// word "all".
func (m *Mapping) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "all" {
			return fmt.Errorf("want a mapping of HubSpot property names to trait names, or the word all; got %q", n.Value)
		}
		*m = Mapping{All: true}
		return nil
	}
	var fields map[string]string
	if err := n.Decode(&fields); err != nil {
		return errors.New("want a mapping of HubSpot property names to trait names, or the word all")
	}
	*m = Mapping{Fields: fields}
	return nil
}

// MarshalYAML writes the mapping as UnmarshalYAML reads it.
func (m Mapping) MarshalYAML() (any, error) {
	if m.All {
		return "all", nil
	}
	return m.Fields, nil
}

// Empty reports whether nothing is mapped.
func (m Mapping) Empty() bool { return !m.All && len(m.Fields) == 0 }

// Trait returns the trait name of property p and whether it is mapped.
func (m Mapping) Trait(p string) (string, bool) {
	if m.All {
		return p, true
	}
	t, ok := m.Fields[p]
	return t, ok
}

// transform is m as transforms/hubspotsource takes a mapping.
func (m Mapping) transform() hubspotsource.Mapping {
	return hubspotsource.Mapping{All: m.All, Properties: m.Fields}
}

// Properties returns the mapped property names, sorted; nil for All.
func (m Mapping) Properties() []string {
	var out []string
	for p := range m.Fields {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// propertyName is what HubSpot accepts as an internal property name.
var propertyName = regexp.MustCompile(`^[a-z0-9_]+$`)

// sourceName is what a source name may be: it is a URL path segment and a
// directory name.
var sourceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.URL == "" {
		c.URL = "https://api.hubapi.com"
	}
	if c.Match == "" {
		c.Match = "email"
	}
	if c.OnlyKnownUsers == nil {
		yes := true
		c.OnlyKnownUsers = &yes
	}
	if c.EmailEventsInterval == 0 {
		c.EmailEventsInterval = config.Duration(5 * time.Minute)
	}
	if c.CatchUpInterval == 0 {
		c.CatchUpInterval = config.Duration(24 * time.Hour)
	}
	if c.CatchUpOverlap == 0 {
		c.CatchUpOverlap = config.Duration(5 * time.Minute)
	}
	if c.BatchWait == 0 {
		c.BatchWait = config.Duration(500 * time.Millisecond)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.EventsTopic == "" {
		c.EventsTopic = "events"
	}
	if c.NotificationsTopic == "" {
		c.NotificationsTopic = "hubspot-notifications"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first problem with c, naming its key under the
// source's hubspot block (hubspot.token, ...).
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.Name == "":
		return errors.New("name: a hubspot source needs a name")
	case !sourceName.MatchString(c.Name):
		return fmt.Errorf("name: %q must be letters, digits, '_', '.' or '-', starting with a letter or digit: it is the webhook's URL path", c.Name)
	case c.Token == "":
		return errors.New("hubspot.token: is required (a private-app or OAuth token with the mapped types' read scopes)")
	case c.ClientSecret == "":
		return errors.New("hubspot.client_secret: is required: it verifies HubSpot's webhook signatures")
	case c.Contacts.Empty() && c.Companies.Empty() && c.Deals.Empty():
		return errors.New("hubspot: map at least one of contacts, companies or deals")
	case c.Match != "email" && !propertyName.MatchString(c.Match):
		return fmt.Errorf("hubspot.match: %q is neither email nor a HubSpot property name (lowercase letters, digits and _)", c.Match)
	case c.CompanyIDProperty != "" && !propertyName.MatchString(c.CompanyIDProperty):
		return fmt.Errorf("hubspot.company_id_property: %q is not a HubSpot property name (lowercase letters, digits and _)", c.CompanyIDProperty)
	case c.AppID < 0:
		return errors.New("hubspot.app_id: must be positive")
	case c.EmailEventsInterval < 0:
		return errors.New("hubspot.email_events_interval: must be positive")
	case c.CatchUpInterval < 0:
		return errors.New("hubspot.catch_up_interval: must be positive")
	case c.CatchUpOverlap < 0:
		return errors.New("hubspot.catch_up_overlap: must be positive")
	case c.BatchWait < 0:
		return errors.New("hubspot.batch_wait: must be positive")
	case c.BatchSize < 0:
		return errors.New("hubspot.batch_size: must be positive")
	case c.NotificationsTopic == c.EventsTopic:
		return errors.New("log.hubspot_notifications_topic: must differ from log.events_topic")
	}
	if err := checkURL("hubspot.url", c.URL, true); err != nil {
		return err
	}
	if c.PublicURL != "" {
		if err := checkURL("hubspot.public_url", c.PublicURL, false); err != nil {
			return err
		}
	}
	for _, m := range []struct {
		key string
		m   Mapping
	}{{"contacts", c.Contacts}, {"companies", c.Companies}, {"deals", c.Deals}} {
		for _, p := range m.m.Properties() {
			if !propertyName.MatchString(p) {
				return fmt.Errorf("hubspot.%s.%s: is not a HubSpot property name (lowercase letters, digits and _)", m.key, p)
			}
			if m.m.Fields[p] == "" {
				return fmt.Errorf("hubspot.%s.%s: needs a trait name", m.key, p)
			}
		}
	}
	return nil
}

// checkURL refuses what is not an http(s) URL; a public URL must be just
// a scheme and host (and port), as it is joined with the webhook path.
func checkURL(key, raw string, pathAllowed bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http or https URL", key, raw)
	}
	if !pathAllowed && (strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "") {
		return fmt.Errorf("%s: %q must be only a scheme and host, such as https://switchyard.example.com: the receiver adds /hubspot/webhooks/{source}", key, raw)
	}
	return nil
}

// onlyKnown reports OnlyKnownUsers with its default.
func (c Config) onlyKnown() bool { return c.OnlyKnownUsers == nil || *c.OnlyKnownUsers }

// Group is the source's consumer group on the notifications topic.
func (c Config) Group() string { return "switchyard-source-" + c.Name }

// WebhookPath is the path HubSpot posts to: /hubspot/webhooks/{name}.
func (c Config) WebhookPath() string { return "/hubspot/webhooks/" + c.Name }
