// Package config holds the value types that packages' Config structs use
// for settings YAML spells as text: durations and time zones.
package config

import (
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration that YAML spells as a Go duration string such
// as "500ms", "30s" or "24h". Negative durations are refused.
type Duration time.Duration

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("must be a duration such as 30s, 5m or 24h")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 30s, 5m or 24h", n.Value)
	}
	if v < 0 {
		return fmt.Errorf("%q must not be negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string such as "1m30s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String formats the duration as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// TimeZone is a time zone that YAML spells as an IANA name such as
// Europe/Paris or UTC. The zero value has a nil Location.
type TimeZone struct {
	*time.Location
}

// UnmarshalYAML reads an IANA time zone name.
func (z *TimeZone) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Value == "" {
		return errors.New("must be an IANA time zone such as Europe/Paris")
	}
	loc, err := time.LoadLocation(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not an IANA time zone such as Europe/Paris", n.Value)
	}
	z.Location = loc
	return nil
}

// MarshalYAML writes the zone's name, or nothing for the zero value.
func (z TimeZone) MarshalYAML() (any, error) {
	if z.Location == nil {
		return nil, nil
	}
	return z.Location.String(), nil
}
