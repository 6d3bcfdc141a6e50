package hubspot

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestConfigRefusesWhatCannotWork(t *testing.T) {
	good := func() Config {
		return Config{Name: "crm-in", Token: "t", ClientSecret: "s", Contacts: Mapping{Fields: map[string]string{"firstname": "first_name"}}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	cases := map[string]func(*Config){
		"hubspot.token":               func(c *Config) { c.Token = "" },
		"hubspot.client_secret":       func(c *Config) { c.ClientSecret = "" },
		"map at least one":            func(c *Config) { c.Contacts = Mapping{} },
		"hubspot.match":               func(c *Config) { c.Match = "App User" },
		"hubspot.public_url":          func(c *Config) { c.PublicURL = "https://x.example.com/path" },
		"hubspot.url":                 func(c *Config) { c.URL = "ftp://x" },
		"hubspot.contacts.FirstName":  func(c *Config) { c.Contacts.Fields["FirstName"] = "x" },
		"hubspot.company_id_property": func(c *Config) { c.CompanyIDProperty = "Id!" },
		"name:":                       func(c *Config) { c.Name = "a/b" },
	}
	for want, change := range cases {
		c := good()
		change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	d := good().WithDefaults()
	if d.URL != "https://api.hubapi.com" || d.Match != "email" || !d.onlyKnown() || d.NotificationsTopic != "hubspot-notifications" || d.BatchSize != 500 {
		t.Errorf("defaults: %+v", d)
	}
}

func TestMappingReadsAMapOrAll(t *testing.T) {
	var c struct {
		Contacts  Mapping `yaml:"contacts"`
		Companies Mapping `yaml:"companies"`
	}
	if err := yaml.Unmarshal([]byte("contacts: all\ncompanies: {name: company_name}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if !c.Contacts.All || c.Companies.Fields["name"] != "company_name" {
		t.Fatalf("got %+v", c)
	}
	if err := yaml.Unmarshal([]byte("contacts: some\n"), &c); err == nil || !strings.Contains(err.Error(), "the word all") {
		t.Fatalf("a word other than all: %v", err)
	}
}
