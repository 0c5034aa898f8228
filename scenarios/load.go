package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// shippedFS holds the scenarios that ship inside the binary, so
// `mqbench run persist-3s` works from any directory.
//
//go:embed *.yaml
var shippedFS embed.FS

// Info names a shipped scenario for `mqbench scenarios`.
type Info struct {
	Name        string
	Description string
}

// Shipped lists the embedded scenarios by name, so users can discover what
// `mqbench run NAME` accepts without reading the source.
func Shipped() []Info {
	entries, err := fs.ReadDir(shippedFS, ".")
	if err != nil {
		return nil
	}
	var out []Info
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".yaml")
		s, err := Load(name, nil)
		if err != nil {
			out = append(out, Info{Name: name, Description: "(does not load: " + err.Error() + ")"})
			continue
		}
		out = append(out, Info{Name: s.Name, Description: s.Description})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Load reads a shipped scenario by name or a YAML file by path, applies the
// --set overrides (KEY=VALUE), fills in defaults and validates, so that what a
// run receives is complete and every mistake is reported with file, line and
// field before any broker is started.
func Load(nameOrPath string, sets []string) (*Scenario, error) {
	data, file, err := readSource(nameOrPath)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data, file)
	if err != nil {
		return nil, err
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	// Before --set: a path given on the command line is the user's, relative
	// to where they are. (A shipped scenario's directory is ".": no change.)
	s.resolveTLSPaths(filepath.Dir(file))
	for _, kv := range sets {
		if err := s.Set(kv); err != nil {
			return nil, err
		}
	}
	s.ApplyDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Source is the text of a scenario as Load would read it (a shipped name or a
// file path) and the file name it goes by, for commands that pass a scenario
// on unchanged, e.g. into a Kubernetes ConfigMap.
func Source(nameOrPath string) ([]byte, string, error) { return readSource(nameOrPath) }

// readSource finds the scenario text: a shipped name first (a bare word), else a file.
func readSource(nameOrPath string) ([]byte, string, error) {
	if nameOrPath == "" {
		return nil, "", errors.New("no scenario given")
	}
	if !strings.ContainsAny(nameOrPath, `/\`) {
		// A bare word is a shipped name unless a file of that name is right here.
		if fi, err := os.Stat(nameOrPath); err != nil || !fi.Mode().IsRegular() {
			name := strings.TrimSuffix(nameOrPath, ".yaml") + ".yaml"
			if data, err := shippedFS.ReadFile(name); err == nil {
				return data, name, nil
			}
		}
	}
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(nameOrPath, `/\`) {
			return nil, "", fmt.Errorf("scenario %q: not a shipped scenario (%s) nor a file", nameOrPath, strings.Join(shippedNames(), ", "))
		}
		return nil, "", fmt.Errorf("reading scenario: %w", err)
	}
	return data, nameOrPath, nil
}

func shippedNames() []string {
	entries, _ := fs.ReadDir(shippedFS, ".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return out
}

// Parse decodes scenario YAML without defaults or validation; file is used in
// errors only. Load is what callers normally want.
func Parse(data []byte, file string) (*Scenario, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	s := &Scenario{Source: file, pos: map[string]string{}}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty scenario", file)
	}
	root := doc.Content[0]
	d := &decoder{
		loc: func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", file, n.Line) },
		pos: s.pos,
	}
	if root.Kind != yaml.MappingNode {
		return nil, d.errorf(root, "", "expected a mapping of scenario fields (got %s)", kindName(root))
	}
	fields := yamlFields(reflect.TypeOf(Scenario{}))
	v := reflect.ValueOf(s).Elem()
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return nil, d.errorf(k, k.Value, "field given twice")
		}
		seen[k.Value] = true
		if k.Value == "broker" {
			b, err := decodeBroker(d, val)
			if err != nil {
				return nil, err
			}
			s.Broker = b
			continue
		}
		if k.Value == "brokers" {
			b, err := decodeBrokers(d, val)
			if err != nil {
				return nil, err
			}
			s.Brokers = b
			continue
		}
		idx, ok := fields[k.Value]
		if !ok {
			return nil, d.errorf(k, k.Value, "unknown field (known: broker, brokers, %s)", fieldNames(reflect.TypeOf(Scenario{})))
		}
		if err := d.decode(val, v.Field(idx), k.Value); err != nil {
			return nil, err
		}
	}
	for i := range s.Actions {
		if p, ok := s.pos[fmt.Sprintf("actions[%d]", i)]; ok {
			if j := strings.LastIndexByte(p, ':'); j >= 0 {
				s.Actions[i].Line, _ = strconv.Atoi(p[j+1:])
			}
		}
	}
	return s, nil
}

// decodeBroker reads the broker: mapping in file order; a list value is a sweep.
func decodeBroker(d *decoder, n *yaml.Node) ([]BrokerSetting, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.errorf(n, "broker", "expected a mapping of mosquitto.conf keys (got %s)", kindName(n))
	}
	var out []BrokerSetting
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		path := "broker." + k.Value
		vals, err := brokerValues(d, val, path)
		if err != nil {
			return nil, err
		}
		d.pos[path] = d.loc(k)
		out = append(out, BrokerSetting{Key: k.Value, Values: vals, Line: k.Line})
	}
	return out, nil
}

func brokerValues(d *decoder, val *yaml.Node, path string) ([]string, error) {
	switch val.Kind {
	case yaml.ScalarNode:
		return []string{val.Value}, nil
	case yaml.SequenceNode:
		if len(val.Content) == 0 {
			return nil, d.errorf(val, path, "empty list: a sweep needs at least one value")
		}
		var vals []string
		for _, el := range val.Content {
			if el.Kind != yaml.ScalarNode {
				return nil, d.errorf(el, path, "sweep values must be single values (got %s)", kindName(el))
			}
			vals = append(vals, el.Value)
		}
		return vals, nil
	}
	return nil, d.errorf(val, path, "expected a value or a list of values (got %s)", kindName(val))
}

// Set applies one --set KEY=VALUE override: KEY is a dotted scenario field path
// (duration, publishers.0.messages) or, when it is not a scenario field, a
// mosquitto.conf key for the broker section (autosave_interval).
func (s *Scenario) Set(kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return fmt.Errorf("--set %s: want KEY=VALUE", kv)
	}
	if s.pos == nil {
		s.pos = map[string]string{}
	}
	loc := "--set " + key
	d := &decoder{loc: func(*yaml.Node) string { return loc }, pos: s.pos}
	// parseValue reads the value as YAML (numbers, lists, mappings); a
	// string field takes it verbatim instead (see below), so a filter of "#"
	// is a filter, not a YAML comment.
	parseValue := func() (*yaml.Node, error) {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
			shown := fmt.Sprintf("%q", value)
			if strings.HasSuffix(key, "password") {
				shown = Redacted // an error message must not carry a secret
			}
			return nil, fmt.Errorf("%s: bad value %s: %s", loc, shown, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if len(doc.Content) > 0 {
			return doc.Content[0], nil
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}, nil
	}
	segs := strings.Split(key, ".")
	fields := yamlFields(reflect.TypeOf(Scenario{}))
	if segs[0] == "brokers" {
		return s.setBrokerKey(segs, loc, d, parseValue)
	}
	if _, isField := fields[segs[0]]; !isField {
		bkey := key
		if segs[0] == "broker" && len(segs) == 2 {
			bkey = segs[1]
		} else if len(segs) != 1 {
			return fmt.Errorf("%s: %q is neither a scenario field nor a mosquitto.conf key", loc, segs[0])
		}
		node, err := parseValue()
		if err != nil {
			return err
		}
		vals, err := brokerValues(d, node, "broker."+bkey)
		if err != nil {
			return err
		}
		s.pos["broker."+bkey] = loc
		for i := range s.Broker {
			if s.Broker[i].Key == bkey {
				s.Broker[i].Values = vals
				s.Broker[i].Line = 0
				return nil
			}
		}
		s.Broker = append(s.Broker, BrokerSetting{Key: bkey, Values: vals})
		return nil
	}
	v := reflect.ValueOf(s).Elem()
	path := ""
	for i, seg := range segs {
		switch v.Kind() {
		case reflect.Ptr:
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		switch v.Kind() {
		case reflect.Struct:
			if v.Type() == durationType {
				return fmt.Errorf("%s: %s is a value, it has no field %q", loc, path, seg)
			}
			idx, ok := yamlFields(v.Type())[seg]
			if !ok {
				return fmt.Errorf("%s: %s: unknown field (known: %s)", loc, joinPath(path, seg), fieldNames(v.Type()))
			}
			v = v.Field(idx)
			path = joinPath(path, seg)
		case reflect.Slice:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 {
				return fmt.Errorf("%s: %s: want a list index, got %q", loc, path, seg)
			}
			if n >= v.Len() {
				return fmt.Errorf("%s: %s[%d]: no such entry (the list has %d)", loc, path, n, v.Len())
			}
			v = v.Index(n)
			path = fmt.Sprintf("%s[%d]", path, n)
		default:
			return fmt.Errorf("%s: %s is a value, it has no field %q", loc, path, strings.Join(segs[i:], "."))
		}
	}
	if v.Kind() == reflect.String || (v.Kind() == reflect.Ptr && v.Type().Elem().Kind() == reflect.String) {
		return d.decode(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}, v, path)
	}
	node, err := parseValue()
	if err != nil {
		return err
	}
	return d.decode(node, v, path)
}
