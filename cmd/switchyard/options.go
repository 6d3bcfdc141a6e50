package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/ingest"
)

// options are the flags every command shares. Each overrides the config file
// and its SWITCHYARD_* environment variable.
type options struct {
	configPath   string
	addr         string
	dataDir      string
	writeKey     string
	kafkaBrokers string
	logLevel     string
	hubspotURL   string
	hubspotToken string
	hubspotHubID string
	hubspotTier  string
	set          map[string]bool
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("switchyard "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// setUp is every command's prelude: it registers the shared options on fs,
// which holds the command's own flags, parses args, refuses positional
// arguments, loads the configuration, builds the logger and sets the memory
// limit.
func setUp(fs *flag.FlagSet, args []string, stderr io.Writer) (config, *zap.Logger, error) {
	var opts options
	opts.register(fs)
	if err := fs.Parse(args); err != nil {
		return config{}, nil, err
	}
	if fs.NArg() > 0 {
		return config{}, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := opts.load(fs, os.LookupEnv)
	if err != nil {
		return config{}, nil, err
	}
	logger, err := newLogger(cfg.LogLevel, stderr)
	if err != nil {
		return config{}, nil, err
	}
	if _, err := applyMemoryLimit(cfg.MemoryLimitBytes, os.LookupEnv); err != nil {
		return config{}, nil, err
	}
	return cfg, logger, nil
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.configPath, "config", "", "YAML config `file` (${VAR} and ${VAR:-default} are expanded)")
	fs.StringVar(&o.addr, "addr", "", "listen `address` (env SWITCHYARD_ADDR; default :8080)")
	fs.StringVar(&o.dataDir, "data-dir", "", "embedded log `dir` (env SWITCHYARD_DATA_DIR; default ./data)")
	fs.StringVar(&o.writeKey, "write-key", "", "write `key` of a source named default (env SWITCHYARD_WRITE_KEY)")
	fs.StringVar(&o.kafkaBrokers, "kafka-brokers", "", "comma-separated Kafka `brokers`; the embedded log when empty (env SWITCHYARD_KAFKA_BROKERS)")
	fs.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (env SWITCHYARD_LOG_LEVEL; default info)")
	fs.StringVar(&o.hubspotURL, "hubspot-url", "", "HubSpot API `url` for every hubspot destination (env SWITCHYARD_HUBSPOT_URL)")
	fs.StringVar(&o.hubspotToken, "hubspot-token", "", "HubSpot private-app or OAuth `token` (env SWITCHYARD_HUBSPOT_TOKEN)")
	fs.StringVar(&o.hubspotHubID, "hubspot-hub-id", "", "HubSpot portal `id` (env SWITCHYARD_HUBSPOT_HUB_ID)")
	fs.StringVar(&o.hubspotTier, "hubspot-tier", "", "HubSpot account `tier`: free, starter, professional, enterprise, api-add-on, oauth (env SWITCHYARD_HUBSPOT_TIER)")
}

// load reads the config file, then applies environment variables, then the
// flags given on the command line. With no destination configured it adds
// the default one, so every command sees the destinations serve runs.
func (o *options) load(fs *flag.FlagSet, getenv func(string) (string, bool)) (config, error) {
	o.set = make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	cfg, err := loadConfig(o.configPath, getenv)
	if err != nil {
		return cfg, err
	}
	override := func(flagName, env string, flagValue string, apply func(string)) {
		if o.set[flagName] {
			apply(flagValue)
		} else if v, ok := getenv(env); ok && v != "" {
			apply(v)
		}
	}
	override("addr", "SWITCHYARD_ADDR", o.addr, func(v string) { cfg.Addr = v })
	override("data-dir", "SWITCHYARD_DATA_DIR", o.dataDir, func(v string) { cfg.DataDir = v })
	override("log-level", "SWITCHYARD_LOG_LEVEL", o.logLevel, func(v string) { cfg.LogLevel = v })
	override("kafka-brokers", "SWITCHYARD_KAFKA_BROKERS", o.kafkaBrokers, func(v string) { cfg.Kafka.Brokers = splitList(v) })
	override("write-key", "SWITCHYARD_WRITE_KEY", o.writeKey, func(v string) {
		for i, s := range cfg.Sources {
			if s.Name == "default" {
				cfg.Sources[i].WriteKeys = []string{v}
				return
			}
		}
		cfg.Sources = append(cfg.Sources, sourceConfig{Source: ingest.Source{Name: "default", WriteKeys: []string{v}}})
	})
	var hubspotErr error
	hubspotOverride := func(flagName, env, flagValue string, apply func(*hubspot.Config, string) error) {
		value := ""
		if o.set[flagName] {
			value = flagValue
		} else if v, ok := getenv(env); ok && v != "" {
			value = v
		} else {
			return
		}
		if !hasDestinationType(cfg, "hubspot") {
			cfg.Destinations = append(cfg.Destinations, defaultDestination())
		}
		for i := range cfg.Destinations {
			if cfg.Destinations[i].Type == "hubspot" {
				if err := apply(&cfg.Destinations[i].HubSpot, value); err != nil && hubspotErr == nil {
					hubspotErr = fmt.Errorf("%s: %w", flagName, err)
				}
			}
		}
	}
	hubspotOverride("hubspot-url", "SWITCHYARD_HUBSPOT_URL", o.hubspotURL, func(h *hubspot.Config, v string) error { h.BaseURL = v; return nil })
	hubspotOverride("hubspot-token", "SWITCHYARD_HUBSPOT_TOKEN", o.hubspotToken, func(h *hubspot.Config, v string) error { h.Token = v; return nil })
	hubspotOverride("hubspot-tier", "SWITCHYARD_HUBSPOT_TIER", o.hubspotTier, func(h *hubspot.Config, v string) error { h.Tier = v; return nil })
	hubspotOverride("hubspot-hub-id", "SWITCHYARD_HUBSPOT_HUB_ID", o.hubspotHubID, func(h *hubspot.Config, v string) error {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%q is not a portal id", v)
		}
		h.HubID = id
		return nil
	})
	if hubspotErr != nil {
		return cfg, hubspotErr
	}
	if len(cfg.Destinations) == 0 {
		cfg.Destinations = []destinationConfig{defaultDestination()}
	}
	if cfg.Addr == "" {
		return cfg, fmt.Errorf("addr: must not be empty")
	}
	if cfg.DataDir == "" {
		return cfg, fmt.Errorf("data_dir: must not be empty")
	}
	return cfg, nil
}

func hasDestinationType(cfg config, typ string) bool {
	for _, d := range cfg.Destinations {
		if d.Type == typ {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
