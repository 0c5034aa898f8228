package conf

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

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
	case "max_packet_size":
		c.MaxPacketSize = int(n)
	case "max_inflight_bytes":
		c.MaxInflightBytes = int(n)
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
