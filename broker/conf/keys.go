package conf

import (
	"math"
	"sort"
)

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
	"max_inflight_bytes":             acted(in(scopeGlobal, 0, maxInt)),
	"max_keepalive":                  acted(in(scopeGlobal, 10, 65535)),
	"max_packet_size":                acted(in(scopeGlobal, 20, maxInt)),
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

	// Bridges: acted ones the bundled broker's bridges honour (broker/bridgeconf.go).
	"connection":                 acted(sp(scopeGlobal)),
	"address":                    acted(sp(scopeBridge)),
	"addresses":                  acted(sp(scopeBridge)),
	"topic":                      acted(sp(scopeBridge)),
	"restart_timeout":            acted(sp(scopeBridge)),
	"start_type":                 acted(en(scopeBridge, "automatic", "lazy", "once")),
	"bridge_protocol_version":    acted(en(scopeBridge, "mqttv31", "mqttv311", "mqttv50")),
	"bridge_alpn":                acted(st(scopeBridge)),
	"bridge_bind_address":        acted(st(scopeBridge)),
	"bridge_cafile":              acted(st(scopeBridge)),
	"bridge_capath":              acted(st(scopeBridge)),
	"bridge_certfile":            acted(st(scopeBridge)),
	"bridge_keyfile":             acted(st(scopeBridge)),
	"bridge_identity":            st(scopeBridge),
	"bridge_psk":                 st(scopeBridge),
	"bridge_tls_version":         acted(st(scopeBridge)),
	"clientid":                   acted(st(scopeBridge)),
	"remote_clientid":            acted(st(scopeBridge)),
	"local_clientid":             acted(st(scopeBridge)),
	"username":                   acted(st(scopeBridge)),
	"remote_username":            acted(st(scopeBridge)),
	"password":                   acted(st(scopeBridge)),
	"remote_password":            acted(st(scopeBridge)),
	"local_username":             st(scopeBridge),
	"local_password":             st(scopeBridge),
	"notification_topic":         acted(st(scopeBridge)),
	"bridge_attempt_unsubscribe": acted(bl(scopeBridge)),
	"bridge_insecure":            acted(bl(scopeBridge)),
	"bridge_outgoing_retain":     acted(bl(scopeBridge)),
	"bridge_require_ocsp":        acted(bl(scopeBridge)),
	"cleansession":               acted(bl(scopeBridge)),
	"local_cleansession":         acted(bl(scopeBridge)),
	"notifications":              acted(bl(scopeBridge)),
	"notifications_local_only":   acted(bl(scopeBridge)),
	"round_robin":                acted(bl(scopeBridge)),
	"try_private":                acted(bl(scopeBridge)),
	"bridge_max_packet_size":     acted(in(scopeBridge, 0, maxInt)),
	"idle_timeout":               in(scopeBridge, 0, maxInt),
	"keepalive_interval":         acted(in(scopeBridge, 0, 65535)),
	"threshold":                  acted(in(scopeBridge, 0, maxInt)),
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
