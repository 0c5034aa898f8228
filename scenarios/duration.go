package scenarios

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("250ms", "3s", "1m")
// in YAML and JSON, so scenario files and recorded headers read the same.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration as Go does ("1m30s"), the form scenario files use.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string so a recorded header reads like the
// scenario file it came from.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a duration string, or a number of nanoseconds so headers
// written by older code (plain integers) stay readable.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("bad duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("bad duration %s: want a string like \"3s\"", b)
	}
	*d = Duration(n)
	return nil
}

// MarshalYAML writes the duration as a string, so a scenario written back out
// (e.g. an expanded sweep) loads again.
func (d Duration) MarshalYAML() (interface{}, error) {
	return time.Duration(d).String(), nil
}
