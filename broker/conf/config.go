// Package conf parses and writes mosquitto.conf. One Config serves every broker
// kind: the bundled broker acts on it, launch writes it out for a real Mosquitto,
// so a scenario's broker settings mean the same thing whichever broker runs.
package conf

import "time"

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
	MessageSizeLimit           int           // 0 = the protocol maximum (268,435,455)
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

	// Security
	AllowAnonymous   *bool // nil = mode default (true with no listener, false with one)
	ClientIDPrefixes string
	PasswordFile     string
	PSKFile          string
	ACLFile          string

	// Bridges (recognised, not acted on yet).
	Bridges []Bridge

	// Unacted lists recognised keys this broker does not act on, once each, in
	// file order, so the broker can say so at start-up.
	Unacted []Setting

	// Lines are the accepted settings in file order (after include_dir expansion),
	// so the config can be written back out for a real Mosquitto.
	Lines []Setting
}

// Listener is one `listener PORT [ADDRESS]` block (or the default port/bind_address).
type Listener struct {
	Port           int    // 0 = pick a free port (bundled broker only)
	BindAddress    string // "" = all interfaces
	MaxConnections int    // -1 = unlimited
	// TLS and PSK settings: recognised, not acted on yet.
	CAFile, CAPath, CertFile, KeyFile string
	RequireCertificate                bool
	UseIdentityAsUsername             bool
	PSKHint, Ciphers                  string
}

// Bridge is one `connection NAME` block.
type Bridge struct {
	Name     string
	Settings []Setting
}

// Setting is one key and its raw value, with where it came from for errors.
type Setting struct {
	Key   string
	Value string
	File  string
	Line  int
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
