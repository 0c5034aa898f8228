package conf

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
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

type scope int

const (
	scopeGlobal scope = iota
	scopeListener
	scopeBridge
	// scopeSecurity keys belong to the broker-wide security options, or to the
	// current listener's once per_listener_settings is true.
	scopeSecurity
)

type kind int

const (
	kBool kind = iota
	kInt
	kString // the rest of the line, non-empty
	kEnum
	kSpecial // validated by its own case in apply
)

// spec says how a key's value is validated, where it applies and whether the
// bundled broker acts on it.
type spec struct {
	kind     kind
	scope    scope
	min, max int64
	enum     []string
	once     bool // Mosquitto rejects a second value in the same scope
	acted    bool
}

func bl(sc scope) spec                 { return spec{kind: kBool, scope: sc} }
func in(sc scope, lo, hi int64) spec   { return spec{kind: kInt, scope: sc, min: lo, max: hi} }
func st(sc scope) spec                 { return spec{kind: kString, scope: sc, once: true} }
func en(sc scope, vals ...string) spec { return spec{kind: kEnum, scope: sc, enum: vals} }
func sp(sc scope) spec                 { return spec{kind: kSpecial, scope: sc} }
func acted(s spec) spec                { s.acted = true; return s }

const (
	maxInt     = math.MaxInt32
	maxPayload = 268435455
)

// specs lists every key Mosquitto 2.0.11 reads (src/conf.c), plus
// store_clean_interval (1.x; accepted, written out commented).
var specs = map[string]spec{
	// General, acted on.
	"allow_anonymous":       acted(bl(scopeSecurity)),
	"autosave_interval":     acted(sp(scopeGlobal)),
	"autosave_on_changes":   acted(bl(scopeGlobal)),
	"connection_messages":   acted(bl(scopeGlobal)),
	"log_dest":              acted(sp(scopeGlobal)),
	"log_timestamp":         acted(bl(scopeGlobal)),
	"log_type":              acted(en(scopeGlobal, "none", "information", "notice", "warning", "error", "debug", "subscribe", "unsubscribe", "internal", "websockets", "all")),
	"max_inflight_messages": acted(in(scopeGlobal, 0, 65535)),
	"max_queued_messages":   acted(in(scopeGlobal, 0, maxInt)),
	"max_queued_bytes":      acted(in(scopeGlobal, 0, math.MaxInt64)),
	"message_size_limit":    acted(in(scopeGlobal, 0, maxPayload)),
	"persistence":           acted(bl(scopeGlobal)),
	"retained_persistence":  acted(bl(scopeGlobal)),
	"persistence_file":      acted(st(scopeGlobal)),
	"persistence_location":  acted(st(scopeGlobal)),
	"pid_file":              acted(st(scopeGlobal)),
	"queue_qos0_messages":   acted(bl(scopeGlobal)),
	"sys_interval":          acted(in(scopeGlobal, 0, 65535)),
	// Listeners, acted on.
	"listener":        acted(sp(scopeGlobal)),
	"port":            acted(in(scopeGlobal, 1, 65535)),
	"bind_address":    acted(st(scopeGlobal)),
	"max_connections": acted(in(scopeListener, math.MinInt32, maxInt)), // negative = unlimited

	// General, recognised only.
	"acl_file":                       acted(st(scopeSecurity)),
	"allow_duplicate_messages":       bl(scopeGlobal),
	"allow_zero_length_clientid":     acted(bl(scopeSecurity)),
	"auth_plugin":                    sp(scopeSecurity),
	"plugin":                         sp(scopeSecurity),
	"auth_plugin_deny_special_chars": sp(scopeGlobal),
	"auto_id_prefix":                 acted(st(scopeSecurity)),
	"check_retain_source":            acted(bl(scopeSecurity)),
	"clientid_prefixes":              acted(st(scopeGlobal)),
	"log_facility":                   in(scopeGlobal, 0, 7),
	"log_timestamp_format":           st(scopeGlobal),
	"max_inflight_bytes":             in(scopeGlobal, 0, maxInt),
	"max_keepalive":                  acted(in(scopeGlobal, 10, 65535)),
	"max_packet_size":                in(scopeGlobal, 20, maxInt),
	"memory_limit":                   in(scopeGlobal, 0, math.MaxInt64),
	"password_file":                  acted(st(scopeSecurity)),
	"per_listener_settings":          acted(bl(scopeGlobal)),
	"persistent_client_expiration":   acted(sp(scopeGlobal)),
	"psk_file":                       st(scopeSecurity),
	"retain_available":               acted(bl(scopeGlobal)),
	"retry_interval":                 in(scopeGlobal, 0, maxInt),
	"set_tcp_nodelay":                acted(bl(scopeGlobal)),
	"store_clean_interval":           in(scopeGlobal, 0, maxInt),
	"upgrade_outgoing_qos":           acted(bl(scopeGlobal)),
	"user":                           spec{kind: kString, scope: scopeGlobal},
	"websockets_headers_size":        in(scopeGlobal, 0, 65535),
	"websockets_log_level":           in(scopeGlobal, 0, maxInt),

	// Listener options, recognised only.
	"bind_interface":           st(scopeListener),
	"cafile":                   st(scopeListener),
	"capath":                   st(scopeListener),
	"certfile":                 st(scopeListener),
	"keyfile":                  st(scopeListener),
	"ciphers":                  st(scopeListener),
	"ciphers_tls1.3":           st(scopeListener),
	"crlfile":                  st(scopeListener),
	"dhparamfile":              st(scopeListener),
	"http_dir":                 st(scopeListener),
	"mount_point":              acted(st(scopeListener)),
	"psk_hint":                 st(scopeListener),
	"tls_engine":               st(scopeListener),
	"tls_engine_kpass_sha1":    st(scopeListener),
	"tls_keyform":              en(scopeListener, "pem", "engine"),
	"tls_version":              st(scopeListener),
	"require_certificate":      bl(scopeListener),
	"use_identity_as_username": bl(scopeListener),
	"use_subject_as_username":  bl(scopeListener),
	"use_username_as_clientid": acted(bl(scopeListener)),
	"max_topic_alias":          acted(in(scopeListener, 0, 65535)),
	"maximum_qos":              acted(in(scopeListener, 0, 2)),
	"max_qos":                  acted(in(scopeListener, 0, 2)),
	"protocol":                 en(scopeListener, "mqtt", "websockets"),
	"socket_domain":            en(scopeListener, "ipv4", "ipv6"),

	// Bridges, recognised only.
	"connection":                 sp(scopeGlobal),
	"address":                    sp(scopeBridge),
	"addresses":                  sp(scopeBridge),
	"topic":                      sp(scopeBridge),
	"restart_timeout":            sp(scopeBridge),
	"start_type":                 en(scopeBridge, "automatic", "lazy", "once"),
	"bridge_protocol_version":    en(scopeBridge, "mqttv31", "mqttv311", "mqttv50"),
	"bridge_alpn":                st(scopeBridge),
	"bridge_bind_address":        st(scopeBridge),
	"bridge_cafile":              st(scopeBridge),
	"bridge_capath":              st(scopeBridge),
	"bridge_certfile":            st(scopeBridge),
	"bridge_keyfile":             st(scopeBridge),
	"bridge_identity":            st(scopeBridge),
	"bridge_psk":                 st(scopeBridge),
	"bridge_tls_version":         st(scopeBridge),
	"clientid":                   st(scopeBridge),
	"remote_clientid":            st(scopeBridge),
	"local_clientid":             st(scopeBridge),
	"username":                   st(scopeBridge),
	"remote_username":            st(scopeBridge),
	"password":                   st(scopeBridge),
	"remote_password":            st(scopeBridge),
	"local_username":             st(scopeBridge),
	"local_password":             st(scopeBridge),
	"notification_topic":         st(scopeBridge),
	"bridge_attempt_unsubscribe": bl(scopeBridge),
	"bridge_insecure":            bl(scopeBridge),
	"bridge_outgoing_retain":     bl(scopeBridge),
	"bridge_require_ocsp":        bl(scopeBridge),
	"cleansession":               bl(scopeBridge),
	"local_cleansession":         bl(scopeBridge),
	"notifications":              bl(scopeBridge),
	"notifications_local_only":   bl(scopeBridge),
	"round_robin":                bl(scopeBridge),
	"try_private":                bl(scopeBridge),
	"bridge_max_packet_size":     in(scopeBridge, 0, maxInt),
	"idle_timeout":               in(scopeBridge, 0, maxInt),
	"keepalive_interval":         in(scopeBridge, 0, 65535),
	"threshold":                  in(scopeBridge, 0, maxInt),
}

// Keys reports every configuration key Parse accepts, sorted (auth_opt_* and
// plugin_opt_* prefixes aside), so tests and docs can enumerate them.
func Keys() []string {
	keys := make([]string, 0, len(specs))
	for k := range specs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var (
	decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	integerRE = regexp.MustCompile(`^[+-]?[0-9]+$`)
)

// word returns the single token of a one-word value, allowing a trailing comment.
func word(s Setting) (string, error) {
	f := strings.Fields(s.Value)
	for i, t := range f {
		if strings.HasPrefix(t, "#") {
			f = f[:i]
			break
		}
	}
	switch len(f) {
	case 0:
		return "", bad(s, "empty value")
	case 1:
		return f[0], nil
	}
	return "", bad(s, "expected one value, got "+strconv.Itoa(len(f)))
}

func parseBool(s Setting) (bool, error) {
	w, err := word(s)
	if err != nil {
		return false, err
	}
	switch w {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, bad(s, "not a boolean (true, false, 1 or 0)")
}

func parseInt(s Setting, lo, hi int64) (int64, error) {
	w, err := word(s)
	if err != nil {
		return 0, err
	}
	if !integerRE.MatchString(w) {
		return 0, bad(s, "not an integer")
	}
	n, err := strconv.ParseInt(w, 10, 64)
	if err != nil || n < lo || n > hi {
		if lo == 0 && n < 0 {
			return 0, bad(s, "must not be negative")
		}
		return 0, bad(s, fmt.Sprintf("out of range %d..%d", lo, hi))
	}
	return n, nil
}

// seconds parses a whole-second count into a duration.
func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

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

func place(s Setting) string {
	if p := s.Place(); p != "" {
		return p
	}
	return "an earlier setting"
}

// addRepeated adds v to the list of a key that may be given more than once
// (log_dest, log_type) the way Mosquitto accumulates it: the first occurrence,
// marked in *set, replaces the default list, and so does a value that resets
// it (none, and all for log_type); a lone "none" gives way to the next value,
// and a value already listed is not added again.
func addRepeated(list []string, set *bool, v string, reset bool) []string {
	if !*set || reset {
		list = nil
		*set = true
	}
	if len(list) == 1 && list[0] == "none" {
		list = nil
	}
	if !slices.Contains(list, v) {
		list = append(list, v)
	}
	return list
}

// set stores a validated value in the Config fields, and validates the keys with
// their own syntax (kSpecial).
func (c *Config) set(s Setting, sp spec, b bool, n int64, w string) error {
	switch s.Key {
	case "allow_anonymous":
		c.curSecurity().AllowAnonymous = &b
	case "allow_zero_length_clientid":
		c.curSecurity().AllowZeroLengthClientID = &b
	case "auto_id_prefix":
		c.curSecurity().AutoIDPrefix = s.Value
	case "per_listener_settings":
		if b && c.securityTouched {
			return bad(s, "per_listener_settings must be set before any other security settings (as in mosquitto)")
		}
		c.PerListenerSettings = b
	case "autosave_interval":
		return c.setAutosave(s)
	case "autosave_on_changes":
		if b && c.AutosaveInterval%time.Second != 0 {
			return bad(s, fmt.Sprintf("autosave_interval %v is fractional, but with autosave_on_changes it is a count of changes", c.AutosaveInterval.Seconds()))
		}
		c.AutosaveOnChanges = b
	case "connection_messages":
		c.ConnectionMessages = b
	case "log_timestamp":
		c.LogTimestamp = b
	case "log_dest":
		return c.setLogDest(s)
	case "log_type":
		c.LogType = addRepeated(c.LogType, &c.logTypeSet, w, w == "none" || w == "all")
	case "max_inflight_messages":
		if n == 65535 {
			n = 0 // Mosquitto: 65535 means unlimited
		}
		c.MaxInflightMessages = int(n)
	case "max_queued_messages":
		c.MaxQueuedMessages = int(n)
	case "max_queued_bytes":
		c.MaxQueuedBytes = n
	case "message_size_limit":
		c.MessageSizeLimit = int(n)
	case "persistence", "retained_persistence":
		c.Persistence = b
	case "persistence_file":
		c.PersistenceFile = s.Value
	case "persistence_location":
		c.PersistenceLocation = s.Value
	case "pid_file":
		c.PidFile = s.Value
	case "queue_qos0_messages":
		c.QueueQoS0Messages = b
	case "sys_interval":
		c.SysInterval = seconds(n)
	case "listener":
		return c.setListener(s)
	case "port":
		c.defaultListener().Port = int(n)
	case "bind_address":
		c.defaultListener().BindAddress = s.Value
	case "max_connections":
		if n < 0 {
			n = -1
		}
		c.scopedListener().MaxConnections = int(n)

	case "acl_file":
		c.curSecurity().ACLFile = s.Value
	case "clientid_prefixes":
		c.ClientIDPrefixes = s.Value
	case "password_file":
		c.curSecurity().PasswordFile = s.Value
	case "psk_file":
		c.curSecurity().PSKFile = s.Value
	case "user":
		c.User = s.Value
	case "retry_interval":
		c.RetryInterval = seconds(n)
	case "upgrade_outgoing_qos":
		c.UpgradeOutgoingQoS = b
	case "set_tcp_nodelay":
		c.SetTCPNoDelay = &b
	case "store_clean_interval":
		c.StoreCleanInterval = seconds(n)
	case "max_keepalive":
		c.MaxKeepalive = int(n)
	case "retain_available":
		c.RetainUnavailable = !b
	case "persistent_client_expiration":
		d, err := parseExpiration(s)
		if err != nil {
			return err
		}
		c.PersistentClientExpiration = d
	case "auth_plugin", "plugin":
		if s.Value == "" {
			return bad(s, "empty value")
		}
		c.hasPlugin = true
		sec := c.curSecurity()
		sec.Plugins = append(sec.Plugins, s)
	case "auth_plugin_deny_special_chars":
		if !c.hasPlugin {
			return bad(s, "needs an auth_plugin line before it")
		}
		if _, err := parseBool(s); err != nil {
			return err
		}
	case "mount_point":
		if strings.ContainsAny(s.Value, "+#") {
			return bad(s, "a mount point must not contain wildcards")
		}
		c.scopedListener().MountPoint = s.Value

	case "cafile", "capath", "certfile", "keyfile", "crlfile", "psk_hint", "ciphers", "ciphers_tls1.3",
		"tls_version", "dhparamfile", "tls_engine", "tls_keyform", "bind_interface", "socket_domain",
		"protocol", "http_dir":
		*listenerString(c.scopedListener(), s.Key) = strings.TrimSpace(s.Value)
	case "require_certificate":
		c.scopedListener().RequireCertificate = b
	case "use_identity_as_username":
		c.scopedListener().UseIdentityAsUsername = b
	case "use_subject_as_username":
		c.scopedListener().UseSubjectAsUsername = b
	case "use_username_as_clientid":
		c.scopedListener().UseUsernameAsClientID = b
	case "max_qos", "maximum_qos":
		c.scopedListener().MaxQoS = int(n)
	case "max_topic_alias":
		c.scopedListener().MaxTopicAlias = int(n)

	case "connection":
		return c.setConnection(s)
	case "address", "addresses":
		return checkAddresses(s)
	case "topic":
		return checkBridgeTopic(s)
	case "restart_timeout":
		return checkRestartTimeout(s)
	}
	return nil
}

// listenerString is the Listener field a string-valued listener key sets, so
// the keys and their fields are listed once.
func listenerString(l *Listener, key string) *string {
	switch key {
	case "cafile":
		return &l.CAFile
	case "capath":
		return &l.CAPath
	case "certfile":
		return &l.CertFile
	case "keyfile":
		return &l.KeyFile
	case "crlfile":
		return &l.CRLFile
	case "psk_hint":
		return &l.PSKHint
	case "ciphers":
		return &l.Ciphers
	case "ciphers_tls1.3":
		return &l.CiphersTLS13
	case "tls_version":
		return &l.TLSVersion
	case "dhparamfile":
		return &l.DHParamFile
	case "tls_engine":
		return &l.TLSEngine
	case "tls_keyform":
		return &l.TLSKeyform
	case "bind_interface":
		return &l.BindInterface
	case "socket_domain":
		return &l.SocketDomain
	case "protocol":
		return &l.Protocol
	case "http_dir":
		return &l.HTTPDir
	}
	panic("conf: no listener field for " + key)
}

func (c *Config) setAutosave(s Setting) error {
	w, err := word(s)
	if err != nil {
		return err
	}
	if strings.HasPrefix(w, "-") {
		return bad(s, "must not be negative")
	}
	if !decimalRE.MatchString(w) {
		return bad(s, "not a number of seconds")
	}
	f, err := strconv.ParseFloat(w, 64)
	if err != nil || f > float64(math.MaxInt32) {
		return bad(s, "out of range")
	}
	d := time.Duration(math.Round(f * float64(time.Second)))
	if d%time.Second != 0 && c.AutosaveOnChanges {
		return bad(s, "with autosave_on_changes true the value is a count of changes and must be whole")
	}
	c.AutosaveInterval = d
	c.AutosaveChanges = int(f)
	return nil
}

func (c *Config) setLogDest(s Setting) error {
	f := strings.Fields(s.Value)
	if len(f) == 0 {
		return bad(s, "empty value")
	}
	dest := f[0]
	switch dest {
	case "none", "syslog", "stdout", "stderr", "topic", "dlt":
		if _, err := word(s); err != nil {
			return err
		}
	case "file":
		path := strings.TrimSpace(strings.TrimPrefix(s.Value, "file"))
		if path == "" {
			return bad(s, "log_dest file needs a path")
		}
		for _, d := range c.LogDest {
			if strings.HasPrefix(d, "file ") {
				return bad(s, "duplicate log_dest file; mosquitto accepts one log file")
			}
		}
		dest = "file " + path
	default:
		return bad(s, "must be one of none, syslog, stdout, stderr, topic, dlt, file PATH")
	}
	c.LogDest = addRepeated(c.LogDest, &c.logDestSet, dest, dest == "none")
	switch dest {
	case "syslog", "topic", "dlt":
		c.markUnacted(s)
	}
	return nil
}

func (c *Config) setListener(s Setting) error {
	f := strings.Fields(s.Value)
	for i, t := range f {
		if strings.HasPrefix(t, "#") {
			f = f[:i]
			break
		}
	}
	if len(f) == 0 {
		return bad(s, "empty value (want PORT [ADDRESS])")
	}
	if len(f) > 2 {
		return bad(s, "want PORT [ADDRESS]")
	}
	if !integerRE.MatchString(f[0]) {
		return bad(s, "port is not an integer")
	}
	port, err := strconv.Atoi(f[0])
	// Port 0 (pick a free port) is an mqbench extension; Mosquitto would read it
	// as a unix socket listener. launch replaces it with a real port.
	if err != nil || port < 0 || port > 65535 {
		return bad(s, "port out of range 0..65535")
	}
	l := Listener{Port: port, MaxConnections: -1, MaxQoS: -1, MaxTopicAlias: -1, Line: s}
	if len(f) == 2 {
		l.BindAddress = f[1]
	}
	c.Listeners = append(c.Listeners, l)
	c.curListener = len(c.Listeners)
	return nil
}

func (c *Config) setConnection(s Setting) error {
	name, err := word(s)
	if err != nil {
		return err
	}
	for _, b := range c.Bridges {
		if b.Name == name {
			return bad(s, fmt.Sprintf("duplicate bridge name (first at %s)", place(b.Connection)))
		}
	}
	c.Bridges = append(c.Bridges, Bridge{Name: name, Connection: s})
	c.curBridge = len(c.Bridges)
	return nil
}

func (c *Config) pluginOpt(s Setting) error {
	if !c.hasPlugin {
		return &Error{File: s.File, Line: s.Line, Key: s.Key, Value: s.Value,
			Msg: fmt.Sprintf("%s needs an auth_plugin line before it", s.Key)}
	}
	if s.Value == "" {
		return bad(s, "empty value")
	}
	c.markUnacted(s)
	return nil
}

var expirationRE = regexp.MustCompile(`^([0-9]+)([hdwmy])$`)

func parseExpiration(s Setting) (time.Duration, error) {
	w, err := word(s)
	if err != nil {
		return 0, err
	}
	m := expirationRE.FindStringSubmatch(w)
	if m == nil {
		return 0, bad(s, "want a count and a unit h, d, w, m or y (e.g. 2d)")
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n <= 0 || n > 100000 {
		return 0, bad(s, "count must be between 1 and 100000")
	}
	unit := map[string]time.Duration{"h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
		"m": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit, nil
}

func checkAddresses(s Setting) error {
	f := strings.Fields(s.Value)
	n := 0
	for _, a := range f {
		if strings.HasPrefix(a, "#") {
			break
		}
		n++
		if i := strings.LastIndexByte(a, ':'); i >= 0 {
			p, err := strconv.Atoi(a[i+1:])
			if err != nil || p < 1 || p > 65535 {
				return bad(s, fmt.Sprintf("address %q: port must be 1..65535", a))
			}
		}
	}
	if n == 0 {
		return bad(s, "empty value")
	}
	return nil
}

func checkBridgeTopic(s Setting) error {
	f := strings.Fields(s.Value)
	if len(f) == 0 {
		return bad(s, "empty value (want PATTERN [out|in|both] [QOS] [LOCAL-PREFIX] [REMOTE-PREFIX])")
	}
	if len(f) > 1 && !slices.Contains([]string{"out", "in", "both"}, strings.ToLower(f[1])) {
		return bad(s, fmt.Sprintf("direction %q must be out, in or both", f[1]))
	}
	if len(f) > 2 && !strings.HasPrefix(f[2], "#") {
		q, err := strconv.Atoi(f[2])
		if err != nil || q < 0 || q > 2 {
			return bad(s, fmt.Sprintf("qos %q must be 0, 1 or 2", f[2]))
		}
	}
	return nil
}

func checkRestartTimeout(s Setting) error {
	f := strings.Fields(s.Value)
	if len(f) == 0 || len(f) > 2 {
		return bad(s, "want BASE [CAP] in seconds")
	}
	var v [2]int
	for i, t := range f {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return bad(s, fmt.Sprintf("%q is not a non-negative integer", t))
		}
		v[i] = n
	}
	if len(f) == 2 && v[1] < v[0] {
		return bad(s, "backoff cap is lower than the base")
	}
	return nil
}
