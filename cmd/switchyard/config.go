package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// config is the YAML configuration file. Every key is optional; the comment
// on each gives its default. Flags and SWITCHYARD_* environment variables
// override the file.
type config struct {
	// Addr is where the gateway listens. Default ":8080".
	Addr string `yaml:"addr"`
	// DataDir holds the embedded log. Default "./data".
	DataDir string `yaml:"data_dir"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// Sources and their write keys; --write-key adds one named "default".
	Sources []sourceConfig `yaml:"sources"`
	Gateway gatewayConfig  `yaml:"gateway"`
	Log     logConfig      `yaml:"log"`
	Kafka   kafkaConfig    `yaml:"kafka"`
	// Destinations are the named destination instances the router serves.
	Destinations []destinationConfig `yaml:"destinations"`
}

// destinationConfig is one destination instance: the router's settings and
// the settings of its type.
type destinationConfig struct {
	// Name names the instance: its consumer group, metrics and dead letters.
	Name string `yaml:"name"`
	// Type is hubspot, webhook or drop.
	Type string `yaml:"type"`
	// DisplayName is the instance's key in a message's integrations object.
	// Default: Name.
	DisplayName string `yaml:"display_name"`
	// Router settings; defaults as in router.Config.
	RetryWindow  duration `yaml:"retry_window"`
	BackoffMin   duration `yaml:"backoff_min"`
	BackoffMax   duration `yaml:"backoff_max"`
	MaxPending   int      `yaml:"max_pending"`
	DedupeWindow duration `yaml:"dedupe_window"`

	Webhook webhookConfig `yaml:"webhook"`
	HubSpot hubspotConfig `yaml:"hubspot"`
}

// hubspotConfig mirrors hubspot.Config; zero values take its defaults.
type hubspotConfig struct {
	Token                string            `yaml:"token"`
	URL                  string            `yaml:"url"`
	HubID                int64             `yaml:"hub_id"`
	Tier                 string            `yaml:"tier"`
	TimeZone             string            `yaml:"time_zone"`
	IDProperty           string            `yaml:"id_property"`
	CompanyIDProperty    string            `yaml:"company_id_property"`
	RegistrableDomain    bool              `yaml:"registrable_domain"`
	AutoCreateProperties bool              `yaml:"auto_create_properties"`
	ClearNulls           bool              `yaml:"clear_nulls"`
	NestedJSON           bool              `yaml:"nested_json"`
	EventNames           map[string]string `yaml:"event_names"`
	PageEvent            string            `yaml:"page_event"`
	ScreenEvent          string            `yaml:"screen_event"`
	SkipPages            bool              `yaml:"skip_pages"`
	SkipScreens          bool              `yaml:"skip_screens"`
	SkipEventDefinitions bool              `yaml:"skip_event_definitions"`
	Lists                map[string]string `yaml:"lists"`
	MaxWait              duration          `yaml:"max_wait"`
	MaxInFlight          int               `yaml:"max_in_flight"`
	Timeout              duration          `yaml:"timeout"`
}

// webhookConfig mirrors webhook.Config; zero values take its defaults.
type webhookConfig struct {
	URL         string            `yaml:"url"`
	Headers     map[string]string `yaml:"headers"`
	Batch       bool              `yaml:"batch"`
	MaxItems    int               `yaml:"max_items"`
	MaxBytes    int               `yaml:"max_bytes"`
	MaxWait     duration          `yaml:"max_wait"`
	MaxInFlight int               `yaml:"max_in_flight"`
	Timeout     duration          `yaml:"timeout"`
	Concurrency int               `yaml:"concurrency"`
}

type sourceConfig struct {
	Name      string   `yaml:"name"`
	WriteKeys []string `yaml:"write_keys"`
}

// gatewayConfig mirrors ingest.Config; zero values take its defaults.
type gatewayConfig struct {
	MaxMessageBytes  int      `yaml:"max_message_bytes"`
	MaxRequestBytes  int      `yaml:"max_request_bytes"`
	MaxBatchMessages int      `yaml:"max_batch_messages"`
	DedupeWindow     duration `yaml:"dedupe_window"`
	DedupeEntries    int      `yaml:"dedupe_entries"`
	CORSOrigins      []string `yaml:"cors_origins"`
	ProxyHeader      string   `yaml:"proxy_header"`
	MaxInFlight      int      `yaml:"max_in_flight"`
	PublishTimeout   duration `yaml:"publish_timeout"`
}

// logConfig applies to both backends.
type logConfig struct {
	// EventsTopic default "events"; DLQTopic default "dlq".
	EventsTopic string `yaml:"events_topic"`
	DLQTopic    string `yaml:"dlq_topic"`
	// Partitions of each topic when it is created. Default 8.
	Partitions int `yaml:"partitions"`
	// RetentionAge and RetentionBytes (per partition) bound the embedded
	// log. Defaults 168h and 0 (no size bound). Kafka topics keep the
	// broker's retention settings.
	RetentionAge   duration `yaml:"retention_age"`
	RetentionBytes int64    `yaml:"retention_bytes"`
}

// kafkaConfig selects Kafka instead of the embedded log when Brokers is set.
type kafkaConfig struct {
	Brokers           []string `yaml:"brokers"`
	ReplicationFactor int      `yaml:"replication_factor"`
	Compression       string   `yaml:"compression"`
	BatchTimeout      duration `yaml:"batch_timeout"`
}

// duration reads Go duration strings such as "24h" or "500ms".
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 30s, 5m or 24h", s)
	}
	if v < 0 {
		return fmt.Errorf("%q must not be negative", s)
	}
	*d = duration(v)
	return nil
}

func defaultConfig() config {
	return config{Addr: ":8080", DataDir: "./data", LogLevel: "info"}
}

// loadConfig reads a YAML file, expanding ${VAR} and ${VAR:-default} from
// the environment first. An unknown key, a value of the wrong type or an
// unset variable is an error that names it.
func loadConfig(path string) (config, error) {
	cfg := defaultConfig()
	if path == "" {
		return cfg, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("reading config: %w", err)
	}
	return parseConfig(raw, os.LookupEnv)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

func parseConfig(raw []byte, lookup func(string) (string, bool)) (config, error) {
	cfg := defaultConfig()
	var missing []string
	expanded := envRef.ReplaceAllStringFunc(string(raw), func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v, ok := lookup(m[1]); ok {
			return v
		}
		if m[2] != "" {
			return m[3]
		}
		missing = append(missing, m[1])
		return ""
	})
	if len(missing) > 0 {
		return cfg, fmt.Errorf("config: environment variable %s is not set (write ${%s:-default} to give a default)", missing[0], missing[0])
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(expanded), &doc); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	if err := decodeNode(doc.Content[0], reflect.ValueOf(&cfg).Elem(), ""); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// decodeNode decodes n into v field by field, so an error names the full key
// (for example gateway.dedupe_window) rather than only a line number.
func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	if v.Kind() == reflect.Struct && v.Type() != reflect.TypeOf(duration(0)) {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s (line %d): must be a mapping of keys to values", orRoot(path), n.Line)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			field, ok := fieldByTag(v, key)
			if !ok {
				return fmt.Errorf("%s (line %d): unknown key", join(path, key), n.Content[i].Line)
			}
			if err := decodeNode(val, field, join(path, key)); err != nil {
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
			if err := decodeNode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		var te *yaml.TypeError
		msg := err.Error()
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
		}
		return fmt.Errorf("%s (line %d): %s", path, n.Line, strings.TrimPrefix(msg, "yaml: "))
	}
	return nil
}

func fieldByTag(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == key {
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
