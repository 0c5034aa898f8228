package conf

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseFile reads a mosquitto.conf from disk, with Mosquitto 2.0.11's defaults for
// everything the file does not set. Errors name the file and line.
func ParseFile(path string) (*Config, error) {
	c := Default()
	if err := c.readFile(path); err != nil {
		return nil, err
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse reads a mosquitto.conf from r; name is used in errors (usually the path).
func Parse(r io.Reader, name string) (*Config, error) {
	c := Default()
	if err := c.read(r, name); err != nil {
		return nil, err
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return c, nil
}

// FromSettings builds a Config from settings that did not come from a file (a
// scenario's broker: section), validating each as if it were a mosquitto.conf line.
func FromSettings(settings []Setting) (*Config, error) {
	c := Default()
	for _, s := range settings {
		if err := c.Apply(s.Key, s.Value, s.File, s.Line); err != nil {
			return nil, err
		}
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) readFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return fmt.Errorf("reading config %s: is a directory", path)
	}
	return c.read(f, path)
}

func (c *Config) read(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		if !utf8.ValidString(text) {
			return &Error{File: name, Line: line, Msg: "malformed UTF-8"}
		}
		key, value := text, ""
		if k := strings.IndexAny(text, " \t"); k >= 0 {
			key, value = text[:k], text[k+1:]
		}
		if err := c.Apply(key, value, name, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s after line %d: %w", name, line, err)
	}
	return nil
}

// Apply sets one configuration line, as if it appeared at file:line. It is the
// single entry point for files, scenario settings and launch's own additions, so
// every path validates the same way. Scoped keys apply to the most recent
// `listener` (or the default listener) and `connection` block, as in Mosquitto.
func (c *Config) Apply(key, value, file string, line int) error {
	s := Setting{Key: key, Value: strings.TrimSpace(value), File: file, Line: line}
	if s.Key == "include_dir" {
		return c.includeDir(s)
	}
	if err := c.apply(s); err != nil {
		return err
	}
	c.Lines = append(c.Lines, s)
	return nil
}

// Check applies the whole-file rules Mosquitto checks after reading: every bridge
// needs an address and at least one topic.
func (c *Config) Check() error {
	for _, b := range c.Bridges {
		var addr, topic bool
		for _, s := range b.Settings {
			switch s.Key {
			case "address", "addresses":
				addr = true
			case "topic":
				topic = true
			}
		}
		cs := b.Connection
		switch {
		case !addr:
			return &Error{File: cs.File, Line: cs.Line, Key: cs.Key, Value: cs.Value,
				Msg: fmt.Sprintf("bridge %q has no address", b.Name)}
		case !topic:
			return &Error{File: cs.File, Line: cs.Line, Key: cs.Key, Value: cs.Value,
				Msg: fmt.Sprintf("bridge %q has no topic", b.Name)}
		}
	}
	return nil
}

func (c *Config) includeDir(s Setting) error {
	if s.Value == "" {
		return bad(s, "empty value")
	}
	if c.level > 0 {
		// Mosquitto reads include_dir only from the main file and silently skips it
		// elsewhere; we skip it too, but say so through Unacted.
		c.markUnacted(s)
		return nil
	}
	dir := s.Value
	if !filepath.IsAbs(dir) && s.File != "" {
		dir = filepath.Join(filepath.Dir(s.File), dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return bad(s, err.Error())
	}
	var files []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".conf") && !e.IsDir() {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	c.IncludeDirs = append(c.IncludeDirs, dir)
	c.level++
	defer func() { c.level-- }()
	for _, f := range files {
		if err := c.readFile(f); err != nil {
			return err
		}
	}
	return nil
}

// bad is the error for a recognised key with an unusable value.
func bad(s Setting, reason string) error {
	return &Error{File: s.File, Line: s.Line, Key: s.Key, Value: s.Value,
		Msg: fmt.Sprintf("invalid value %q for %s: %s", s.Value, s.Key, reason)}
}

// markUnacted records, once per key, that the bundled broker does not act on it.
func (c *Config) markUnacted(s Setting) {
	if c.unacted == nil {
		c.unacted = map[string]bool{}
	}
	if c.unacted[s.Key] {
		return
	}
	c.unacted[s.Key] = true
	c.Unacted = append(c.Unacted, s)
}

// curSecurity is the security options a security key applies to now: the
// current listener's with per_listener_settings, the broker's otherwise.
func (c *Config) curSecurity() *Security {
	if c.PerListenerSettings {
		return &c.scopedListener().Security
	}
	return &c.Security
}

// listener returns the listener scoped keys apply to, creating Mosquitto's
// default listener (port 1883, all interfaces) the first time it is needed.
func (c *Config) listener() (*Listener, int) {
	if c.curListener > 0 {
		return &c.Listeners[c.curListener-1], c.curListener
	}
	return c.defaultListener(), 0
}

// scopedListener is listener for a key that sets a field and needs no index.
func (c *Config) scopedListener() *Listener {
	l, _ := c.listener()
	return l
}

func (c *Config) defaultListener() *Listener {
	for i := range c.Listeners {
		if c.Listeners[i].Default {
			return &c.Listeners[i]
		}
	}
	c.Listeners = append(c.Listeners, Listener{Default: true, Port: 1883, MaxConnections: -1, MaxQoS: -1, MaxTopicAlias: -1})
	return &c.Listeners[len(c.Listeners)-1]
}

func (c *Config) apply(s Setting) error {
	sp, ok := specs[s.Key]
	if !ok {
		if strings.HasPrefix(s.Key, "auth_opt_") || strings.HasPrefix(s.Key, "plugin_opt_") {
			return c.pluginOpt(s)
		}
		return &Error{File: s.File, Line: s.Line, Key: s.Key, Value: s.Value,
			Msg: fmt.Sprintf("unknown configuration variable %q", s.Key)}
	}

	// Where the key applies, for scoping and duplicate detection.
	scopeID := ""
	switch sp.scope {
	case scopeListener:
		l, idx := c.listener()
		scopeID = "L" + strconv.Itoa(idx)
		if l.Places == nil {
			l.Places = map[string]Setting{}
		}
		l.Places[s.Key] = s
	case scopeSecurity:
		// Mosquitto's conf__set_cur_security_options: from here on
		// per_listener_settings may no longer be turned on.
		c.securityTouched = true
		sec := c.curSecurity()
		if c.PerListenerSettings {
			_, idx := c.listener()
			scopeID = "L" + strconv.Itoa(idx)
		}
		if sec.Places == nil {
			sec.Places = map[string]Setting{}
		}
		sec.Places[s.Key] = s
	case scopeBridge:
		if c.curBridge == 0 {
			return &Error{File: s.File, Line: s.Line, Key: s.Key, Value: s.Value,
				Msg: fmt.Sprintf("bridge option %s outside a connection block (add `connection NAME` before it)", s.Key)}
		}
		scopeID = "B" + strconv.Itoa(c.curBridge)
	}

	// Generic validation.
	var (
		b   bool
		n   int64
		w   string
		err error
	)
	switch sp.kind {
	case kBool:
		b, err = parseBool(s)
	case kInt:
		n, err = parseInt(s, sp.min, sp.max)
	case kString:
		if s.Value == "" {
			err = bad(s, "empty value")
		}
	case kEnum:
		w, err = word(s)
		if err == nil && !slices.Contains(sp.enum, w) {
			if s.Key == "start_type" && w == "manual" {
				err = bad(s, "manual start_type is not supported by mosquitto")
			} else {
				err = bad(s, "must be one of "+strings.Join(sp.enum, ", "))
			}
		}
	}
	if err != nil {
		return err
	}
	if sp.once {
		if c.seen == nil {
			c.seen = map[string]Setting{}
		}
		id := scopeID + "/" + s.Key
		if prev, dup := c.seen[id]; dup {
			return bad(s, fmt.Sprintf("duplicate value (already set at %s); mosquitto rejects a second one", place(prev)))
		}
		c.seen[id] = s
	}

	if err := c.set(s, sp, b, n, w); err != nil {
		return err
	}
	if sp.scope == scopeBridge {
		br := &c.Bridges[c.curBridge-1]
		br.Settings = append(br.Settings, s)
	}
	if !sp.acted {
		c.markUnacted(s)
	}
	return nil
}
