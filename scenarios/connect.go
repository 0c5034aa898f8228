package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Connect is how clients connect: credentials, TLS, keepalive and will. The
// scenario's run-wide section applies to every client (publishers,
// subscribers, the $SYS monitor); a publisher or subscriber group's own
// section is merged over it field by field, so a group states only what
// differs (another user, a client certificate).
type Connect struct {
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	// Password is never recorded: it marshals as "(set)" (see Secret).
	Password Secret `yaml:"password,omitempty" json:"password,omitempty"`
	// PasswordEnv names an environment variable holding the password, so a
	// scenario file (and the recorded run, which keeps the name only) holds no
	// secret. It is read when the run starts.
	PasswordEnv string `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	TLS         *TLS   `yaml:"tls,omitempty" json:"tls,omitempty"`
	// KeepAlive is the MQTT keepalive, whole seconds (default DefaultKeepAlive).
	KeepAlive Duration `yaml:"keepalive,omitempty" json:"keepalive,omitempty"`
	// Will is the last-will message; a group's will replaces the run-wide one.
	Will *Will `yaml:"will,omitempty" json:"will,omitempty"`
}

// TLS says how a client verifies the broker and identifies itself over
// mqtts:// and wss://. Paths in a scenario file are relative to its directory.
type TLS struct {
	CA   string `yaml:"ca,omitempty" json:"ca,omitempty"`     // PEM file of the CAs that may sign the broker's certificate
	Cert string `yaml:"cert,omitempty" json:"cert,omitempty"` // client certificate (PEM), with Key
	Key  string `yaml:"key,omitempty" json:"key,omitempty"`   // client private key (PEM), with Cert
	// Insecure skips verifying the broker's certificate (a run records that it did).
	Insecure *bool `yaml:"insecure,omitempty" json:"insecure,omitempty"`
	// ServerName is the name the broker's certificate must carry (default: the target's host).
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
}

// Will is the message the broker publishes when a client goes away without DISCONNECT.
type Will struct {
	Topic   string `yaml:"topic" json:"topic"`
	Payload string `yaml:"payload,omitempty" json:"payload,omitempty"`
	QoS     byte   `yaml:"qos,omitempty" json:"qos,omitempty"`
	Retain  bool   `yaml:"retain,omitempty" json:"retain,omitempty"`
}

// DefaultKeepAlive is the keepalive when a scenario sets none: paho-mqtt
// (Python)'s default, as in the seed experiment.
const DefaultKeepAlive = 60 * time.Second

// maxKeepAlive is MQTT's limit: a 16-bit number of seconds.
const maxKeepAlive = 65535 * time.Second

// Redacted is what a set secret becomes wherever a scenario is written out.
const Redacted = "(set)"

// Secret is a string that never leaves the process in an encoding or a
// formatted message: JSON, YAML and %v all give Redacted, so the recorded run
// header (the resolved scenario) cannot carry a password.
type Secret string

// String hides the value, so fmt's %v and %s do too.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// MarshalJSON writes Redacted for a set secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML writes Redacted for a set secret.
func (s Secret) MarshalYAML() (interface{}, error) { return s.String(), nil }

// Reveal returns the secret itself, for the one place that must send it.
func (s Secret) Reveal() string { return string(s) }

func (c *Connect) clone() *Connect {
	if c == nil {
		return nil
	}
	n := *c
	if c.TLS != nil {
		t := *c.TLS
		t.Insecure = cloneBool(c.TLS.Insecure)
		n.TLS = &t
	}
	if c.Will != nil {
		w := *c.Will
		n.Will = &w
	}
	return &n
}

// Conn is the effective connect settings of one client: the run-wide section
// with its group's merged over it and the password read. Where names the line
// each value came from, for errors found when it is used (a CA file that does
// not parse).
type Conn struct {
	Username string
	Password string // the password itself: send it, never record or print it
	HasPass  bool
	// TLS is the merged tls section; nil when neither level has one.
	TLS *TLS
	// KeepAlive is never 0 (DefaultKeepAlive when not set).
	KeepAlive time.Duration
	Will      *Will

	s    *Scenario
	from map[string]string // field ("tls.ca") -> scenario path it was set at ("publishers[0].connect.tls.ca")
}

// Insecure says whether certificate verification is off.
func (c *Conn) Insecure() bool { return c.TLS != nil && c.TLS.Insecure != nil && *c.TLS.Insecure }

// Where is "LOC: PATH" for a field ("tls.ca"): the place to fix when its
// value turns out to be unusable.
func (c *Conn) Where(field string) string {
	path := c.from[field]
	if path == "" {
		path = "connect." + field
	}
	if c.s == nil {
		return path
	}
	return c.s.at(path) + ": " + path
}

// RunConn is the run-wide connect settings (what the $SYS monitor uses).
func (s *Scenario) RunConn() (*Conn, error) { return s.conn("", nil) }

// PublisherConn is publisher group i's effective connect settings.
func (s *Scenario) PublisherConn(i int) (*Conn, error) {
	if i < 0 || i >= len(s.Publishers) {
		return nil, fmt.Errorf("no publisher group %d", i)
	}
	return s.conn(fmt.Sprintf("publishers[%d]", i), s.Publishers[i].Connect)
}

// SubscriberConn is subscriber group i's effective connect settings.
func (s *Scenario) SubscriberConn(i int) (*Conn, error) {
	if i < 0 || i >= len(s.Subscribers) {
		return nil, fmt.Errorf("no subscriber group %d", i)
	}
	return s.conn(fmt.Sprintf("subscribers[%d]", i), s.Subscribers[i].Connect)
}

// conn merges group (at path group) over the run-wide section and reads a
// password_env variable: unset or empty is an error naming the line.
func (s *Scenario) conn(group string, g *Connect) (*Conn, error) {
	m := merge(s.Connect, g, group)
	c := &Conn{Username: m.c.Username, TLS: m.c.TLS, Will: m.c.Will, KeepAlive: m.c.KeepAlive.D(), s: s, from: m.from}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	switch {
	case m.c.Password != "":
		c.Password, c.HasPass = m.c.Password.Reveal(), true
	case m.c.PasswordEnv != "":
		v, ok := os.LookupEnv(m.c.PasswordEnv)
		if !ok {
			return nil, fmt.Errorf("%s: environment variable %s is not set", c.Where("password_env"), m.c.PasswordEnv)
		}
		if v == "" {
			return nil, fmt.Errorf("%s: environment variable %s is empty", c.Where("password_env"), m.c.PasswordEnv)
		}
		c.Password, c.HasPass = v, true
	default:
		// A user of the security section logs in with its generated password.
		if pw, ok := s.UserPassword(c.Username); ok && c.Username != "" {
			c.Password, c.HasPass = pw, true
		}
	}
	return c, nil
}

// merged is a merge result with the path each field came from.
type merged struct {
	c    Connect
	from map[string]string
}

// merge lays group g over run-wide r: a field set in g wins. The password is
// one setting given two ways, so either of password/password_env in g
// replaces both of r's. A will is a unit and replaces r's whole.
func merge(r, g *Connect, group string) merged {
	m := merged{from: map[string]string{}}
	var tls TLS
	haveTLS := false
	layer := func(c *Connect, prefix string) {
		if c == nil {
			return
		}
		set := func(field string) { m.from[field] = prefix + field }
		if c.Username != "" {
			m.c.Username = c.Username
			set("username")
		}
		if c.Password != "" || c.PasswordEnv != "" {
			m.c.Password, m.c.PasswordEnv = c.Password, c.PasswordEnv
			delete(m.from, "password")
			delete(m.from, "password_env")
			if c.Password != "" {
				set("password")
			}
			if c.PasswordEnv != "" {
				set("password_env")
			}
		}
		if c.KeepAlive != 0 {
			m.c.KeepAlive = c.KeepAlive
			set("keepalive")
		}
		if c.Will != nil {
			w := *c.Will
			m.c.Will = &w
			set("will")
			set("will.topic")
		}
		if t := c.TLS; t != nil {
			haveTLS = true
			set("tls")
			if t.CA != "" {
				tls.CA = t.CA
				set("tls.ca")
			}
			if t.Cert != "" {
				tls.Cert = t.Cert
				set("tls.cert")
			}
			if t.Key != "" {
				tls.Key = t.Key
				set("tls.key")
			}
			if t.Insecure != nil {
				tls.Insecure = cloneBool(t.Insecure)
				set("tls.insecure")
			}
			if t.ServerName != "" {
				tls.ServerName = t.ServerName
				set("tls.server_name")
			}
		}
	}
	layer(r, "connect.")
	if group != "" {
		layer(g, group+".connect.")
	}
	if haveTLS {
		m.c.TLS = &tls
	}
	return m
}

// validateConnect checks each connect section on its own (password and
// password_env together) and each client's merged settings (a certificate
// without its key), reporting through bad like the rest of Validate.
func (s *Scenario) validateConnect(bad func(path, format string, args ...interface{})) {
	level := func(c *Connect, prefix string) {
		if c == nil {
			return
		}
		if c.Password != "" && c.PasswordEnv != "" {
			bad(prefix+"password_env", "give password or password_env, not both")
		}
		if c.PasswordEnv != "" && (strings.ContainsAny(c.PasswordEnv, "= \t") || c.PasswordEnv != strings.TrimSpace(c.PasswordEnv)) {
			bad(prefix+"password_env", "must be an environment variable name (got %q)", c.PasswordEnv)
		}
		if k := c.KeepAlive.D(); k != 0 {
			if k < time.Second || k > maxKeepAlive || k%time.Second != 0 {
				bad(prefix+"keepalive", "must be whole seconds from 1s to %s (MQTT sends seconds) (got %s)", maxKeepAlive, k)
			}
		}
		if w := c.Will; w != nil {
			if w.Topic == "" {
				bad(prefix+"will.topic", "must not be empty")
			} else if strings.ContainsAny(w.Topic, "+#") {
				bad(prefix+"will.topic", "a will topic cannot contain wildcards (got %q)", w.Topic)
			}
			if w.QoS > 2 {
				bad(prefix+"will.qos", "must be 0, 1 or 2 (got %d)", w.QoS)
			}
		}
	}
	level(s.Connect, "connect.")
	check := func(group string, g *Connect) {
		level(g, group+".connect.")
		m := merge(s.Connect, g, group)
		where := func(field string) string {
			if p := m.from[field]; p != "" {
				return p
			}
			return "connect." + field
		}
		if (m.c.Password != "" || m.c.PasswordEnv != "") && m.c.Username == "" {
			f := "password"
			if m.c.PasswordEnv != "" {
				f = "password_env"
			}
			bad(where(f), "a password needs a username (MQTT 3.1.1 sends no password alone)")
		}
		if t := m.c.TLS; t != nil {
			if t.Cert != "" && t.Key == "" {
				bad(where("tls.cert"), "a client certificate needs its key (tls.key)")
			}
			if t.Key != "" && t.Cert == "" {
				bad(where("tls.key"), "a client key needs its certificate (tls.cert)")
			}
		}
	}
	if len(s.Publishers) == 0 && len(s.Subscribers) == 0 {
		check("", nil)
	}
	for i, p := range s.Publishers {
		check(fmt.Sprintf("publishers[%d]", i), p.Connect)
	}
	for i, sub := range s.Subscribers {
		check(fmt.Sprintf("subscribers[%d]", i), sub.Connect)
	}
}

// errorsOnce drops repeated errors: the merged checks name the path a value
// came from, so a run-wide mistake (a certificate without its key) would
// otherwise be reported once for every group that inherits it.
func errorsOnce(errs []error) []error {
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		if seen[e.Error()] {
			continue
		}
		seen[e.Error()] = true
		out = append(out, e)
	}
	return out
}

// resolveTLSPaths makes the relative tls paths of a scenario file relative to
// the file's directory, so a scenario and its certificates move together and
// a run does not depend on the directory it was started from.
func (s *Scenario) resolveTLSPaths(dir string) {
	fix := func(c *Connect) {
		if c == nil || c.TLS == nil {
			return
		}
		for _, p := range []*string{&c.TLS.CA, &c.TLS.Cert, &c.TLS.Key} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
	fix(s.Connect)
	for i := range s.Publishers {
		fix(s.Publishers[i].Connect)
	}
	for i := range s.Subscribers {
		fix(s.Subscribers[i].Connect)
	}
}

// ConnectFlags are the command-line connect options of `mqbench run`, named
// like mosquitto_pub's. A non-empty field replaces the run-wide value.
type ConnectFlags struct {
	Username   string // -u, --username
	Password   string // -P, --password
	CAFile     string // --cafile
	Cert       string // --cert
	Key        string // --key
	Insecure   bool   // --insecure
	ServerName string // --tls-server-name
}

// ApplyConnectFlags sets the run-wide connect values the flags give (a group's
// own connect section still wins for that group) and validates again, so a
// flag mistake (--cert without --key) is reported naming the flag.
func (s *Scenario) ApplyConnectFlags(f ConnectFlags) error {
	if f == (ConnectFlags{}) {
		return nil
	}
	if s.pos == nil {
		s.pos = map[string]string{}
	}
	if s.Connect == nil {
		s.Connect = &Connect{}
	}
	c := s.Connect
	setStr := func(dst *string, v, field, flag string) {
		if v != "" {
			*dst = v
			s.pos["connect."+field] = flag
		}
	}
	setStr(&c.Username, f.Username, "username", "--username")
	if f.Password != "" {
		c.Password, c.PasswordEnv = Secret(f.Password), ""
		s.pos["connect.password"] = "--password"
		delete(s.pos, "connect.password_env")
	}
	if f.CAFile != "" || f.Cert != "" || f.Key != "" || f.Insecure || f.ServerName != "" {
		if c.TLS == nil {
			c.TLS = &TLS{}
			s.pos["connect.tls"] = "command line"
		}
		setStr(&c.TLS.CA, f.CAFile, "tls.ca", "--cafile")
		setStr(&c.TLS.Cert, f.Cert, "tls.cert", "--cert")
		setStr(&c.TLS.Key, f.Key, "tls.key", "--key")
		setStr(&c.TLS.ServerName, f.ServerName, "tls.server_name", "--tls-server-name")
		if f.Insecure {
			t := true
			c.TLS.Insecure = &t
			s.pos["connect.tls.insecure"] = "--insecure"
		}
	}
	return s.Validate()
}

// InsecureTLS lists the connect sections that turn certificate verification
// off, so a command can warn before the run starts.
func (s *Scenario) InsecureTLS() []string {
	var out []string
	add := func(c *Connect, prefix string) {
		if c != nil && c.TLS != nil && c.TLS.Insecure != nil && *c.TLS.Insecure {
			out = append(out, s.at(prefix+"tls.insecure")+": "+prefix+"tls.insecure")
		}
	}
	add(s.Connect, "connect.")
	for i := range s.Publishers {
		add(s.Publishers[i].Connect, fmt.Sprintf("publishers[%d].connect.", i))
	}
	for i := range s.Subscribers {
		add(s.Subscribers[i].Connect, fmt.Sprintf("subscribers[%d].connect.", i))
	}
	return out
}
