package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqbench/mqbench/broker/auth"
	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/internal/pki"
)

// Secure asks launch to secure the broker it starts: throwaway certificates,
// a password file and an ACL file are written to DataDir/security and named
// in the broker's configuration, the same way for the bundled broker and for
// a real Mosquitto, so a secured run needs nothing prepared by hand.
type Secure struct {
	TLS                bool   // the run's listener speaks TLS with the generated server certificate
	RequireCertificate bool   // the broker demands a client certificate (the generated one works)
	ClientCN           string // common name of the generated client certificate ("" = "mqbench")
	Users              []User // written as password_file ($7$ hashes, as mosquitto_passwd writes)
	ACL                string // written as acl_file, verbatim
	AllowAnonymous     bool   // written as allow_anonymous
}

// User is one account of the generated password file.
type User struct{ Name, Password string }

// SecureFiles are the generated files clients need: the CA to trust and the
// client certificate to present.
type SecureFiles struct {
	Dir                       string
	CA, ClientCert, ClientKey string
	PasswordFile, ACLFile     string
	ServerCert, ServerKey     string
	TLS, RequireCertificate   bool
	// settings name the files in the broker's configuration, right after the
	// run's listener line.
	settings []conf.Setting
}

// SecurityDir is where launch writes a secured run's files in the data dir.
const SecurityDir = "security"

// generateSecure writes the files of s into dataDir/security and returns them
// with the configuration lines that name them (scoped to the run's listener,
// so they follow its `listener` line).
func generateSecure(dataDir string, s *Secure) (*SecureFiles, error) {
	dir := filepath.Join(dataDir, SecurityDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	f := &SecureFiles{Dir: dir, TLS: s.TLS, RequireCertificate: s.RequireCertificate}
	add := func(key, value string) {
		f.settings = append(f.settings, conf.Setting{Key: key, Value: value, File: launchFile})
	}
	if s.TLS {
		cn := s.ClientCN
		if cn == "" {
			cn = "mqbench"
		}
		set, err := pki.WriteSet(dir, []string{"127.0.0.1", "::1", "localhost"}, cn)
		if err != nil {
			return nil, fmt.Errorf("security: generating certificates: %w", err)
		}
		f.CA, f.ClientCert, f.ClientKey = set.CA, set.ClientCert, set.ClientKey
		f.ServerCert, f.ServerKey = set.ServerCert, set.ServerKey
		add("cafile", set.CA)
		add("certfile", set.ServerCert)
		add("keyfile", set.ServerKey)
		if s.RequireCertificate {
			add("require_certificate", "true")
		}
	}
	if len(s.Users) > 0 {
		var b strings.Builder
		for _, u := range s.Users {
			line, err := auth.PasswordLine(u.Name, u.Password)
			if err != nil {
				return nil, fmt.Errorf("security: user %q: %w", u.Name, err)
			}
			b.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				b.WriteByte('\n')
			}
		}
		f.PasswordFile = filepath.Join(dir, "passwords")
		if err := os.WriteFile(f.PasswordFile, []byte(b.String()), 0o600); err != nil {
			return nil, fmt.Errorf("security: %w", err)
		}
		add("password_file", f.PasswordFile)
	}
	if s.ACL != "" {
		f.ACLFile = filepath.Join(dir, "acl")
		acl := s.ACL
		if !strings.HasSuffix(acl, "\n") {
			acl += "\n"
		}
		if err := os.WriteFile(f.ACLFile, []byte(acl), 0o600); err != nil {
			return nil, fmt.Errorf("security: %w", err)
		}
		add("acl_file", f.ACLFile)
	}
	add("allow_anonymous", fmt.Sprint(s.AllowAnonymous))
	return f, nil
}

// SecureFiles returns the generated files of a secured run (nil otherwise).
func (i *Instance) SecureFiles() *SecureFiles { return i.secure }

// scheme is the address scheme clients of the run's listener use.
func (i *Instance) scheme() string {
	if i.secure != nil && i.secure.TLS {
		return "mqtts://"
	}
	return "tcp://"
}
