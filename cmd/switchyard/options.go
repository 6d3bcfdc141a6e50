package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
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
	set          map[string]bool
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("switchyard "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.configPath, "config", "", "YAML config `file` (${VAR} and ${VAR:-default} are expanded)")
	fs.StringVar(&o.addr, "addr", "", "listen `address` (env SWITCHYARD_ADDR; default :8080)")
	fs.StringVar(&o.dataDir, "data-dir", "", "embedded log `dir` (env SWITCHYARD_DATA_DIR; default ./data)")
	fs.StringVar(&o.writeKey, "write-key", "", "write `key` of a source named default (env SWITCHYARD_WRITE_KEY)")
	fs.StringVar(&o.kafkaBrokers, "kafka-brokers", "", "comma-separated Kafka `brokers`; the embedded log when empty (env SWITCHYARD_KAFKA_BROKERS)")
	fs.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (env SWITCHYARD_LOG_LEVEL; default info)")
}

// load reads the config file, then applies environment variables, then the
// flags given on the command line.
func (o *options) load(fs *flag.FlagSet, getenv func(string) (string, bool)) (config, error) {
	o.set = make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	cfg, err := loadConfig(o.configPath)
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
		cfg.Sources = append(cfg.Sources, sourceConfig{Name: "default", WriteKeys: []string{v}})
	})
	if cfg.Addr == "" {
		return cfg, fmt.Errorf("addr: must not be empty")
	}
	if cfg.DataDir == "" {
		return cfg, fmt.Errorf("data_dir: must not be empty")
	}
	return cfg, nil
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
