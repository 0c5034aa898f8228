// Package conf parses and writes mosquitto.conf. One Config serves every broker
// kind: the bundled broker acts on it, launch writes it out for a real Mosquitto,
// so a scenario's broker settings mean the same thing whichever broker runs.
//
// Parsing follows Mosquitto 2.0.11's src/conf.c: the same keys, scopes (listener
// options apply to the latest `listener`, bridge options to the latest
// `connection`), defaults and duplicate rules, and errors placed as FILE:LINE.
// It is stricter about values (Mosquitto's atoi reads "abc" as 0; we refuse it).
// Two mqbench extensions, honoured by the bundled broker only, which launch
// keeps away from a real Mosquitto:
//   - autosave_interval takes fractional seconds ("0.5") for quick, scaled runs;
//     Mosquitto reads whole seconds only.
//   - `listener 0 ADDRESS` means "any free port" (Mosquitto reads port 0 as a
//     unix socket listener); launch replaces it with a real port.
package conf

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is a parsed mosquitto.conf. Zero values are not defaults: use Default()
// (Mosquitto 2.0's defaults) and then apply lines to it.
type Config struct {
	// Listeners; empty means Mosquitto 2.0's local-only mode (127.0.0.1 only here,
	// anonymous allowed). The first `port`/`bind_address` lines form the default listener.
	Listeners []Listener

	// General
	RetryInterval              time.Duration
	SysInterval                time.Duration // 0 disables $SYS
	StoreCleanInterval         time.Duration
	PidFile                    string
	User                       string
	MaxInflightMessages        int // 0 = unlimited
	MaxQueuedMessages          int // 0 = unlimited
	MaxQueuedBytes             int64
	QueueQoS0Messages          bool
	PersistentClientExpiration time.Duration // 0 = never
	MaxKeepalive               int           // max_keepalive (MQTT 5 clients), 0 = not set
	RetainUnavailable          bool          // retain_available false
	MessageSizeLimit           int           // 0 = the protocol maximum (268,435,455)
	MaxPacketSize              int           // max_packet_size: largest packet a client may send, 0 = no limit
	MaxInflightBytes           int           // max_inflight_bytes: payload bytes in flight per client, 0 = no limit
	UpgradeOutgoingQoS         bool          // deliver at the subscription's QoS even above the message's
	SetTCPNoDelay              *bool         // nil = not set (Mosquitto: Nagle on; the bundled broker: Go's no-delay)
	IncludeDirs                []string

	// Persistence
	Persistence         bool
	PersistenceFile     string // default "mosquitto.db"
	PersistenceLocation string // directory ("" = current directory)
	// AutosaveInterval: with AutosaveOnChanges false a period (Mosquitto takes whole
	// seconds; fractional seconds are an mqbench extension), 0 = no timed saves.
	AutosaveInterval time.Duration
	// AutosaveOnChanges true: AutosaveChanges (the same config value read as a count)
	// is the number of changes that triggers a save.
	AutosaveOnChanges bool
	AutosaveChanges   int

	// Logging
	LogDest            []string // stdout, stderr, syslog, topic, none, "file PATH"
	LogType            []string // error, warning, notice, information, debug, subscribe, unsubscribe, websockets, all, none
	ConnectionMessages bool
	LogTimestamp       bool

	// Security: the broker-wide options. With PerListenerSettings each listener
	// has its own (Listener.Security) and this one is unused, as in Mosquitto.
	Security            Security
	PerListenerSettings bool
	ClientIDPrefixes    string

	// Bridges (recognised, not acted on yet).
	Bridges []Bridge

	// Unacted lists recognised keys this broker does not act on, once each, in
	// file order, so the broker can say so at start-up.
	Unacted []Setting

	// Lines are the accepted settings in file order (after include_dir expansion),
	// so the config can be written back out for a real Mosquitto.
	Lines []Setting

	// Parse state, so Apply can be called line by line (Parse, FromSettings, launch):
	// which listener and bridge the next scoped key belongs to, and what has been set.
	// 1-based indexes (so the zero Config works): 0 = the default listener / no bridge.
	curListener int // Listeners[curListener-1] is the current `listener` block
	curBridge   int // Bridges[curBridge-1] is the current `connection` block
	logDestSet  bool
	logTypeSet  bool
	seen        map[string]Setting // once-only values (Mosquitto rejects duplicates), by scope+key
	unacted     map[string]bool
	hasPlugin   bool
	// securityTouched: a security key was applied, so per_listener_settings
	// can no longer be turned on (Mosquitto's rule).
	securityTouched bool
	level           int // include depth while parsing
}

// Listener is one `listener PORT [ADDRESS]` block (or the default port/bind_address).
type Listener struct {
	// Default marks the listener Mosquitto builds from `port`, `bind_address` and
	// listener options given before any `listener` line (port 1883, all interfaces,
	// unless set), so a broker opens the same sockets Mosquitto would.
	Default        bool
	Port           int    // 0 = pick a free port (bundled broker only)
	BindAddress    string // "" = all interfaces
	MaxConnections int    // -1 = unlimited
	Protocol       string // "mqtt" ("" reads as mqtt) or "websockets"
	BindInterface  string // bind_interface: bind to this network device only
	SocketDomain   string // "", "ipv4" or "ipv6"
	// TLS and PSK settings.
	CAFile, CAPath, CertFile, KeyFile, CRLFile     string
	Ciphers, CiphersTLS13, TLSVersion, DHParamFile string
	TLSEngine, TLSKeyform                          string
	RequireCertificate, UseIdentityAsUsername      bool
	UseSubjectAsUsername, UseUsernameAsClientID    bool
	PSKHint                                        string
	HTTPDir, MountPoint                            string
	MaxQoS, MaxTopicAlias                          int // -1 = not set
	// Security holds this listener's options when PerListenerSettings is on.
	Security Security
	// Line is the `listener` line itself (zero for the default listener) and
	// Places where each listener option was set, so errors name file and line.
	Line   Setting
	Places map[string]Setting
}

// Security is one set of Mosquitto's security options (its
// mosquitto__security_options): the broker's, or a listener's with
// per_listener_settings true.
type Security struct {
	AllowAnonymous          *bool // nil = the mode default (see Config.AnonymousFor)
	AllowZeroLengthClientID *bool // nil = true
	PasswordFile            string
	ACLFile                 string
	PSKFile                 string
	AutoIDPrefix            string // "" = "auto-"
	Plugins                 []Setting
	// Places records where each security key was set, for errors.
	Places map[string]Setting
}

// Place is where key was set in this listener block ("" when it was not).
func (l *Listener) Place(key string) string {
	if s, ok := l.Places[key]; ok {
		return s.Place()
	}
	if key == "listener" {
		return l.Line.Place()
	}
	return ""
}

// Bridge is one `connection NAME` block.
type Bridge struct {
	Name     string
	Settings []Setting
	// Connection is the `connection NAME` line itself, so errors about the whole
	// bridge (no address, no topic) can point at it.
	Connection Setting
}

// Setting is one key and its raw value, with where it came from for errors.
type Setting struct {
	Key   string
	Value string
	File  string
	Line  int
}

// String renders the setting as its mosquitto.conf line.
func (s Setting) String() string {
	if s.Value == "" {
		return s.Key
	}
	return s.Key + " " + s.Value
}

// Place is where the setting came from, "FILE:LINE", "FILE" or "line N", or ""
// when unknown, so every error about a setting points at it the same way.
func (s Setting) Place() string {
	switch {
	case s.File != "" && s.Line > 0:
		return fmt.Sprintf("%s:%d", s.File, s.Line)
	case s.File != "":
		return s.File
	case s.Line > 0:
		return fmt.Sprintf("line %d", s.Line)
	}
	return ""
}

// PersistencePath is the full path of the persistence file. Mosquitto 2.0 joins
// location and file name with a separator (1.4 did not).
func (c *Config) PersistencePath() string {
	if c.PersistenceLocation == "" {
		return c.PersistenceFile
	}
	loc := c.PersistenceLocation
	if loc[len(loc)-1] != '/' {
		loc += "/"
	}
	return loc + c.PersistenceFile
}

// Error is a configuration error with its place, so callers (launch, the broker)
// can name the file and line, or the scenario key, that needs fixing.
type Error struct {
	File  string
	Line  int
	Key   string
	Value string
	// Msg is the complete description after the place, e.g.
	// `unknown configuration variable "foo"`.
	Msg string
}

// Error formats the error the way Mosquitto places its errors: FILE:LINE: message.
func (e *Error) Error() string {
	if p := (Setting{File: e.File, Line: e.Line}).Place(); p != "" {
		return p + ": " + e.Msg
	}
	return e.Msg
}

// Default returns Mosquitto 2.0.11's defaults (config__init_reload in its conf.c),
// so a config that sets nothing behaves like an unconfigured Mosquitto.
func Default() *Config {
	return &Config{
		RetryInterval:       20 * time.Second,
		SysInterval:         10 * time.Second,
		StoreCleanInterval:  10 * time.Second,
		MaxInflightMessages: 20,
		MaxQueuedMessages:   1000,
		PersistenceFile:     "mosquitto.db",
		AutosaveInterval:    1800 * time.Second,
		AutosaveChanges:     1800,
		LogDest:             []string{"stderr"},
		LogType:             []string{"error", "warning", "notice", "information"},
		ConnectionMessages:  true,
		LogTimestamp:        true,
	}
}

// DefaultFor is Default for the Mosquitto release a run recorded, where an
// older release's defaults differ: before 2.0 a client was queued at most 100
// messages (2.0.0 raised max_queued_messages to 1000, as its ChangeLog says).
// version is what the broker reports ("2.0.11", "mosquitto version 1.6.9");
// one that names no release gets 2.0.11's, the broker this package imitates.
// It exists so a recorded run's limits are resolved from the one owner of
// Mosquitto's defaults, whichever release ran it.
func DefaultFor(version string) *Config {
	c := Default()
	if releaseMajor(version) == 1 {
		c.MaxQueuedMessages = 100
	}
	return c
}

// releaseMajor is the major number of the first "N.M" word of version, -1
// when there is none.
func releaseMajor(version string) int {
	for _, w := range strings.Fields(version) {
		major, rest, ok := strings.Cut(w, ".")
		if n, err := strconv.Atoi(major); ok && err == nil && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
			return n
		}
	}
	return -1
}

// LocalOnly reports Mosquitto 2.0's local-only mode: no listener of any kind was
// configured, so the broker listens on loopback only and allows anonymous clients.
func (c *Config) LocalOnly() bool { return len(c.Listeners) == 0 }

// Anonymous is the effective broker-wide allow_anonymous (see AnonymousFor).
func (c *Config) Anonymous() bool { return c.AnonymousFor(nil) }

// SecurityFor returns the security options that govern clients of listener l
// (nil: the broker-wide ones): the listener's own with per_listener_settings,
// the broker's otherwise, as Mosquitto picks them.
func (c *Config) SecurityFor(l *Listener) *Security {
	if c.PerListenerSettings && l != nil {
		return &l.Security
	}
	return &c.Security
}

// AnonymousFor is the effective allow_anonymous for listener l, by Mosquitto
// 2.0.11's rule (config__read in conf.c): local-only mode always allows
// anonymous clients (even with allow_anonymous false: Mosquitto forces it), an
// explicit value wins otherwise, and once a listener is configured the default
// is false.
func (c *Config) AnonymousFor(l *Listener) bool {
	if c.LocalOnly() {
		return true
	}
	if sec := c.SecurityFor(l); sec.AllowAnonymous != nil {
		return *sec.AllowAnonymous
	}
	return false
}

// AutosaveFractional reports a timed autosave interval that is not whole seconds:
// an mqbench extension the bundled broker honours and real Mosquitto cannot.
func (c *Config) AutosaveFractional() bool {
	return !c.AutosaveOnChanges && c.AutosaveInterval%time.Second != 0
}
