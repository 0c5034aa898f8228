package reports

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// groupInt formats n with thousands separators ("8,980") so counts in tables and
// findings read at a glance.
func groupInt(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	pre := len(s) % 3
	if pre == 0 {
		pre = 3
	}
	b.WriteString(s[:pre])
	for i := pre; i < len(s); i += 3 {
		b.WriteByte(',')
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// groupFloat formats f with the given decimals and thousands separators.
func groupFloat(f float64, decimals int) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(math.Abs(f), 'f', decimals, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(intPart, 10, 64)
	out := groupInt(n)
	if frac != "" {
		out += "." + frac
	}
	if f < 0 && strings.Trim(s, "0.") != "" {
		out = "-" + out
	}
	return out
}

// formatBytes gives the exact byte count plus a 1000-based human size, because
// the exact number is what gets compared and the human one what gets read.
func formatBytes(n int64) string {
	if n < 1000 {
		return groupInt(n) + " B"
	}
	return groupInt(n) + " B (" + HumanBytes(float64(n)) + ")"
}

// HumanBytes is a short 1000-based size (kB, MB, GB), the units thresholds use.
// It is exported so the live progress line of `mqbench run` shows sizes in the
// same units as the reports and the thresholds a user will write from them.
func HumanBytes(f float64) string {
	switch {
	case f >= 1e9:
		return strconv.FormatFloat(f/1e9, 'f', 2, 64) + " GB"
	case f >= 1e6:
		return strconv.FormatFloat(f/1e6, 'f', 2, 64) + " MB"
	case f >= 1e3:
		return strconv.FormatFloat(f/1e3, 'f', 1, 64) + " kB"
	}
	return strconv.FormatFloat(f, 'f', 0, 64) + " B"
}

// formatNS renders a nanosecond duration rounded to a readable precision.
func formatNS(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d == 0:
		return "0s"
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d >= time.Microsecond:
		return d.Round(10 * time.Nanosecond).String()
	}
	return d.String()
}

// formatRate renders messages per second.
func formatRate(r float64) string {
	if r >= 100 {
		return groupFloat(r, 0) + " msg/s"
	}
	return groupFloat(r, 2) + " msg/s"
}

// plural picks the word form for n, so findings read as sentences.
func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// formatAutosave explains the configured autosave interval in words.
func formatAutosave(v string) string {
	if v == "" {
		return "not configured"
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v + " s"
	}
	return v
}

// percentOf is 100*a/b, 0 when b is 0.
func percentOf(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
