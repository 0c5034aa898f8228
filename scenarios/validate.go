package scenarios

import (
	"errors"
	"fmt"
	"github.com/mqbench/mqbench/mqtt/topic"
	"strings"
	"text/template"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
)

// Defaults that are not obvious from the schema, named so docs and code agree.
const (
	DefaultSampleInterval = 100 * time.Millisecond
	DefaultDrainTimeout   = 30 * time.Second
	// MinSampleInterval is the floor Scale keeps: sampling faster only costs CPU.
	MinSampleInterval = 10 * time.Millisecond
	// MinRandomPayload is the smallest random payload: the id header must fit.
	MinRandomPayload = 32
)

// ApplyDefaults fills every optional field so the run engine never has to guess;
// it is idempotent.
func (s *Scenario) ApplyDefaults() {
	for i := range s.Publishers {
		p := &s.Publishers[i]
		if p.Count == 0 {
			p.Count = 1
		}
		p.ClientID = clientIDTemplate(p.ClientID, "pub", i, len(s.Publishers), p.Count)
		if p.Inflight == 0 {
			p.Inflight = 1
		}
		if p.Payload.Kind == "" {
			p.Payload.Kind = "experiment"
		}
		if p.Payload.Kind == "random" && p.Payload.Size == 0 {
			p.Payload.Size = 150
		}
		if p.RateScope == "" {
			p.RateScope = "per_publisher"
		}
		if p.Protocol == 0 {
			p.Protocol = s.protocol()
		}
		if p.Client == "" {
			p.Client = ClientLean
			if p.ConnectionPerMessage {
				p.Client = ClientPaho
			}
		}
	}
	for i := range s.Subscribers {
		sub := &s.Subscribers[i]
		if sub.Count == 0 {
			sub.Count = 1
		}
		sub.ClientID = clientIDTemplate(sub.ClientID, "sub", i, len(s.Subscribers), sub.Count)
		if sub.PaceMode == "" {
			sub.PaceMode = "ack"
		}
		if sub.Protocol == 0 {
			sub.Protocol = s.protocol()
		}
	}
	if s.Sample.Interval == 0 {
		s.Sample.Interval = Duration(DefaultSampleInterval)
	}
	t := true
	if s.Sample.Decode == nil {
		s.Sample.Decode = &t
	}
	if s.Sample.SYS == nil {
		s.Sample.SYS = &t
	}
	if s.Drain == nil {
		s.Drain = &t
	}
	if s.DrainTimeout == 0 {
		s.DrainTimeout = Duration(DefaultDrainTimeout)
	}
	if s.TimeScale == 0 {
		s.TimeScale = 1
	}
}

// clientIDTemplate is the client id template of entry i of n publishers or
// subscribers (prefix "pub" or "sub") with count clients, so every client gets a
// distinct id without the user naming each: a missing id is derived from the
// prefix ("pub", "pub-%d", "pub2", "pub2-%d"), and a given one gets "-%d"
// when count clients must share it.
func clientIDTemplate(id, prefix string, i, n, count int) string {
	if id != "" {
		if count > 1 && !strings.Contains(id, "%d") {
			return id + "-%d"
		}
		return id
	}
	switch {
	case n == 1 && count == 1:
		return prefix
	case n == 1:
		return prefix + "-%d"
	case count == 1:
		return fmt.Sprintf("%s%d", prefix, i+1)
	default:
		return fmt.Sprintf("%s%d-%%d", prefix, i+1)
	}
}

// IDs expands the client id template into Count ids ("pub-%d" -> pub-1, pub-2...).
func (p Publisher) IDs() []string { return expandIDs(p.ClientID, p.Count) }

// IDs expands the client id template into Count ids.
func (s Subscriber) IDs() []string { return expandIDs(s.ClientID, s.Count) }

func expandIDs(tmpl string, n int) []string {
	if n <= 1 && !strings.Contains(tmpl, "%d") {
		return []string{tmpl}
	}
	if n < 1 {
		n = 1
	}
	out := make([]string, n)
	for i := range out {
		out[i] = strings.ReplaceAll(tmpl, "%d", fmt.Sprint(i+1))
	}
	return out
}

// Clean is the effective clean-session flag (default true, as MQTT clients do).
func (p Publisher) Clean() bool { return p.CleanSession == nil || *p.CleanSession }

// Clean is the effective clean-session flag (default true, as MQTT clients do).
func (s Subscriber) Clean() bool { return s.CleanSession == nil || *s.CleanSession }

// DrainEnabled is the effective drain flag (default true).
func (s *Scenario) DrainEnabled() bool { return s.Drain == nil || *s.Drain }

// DecodeSaves is the effective sample.decode flag (default true).
func (s *Scenario) DecodeSaves() bool { return s.Sample.Decode == nil || *s.Sample.Decode }

// SYSEnabled is the effective sample.sys flag (default true).
func (s *Scenario) SYSEnabled() bool { return s.Sample.SYS == nil || *s.Sample.SYS }

// BrokerValue returns the (first) value of a broker key, for callers that need
// one setting (e.g. the autosave interval) without parsing the whole config.
func (s *Scenario) BrokerValue(key string) (string, bool) {
	for _, b := range s.Broker {
		if b.Key == key && len(b.Values) > 0 {
			return b.Values[0], true
		}
	}
	return "", false
}

// Settings returns the broker section as conf settings for launch; it fails on an
// unexpanded sweep, which must go through Expand first.
func (s *Scenario) Settings() ([]conf.Setting, error) {
	out := make([]conf.Setting, 0, len(s.Broker))
	for _, b := range s.Broker {
		if len(b.Values) != 1 {
			return nil, fmt.Errorf("broker key %s has %d values: expand the sweep first", b.Key, len(b.Values))
		}
		file, line := s.brokerLoc(b)
		out = append(out, conf.Setting{Key: b.Key, Value: b.Values[0], File: file, Line: line})
	}
	return out, nil
}

// brokerLoc gives the file and line to hand to conf for a broker setting.
func (s *Scenario) brokerLoc(b BrokerSetting) (string, int) {
	if loc, ok := s.pos["broker."+b.Key]; ok && strings.HasPrefix(loc, "--set ") {
		return loc, 0
	}
	if b.Line > 0 {
		return s.Source, b.Line
	}
	if s.Source != "" {
		return s.Source, 0
	}
	return "broker." + b.Key, 0
}

// at returns where a field was set, falling back to its parents, then the file.
func (s *Scenario) at(path string) string {
	for p := path; p != ""; {
		if loc, ok := s.pos[p]; ok {
			return loc
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	if s.Source != "" {
		return s.Source
	}
	return "scenario"
}

// Validate checks the whole scenario and returns every problem found, each
// naming file:line and the field, so a broken file is fixed in one pass.
func (s *Scenario) Validate() error {
	var errs []error
	bad := func(path, format string, args ...interface{}) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", s.at(path), path, fmt.Sprintf(format, args...)))
	}
	if s.Name == "" {
		bad("name", "must not be empty")
	}
	if len(s.Publishers) == 0 {
		bad("publishers", "at least one publisher is needed")
	}
	if s.Duration <= 0 {
		bad("duration", "must be positive (e.g. 90s)")
	}
	expand := s.validateLimits(bad)
	ids := map[string]string{}
	addID := func(id, path string) {
		if prev, ok := ids[id]; ok {
			bad(path+".client_id", "client id %q is also used by %s", id, prev)
			return
		}
		ids[id] = path
	}
	for i, p := range s.Publishers {
		path := fmt.Sprintf("publishers[%d]", i)
		if p.Count < 1 {
			bad(path+".count", "must be at least 1 (got %d)", p.Count)
		}
		if p.Messages < 1 {
			bad(path+".messages", "must be at least 1 (got %d)", p.Messages)
		}
		if p.QoS > 2 {
			bad(path+".qos", "must be 0, 1 or 2 (got %d)", p.QoS)
		}
		if p.Topic == "" {
			bad(path+".topic", "must not be empty")
		} else if strings.ContainsAny(p.Topic, "+#") {
			bad(path+".topic", "a publish topic cannot contain wildcards (got %q)", p.Topic)
		}
		if p.Inflight < 1 {
			bad(path+".inflight", "must be at least 1 (got %d)", p.Inflight)
		} else if p.Inflight > 65535 {
			bad(path+".inflight", "must be at most 65535 (MQTT packet ids) (got %d)", p.Inflight)
		}
		if p.Rate < 0 {
			bad(path+".rate", "must not be negative (got %g)", p.Rate)
		}
		switch {
		case p.Client != ClientLean && p.Client != ClientPaho:
			bad(path+".client", "must be lean or paho (got %q)", p.Client)
		case p.Client == ClientLean && p.ConnectionPerMessage:
			bad(path+".client", "connection_per_message runs on paho (paho-mqtt's publish.single): use client: paho or leave client out")
		}
		if p.RateScope != "per_publisher" && p.RateScope != "global" {
			bad(path+".rate_scope", "must be per_publisher or global (got %q)", p.RateScope)
		}
		switch p.Payload.Kind {
		case "experiment":
		case "random":
			if p.Payload.Size < MinRandomPayload {
				bad(path+".payload.size", "must be at least %d bytes for the id header (got %d)", MinRandomPayload, p.Payload.Size)
			}
		case "template":
			if p.Payload.Template == "" {
				bad(path+".payload.template", "must not be empty for kind template")
			} else if _, err := template.New("p").Funcs(template.FuncMap{"Random": func(int) string { return "" }}).Parse(p.Payload.Template); err != nil {
				bad(path+".payload.template", "%v", err)
			}
		default:
			bad(path+".payload.kind", "must be experiment, random or template (got %q)", p.Payload.Kind)
		}
		if p.Count > 1 && !strings.Contains(p.ClientID, "%d") {
			bad(path+".client_id", "needs %%d with count %d", p.Count)
		}
		if expand {
			for _, id := range p.IDs() {
				addID(id, path)
			}
		}
	}
	subIDs := map[string]bool{}
	for i, sub := range s.Subscribers {
		path := fmt.Sprintf("subscribers[%d]", i)
		if sub.Count < 1 {
			bad(path+".count", "must be at least 1 (got %d)", sub.Count)
		}
		if sub.QoS > 2 {
			bad(path+".qos", "must be 0, 1 or 2 (got %d)", sub.QoS)
		}
		if err := topic.ValidFilter(sub.Filter); err != nil {
			bad(path+".filter", "%v", err)
		}
		if sub.ConnectRate < 0 {
			bad(path+".connect_rate", "must not be negative (got %g)", sub.ConnectRate)
		}
		if sub.PaceMode != "ack" && sub.PaceMode != "block" {
			bad(path+".pace_mode", "must be ack or block (got %q)", sub.PaceMode)
		}
		if sub.Client != "" && sub.Client != ClientLean && sub.Client != ClientPaho { // "" is lean (Subscriber.Lean)
			bad(path+".client", "must be lean or paho (got %q)", sub.Client)
		}
		if sub.Count > 1 && !strings.Contains(sub.ClientID, "%d") {
			bad(path+".client_id", "needs %%d with count %d", sub.Count)
		}
		if expand {
			for _, id := range sub.IDs() {
				addID(id, path)
				subIDs[id] = true
			}
		}
	}
	for i, a := range s.Actions {
		path := fmt.Sprintf("actions[%d]", i)
		switch a.Do {
		case DoSave, DoStop, DoKill, DoStart:
			if a.Target != "" && !s.MultiBroker() {
				bad(path+".target", "broker actions take no target (got %q)", a.Target)
			}
		case DoDisconnect, DoReconnect:
			if !subIDs[a.Target] {
				bad(path+".target", "must name a subscriber (got %q)", a.Target)
			}
		default:
			bad(path+".do", "must be save, stop, kill, start, disconnect or reconnect (got %q)", a.Do)
		}
	}
	if s.Sample.Interval <= 0 {
		bad("sample.interval", "must be positive (got %s)", s.Sample.Interval)
	}
	for i, th := range s.Thresholds {
		if _, err := ParseThreshold(th); err != nil {
			bad(fmt.Sprintf("thresholds[%d]", i), "%v", err)
		}
	}
	s.validateConnect(bad)
	s.validateProtocol(bad)
	s.validateSecurity(bad)
	s.validateBrokers(bad)
	if err := s.validateBroker(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errorsOnce(errs)...)
}

// validateBroker runs every broker value through conf, which knows Mosquitto's
// keys and value syntax and names the file and line of a bad one.
func (s *Scenario) validateBroker() error {
	var errs []error
	c := conf.Default()
	seen := map[string]bool{}
	for _, b := range s.Broker {
		file, line := s.brokerLoc(b)
		if seen[b.Key] {
			errs = append(errs, fmt.Errorf("%s: broker.%s: key given twice", s.at("broker."+b.Key), b.Key))
		}
		seen[b.Key] = true
		for _, v := range b.Values {
			if err := c.Apply(b.Key, v, file, line); err != nil {
				// Re-place conf's message as LOC: broker.KEY: MSG like every scenario error.
				msg := err.Error()
				var ce *conf.Error
				if errors.As(err, &ce) {
					msg = ce.Msg
				}
				errs = append(errs, fmt.Errorf("%s: broker.%s: %s", s.at("broker."+b.Key), b.Key, msg))
			}
		}
	}
	return errors.Join(errs...)
}
