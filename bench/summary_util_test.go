package bench

// Tests of the helpers Summarize builds on.

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/mqbench/mqbench/runfile"
)

// TestAutosaveText: the summary's autosave_interval from the resolved
// settings, as it was worded when it was read from the lines.
func TestAutosaveText(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"interval", []string{"autosave_interval 30"}, "30"},
		{"fractional", []string{"autosave_interval 0.5"}, "0.5"},
		{"on changes", []string{"autosave_interval 100", "autosave_on_changes true"}, "on_changes 100"},
		{"on changes false", []string{"autosave_interval 5", "autosave_on_changes false"}, "5"},
		{"on changes default count", []string{"autosave_on_changes true"}, "on_changes 1800"},
		{"unset", []string{"persistence true"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := autosaveText(runfile.ResolveBroker("2.0.11", tt.lines)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := autosaveText(nil); got != "unknown" {
		t.Errorf("unknown settings: %q", got)
	}
	// A launched broker recorded without lines ran with the scenario's
	// broker section; recorded lines are what it ran with.
	h := Header{BrokerKind: "bundled", Scenario: json.RawMessage(`{"broker":[{"key":"autosave_interval","values":["30"]}]}`)}
	if got := autosaveText(h.ResolvedBroker()); got != "30" {
		t.Errorf("from the scenario: %q", got)
	}
	h.BrokerConfig = []string{"autosave_interval 3"}
	if got := autosaveText(h.ResolvedBroker()); got != "3" {
		t.Errorf("lines over the scenario: %q", got)
	}
}

func TestApportion(t *testing.T) {
	tests := []struct {
		total      int64
		weights    []int64
		want       []int64
		wantExcess int64
	}{
		{0, []int64{1, 2}, []int64{0, 0}, 0},
		{10, []int64{0, 0}, []int64{0, 0}, 10},
		{10, []int64{5, 15}, []int64{3, 7}, 0}, // 2.5 / 7.5: remainders tie, first wins
		{3, []int64{1, 1, 1}, []int64{1, 1, 1}, 0},
		{2, []int64{1, 1, 1}, []int64{1, 1, 0}, 0},
		{100, []int64{10, 20}, []int64{10, 20}, 70},
		{7, []int64{3, 3, 4}, []int64{2, 2, 3}, 0},
		{5, nil, []int64{}, 5},
	}
	for _, tt := range tests {
		got, ex := apportion(tt.total, tt.weights)
		if !reflect.DeepEqual(got, tt.want) || ex != tt.wantExcess {
			t.Errorf("apportion(%d, %v) = %v, %d; want %v, %d", tt.total, tt.weights, got, ex, tt.want, tt.wantExcess)
		}
		var sum int64
		for i, g := range got {
			sum += g
			if g > tt.weights[i] {
				t.Errorf("share %d over its weight", i)
			}
		}
		if sum+ex != tt.total && tt.total > 0 {
			t.Errorf("apportion(%d, %v): shares+excess = %d", tt.total, tt.weights, sum+ex)
		}
	}
}

func TestCounterTotal(t *testing.T) {
	g := func(vs ...float64) []gaugePoint {
		var out []gaugePoint
		for i, v := range vs {
			out = append(out, gaugePoint{int64(i), v})
		}
		return out
	}
	tests := []struct {
		name     string
		g        []gaugePoint
		fromZero bool
		want     float64
	}{
		{"none", nil, true, 0},
		{"rising from zero", g(5, 7, 10), true, 10},
		{"rising, delta only", g(5, 7, 10), false, 5},
		{"reset", g(3, 8, 2, 6), true, 14},
		{"reset delta", g(3, 8, 2, 6), false, 11},
	}
	for _, tt := range tests {
		if got := counterTotal(tt.g, tt.fromZero); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
