package scenarios

import "time"

// Duration is a time.Duration written as a Go duration string ("250ms", "3s", "1m")
// in YAML and JSON, so scenario files and recorded headers read the same.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
