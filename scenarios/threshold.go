package scenarios

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Threshold is one parsed `METRIC OP VALUE` rule, e.g. "persist.max_bytes <= 3MB".
// Scenarios carry them so a run states its own pass criteria, and CI adds more
// on the command line; see docs/thresholds.md for the language.
type Threshold struct {
	Expr   string  // as written, for messages
	Metric string  // dotted path into summary.json
	Op     string  // == != < <= > >=
	Value  float64 // in the metric's unit (bytes, nanoseconds, count)
	Raw    string  // the value as written, e.g. "3MB"
}

var thresholdRE = regexp.MustCompile(`^\s*([A-Za-z0-9_.]+)\s*(==|!=|<=|>=|<|>|=)\s*([^\s=<>!]\S*)\s*$`)
var numberRE = regexp.MustCompile(`^([+-]?(?:[0-9][0-9_]*)?\.?[0-9]+(?:[eE][+-]?[0-9]+)?)([A-Za-zµ]*)$`)

// byteUnits are the size suffixes: SI (1000-based) as disks and the
// persistence-file findings use them, and IEC (1024-based) for people who think
// in KiB. Both spellings of kilo are accepted.
var byteUnits = map[string]float64{
	"B": 1, "KB": 1e3, "kB": 1e3, "MB": 1e6, "GB": 1e9,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
}

// countUnits scale plain counts: "10k" messages.
var countUnits = map[string]float64{"k": 1e3, "M": 1e6}

// ParseThreshold parses one threshold expression. It checks syntax and units
// only; whether the metric exists is checked against a summary by reports.Check.
// Errors quote the expression so a typo in a scenario or flag is found at once.
func ParseThreshold(expr string) (Threshold, error) {
	m := thresholdRE.FindStringSubmatch(expr)
	if m == nil {
		return Threshold{}, fmt.Errorf("threshold %q: want METRIC OP VALUE, e.g. \"lost == 0\" (OP one of == != < <= > >=)", expr)
	}
	t := Threshold{Expr: strings.TrimSpace(expr), Metric: m[1], Op: m[2], Raw: m[3]}
	if t.Op == "=" {
		return Threshold{}, fmt.Errorf("threshold %q: operator \"=\" is not allowed, use \"==\"", expr)
	}
	if strings.HasPrefix(t.Metric, ".") || strings.HasSuffix(t.Metric, ".") || strings.Contains(t.Metric, "..") {
		return Threshold{}, fmt.Errorf("threshold %q: bad metric path %q", expr, t.Metric)
	}
	v, err := parseValue(t.Metric, t.Raw)
	if err != nil {
		return Threshold{}, fmt.Errorf("threshold %q: %w", expr, err)
	}
	t.Value = v
	return t, nil
}

// parseValue reads a number with an optional unit and checks the unit fits the
// metric: durations only for _ns metrics, sizes only for byte metrics.
func parseValue(metric, raw string) (float64, error) {
	last := metric[strings.LastIndex(metric, ".")+1:]
	isNS := strings.HasSuffix(last, "_ns")
	isBytes := strings.Contains(last, "bytes")
	m := numberRE.FindStringSubmatch(raw)
	if m == nil {
		// Compound durations such as 1m30s.
		if d, err := time.ParseDuration(raw); err == nil {
			if !isNS {
				return 0, fmt.Errorf("value %q is a duration but %s is not a _ns metric", raw, metric)
			}
			return float64(d), nil
		}
		return 0, fmt.Errorf("value %q is not a number (units: KB MB GB KiB MiB GiB, k M, or a duration such as 250ms)", raw)
	}
	num, err := strconv.ParseFloat(strings.ReplaceAll(m[1], "_", ""), 64)
	if err != nil {
		return 0, fmt.Errorf("value %q: %w", raw, err)
	}
	unit := m[2]
	switch {
	case unit == "":
		return num, nil
	case byteUnits[unit] != 0:
		if !isBytes {
			return 0, fmt.Errorf("value %q has a size unit but %s is not a bytes metric", raw, metric)
		}
		return num * byteUnits[unit], nil
	case countUnits[unit] != 0:
		if isNS {
			return 0, fmt.Errorf("value %q: %q is a count unit; %s is a duration (use e.g. 250ms; \"m\" is minutes)", raw, unit, metric)
		}
		return num * countUnits[unit], nil
	}
	if d, err := time.ParseDuration(raw); err == nil {
		if !isNS {
			return 0, fmt.Errorf("value %q is a duration but %s is not a _ns metric", raw, metric)
		}
		return float64(d), nil
	}
	return 0, fmt.Errorf("value %q: unknown unit %q (KB MB GB KiB MiB GiB, k M, ns us ms s m h)", raw, unit)
}

// Holds reports whether value satisfies the threshold.
func (t Threshold) Holds(value float64) bool {
	switch t.Op {
	case "==":
		return value == t.Value
	case "!=":
		return value != t.Value
	case "<":
		return value < t.Value
	case "<=":
		return value <= t.Value
	case ">":
		return value > t.Value
	case ">=":
		return value >= t.Value
	}
	return false
}
