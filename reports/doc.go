// Package reports turns a recorded run (its event file) into what people and CI
// read: summary.json, a terminal table, report.md with PNG plots, a comparison
// across runs, and a pass/fail verdict against thresholds and a baseline. It
// works from the event file alone, so any old run can be re-rendered, compared or
// checked with newer code, and it never prints: callers decide where text goes.
package reports
