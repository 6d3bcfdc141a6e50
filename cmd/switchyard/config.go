package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/destinations/webhook"
	"github.com/switchyard/switchyard/ingest"
	settings "github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/queue/embedded"
	"github.com/switchyard/switchyard/queue/kafka"
	"github.com/switchyard/switchyard/router"
	hubspotsource "github.com/switchyard/switchyard/sources/hubspot"
)

// config is the YAML configuration file. Every key is optional; the
// packages' Config types document their keys and defaults. Flags and
// SWITCHYARD_* environment variables override the file.
type config struct {
	// Addr is where the gateway listens. Default ":8080".
	Addr string `yaml:"addr"`
	// DataDir holds the embedded log and the destinations' state. Default
	// "./data".
	DataDir string `yaml:"data_dir"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// MemoryLimitBytes is the Go runtime's soft memory limit: the heap is
	// collected more often as the process nears it, so the embedded log's
	// memtables and the dedupe set, which live in the heap, do not double
	// under GOGC. GOMEMLIMIT, when set, takes its place. Default 256 MiB;
	// at least 64 MiB.
	MemoryLimitBytes int64 `yaml:"memory_limit_bytes"`
	// Sources are the senders of events: apps sending Tracking API calls
	// with their write keys (--write-key adds one named "default"), and
	// sources of type hubspot.
	Sources []sourceConfig `yaml:"sources"`
	Gateway ingest.Config  `yaml:"gateway"`
	Log     logConfig      `yaml:"log"`
	// Kafka selects Kafka instead of the embedded log when Brokers is set.
	Kafka kafka.Config `yaml:"kafka"`
	// Destinations are the named destination instances the router serves.
	// With none configured there is one: a hubspot destination named
	// hubspot.
	Destinations []destinationConfig `yaml:"destinations"`
}

// logConfig names the topics and sizes the log, whichever backend holds it.
type logConfig struct {
	// EventsTopic receives accepted messages. Default "events".
	EventsTopic string `yaml:"events_topic"`
	// DLQTopic receives dead letters. Default "dlq".
	DLQTopic string `yaml:"dlq_topic"`
	// HubSpotNotificationsTopic receives the webhook notifications of the
	// hubspot sources. Default "hubspot-notifications".
	HubSpotNotificationsTopic string `yaml:"hubspot_notifications_topic"`
	// Embedded configures the embedded log; its Partitions also sizes the
	// Kafka topics switchyard creates. Kafka topics keep the broker's
	// retention settings.
	Embedded embedded.Config `yaml:",inline"`
}

// sourceConfig is one source: a Tracking API source with its write keys
// (no type), or a source of another type with its settings.
type sourceConfig struct {
	ingest.Source `yaml:",inline"`
	// Type is empty for the Tracking API, or hubspot.
	Type    string               `yaml:"type"`
	HubSpot hubspotsource.Config `yaml:"hubspot"`
}

// destinationConfig is one destination instance: the router's settings and
// the settings of its type.
type destinationConfig struct {
	// Name names the instance: its consumer group, metrics and dead letters.
	Name string `yaml:"name"`
	// Type is hubspot, webhook or drop.
	Type    string         `yaml:"type"`
	Router  router.Config  `yaml:",inline"`
	Webhook webhook.Config `yaml:"webhook"`
	HubSpot hubspot.Config `yaml:"hubspot"`
}

func defaultConfig() config {
	return config{Addr: ":8080", DataDir: "./data", LogLevel: "info", MemoryLimitBytes: defaultMemoryLimit}
}

// defaultMemoryLimit is the default of config.MemoryLimitBytes.
const defaultMemoryLimit = 256 << 20

// applyMemoryLimit sets the runtime's soft memory limit to limit, unless
// GOMEMLIMIT set one; it refuses a limit under 64 MiB, which would leave the
// process collecting all the time. It returns the limit in force.
func applyMemoryLimit(limit int64, getenv func(string) (string, bool)) (int64, error) {
	if v, ok := getenv("GOMEMLIMIT"); ok && v != "" {
		return debug.SetMemoryLimit(-1), nil
	}
	if limit < 64<<20 {
		return 0, fmt.Errorf("memory_limit_bytes is %d, want at least 67108864 (64 MiB)", limit)
	}
	debug.SetMemoryLimit(limit)
	return limit, nil
}

// defaultDestination is the destination of a config that names none: a
// HubSpot destination, which without a token delivers to the in-process
// sandbox.
func defaultDestination() destinationConfig {
	return destinationConfig{Name: "hubspot", Type: "hubspot"}
}

// loadConfig reads a YAML file, expanding ${VAR} and ${VAR:-default} in its
// values from the environment. An unknown key, a value of the wrong type or
// an unset variable is an error that names it.
func loadConfig(path string, lookup func(string) (string, bool)) (config, error) {
	if path == "" {
		return defaultConfig(), nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return defaultConfig(), fmt.Errorf("reading config: %w", err)
	}
	return parseConfig(raw, lookup)
}

func parseConfig(raw []byte, lookup func(string) (string, bool)) (config, error) {
	cfg := defaultConfig()
	d := decoder{fromEnv: make(map[*yaml.Node][]string)}
	var doc yaml.Node
	if err := yaml.Unmarshal(d.markRefs(raw), &doc); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	if err := d.expand(doc.Content[0], "", lookup); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := d.decode(doc.Content[0], reflect.ValueOf(&cfg).Elem(), ""); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// decoder decodes a parsed config field by field, so an error names the full
// key (for example gateway.dedupe_window) rather than only a line number.
type decoder struct {
	// refs are the file's ${VAR} references, in order; markRefs replaces
	// each with a marker that YAML reads as plain text anywhere.
	refs []envRefMatch
	// fromEnv holds the scalars whose value came from the environment, with
	// the variables it came from; their values are never quoted in errors.
	fromEnv map[*yaml.Node][]string
}

var (
	envRef    = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)
	envMarker = regexp.MustCompile(`SWITCHYARD_ENV_REF_([0-9]+)_`)
)

type envRefMatch struct {
	name, def  string
	hasDefault bool
}

// markRefs replaces each ${VAR} reference with a marker of letters, digits
// and underscores, so a reference parses as text wherever it is written,
// inside a flow list such as [${KEY}] too. The markers are expanded in the
// parsed values, never in the text.
func (d *decoder) markRefs(raw []byte) []byte {
	return envRef.ReplaceAllFunc(raw, func(ref []byte) []byte {
		m := envRef.FindSubmatch(ref)
		d.refs = append(d.refs, envRefMatch{name: string(m[1]), def: string(m[2]), hasDefault: bytes.Contains(ref, []byte(":-"))})
		return fmt.Appendf(nil, "SWITCHYARD_ENV_REF_%d_", len(d.refs)-1)
	})
}

// expand replaces ${VAR} and ${VAR:-default} in every scalar value under n.
// The value replaces the reference within its scalar, so whatever it holds
// (": ", "#", a newline) stays one value.
func (d *decoder) expand(n *yaml.Node, path string, lookup func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := d.expand(n.Content[i+1], join(path, d.written(n.Content[i].Value)), lookup); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if err := d.expand(item, fmt.Sprintf("%s[%d]", path, i), lookup); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		var vars []string
		var missing string
		n.Value = envMarker.ReplaceAllStringFunc(n.Value, func(marker string) string {
			i, err := strconv.Atoi(envMarker.FindStringSubmatch(marker)[1])
			if err != nil || i >= len(d.refs) {
				return marker
			}
			ref := d.refs[i]
			vars = append(vars, ref.name)
			if v, ok := lookup(ref.name); ok {
				return v
			}
			if ref.hasDefault {
				return ref.def
			}
			if missing == "" {
				missing = ref.name
			}
			return ""
		})
		if missing != "" {
			return fmt.Errorf("%s (line %d): environment variable %s is not set (write ${%s:-default} to give a default)", orRoot(path), n.Line, missing, missing)
		}
		if len(vars) > 0 {
			d.fromEnv[n] = vars
			if n.Style == 0 {
				// A plain scalar takes its type from the value, as if the
				// value had been written in the file.
				n.Tag = ""
			}
		}
	}
	return nil
}

// written returns s with its markers turned back into the references the
// file holds, for keys, which are never expanded.
func (d *decoder) written(s string) string {
	return envMarker.ReplaceAllStringFunc(s, func(marker string) string {
		i, err := strconv.Atoi(envMarker.FindStringSubmatch(marker)[1])
		if err != nil || i >= len(d.refs) {
			return marker
		}
		return "${" + d.refs[i].name + "}"
	})
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	if v.Kind() == reflect.Struct && !v.Addr().Type().Implements(unmarshalerType) {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s (line %d): must be a mapping of keys to values", orRoot(path), n.Line)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := d.written(n.Content[i].Value), n.Content[i+1]
			field, ok := fieldByKey(v, key)
			if !ok {
				return fmt.Errorf("%s (line %d): unknown key", join(path, key), n.Content[i].Line)
			}
			if err := d.decode(val, field, join(path, key)); err != nil {
				return err
			}
		}
		return nil
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct {
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s (line %d): must be a list", path, n.Line)
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		if vars := d.varsUnder(n); len(vars) > 0 {
			return fmt.Errorf("%s (line %d): the value from %s is not %s", path, n.Line, describeVars(vars), describeType(v.Type()))
		}
		var te *yaml.TypeError
		msg := err.Error()
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
		}
		return fmt.Errorf("%s (line %d): %s", path, n.Line, strings.TrimPrefix(msg, "yaml: "))
	}
	return nil
}

// varsUnder returns the environment variables the scalars under n came from.
func (d *decoder) varsUnder(n *yaml.Node) []string {
	vars := d.fromEnv[n]
	for _, c := range n.Content {
		vars = append(vars, d.varsUnder(c)...)
	}
	return vars
}

func describeVars(vars []string) string {
	vars = slices.Compact(vars)
	refs := make([]string, len(vars))
	for i, v := range vars {
		refs[i] = "${" + v + "}"
	}
	return strings.Join(refs, ", ")
}

// describeType says in words what a setting of type t accepts.
func describeType(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(settings.Duration(0)):
		return "a duration such as 30s, 5m or 24h"
	case reflect.TypeOf(settings.TimeZone{}):
		return "an IANA time zone such as Europe/Paris"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	case reflect.Map:
		return "a mapping of keys to values"
	default:
		return "a valid " + t.Kind().String()
	}
}

// fieldByKey finds the field of struct v whose yaml tag is key, looking
// into inline fields too.
func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if opts == "inline" {
			if f, ok := fieldByKey(v.Field(i), key); ok {
				return f, true
			}
			continue
		}
		if name == key && name != "-" && name != "" {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func (c config) eventsTopic() string {
	if c.Log.EventsTopic == "" {
		return "events"
	}
	return c.Log.EventsTopic
}

func (c config) dlqTopic() string {
	if c.Log.DLQTopic == "" {
		return "dlq"
	}
	return c.Log.DLQTopic
}

func (c config) notificationsTopic() string {
	if c.Log.HubSpotNotificationsTopic == "" {
		return "hubspot-notifications"
	}
	return c.Log.HubSpotNotificationsTopic
}

// gatewayConfig is the gateway section with the Tracking API sources and
// the topics. The hubspot sources' receivers are added as routes by
// serve.
func (c config) gatewayConfig() ingest.Config {
	g := c.Gateway
	g.Sources = nil
	for _, s := range c.Sources {
		if s.Type == "" {
			g.Sources = append(g.Sources, s.Source)
		}
	}
	g.EventsTopic, g.DLQTopic = c.eventsTopic(), c.dlqTopic()
	return g
}

// hubspotSources returns the settings of the hubspot sources, with their
// names, the data directory and the topics, each checked; an error names
// the source's key, such as sources[2].hubspot.token.
func (c config) hubspotSources() ([]hubspotsource.Config, error) {
	names := make(map[string]bool)
	var out []hubspotsource.Config
	for i, s := range c.Sources {
		key := fmt.Sprintf("sources[%d]", i)
		if s.Name != "" && names[s.Name] {
			return nil, fmt.Errorf("%s.name: %q is used twice", key, s.Name)
		}
		names[s.Name] = true
		switch s.Type {
		case "":
			if !reflect.ValueOf(s.HubSpot).IsZero() {
				return nil, fmt.Errorf("%s.hubspot: is only for sources of type hubspot; add type: hubspot", key)
			}
			continue
		case "hubspot":
		default:
			return nil, fmt.Errorf("%s.type: %q is not hubspot (leave it out for a source sending Tracking API calls with write keys)", key, s.Type)
		}
		if len(s.WriteKeys) > 0 {
			return nil, fmt.Errorf("%s.write_keys: a hubspot source takes no write keys; HubSpot signs its webhooks with hubspot.client_secret", key)
		}
		hc := s.HubSpot
		hc.Name, hc.DataDir = s.Name, c.DataDir
		hc.EventsTopic, hc.NotificationsTopic = c.eventsTopic(), c.notificationsTopic()
		if err := hc.Validate(); err != nil {
			if strings.HasPrefix(err.Error(), "log.") {
				return nil, err
			}
			return nil, fmt.Errorf("%s.%w", key, err)
		}
		out = append(out, hc.WithDefaults())
	}
	return out, nil
}

// routerConfig is a destination's router settings with its name and the
// dead-letter topic.
func (c config) routerConfig(dc destinationConfig) router.Config {
	r := dc.Router
	r.Destination = dc.Name
	r.DLQTopic = c.dlqTopic()
	return r
}
