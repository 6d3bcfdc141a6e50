package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func TestParseConfig(t *testing.T) {
	raw := `
addr: "127.0.0.1:9000"
data_dir: /var/lib/switchyard
sources:
  - name: web
    write_keys: ["${WEB_KEY}", "${OLD_KEY:-legacy}"]
gateway:
  dedupe_window: 2h
  cors_origins: [https://shop.example]
log:
  partitions: 12
  retention_age: 72h
kafka:
  brokers: [k1:9092, k2:9092]
`
	cfg, err := parseConfig([]byte(raw), env(map[string]string{"WEB_KEY": "wk_live"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9000" || cfg.DataDir != "/var/lib/switchyard" || cfg.LogLevel != "info" {
		t.Errorf("top level: %+v", cfg)
	}
	if got := cfg.Sources[0].WriteKeys; len(got) != 2 || got[0] != "wk_live" || got[1] != "legacy" {
		t.Errorf("write keys %v: ${VAR} and ${VAR:-default} not expanded", got)
	}
	if time.Duration(cfg.Gateway.DedupeWindow) != 2*time.Hour || cfg.Gateway.CORSOrigins[0] != "https://shop.example" {
		t.Errorf("gateway: %+v", cfg.Gateway)
	}
	if cfg.Log.Embedded.Partitions != 12 || time.Duration(cfg.Log.Embedded.RetentionAge) != 72*time.Hour || len(cfg.Kafka.Brokers) != 2 {
		t.Errorf("log/kafka: %+v %+v", cfg.Log, cfg.Kafka)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"an unknown key is named with its path", "gateway:\n  dedupe_windw: 1h\n", "gateway.dedupe_windw (line 2): unknown key"},
		{"a bad duration is named", "gateway:\n  dedupe_window: soon\n", `gateway.dedupe_window (line 2): "soon" is not a duration`},
		{"a wrong type is named", "log:\n  partitions: many\n", "log.partitions (line 2)"},
		{"a key inside a list is named with its index", "sources:\n  - name: a\n    keys: [x]\n", "sources[0].keys (line 3): unknown key"},
		{"an unset variable is named", "sources:\n  - name: a\n    write_keys: [${NOPE}]\n", "NOPE is not set"},
		{"a section that is not a mapping is named", "gateway: 5\n", "gateway (line 1): must be a mapping"},
		{"a reference in a key is not expanded", "gateway:\n  ${KEY}: 1\n", "gateway.${KEY} (line 2): unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestFlagsOverrideEnvironmentOverrideFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchyard.yaml")
	os.WriteFile(path, []byte("addr: ':7000'\ndata_dir: /from/file\nsources:\n  - name: default\n    write_keys: [file-key]\n"), 0o600)
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o options
	o.register(fs)
	if err := fs.Parse([]string{"--config", path, "--addr", ":9999"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := o.load(fs, env(map[string]string{
		"SWITCHYARD_ADDR": ":8888", "SWITCHYARD_DATA_DIR": "/from/env",
		"SWITCHYARD_WRITE_KEY": "env-key", "SWITCHYARD_KAFKA_BROKERS": "b1:9092, b2:9092",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":9999" {
		t.Errorf("addr %q: the flag must win", cfg.Addr)
	}
	if cfg.DataDir != "/from/env" {
		t.Errorf("data_dir %q: the environment must beat the file", cfg.DataDir)
	}
	if len(cfg.Sources) != 1 || cfg.Sources[0].WriteKeys[0] != "env-key" {
		t.Errorf("sources %+v: SWITCHYARD_WRITE_KEY must set the default source's key", cfg.Sources)
	}
	if strings.Join(cfg.Kafka.Brokers, ",") != "b1:9092,b2:9092" {
		t.Errorf("brokers %v", cfg.Kafka.Brokers)
	}
}

func TestNoFileNeeded(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var o options
	o.register(fs)
	fs.Parse([]string{"--write-key", "k"})
	cfg, err := o.load(fs, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8080" || cfg.DataDir != "./data" || cfg.Sources[0].Name != "default" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestDestinationErrorsNameTheirKey(t *testing.T) {
	tests := []struct {
		name string
		dc   destinationConfig
		want string
	}{
		{"an unknown type", destinationConfig{Name: "x", Type: "carrier-pigeon"}, `destinations[0].type: "carrier-pigeon" is not one of hubspot, webhook, drop`},
		{"a bad name", destinationConfig{Name: "no spaces", Type: "drop"}, `destinations[0].name: "no spaces"`},
		{"a webhook without a url", destinationConfig{Name: "hook", Type: "webhook"}, "destinations[0].webhook.url: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildDestination(0, tt.dc, destinationDeps{logger: zap.NewNop(), dataDir: t.TempDir(), hubspot: newHubSpotClients(zap.NewNop())})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to start with %s", err, tt.want)
			}
		})
	}
}

func TestEnvironmentValuesStayOneValue(t *testing.T) {
	raw := "sources:\n  - name: web\n    write_keys: [\"${KEY}\"]\nlog:\n  events_topic: ${TOPIC}\n"
	cfg, err := parseConfig([]byte(raw), env(map[string]string{"KEY": "a: b\nlog_level: debug", "TOPIC": "x # not a comment"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sources[0].WriteKeys; len(got) != 1 || got[0] != "a: b\nlog_level: debug" {
		t.Errorf("write keys %q: a value with \": \" and a newline must stay one value", got)
	}
	if cfg.LogLevel != "info" {
		t.Errorf("log_level %q: a value rewrote the document", cfg.LogLevel)
	}
	if cfg.Log.EventsTopic != "x # not a comment" {
		t.Errorf("events_topic %q", cfg.Log.EventsTopic)
	}
}

func TestEnvironmentValuesTakeTheirType(t *testing.T) {
	cfg, err := parseConfig([]byte("log:\n  partitions: ${PARTS}\n  retention_age: ${AGE:-36h}\n"), env(map[string]string{"PARTS": "16"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Embedded.Partitions != 16 || time.Duration(cfg.Log.Embedded.RetentionAge) != 36*time.Hour {
		t.Fatalf("log %+v", cfg.Log.Embedded)
	}
}

func TestConfigErrorsNeverPrintEnvironmentValues(t *testing.T) {
	secret := "pat-na1-0123456789"
	tests := []struct {
		name, yaml, want string
	}{
		{"a wrong type names the key, line and variable", "destinations:\n  - name: h\n    type: hubspot\n    hubspot:\n      hub_id: ${HUBSPOT_TOKEN}\n",
			"destinations[0].hubspot.hub_id (line 5): the value from ${HUBSPOT_TOKEN} is not a whole number"},
		{"a bad duration names the variable", "gateway:\n  dedupe_window: ${HUBSPOT_TOKEN}\n",
			"gateway.dedupe_window (line 2): the value from ${HUBSPOT_TOKEN} is not a duration such as 30s, 5m or 24h"},
		{"a value inside a list names the variable", "gateway:\n  cors_origins: {a: ${HUBSPOT_TOKEN}}\n",
			"gateway.cors_origins (line 2): the value from ${HUBSPOT_TOKEN} is not a list"},
		{"a bad time zone names the variable", "destinations:\n  - name: h\n    type: hubspot\n    hubspot:\n      time_zone: ${HUBSPOT_TOKEN}\n",
			"destinations[0].hubspot.time_zone (line 5): the value from ${HUBSPOT_TOKEN} is not an IANA time zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.yaml), env(map[string]string{"HUBSPOT_TOKEN": secret}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q prints the environment value", err)
			}
		})
	}
}

func TestUnsetVariableNamesKeyLineAndVariable(t *testing.T) {
	_, err := parseConfig([]byte("gateway:\n  proxy_header: ${HEADER}\n"), env(nil))
	want := "gateway.proxy_header (line 2): environment variable HEADER is not set"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
	cfg, err := parseConfig([]byte("gateway:\n  proxy_header: ${HEADER:-}\n"), env(nil))
	if err != nil || cfg.Gateway.ProxyHeader != "" {
		t.Fatalf("an empty default: %v, %q", err, cfg.Gateway.ProxyHeader)
	}
}

func TestSettingsOnlyThePackagesHadAreReachable(t *testing.T) {
	raw := `
log:
  retention_check_interval: 30s
  max_batch_messages: 512
kafka:
  batch_size: 50
  write_timeout: 3s
  dial_timeout: 2s
  session_timeout: 20s
  heartbeat_interval: 2s
  revocation_timeout: 3s
  client_id: edge
destinations:
  - name: d
    type: drop
    commit_interval: 5s
    shutdown_timeout: 1m
    dedupe_entries: 1000
`
	cfg, err := parseConfig([]byte(raw), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	e, k, r := cfg.Log.Embedded, cfg.Kafka, cfg.Destinations[0].Router
	if time.Duration(e.RetentionCheckInterval) != 30*time.Second || e.MaxBatchMessages != 512 {
		t.Errorf("embedded %+v", e)
	}
	if k.BatchSize != 50 || time.Duration(k.WriteTimeout) != 3*time.Second || time.Duration(k.DialTimeout) != 2*time.Second ||
		time.Duration(k.SessionTimeout) != 20*time.Second || time.Duration(k.HeartbeatInterval) != 2*time.Second ||
		time.Duration(k.RevocationTimeout) != 3*time.Second || k.ClientID != "edge" {
		t.Errorf("kafka %+v", k)
	}
	if time.Duration(r.CommitInterval) != 5*time.Second || time.Duration(r.ShutdownTimeout) != time.Minute || r.DedupeEntries != 1000 {
		t.Errorf("router %+v", r)
	}
}

func TestNoDestinationMeansTheDefaultHubSpot(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var o options
	o.register(fs)
	fs.Parse(nil)
	cfg, err := o.load(fs, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Destinations) != 1 || cfg.Destinations[0].Name != "hubspot" || cfg.Destinations[0].Type != "hubspot" {
		t.Fatalf("destinations %+v", cfg.Destinations)
	}
}

func TestHubSpotSourcesTakeTheirSettings(t *testing.T) {
	raw := `
data_dir: /var/lib/switchyard
sources:
  - name: web
    write_keys: [wk]
  - name: crm-in
    type: hubspot
    hubspot:
      token: ${HUBSPOT_TOKEN}
      client_secret: s3cret
      match: app_user_id
      only_known_users: false
      contacts: {firstname: first_name}
      companies: all
      catch_up_interval: 12h
log:
  events_topic: calls
  hubspot_notifications_topic: hs
`
	cfg, err := parseConfig([]byte(raw), env(map[string]string{"HUBSPOT_TOKEN": "pat-1"}))
	if err != nil {
		t.Fatal(err)
	}
	if g := cfg.gatewayConfig(); len(g.Sources) != 1 || g.Sources[0].Name != "web" {
		t.Errorf("the gateway's write-key sources: %+v, want web alone", g.Sources)
	}
	sources, err := cfg.hubspotSources()
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != 1 {
		t.Fatalf("hubspot sources: %+v", sources)
	}
	s := sources[0]
	if s.Name != "crm-in" || s.Token != "pat-1" || s.ClientSecret != "s3cret" || s.Match != "app_user_id" || *s.OnlyKnownUsers ||
		s.Contacts.Fields["firstname"] != "first_name" || !s.Companies.All || time.Duration(s.CatchUpInterval) != 12*time.Hour {
		t.Errorf("settings not read: %+v", s)
	}
	if s.DataDir != "/var/lib/switchyard" || s.EventsTopic != "calls" || s.NotificationsTopic != "hs" || s.URL != "https://api.hubapi.com" {
		t.Errorf("data dir, topics or defaults not set: %+v", s)
	}
}

func TestHubSpotSourceErrorsNameTheirKey(t *testing.T) {
	const ok = "    hubspot: {token: t, client_secret: s, contacts: {firstname: first_name}}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"an unknown type", "sources:\n  - name: a\n    type: salesforce\n", "sources[0].type: \"salesforce\" is not hubspot"},
		{"write keys on a hubspot source", "sources:\n  - name: a\n    type: hubspot\n    write_keys: [k]\n" + ok, "sources[0].write_keys: a hubspot source takes no write keys"},
		{"hubspot settings without the type", "sources:\n  - name: a\n    write_keys: [k]\n" + ok, "sources[0].hubspot: is only for sources of type hubspot"},
		{"no token", "sources:\n  - name: a\n    type: hubspot\n    hubspot: {client_secret: s, contacts: all}\n", "sources[0].hubspot.token: is required"},
		{"nothing mapped", "sources:\n  - name: a\n    type: hubspot\n    hubspot: {token: t, client_secret: s}\n", "sources[0].hubspot: map at least one"},
		{"a name used twice", "sources:\n  - name: a\n    write_keys: [k]\n  - name: a\n    type: hubspot\n" + ok, "sources[1].name: \"a\" is used twice"},
		{"the events topic twice", "log: {hubspot_notifications_topic: events}\nsources:\n  - name: a\n    type: hubspot\n" + ok, "log.hubspot_notifications_topic: must differ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig([]byte(tt.yaml), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			_, err = cfg.hubspotSources()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to start with %s", err, tt.want)
			}
		})
	}
}

func TestMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	noEnv := func(string) (string, bool) { return "", false }
	if got, err := applyMemoryLimit(defaultMemoryLimit, noEnv); err != nil || got != defaultMemoryLimit || debug.SetMemoryLimit(-1) != defaultMemoryLimit {
		t.Fatalf("the default limit: %d, %v", got, err)
	}
	if _, err := applyMemoryLimit(1<<20, noEnv); err == nil || !strings.Contains(err.Error(), "memory_limit_bytes") {
		t.Fatalf("a limit of 1 MiB was taken: %v", err)
	}
	debug.SetMemoryLimit(300 << 20)
	fromEnv := func(k string) (string, bool) { return "300MiB", k == "GOMEMLIMIT" }
	if got, err := applyMemoryLimit(defaultMemoryLimit, fromEnv); err != nil || got != 300<<20 {
		t.Fatalf("GOMEMLIMIT must win: %d, %v", got, err)
	}
	cfg, err := parseConfig([]byte("memory_limit_bytes: 134217728\n"), noEnv)
	if err != nil || cfg.MemoryLimitBytes != 128<<20 {
		t.Fatalf("memory_limit_bytes read as %d, %v", cfg.MemoryLimitBytes, err)
	}
	if cfg, _ := parseConfig([]byte("addr: :1\n"), noEnv); cfg.MemoryLimitBytes != defaultMemoryLimit {
		t.Fatalf("default memory_limit_bytes %d", cfg.MemoryLimitBytes)
	}
}
