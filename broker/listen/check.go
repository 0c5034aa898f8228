package listen

import (
	"errors"

	"github.com/mqbench/mqbench/broker/conf"
)

// Finding is one decision about a listener setting that differs from "just
// use it": either the setting is refused (Go cannot do what Mosquitto would
// do with it, so starting anyway would misrepresent the broker), or it is
// ignored exactly as Mosquitto 2.0.11 ignores it, which the broker should say
// at start-up because the user evidently expected an effect.
type Finding struct {
	Key, Value string
	Place      string // "FILE:LINE" of the setting, "" when unknown
	Refused    bool
	Reason     string
}

// String renders "FILE:LINE: key value: reason", the form the broker logs.
func (f Finding) String() string {
	s := f.Key
	if f.Value != "" {
		s += " " + f.Value
	}
	if f.Place != "" {
		s = f.Place + ": " + s
	}
	return s + ": " + f.Reason
}

// Error makes a refused Finding usable as an error.
func (f Finding) Error() string { return f.String() }

// rule is one row of the decision table: when the key is set, verdict says
// whether it is refused or ignored ("" reason = used normally).
type rule struct {
	key     string
	value   func(l conf.Listener) string // "" = not set
	verdict func(l conf.Listener, v string) (refused bool, reason string)
}

// flag reads a boolean key as "true" or "" (not set).
func flag(get func(l conf.Listener) bool) func(l conf.Listener) string {
	return func(l conf.Listener) string {
		if get(l) {
			return "true"
		}
		return ""
	}
}

// Reasons shared by several rows.
const (
	notTLS    = "ignored: the listener has no certfile and keyfile pair, so it is not TLS (Mosquitto ignores it too)"
	wsIgnored = "ignored on websockets listeners: Mosquitto 2.0.11 does not pass it to libwebsockets (src/websockets.c)"
)

// tlsOnly is the verdict of a key that only matters on a TLS listener and
// that Mosquitto's websockets listeners also honour.
func tlsOnly(l conf.Listener, _ string) (bool, string) {
	if !isTLS(l) {
		return false, notTLS
	}
	return false, ""
}

// mqttTLSOnly is the verdict of a key that matters only on a TLS listener of
// protocol mqtt (libwebsockets is not given it).
func mqttTLSOnly(l conf.Listener, _ string) (bool, string) {
	if !isTLS(l) {
		return false, notTLS
	}
	if isWS(l) {
		return false, wsIgnored
	}
	return false, ""
}

// refuseOnMQTTTLS refuses a key where Mosquitto would use it and reports it
// ignored elsewhere.
func refuseOnMQTTTLS(reason string) func(l conf.Listener, v string) (bool, string) {
	return func(l conf.Listener, v string) (bool, string) {
		if ignored, why := mqttTLSOnly(l, v); why != "" {
			return ignored, why
		}
		return true, reason
	}
}

// rules is every listener decision in one place. Mosquitto references are to
// 2.0.11: net.c net__socket_listen / net__tls_server_ctx /
// net__load_certificates, websockets.c mosq_websockets_init, handle_connect.c.
var rules = []rule{
	{"protocol", func(l conf.Listener) string { return l.Protocol }, func(l conf.Listener, v string) (bool, string) {
		if v != "mqtt" && v != "websockets" {
			return true, "unsupported protocol (mqtt or websockets)"
		}
		return false, ""
	}},
	{"certfile", func(l conf.Listener) string { return l.CertFile }, func(l conf.Listener, _ string) (bool, string) {
		if l.KeyFile == "" {
			return false, "ignored without keyfile: Mosquitto opens a plain (non-TLS) listener unless both are set"
		}
		return false, ""
	}},
	{"keyfile", func(l conf.Listener) string { return l.KeyFile }, func(l conf.Listener, _ string) (bool, string) {
		if l.CertFile == "" {
			return false, "ignored without certfile: Mosquitto opens a plain (non-TLS) listener unless both are set"
		}
		return false, ""
	}},
	{"cafile", func(l conf.Listener) string { return l.CAFile }, tlsOnly},
	{"capath", func(l conf.Listener) string { return l.CAPath }, mqttTLSOnly},
	{"require_certificate", flag(func(l conf.Listener) bool { return l.RequireCertificate }), tlsOnly},
	{"crlfile", func(l conf.Listener) string { return l.CRLFile }, func(l conf.Listener, v string) (bool, string) {
		if isTLS(l) && isWS(l) {
			return false, wsIgnored + "; revoked client certificates are accepted there"
		}
		return mqttTLSOnly(l, v)
	}},
	{"tls_version", func(l conf.Listener) string { return l.TLSVersion }, func(l conf.Listener, v string) (bool, string) {
		if _, why := mqttTLSOnly(l, v); why != "" {
			return false, why
		}
		if _, ok := tlsVersions[v]; !ok {
			return true, "unsupported tls_version (tlsv1.3, tlsv1.2 or tlsv1.1, as Mosquitto)"
		}
		return false, ""
	}},
	{"ciphers", func(l conf.Listener) string { return l.Ciphers }, func(l conf.Listener, v string) (bool, string) {
		if !isTLS(l) {
			return false, notTLS
		}
		if _, err := cipherSuites(v); err != nil {
			return true, err.Error()
		}
		return false, ""
	}},
	{"ciphers_tls1.3", func(l conf.Listener) string { return l.CiphersTLS13 }, func(l conf.Listener, v string) (bool, string) {
		if !isTLS(l) {
			return false, notTLS
		}
		if err := checkTLS13(v); err != nil {
			return true, err.Error()
		}
		return false, ""
	}},
	{"dhparamfile", func(l conf.Listener) string { return l.DHParamFile },
		refuseOnMQTTTLS("go's crypto/tls has no finite-field DHE key exchange (ECDHE only), so DH parameters cannot be used")},
	{"tls_engine", func(l conf.Listener) string { return l.TLSEngine },
		refuseOnMQTTTLS("go's crypto/tls cannot load OpenSSL engines")},
	{"tls_keyform", func(l conf.Listener) string { return l.TLSKeyform }, func(l conf.Listener, v string) (bool, string) {
		if v != "engine" {
			return false, "" // Mosquitto reads anything else as pem
		}
		return refuseOnMQTTTLS("go's crypto/tls cannot load keys through OpenSSL engines")(l, v)
	}},
	{"psk_hint", func(l conf.Listener) string { return l.PSKHint }, func(l conf.Listener, _ string) (bool, string) {
		if isWS(l) {
			return false, wsIgnored
		}
		return true, "go's crypto/tls has no PSK cipher suites"
	}},
	{"use_identity_as_username", flag(func(l conf.Listener) bool { return l.UseIdentityAsUsername }), identityVerdict},
	{"use_subject_as_username", flag(func(l conf.Listener) bool { return l.UseSubjectAsUsername }), identityVerdict},
	{"http_dir", func(l conf.Listener) string { return l.HTTPDir }, func(l conf.Listener, _ string) (bool, string) {
		if !isWS(l) {
			return false, "ignored: only websockets listeners serve http_dir"
		}
		return true, "serving static files from http_dir is not implemented"
	}},
	{"bind_interface", func(l conf.Listener) string { return l.BindInterface }, func(l conf.Listener, _ string) (bool, string) {
		if isWS(l) {
			return false, wsIgnored
		}
		return false, ""
	}},
	{"socket_domain", func(l conf.Listener) string { return l.SocketDomain }, func(l conf.Listener, v string) (bool, string) {
		if v != "ipv4" && v != "ipv6" {
			return true, "invalid socket_domain (ipv4 or ipv6)"
		}
		if isWS(l) && v == "ipv6" {
			return false, "ignored on websockets listeners: libwebsockets is only told to disable IPv6 (socket_domain ipv4), so both families are bound"
		}
		return false, ""
	}},
}

// identityVerdict: Mosquitto takes the username from the certificate only
// when the listener has a TLS context (handle_connect.c tests
// listener->ssl_ctx). Plain listeners have none, and neither do websockets
// listeners (libwebsockets owns their TLS), so there the option is ignored
// and the CONNECT username stands.
func identityVerdict(l conf.Listener, _ string) (bool, string) {
	if !isTLS(l) {
		return false, "ignored: the listener is not TLS, so Mosquitto keeps the CONNECT username"
	}
	if isWS(l) {
		return false, "ignored on websockets listeners: Mosquitto 2.0.11 has no TLS context there (handle_connect.c) and keeps the CONNECT username"
	}
	return false, ""
}

// Check returns every refused or ignored setting of a listener, in table
// order. The broker logs the ignored ones and refuses to start on any
// refused one; Open, OpenAll and ServerTLS return the refusals as errors.
func Check(l conf.Listener) []Finding {
	var out []Finding
	for _, r := range rules {
		v := r.value(l)
		if v == "" {
			continue
		}
		refused, reason := r.verdict(l, v)
		if reason == "" {
			continue
		}
		out = append(out, Finding{Key: r.key, Value: v, Place: l.Place(r.key), Refused: refused, Reason: reason})
	}
	return out
}

// refusals is Check's refused findings as one error (nil when none).
func refusals(l conf.Listener) error {
	var errs []error
	for _, f := range Check(l) {
		if f.Refused {
			errs = append(errs, f)
		}
	}
	return errors.Join(errs...)
}

// Warnings is Check's ignored (not refused) findings as log lines.
func Warnings(l conf.Listener) []string {
	var out []string
	for _, f := range Check(l) {
		if !f.Refused {
			out = append(out, f.String())
		}
	}
	return out
}

func isTLS(l conf.Listener) bool { return l.CertFile != "" && l.KeyFile != "" }

func isWS(l conf.Listener) bool { return l.Protocol == "websockets" }
