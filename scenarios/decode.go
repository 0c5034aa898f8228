package scenarios

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder turns a yaml.Node tree into scenario structs field by field, so that
// every error can name the file, the line and the field path, and unknown fields
// are errors (yaml.v3's KnownFields does not apply to Node.Decode and its messages
// name Go types, not scenario fields).
type decoder struct {
	// loc returns the location prefix for a node: "file:line" or "--set KEY".
	loc func(n *yaml.Node) string
	pos map[string]string
}

var (
	durationType  = reflect.TypeOf(Duration(0))
	boolSweepType = reflect.TypeOf(BoolSweep(nil))
)

// errorf formats an error as "LOC: PATH: MSG", the shape every scenario error has.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...interface{}) error {
	msg := fmt.Sprintf(format, args...)
	if path == "" {
		return fmt.Errorf("%s: %s", d.loc(n), msg)
	}
	return fmt.Errorf("%s: %s: %s", d.loc(n), path, msg)
}

// yamlFields maps yaml key names to struct field indexes, skipping "-" fields.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name := strings.Split(tag, ",")[0]
		if name == "-" || tag == "" {
			continue
		}
		m[name] = i
	}
	return m
}

// fieldNames lists the yaml keys of a struct for "unknown field" hints.
func fieldNames(t reflect.Type) string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		name := strings.Split(tag, ",")[0]
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return strings.Join(names, ", ")
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// decode fills v from n; path is the field path used in errors.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if d.pos != nil && path != "" {
		d.pos[path] = d.loc(n)
	}
	if v.Type() == durationType {
		return d.decodeDuration(n, v, path)
	}
	if v.Type() == boolSweepType && n.Kind == yaml.ScalarNode {
		// A single value of a field that may also be a sweep list.
		b, ok := parseBool(n.Value)
		if !ok {
			return d.errorf(n, path, "expected true or false (got %q)", n.Value)
		}
		v.Set(reflect.ValueOf(BoolSweep{b}))
		return nil
	}
	switch v.Kind() {
	case reflect.Ptr:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			v.Set(reflect.Zero(v.Type()))
			return nil
		}
		nv := reflect.New(v.Type().Elem())
		if err := d.decode(n, nv.Elem(), path); err != nil {
			return err
		}
		v.Set(nv)
		return nil
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return d.errorf(n, path, "expected a mapping (got %s)", kindName(n))
		}
		fields := yamlFields(v.Type())
		seen := make(map[string]bool)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			fp := joinPath(path, k.Value)
			idx, ok := fields[k.Value]
			if !ok {
				return d.errorf(k, fp, "unknown field (known: %s)", fieldNames(v.Type()))
			}
			if seen[k.Value] {
				return d.errorf(k, fp, "field given twice")
			}
			seen[k.Value] = true
			if err := d.decode(val, v.Field(idx), fp); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		return d.decodeMap(n, v, path)
	case reflect.Slice:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			v.Set(reflect.Zero(v.Type()))
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return d.errorf(n, path, "expected a list (got %s)", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, el := range n.Content {
			if err := d.decode(el, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return d.errorf(n, path, "expected a single value (got %s)", kindName(n))
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag == "!!null" {
			v.SetString("")
			return nil
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := parseBool(n.Value)
		if !ok {
			return d.errorf(n, path, "expected true or false (got %q)", n.Value)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || v.OverflowInt(i) {
			return d.errorf(n, path, "expected an integer (got %q)", n.Value)
		}
		v.SetInt(i)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		u, err := strconv.ParseUint(n.Value, 0, 64)
		if err != nil || v.OverflowUint(u) {
			return d.errorf(n, path, "expected a small non-negative integer (got %q)", n.Value)
		}
		v.SetUint(u)
	case reflect.Float64, reflect.Float32:
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil {
			return d.errorf(n, path, "expected a number (got %q)", n.Value)
		}
		v.SetFloat(f)
	default:
		return d.errorf(n, path, "unsupported field type %s", v.Type())
	}
	return nil
}

// decodeMap fills a map of text to text (user_properties): every key and
// value a single value, no key twice.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		v.Set(reflect.Zero(v.Type()))
		return nil
	}
	if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
		return d.errorf(n, path, "unsupported field type %s", v.Type())
	}
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, "expected a mapping of names to values (got %s)", kindName(n))
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := joinPath(path, k.Value)
		if k.Kind != yaml.ScalarNode || val.Kind != yaml.ScalarNode {
			return d.errorf(k, fp, "expected NAME: VALUE")
		}
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			return d.errorf(k, fp, "given twice")
		}
		if d.pos != nil {
			d.pos[fp] = d.loc(k)
		}
		m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(val.Value))
	}
	v.Set(m)
	return nil
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.ScalarNode {
		return d.errorf(n, path, "expected a duration such as 3s (got %s)", kindName(n))
	}
	if n.Value == "0" {
		v.SetInt(0)
		return nil
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		return d.errorf(n, path, "bad duration %q (want e.g. 250ms, 3s, 1m)", n.Value)
	}
	if dur < 0 {
		return d.errorf(n, path, "must not be negative (got %s)", n.Value)
	}
	v.SetInt(int64(dur))
	return nil
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}
