package scenarios

import (
	"fmt"
	"strings"
)

// Security asks mqbench to secure a broker it starts (bundled or mosquitto):
// a throwaway CA with server and client certificates, a password file and an
// ACL file are generated in the run directory and named in the broker's
// configuration, and every client is given what it needs to get in. A secured
// run stays one command on either broker, with nothing to prepare by hand.
type Security struct {
	// TLS makes the run's listener speak TLS with the generated server
	// certificate; clients trust the generated CA. A list ([false, true]) is a
	// sweep: one run in plain MQTT, one over TLS, and their comparison.
	TLS BoolSweep `yaml:"tls,omitempty" json:"tls,omitempty"`
	// RequireCertificate makes the broker demand a client certificate; every
	// client presents the generated one.
	RequireCertificate bool `yaml:"require_certificate,omitempty" json:"require_certificate,omitempty"`
	// Users are written as password_file with mosquitto_passwd's hashes. A
	// connect section naming one of them needs no password of its own.
	Users []User `yaml:"users,omitempty" json:"users,omitempty"`
	// ACL is written as acl_file, verbatim (Mosquitto's syntax).
	ACL string `yaml:"acl,omitempty" json:"acl,omitempty"`
	// AllowAnonymous is written as allow_anonymous (default false, as
	// Mosquitto's once a listener is configured).
	AllowAnonymous *bool `yaml:"allow_anonymous,omitempty" json:"allow_anonymous,omitempty"`
}

// User is one account of the generated password file. The password is a
// Secret: the recorded run says "(set)".
type User struct {
	Name     string `yaml:"name" json:"name"`
	Password Secret `yaml:"password" json:"password"`
}

// BoolSweep is a boolean that may be given as a list of values to sweep.
type BoolSweep []bool

// On reports the (first) value: the setting of a scenario after Expand.
func (b BoolSweep) On() bool { return len(b) > 0 && b[0] }

// clone copies the section so Expand and Scale never alias it.
func (s *Security) clone() *Security {
	if s == nil {
		return nil
	}
	c := *s
	c.TLS = append(BoolSweep(nil), s.TLS...)
	c.Users = append([]User(nil), s.Users...)
	c.AllowAnonymous = cloneBool(s.AllowAnonymous)
	return &c
}

// UserPassword is the generated password of user name, if the security section
// defines that user.
func (s *Scenario) UserPassword(name string) (string, bool) {
	if s.Security == nil {
		return "", false
	}
	for _, u := range s.Security.Users {
		if u.Name == name {
			return u.Password.Reveal(), true
		}
	}
	return "", false
}

// validateSecurity checks the section: user names and passwords as
// mosquitto_passwd accepts them, and an ACL that is not empty when given.
func (s *Scenario) validateSecurity(bad func(path, format string, args ...interface{})) {
	sec := s.Security
	if sec == nil {
		return
	}
	if len(sec.TLS) > 2 || (len(sec.TLS) == 2 && sec.TLS[0] == sec.TLS[1]) {
		bad("security.tls", "a sweep takes the two values [false, true]")
	}
	if sec.RequireCertificate && !sec.TLS.On() && !sweeps(sec.TLS) {
		bad("security.require_certificate", "needs security.tls: true")
	}
	seen := map[string]bool{}
	for i, u := range sec.Users {
		p := fmt.Sprintf("security.users[%d]", i)
		switch {
		case u.Name == "":
			bad(p+".name", "must not be empty")
		case strings.ContainsAny(u.Name, ":\n\r"):
			bad(p+".name", "must not contain ':' or a line break (mosquitto_passwd refuses it)")
		case seen[u.Name]:
			bad(p+".name", "user %q is given twice", u.Name)
		}
		seen[u.Name] = true
		if u.Password == "" {
			bad(p+".password", "must not be empty")
		}
		if strings.ContainsAny(u.Password.Reveal(), "\n\r") {
			bad(p+".password", "must not contain a line break")
		}
	}
	if sec.ACL != "" && strings.TrimSpace(sec.ACL) == "" {
		bad("security.acl", "is blank")
	}
}

func sweeps(b BoolSweep) bool { return len(b) > 1 }

// UseGenerated points the run-wide connect section at the files a secured
// broker was given (its CA, and the client certificate when the broker asks
// for one), for each field the scenario did not set itself, so clients get in
// without the user naming generated paths.
func (s *Scenario) UseGenerated(ca, cert, key string) {
	if ca == "" {
		return
	}
	if s.pos == nil {
		s.pos = map[string]string{}
	}
	if s.Connect == nil {
		s.Connect = &Connect{}
	}
	if s.Connect.TLS == nil {
		s.Connect.TLS = &TLS{}
	}
	t := s.Connect.TLS
	set := func(dst *string, v, field string) {
		if *dst == "" && v != "" {
			*dst = v
			s.pos["connect."+field] = "security (generated)"
		}
	}
	set(&t.CA, ca, "tls.ca")
	if t.Cert == "" && t.Key == "" {
		set(&t.Cert, cert, "tls.cert")
		set(&t.Key, key, "tls.key")
	}
}

// PublisherUsername and SubscriberUsername are the username a group logs in
// with (its connect section merged over the run-wide one), without reading any
// password, so an analysis can judge what an ACL allowed long after the run.
func (s *Scenario) PublisherUsername(i int) string {
	if i < 0 || i >= len(s.Publishers) {
		return ""
	}
	return merge(s.Connect, s.Publishers[i].Connect, fmt.Sprintf("publishers[%d]", i)).c.Username
}

// SubscriberUsername: see PublisherUsername.
func (s *Scenario) SubscriberUsername(i int) string {
	if i < 0 || i >= len(s.Subscribers) {
		return ""
	}
	return merge(s.Connect, s.Subscribers[i].Connect, fmt.Sprintf("subscribers[%d]", i)).c.Username
}
