package scenarios

import (
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
)

// Clone returns a deep copy, so Expand and Scale never alias the caller's slices.
func (s *Scenario) Clone() *Scenario {
	c := *s
	c.Broker = make([]BrokerSetting, len(s.Broker))
	for i, b := range s.Broker {
		b.Values = append([]string(nil), b.Values...)
		c.Broker[i] = b
	}
	c.Brokers = make([]NamedBroker, len(s.Brokers))
	for i, b := range s.Brokers {
		b.Conf = append([]BrokerSetting(nil), b.Conf...)
		for j := range b.Conf {
			b.Conf[j].Values = append([]string(nil), b.Conf[j].Values...)
		}
		c.Brokers[i] = b
	}
	if s.Brokers == nil {
		c.Brokers = nil
	}
	c.Publishers = append([]Publisher(nil), s.Publishers...)
	for i := range c.Publishers {
		c.Publishers[i].CleanSession = cloneBool(c.Publishers[i].CleanSession)
		c.Publishers[i].Connect = c.Publishers[i].Connect.clone()
		c.Publishers[i].UserProperties = maps.Clone(c.Publishers[i].UserProperties)
	}
	c.Subscribers = append([]Subscriber(nil), s.Subscribers...)
	for i := range c.Subscribers {
		c.Subscribers[i].CleanSession = cloneBool(c.Subscribers[i].CleanSession)
		c.Subscribers[i].Connect = c.Subscribers[i].Connect.clone()
	}
	c.Actions = append([]Action(nil), s.Actions...)
	c.Thresholds = append([]string(nil), s.Thresholds...)
	c.Drain = cloneBool(s.Drain)
	c.Connect = s.Connect.clone()
	c.Security = s.Security.clone()
	c.Sample.Decode = cloneBool(s.Sample.Decode)
	c.Sample.SYS = cloneBool(s.Sample.SYS)
	c.pos = make(map[string]string, len(s.pos))
	for k, v := range s.pos {
		c.pos[k] = v
	}
	return &c
}

func cloneBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}

// Expand turns a sweep (broker keys with several values) into one scenario per
// value, named NAME-KEY-VALUE, so each point of a sweep is an ordinary run that
// compare can overlay. Several sweep keys give their cartesian product. A
// scenario without a sweep comes back alone (as a copy).
func Expand(s *Scenario) []*Scenario {
	out := []*Scenario{s.Clone()}
	for bi, b := range s.Broker {
		if len(b.Values) <= 1 {
			continue
		}
		var next []*Scenario
		for _, base := range out {
			for _, v := range b.Values {
				c := base.Clone()
				c.Broker[bi].Values = []string{v}
				c.Name = fmt.Sprintf("%s-%s-%s", base.Name, b.Key, safeName(v))
				next = append(next, c)
			}
		}
		out = next
	}
	if s.Security != nil && len(s.Security.TLS) > 1 {
		var next []*Scenario
		for _, base := range out {
			for _, on := range s.Security.TLS {
				c := base.Clone()
				c.Security.TLS = BoolSweep{on}
				c.Name = base.Name + map[bool]string{false: "-plain", true: "-tls"}[on]
				next = append(next, c)
			}
		}
		out = next
	}
	return out
}

// safeName keeps a sweep value usable in a directory name.
func safeName(v string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, v)
}

// Scale multiplies every duration of the scenario by f (0.1 = ten times faster),
// for quick runs: pace, duration, action times, start times, drain timeout, the
// sample interval (never below MinSampleInterval) and a timer-based
// autosave_interval. fractionalAutosave says whether the broker accepts a
// fractional autosave_interval (the bundled one does, Mosquitto does not: there
// a scale that would make it fractional is refused rather than rounded). The
// factor is recorded in TimeScale.
func Scale(s *Scenario, f float64, fractionalAutosave bool) (*Scenario, error) {
	if f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("time scale must be a positive number (got %g)", f)
	}
	c := s.Clone()
	if f == 1 {
		return c, nil
	}
	sc := func(d Duration) Duration { return Duration(math.Round(float64(d) * f)) }
	c.Duration = sc(c.Duration)
	c.DrainTimeout = sc(c.DrainTimeout)
	c.Sample.Interval = sc(c.Sample.Interval)
	if c.Sample.Interval < Duration(MinSampleInterval) {
		c.Sample.Interval = Duration(MinSampleInterval)
	}
	for i := range c.Publishers {
		c.Publishers[i].StartAt = sc(c.Publishers[i].StartAt)
		// A rate is per time: keep the message count, fit it in the shorter time.
		c.Publishers[i].Rate = c.Publishers[i].Rate / f
	}
	for i := range c.Subscribers {
		c.Subscribers[i].Pace = sc(c.Subscribers[i].Pace)
		c.Subscribers[i].StartAt = sc(c.Subscribers[i].StartAt)
	}
	for i := range c.Actions {
		c.Actions[i].At = sc(c.Actions[i].At)
	}
	if err := scaleAutosave(c.Broker, c.at("broker.autosave_interval"), "broker", f, fractionalAutosave); err != nil {
		return nil, err
	}
	for i, b := range c.Brokers {
		if err := scaleAutosave(b.Conf, c.brokerAt(b.Name, "autosave_interval"), fmt.Sprintf("brokers[%d].conf", i), f, fractionalAutosave); err != nil {
			return nil, err
		}
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	c.TimeScale *= f
	return c, nil
}

// scaleAutosave scales a timer-based autosave_interval among settings (one
// broker's keys; at and prefix say where they are, for errors).
func scaleAutosave(settings []BrokerSetting, at, prefix string, f float64, fractionalAutosave bool) error {
	for _, b := range settings {
		if b.Key == "autosave_on_changes" && len(b.Values) > 0 {
			if on, _ := parseBool(b.Values[0]); on {
				return nil
			}
		}
	}
	for i, b := range settings {
		if b.Key != "autosave_interval" {
			continue
		}
		for j, v := range b.Values {
			secs, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%s: %s.autosave_interval: cannot scale %q: %w", at, prefix, v, err)
			}
			if scaled := secs * f; !fractionalAutosave && secs != 0 && scaled != math.Trunc(scaled) {
				// Rounding would run another experiment than the one
				// asked for (0.6 s becoming 1 s) without a word.
				return fmt.Errorf("%s: %s.autosave_interval %s scaled by %g is %g s: this broker takes whole seconds only; choose a scale that keeps it whole, or run on the bundled broker", at, prefix, v, f, scaled)
			}
			settings[i].Values[j] = scaleSeconds(secs, f, fractionalAutosave)
		}
	}
	return nil
}

// scaleSeconds scales an autosave period; 0 (no timed saves) stays 0.
func scaleSeconds(secs, f float64, fractional bool) string {
	if secs == 0 {
		return "0"
	}
	v := secs * f
	if !fractional {
		r := math.Round(v)
		if r < 1 {
			r = 1
		}
		return strconv.FormatFloat(r, 'f', -1, 64)
	}
	// Millisecond resolution is more than any broker loop honours.
	ms := math.Round(v * 1000)
	if ms < 1 {
		ms = 1
	}
	return strconv.FormatFloat(ms/1000, 'f', -1, 64)
}
