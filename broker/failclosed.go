package broker

import (
	"fmt"
	"os"
	"strings"

	"github.com/mqbench/mqbench/broker/conf"
)

// The bundled broker fails closed: a configuration line it cannot honour stops it
// from starting, naming the file and line, because a broker that silently does
// less than its configuration says (no TLS where a certificate was given, no
// password check where a password file was named) is a security hole, not a
// benchmark difference. conf accepts every Mosquitto 2.0.11 key (launch writes
// the same lines for a real Mosquitto); this table decides what the bundled
// broker itself can stand behind.

// refusal returns why the bundled broker cannot honour s, or "" when it does
// (or when the line has no effect on a Mosquitto 2.0.11 either, such as
// retry_interval, or only repeats the default, such as retain_available true).
func refusal(s conf.Setting) string {
	key := s.Key
	if r, ok := refusedKeys[key]; ok {
		return r
	}
	if strings.HasPrefix(key, "auth_opt_") || strings.HasPrefix(key, "plugin_opt_") {
		return refusedKeys["plugin"]
	}
	if bridgeKeys[key] {
		return bridgeRefusal(s) // bridgeconf.go: the keys and values bridges honour
	}
	if check, ok := refusedUnless[key]; ok {
		return check(s)
	}
	return ""
}

// refusedKeys can never be honoured by the bundled broker, whatever their
// value. Listener TLS and socket keys are decided by package listen (its
// Check table), which knows where Mosquitto itself ignores them.
var refusedKeys = map[string]string{
	"psk_file":                       "TLS-PSK is not available: Go's crypto/tls has no PSK cipher suites",
	"plugin":                         "the bundled broker cannot load Mosquitto plugins",
	"auth_plugin":                    "the bundled broker cannot load Mosquitto plugins",
	"auth_plugin_deny_special_chars": "the bundled broker cannot load Mosquitto plugins",
	"log_timestamp_format":           "custom log timestamp formats are not supported by the bundled broker",
	"tls_engine_kpass_sha1":          "OpenSSL engines are not available to Go's crypto/tls",
	"websockets_headers_size":        "websockets_headers_size is not enforced by the bundled broker",
}

// refusedUnless holds keys that are refused only for values the bundled broker
// cannot honour; the value that repeats Mosquitto's default is accepted.
var refusedUnless = map[string]func(conf.Setting) string{
	"log_dest": func(s conf.Setting) string {
		switch first(s.Value) {
		case "syslog", "topic", "dlt":
			return "log_dest " + first(s.Value) + " is not supported by the bundled broker (stdout, stderr, file and none are)"
		}
		return ""
	},
	"memory_limit": unlessValue("0", "memory_limit is not enforced by the bundled broker"),
	"user": func(s conf.Setting) string {
		if first(s.Value) == "root" || !runningAsRoot() {
			return ""
		}
		return "the bundled broker does not drop privileges; run it as that user, or set `user root`"
	},
}

func unlessValue(ok, reason string) func(conf.Setting) string {
	return func(s conf.Setting) string {
		if first(s.Value) == ok {
			return ""
		}
		return reason
	}
}

func first(v string) string {
	if f := strings.Fields(v); len(f) > 0 {
		return f[0]
	}
	return ""
}

// bridgeKeys are the keys of a `connection` block; bridgeRefusal decides.
var bridgeKeys = map[string]bool{
	"connection": true, "address": true, "addresses": true, "topic": true, "restart_timeout": true,
	"start_type": true, "bridge_protocol_version": true, "bridge_alpn": true, "bridge_bind_address": true,
	"bridge_cafile": true, "bridge_capath": true, "bridge_certfile": true, "bridge_keyfile": true,
	"bridge_identity": true, "bridge_psk": true, "bridge_tls_version": true, "clientid": true,
	"remote_clientid": true, "local_clientid": true, "username": true, "remote_username": true,
	"password": true, "remote_password": true, "local_username": true, "local_password": true,
	"notification_topic": true, "bridge_attempt_unsubscribe": true, "bridge_insecure": true,
	"bridge_outgoing_retain": true, "bridge_require_ocsp": true, "cleansession": true,
	"local_cleansession": true, "notifications": true, "notifications_local_only": true,
	"round_robin": true, "try_private": true, "bridge_max_packet_size": true, "idle_timeout": true,
	"keepalive_interval": true, "threshold": true,
}

// RefusedError is a configuration line the bundled broker will not start with.
type RefusedError struct {
	Setting conf.Setting
	Reason  string
}

func (e *RefusedError) Error() string {
	p := e.Setting.Place()
	if p == "" {
		p = "config"
	}
	return fmt.Sprintf("%s: %s: %s (the bundled broker refuses to start rather than ignore it)", p, e.Setting.Key, e.Reason)
}

// checkHonoured refuses the first configuration line the bundled broker
// cannot honour.
func checkHonoured(cfg *conf.Config) error {
	for _, s := range cfg.Lines {
		if r := refusal(s); r != "" {
			return &RefusedError{Setting: s, Reason: r}
		}
	}
	return nil
}

func runningAsRoot() bool { return os.Geteuid() == 0 }
