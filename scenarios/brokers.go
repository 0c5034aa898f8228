package scenarios

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mqbench/mqbench/broker/conf"
)

// A scenario with a brokers list runs several brokers at once, e.g. an edge
// bridged to a core: the question "how much does my edge hold and lose while
// its link is down" needs both ends in one run. Each broker has a name and its
// own mosquitto.conf keys; clients and broker actions name the broker they
// use (default: the first). The one-broker broker: section stays as it was.

// NamedBroker is one broker of a scenario with several.
type NamedBroker struct {
	Name string `json:"name"`
	// Conf holds mosquitto.conf keys in file order. Unlike the one-broker
	// section a list value is not a sweep but the key repeated, once per
	// value, as a bridge repeats topic lines: a run of several brokers is not
	// swept.
	Conf []BrokerSetting `json:"conf"`
	Line int             `json:"-"`
}

// BrokerRef is the prefix of an address value that names another broker of
// the scenario (address @core): test brokers bind a free port when they
// start, so the address is filled in then.
const BrokerRef = "@"

// brokerNameRE is what a broker name may be: it is written into paths (the
// broker's data directory) and flags (--broker edge=bundled).
var brokerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// decodeBrokers reads the brokers: list, each entry name and conf.
func decodeBrokers(d *decoder, n *yaml.Node) ([]NamedBroker, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, d.errorf(n, "brokers", "expected a list of brokers, each with name and conf (got %s)", kindName(n))
	}
	var out []NamedBroker
	for i, el := range n.Content {
		path := fmt.Sprintf("brokers[%d]", i)
		if el.Kind != yaml.MappingNode {
			return nil, d.errorf(el, path, "expected a mapping with name and conf (got %s)", kindName(el))
		}
		d.pos[path] = d.loc(el)
		b := NamedBroker{Line: el.Line}
		for j := 0; j+1 < len(el.Content); j += 2 {
			k, val := el.Content[j], el.Content[j+1]
			switch k.Value {
			case "name":
				if val.Kind != yaml.ScalarNode {
					return nil, d.errorf(val, path+".name", "expected a name (got %s)", kindName(val))
				}
				d.pos[path+".name"] = d.loc(k)
				b.Name = val.Value
			case "conf":
				if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
					continue
				}
				if val.Kind != yaml.MappingNode {
					return nil, d.errorf(val, path+".conf", "expected a mapping of mosquitto.conf keys (got %s)", kindName(val))
				}
				for m := 0; m+1 < len(val.Content); m += 2 {
					ck, cv := val.Content[m], val.Content[m+1]
					cp := path + ".conf." + ck.Value
					vals, err := brokerValues(d, cv, cp)
					if err != nil {
						return nil, err
					}
					d.pos[cp] = d.loc(ck)
					b.Conf = append(b.Conf, BrokerSetting{Key: ck.Value, Values: vals, Line: ck.Line})
				}
			default:
				return nil, d.errorf(k, path+"."+k.Value, "unknown field (known: name, conf)")
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// MultiBroker says whether the scenario runs several brokers (a brokers list).
func (s *Scenario) MultiBroker() bool { return len(s.Brokers) > 0 }

// BrokerNames are the brokers' names in the scenario's order.
func (s *Scenario) BrokerNames() []string {
	out := make([]string, len(s.Brokers))
	for i, b := range s.Brokers {
		out[i] = b.Name
	}
	return out
}

// brokerOr is name, or the first broker's when name is empty.
func (s *Scenario) brokerOr(name string) string {
	if name == "" && len(s.Brokers) > 0 {
		return s.Brokers[0].Name
	}
	return name
}

// PublisherBroker is the broker publisher group g connects to ("" with one broker).
func (s *Scenario) PublisherBroker(g int) string { return s.brokerOr(s.Publishers[g].Broker) }

// SubscriberBroker is the broker subscriber group g connects to ("" with one broker).
func (s *Scenario) SubscriberBroker(g int) string { return s.brokerOr(s.Subscribers[g].Broker) }

// IsBrokerAction says whether a acts on a broker (save, stop, kill, start)
// rather than on a subscriber.
func IsBrokerAction(a Action) bool {
	switch a.Do {
	case DoSave, DoStop, DoKill, DoStart:
		return true
	}
	return false
}

// ActionBroker is the broker a broker action acts on ("" with one broker).
func (s *Scenario) ActionBroker(a Action) string { return s.brokerOr(a.Target) }

// broker returns the named broker, nil if there is none.
func (s *Scenario) broker(name string) *NamedBroker {
	for i := range s.Brokers {
		if s.Brokers[i].Name == name {
			return &s.Brokers[i]
		}
	}
	return nil
}

// brokerRefs lists the brokers a broker's address or addresses values name.
func brokerRefs(b NamedBroker) []string {
	var out []string
	for _, st := range b.Conf {
		if st.Key != "address" && st.Key != "addresses" {
			continue
		}
		for _, v := range st.Values {
			for _, f := range strings.Fields(v) {
				if name, ok := strings.CutPrefix(f, BrokerRef); ok {
					out = append(out, name)
				}
			}
		}
	}
	return out
}

// BrokerOrder is the order to start the brokers in: a broker after every
// broker its bridge addresses name, as the address is known only once that
// one listens. Scenario order otherwise. Validate refuses cycles.
func (s *Scenario) BrokerOrder() ([]string, error) {
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("brokers: bridge addresses form a cycle (%s): one broker must start first, so one of them needs a fixed address", strings.Join(append(chain, name), " -> "))
		}
		b := s.broker(name)
		if b == nil {
			return fmt.Errorf("brokers: no broker %q", name)
		}
		state[name] = 1
		for _, r := range brokerRefs(*b) {
			if err := visit(r, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		out = append(out, name)
		return nil
	}
	for _, b := range s.Brokers {
		if err := visit(b.Name, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// BrokerSettings are the mosquitto.conf lines of the named broker, a list
// value written once per value, with every @NAME address replaced by that
// broker's host:port from addrs (tcp://HOST:PORT or HOST:PORT). Each line
// names the scenario file and line it came from, for the broker's errors.
func (s *Scenario) BrokerSettings(name string, addrs map[string]string) ([]conf.Setting, error) {
	b := s.broker(name)
	if b == nil {
		return nil, fmt.Errorf("brokers: no broker %q", name)
	}
	var out []conf.Setting
	for _, st := range b.Conf {
		for _, v := range st.Values {
			if st.Key == "address" || st.Key == "addresses" {
				var err error
				if v, err = substituteRefs(v, addrs); err != nil {
					return nil, fmt.Errorf("%s: brokers %s conf.%s: %w", s.brokerAt(name, st.Key), name, st.Key, err)
				}
			}
			out = append(out, conf.Setting{Key: st.Key, Value: v, File: s.Source, Line: st.Line})
		}
	}
	return out, nil
}

// substituteRefs replaces each @NAME of an address value with the address of
// broker NAME; a nil addrs puts a placeholder in (validation only).
func substituteRefs(v string, addrs map[string]string) (string, error) {
	fields := strings.Fields(v)
	changed := false
	for i, f := range fields {
		name, ok := strings.CutPrefix(f, BrokerRef)
		if !ok {
			continue
		}
		changed = true
		if addrs == nil {
			fields[i] = "127.0.0.1:1883"
			continue
		}
		a, ok := addrs[name]
		if !ok {
			return "", fmt.Errorf("%s%s: broker %q has no address yet", BrokerRef, name, name)
		}
		if _, rest, ok := strings.Cut(a, "://"); ok {
			a = rest
		}
		fields[i] = a
	}
	if !changed {
		return v, nil
	}
	return strings.Join(fields, " "), nil
}

// brokerAt is where a broker's key was set.
func (s *Scenario) brokerAt(name, key string) string {
	for i, b := range s.Brokers {
		if b.Name == name {
			return s.at(fmt.Sprintf("brokers[%d].conf.%s", i, key))
		}
	}
	return s.at("brokers")
}

// validateBrokers checks the brokers list and what names a broker: names
// unique and well formed, every @NAME address a broker of the scenario
// without a cycle, every conf key as conf accepts it, clients and broker
// actions naming brokers that exist; and refuses what cannot work with
// several brokers (the one-broker broker section beside them, a shard, a
// security section: each would need one per broker).
func (s *Scenario) validateBrokers(bad func(path, format string, args ...interface{})) {
	if !s.MultiBroker() {
		for i, p := range s.Publishers {
			if p.Broker != "" {
				bad(fmt.Sprintf("publishers[%d].broker", i), "names broker %q, but the scenario has no brokers list", p.Broker)
			}
		}
		for i, sub := range s.Subscribers {
			if sub.Broker != "" {
				bad(fmt.Sprintf("subscribers[%d].broker", i), "names broker %q, but the scenario has no brokers list", sub.Broker)
			}
		}
		return
	}
	if len(s.Broker) > 0 {
		bad("broker", "a scenario with a brokers list gives each broker its keys in brokers[].conf, not in broker")
	}
	if s.Security != nil {
		bad("security", "not supported with several brokers (each would need its own certificates and files): secure them with their conf keys")
	}
	if s.Shard != nil {
		bad("brokers", "a run of several brokers cannot be sharded (--shard): each shard would start its own brokers")
	}
	names := map[string]bool{}
	for i, b := range s.Brokers {
		path := fmt.Sprintf("brokers[%d]", i)
		switch {
		case !brokerNameRE.MatchString(b.Name):
			bad(path+".name", "want a name of lower-case letters, digits, - and _ (at most 32), e.g. edge (got %q)", b.Name)
		case names[b.Name]:
			bad(path+".name", "broker %q is named twice", b.Name)
		}
		names[b.Name] = true
	}
	for i, b := range s.Brokers {
		for _, r := range brokerRefs(b) {
			if r == b.Name {
				bad(fmt.Sprintf("brokers[%d].conf.address", i), "%s%s names the broker itself", BrokerRef, r)
			} else if !names[r] {
				bad(fmt.Sprintf("brokers[%d].conf.address", i), "%s%s names no broker of the scenario (brokers: %s)", BrokerRef, r, strings.Join(s.BrokerNames(), ", "))
			}
		}
		s.validateBrokerConf(i, b, bad)
	}
	if _, err := s.BrokerOrder(); err != nil && len(names) == len(s.Brokers) {
		bad("brokers", "%v", strings.TrimPrefix(err.Error(), "brokers: "))
	}
	known := func(path, name string) {
		if name != "" && !names[name] {
			bad(path, "names no broker of the scenario (brokers: %s; got %q)", strings.Join(s.BrokerNames(), ", "), name)
		}
	}
	for i, p := range s.Publishers {
		known(fmt.Sprintf("publishers[%d].broker", i), p.Broker)
	}
	for i, sub := range s.Subscribers {
		known(fmt.Sprintf("subscribers[%d].broker", i), sub.Broker)
	}
	for i, a := range s.Actions {
		if !IsBrokerAction(a) {
			continue
		}
		path := fmt.Sprintf("actions[%d].target", i)
		if a.Target == "" {
			bad(path, "with several brokers a %s action names its broker (one of %s)", a.Do, strings.Join(s.BrokerNames(), ", "))
			continue
		}
		known(path, a.Target)
	}
}

// validateBrokerConf runs one broker's keys through conf, with a placeholder
// for each @NAME address.
func (s *Scenario) validateBrokerConf(i int, b NamedBroker, bad func(path, format string, args ...interface{})) {
	c := conf.Default()
	for _, st := range b.Conf {
		path := fmt.Sprintf("brokers[%d].conf.%s", i, st.Key)
		for _, v := range st.Values {
			if st.Key == "address" || st.Key == "addresses" {
				v, _ = substituteRefs(v, nil)
			}
			if err := c.Apply(st.Key, v, s.Source, st.Line); err != nil {
				msg := err.Error()
				var ce *conf.Error
				if errors.As(err, &ce) {
					msg = ce.Msg
				}
				bad(path, "%s", msg)
			}
		}
	}
}

// setBrokerKey applies --set brokers.NAME.KEY=VALUE: a mosquitto.conf key of
// one broker of the list, replacing the key's values (a list value repeats
// the key) or appending it, so an experiment can vary one broker from the
// command line.
func (s *Scenario) setBrokerKey(segs []string, loc string, d *decoder, parseValue func() (*yaml.Node, error)) error {
	if len(segs) != 3 {
		return fmt.Errorf("%s: want brokers.NAME.KEY (a mosquitto.conf key of broker NAME)", loc)
	}
	name, key := segs[1], segs[2]
	for i := range s.Brokers {
		b := &s.Brokers[i]
		if b.Name != name {
			continue
		}
		node, err := parseValue()
		if err != nil {
			return err
		}
		path := fmt.Sprintf("brokers[%d].conf.%s", i, key)
		vals, err := brokerValues(d, node, path)
		if err != nil {
			return err
		}
		s.pos[path] = loc
		for j := range b.Conf {
			if b.Conf[j].Key == key {
				b.Conf[j].Values, b.Conf[j].Line = vals, 0
				return nil
			}
		}
		b.Conf = append(b.Conf, BrokerSetting{Key: key, Values: vals})
		return nil
	}
	return fmt.Errorf("%s: the scenario has no broker %q (brokers: %s)", loc, name, strings.Join(s.BrokerNames(), ", "))
}
