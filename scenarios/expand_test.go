package scenarios

import (
	"strings"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	tests := []struct {
		name  string
		sets  []string
		names []string
		vals  []string // autosave_interval of each
	}{
		{"sweep", nil, []string{"persist-sweep-autosave_interval-1", "persist-sweep-autosave_interval-3",
			"persist-sweep-autosave_interval-10", "persist-sweep-autosave_interval-30"}, []string{"1", "3", "10", "30"}},
		{"no sweep", []string{"autosave_interval=5"}, []string{"persist-sweep"}, []string{"5"}},
		{"two keys", []string{"autosave_interval=[1, 2]", "max_queued_messages=[0, 100]"}, []string{
			"persist-sweep-autosave_interval-1-max_queued_messages-0", "persist-sweep-autosave_interval-1-max_queued_messages-100",
			"persist-sweep-autosave_interval-2-max_queued_messages-0", "persist-sweep-autosave_interval-2-max_queued_messages-100"},
			[]string{"1", "1", "2", "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load("persist-sweep", tt.sets)
			if err != nil {
				t.Fatal(err)
			}
			out := Expand(s)
			if len(out) != len(tt.names) {
				t.Fatalf("got %d scenarios, want %d", len(out), len(tt.names))
			}
			for i, e := range out {
				v, _ := e.BrokerValue("autosave_interval")
				if e.Name != tt.names[i] || v != tt.vals[i] {
					t.Errorf("#%d: %s autosave %s, want %s %s", i, e.Name, v, tt.names[i], tt.vals[i])
				}
				if _, err := e.Settings(); err != nil {
					t.Errorf("#%d: %v", i, err)
				}
			}
			// The original is untouched.
			if _, err := s.Settings(); (err == nil) == (len(out) > 1) {
				t.Errorf("original scenario changed by Expand: settings err %v", err)
			}
		})
	}
}

func TestScale(t *testing.T) {
	base := func(t *testing.T) *Scenario {
		s, err := Load("crash-3s", []string{"subscribers.0.start_at=2s", "sample.interval=50ms"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name       string
		f          float64
		fractional bool
		autosave   string
		interval   time.Duration
		wantErr    string
	}{
		{"tenth fractional", 0.1, true, "0.3", 10 * time.Millisecond, ""},
		// 3 s x 0.1 = 0.3 s: Mosquitto cannot, so the scale is refused, not rounded.
		{"tenth whole seconds", 0.1, false, "", 0, "takes whole seconds only"},
		{"double", 2, false, "6", 100 * time.Millisecond, ""},
		{"zero", 0, true, "", 0, "time scale must be a positive number"},
		{"negative", -1, true, "", 0, "time scale must be a positive number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base(t)
			c, err := Scale(s, tt.f, tt.fractional)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			scaled := func(d Duration) time.Duration { return time.Duration(float64(d) * tt.f) }
			if c.Duration.D() != scaled(s.Duration) || c.DrainTimeout.D() != scaled(s.DrainTimeout) {
				t.Errorf("duration %v drain %v", c.Duration.D(), c.DrainTimeout.D())
			}
			if c.Subscribers[0].Pace.D() != scaled(s.Subscribers[0].Pace) || c.Subscribers[0].StartAt.D() != scaled(s.Subscribers[0].StartAt) {
				t.Errorf("pace %v start %v", c.Subscribers[0].Pace.D(), c.Subscribers[0].StartAt.D())
			}
			for i := range c.Actions {
				if c.Actions[i].At.D() != scaled(s.Actions[i].At) {
					t.Errorf("action %d at %v", i, c.Actions[i].At.D())
				}
			}
			if c.Publishers[0].Rate != s.Publishers[0].Rate/tt.f {
				t.Errorf("rate %g", c.Publishers[0].Rate)
			}
			if v, _ := c.BrokerValue("autosave_interval"); v != tt.autosave {
				t.Errorf("autosave_interval %q, want %q", v, tt.autosave)
			}
			if c.Sample.Interval.D() != tt.interval {
				t.Errorf("sample interval %v, want %v", c.Sample.Interval.D(), tt.interval)
			}
			if c.TimeScale != tt.f {
				t.Errorf("time scale %g", c.TimeScale)
			}
			if v, _ := s.BrokerValue("autosave_interval"); v != "3" || s.TimeScale != 1 {
				t.Errorf("original changed: autosave %s scale %g", v, s.TimeScale)
			}
		})
	}
}

func TestScaleKeepsChangeCounter(t *testing.T) {
	s, err := Load("persist-quick", []string{"autosave_on_changes=true", "autosave_interval=100"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Scale(s, 0.1, true)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.BrokerValue("autosave_interval"); v != "100" {
		t.Fatalf("a change count was scaled: %s", v)
	}
}
