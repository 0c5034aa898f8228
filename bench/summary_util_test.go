package bench

// Tests of the helpers Summarize builds on.

import (
	"reflect"
	"testing"

	"github.com/mqbench/mqbench/scenarios"
)

func TestAutosaveSetting(t *testing.T) {
	sc := func(kv ...string) *scenarios.Scenario {
		s := &scenarios.Scenario{}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Broker = append(s.Broker, scenarios.BrokerSetting{Key: kv[i], Values: []string{kv[i+1]}})
		}
		return s
	}
	tests := []struct {
		name string
		sc   *scenarios.Scenario
		conf []string
		want string
	}{
		{"interval", sc("autosave_interval", "30"), nil, "30"},
		{"on changes", sc("autosave_interval", "100", "autosave_on_changes", "true"), nil, "on_changes 100"},
		{"on changes false", sc("autosave_interval", "5", "autosave_on_changes", "false"), nil, "5"},
		{"on changes default count", sc("autosave_on_changes", "true"), nil, "on_changes 1800"},
		{"from conf lines", nil, []string{"persistence true", "autosave_interval 3"}, "3"},
		{"scenario wins", sc("autosave_interval", "30"), []string{"autosave_interval 3"}, "30"},
		{"unset", sc("persistence", "true"), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := autosaveSetting(tt.sc, tt.conf); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
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
