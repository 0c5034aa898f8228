package broker

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/mqbench/mqbench/broker/auth"
	"github.com/mqbench/mqbench/broker/conf"
)

// security is what the broker enforces for one set of Mosquitto security
// options (the broker's, or one listener's with per_listener_settings): who may
// connect, and which topics each client may read and write. Loaded once at New,
// so a missing or malformed password or ACL file stops the broker before it
// serves anyone, as it stops Mosquitto.
type security struct {
	anonymous       bool
	passwords       *auth.Passwords // nil: no password_file
	acl             *auth.ACL       // nil: no acl_file, every topic allowed
	autoIDPrefix    string
	allowZeroLength bool
	// trusted: a bridge's own local client, let past every ACL as
	// Mosquitto's mosquitto_acl_check lets a context with a bridge.
	trusted bool
}

// loadSecurity reads the password and ACL files of one set of options.
func loadSecurity(cfg *conf.Config, l *conf.Listener) (*security, error) {
	sec := cfg.SecurityFor(l)
	s := &security{anonymous: cfg.AnonymousFor(l), autoIDPrefix: sec.AutoIDPrefix, allowZeroLength: true}
	if s.autoIDPrefix == "" {
		s.autoIDPrefix = "auto-"
	}
	if sec.AllowZeroLengthClientID != nil {
		s.allowZeroLength = *sec.AllowZeroLengthClientID
	}
	if sec.PasswordFile != "" {
		pw, err := auth.LoadPasswordFile(sec.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("%s: password_file: %w", placeOf(sec, "password_file"), err)
		}
		s.passwords = pw
	}
	if sec.ACLFile != "" {
		acl, err := auth.LoadACLFile(sec.ACLFile)
		if err != nil {
			return nil, fmt.Errorf("%s: acl_file: %w", placeOf(sec, "acl_file"), err)
		}
		s.acl = acl
	}
	return s, nil
}

func placeOf(sec *conf.Security, key string) string {
	if p := sec.Places[key].Place(); p != "" {
		return p
	}
	return "config"
}

// checkLogin is Mosquitto 2.0.11's mosquitto_unpwd_check with its default
// password-file check: with a password file a client that names a user must
// give that user's password, and one that names none gets in only when
// anonymous access is allowed; without a password file allow_anonymous alone
// decides, whatever username is given. Every refusal is CONNACK 5 (not
// authorised), as in Mosquitto.
func (s *security) checkLogin(p *packets.ConnectPacket) bool {
	user, pass := credentials(p)
	return s.passwords.Check(user, pass).Allowed(s.anonymous)
}

// credentials are the username and password a CONNECT gives, "" when absent.
func credentials(p *packets.ConnectPacket) (user, pass string) {
	if p.UsernameFlag {
		user = p.Username
	}
	if p.PasswordFlag {
		pass = string(p.Password)
	}
	return user, pass
}

// allowed is Mosquitto 2.0.11's mosquitto_acl_check with the default ACL
// check (auth.ACL.Check, nil when there is no acl_file): $SYS is never
// writable by clients and $share topics are for subscriptions only, whatever
// the ACL file says; then the ACL file decides for this client's id and
// username.
func (s *session) allowed(topic string, access auth.Access) bool {
	if s.sec != nil && s.sec.trusted {
		return true
	}
	if s.sec == nil {
		// per_listener_settings and a session restored for a listener that no
		// longer exists: Mosquitto denies a client without a listener.
		return false
	}
	return s.sec.acl.Check(s.id, s.username, s.hasUser, topic, access)
}

// newClientID is Mosquitto's generated id for an empty client id: the
// auto_id_prefix and a random UUID-shaped 36 characters.
func newClientID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	const hexdig = "0123456789abcdef"
	var sb strings.Builder
	sb.WriteString(prefix)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			sb.WriteByte('-')
		}
		sb.WriteByte(hexdig[c>>4])
		sb.WriteByte(hexdig[c&0x0f])
	}
	return sb.String()
}

// checkRetainSource reads check_retain_source. Mosquitto keeps it as one
// broker-wide flag whatever per_listener_settings says, so the last line
// wins wherever it appears; conf has already refused values that are not
// booleans.
func checkRetainSource(cfg *conf.Config) bool {
	on := false
	for _, s := range cfg.Lines {
		if s.Key == "check_retain_source" {
			v := first(s.Value)
			on = v == "true" || v == "1"
		}
	}
	return on
}
