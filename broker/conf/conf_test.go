package conf

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sample holds a valid value for every key Parse accepts; TestEveryKeyAccepted
// fails when a key is added without one, so the table stays complete.
var sample = map[string]string{
	"allow_anonymous": "true", "autosave_interval": "3", "autosave_on_changes": "false",
	"connection_messages": "false", "log_dest": "stdout", "log_timestamp": "false",
	"log_type": "debug", "max_inflight_messages": "10", "max_queued_messages": "100",
	"max_queued_bytes": "1000000", "message_size_limit": "1024", "persistence": "true",
	"retained_persistence": "true", "persistence_file": "x.db", "persistence_location": "/tmp/x/",
	"pid_file": "/tmp/x.pid", "queue_qos0_messages": "true", "sys_interval": "5",
	"listener": "1884 127.0.0.1", "port": "1885", "bind_address": "127.0.0.1", "max_connections": "10",
	"acl_file": "/etc/acl", "allow_duplicate_messages": "true", "allow_zero_length_clientid": "false",
	"auth_plugin": "/x.so", "plugin": "/y.so", "auth_plugin_deny_special_chars": "false",
	"auto_id_prefix": "auto-", "check_retain_source": "true", "clientid_prefixes": "sensor",
	"log_facility": "3", "log_timestamp_format": "%Y-%m-%dT%H:%M:%S", "max_inflight_bytes": "0",
	"max_keepalive": "60", "max_packet_size": "1000", "memory_limit": "0", "password_file": "/etc/pw",
	"per_listener_settings": "false", "persistent_client_expiration": "2d", "psk_file": "/etc/psk",
	"retain_available": "true", "retry_interval": "20", "set_tcp_nodelay": "true",
	"store_clean_interval": "10", "upgrade_outgoing_qos": "false", "user": "root",
	"websockets_headers_size": "4096", "websockets_log_level": "0",
	"bind_interface": "lo", "cafile": "/ca.pem", "capath": "/ca", "certfile": "/c.pem", "keyfile": "/k.pem",
	"ciphers": "HIGH", "ciphers_tls1.3": "TLS_AES_128_GCM_SHA256", "crlfile": "/crl", "dhparamfile": "/dh",
	"http_dir": "/www", "mount_point": "site/", "psk_hint": "hint", "tls_engine": "eng",
	"tls_engine_kpass_sha1": "00", "tls_keyform": "pem", "tls_version": "tlsv1.2",
	"require_certificate": "true", "use_identity_as_username": "true", "use_subject_as_username": "false",
	"use_username_as_clientid": "false", "max_topic_alias": "10", "maximum_qos": "1", "max_qos": "2",
	"protocol": "mqtt", "socket_domain": "ipv4",
	"connection": "other", "address": "127.0.0.1:1999", "addresses": "127.0.0.1:1999 ::1:1999",
	"topic": "a/# both 2 local/ remote/", "restart_timeout": "5 30", "start_type": "lazy",
	"bridge_protocol_version": "mqttv311", "bridge_alpn": "x", "bridge_bind_address": "127.0.0.1",
	"bridge_cafile": "/ca", "bridge_capath": "/cap", "bridge_certfile": "/c", "bridge_keyfile": "/k",
	"bridge_identity": "id", "bridge_psk": "abcd", "bridge_tls_version": "tlsv1.2", "clientid": "c1",
	"remote_clientid": "c2", "local_clientid": "c3", "username": "u", "remote_username": "u2",
	"password": "p", "remote_password": "p2", "local_username": "lu", "local_password": "lp",
	"notification_topic": "n/t", "bridge_attempt_unsubscribe": "true", "bridge_insecure": "false",
	"bridge_outgoing_retain": "true", "bridge_require_ocsp": "false", "cleansession": "true",
	"local_cleansession": "false", "notifications": "true", "notifications_local_only": "false",
	"round_robin": "false", "try_private": "true", "bridge_max_packet_size": "1000",
	"idle_timeout": "60", "keepalive_interval": "60", "threshold": "10",
}

// seedKeys is the key list of docs/seed-experiment.md: every one must be accepted.
var seedKeys = strings.Fields(`retry_interval sys_interval store_clean_interval pid_file user
max_inflight_messages max_queued_messages max_queued_bytes queue_qos0_messages
persistent_client_expiration message_size_limit include_dir listener bind_address port
max_connections cafile capath certfile keyfile require_certificate use_identity_as_username
psk_hint ciphers persistence persistence_file persistence_location autosave_interval
autosave_on_changes log_dest log_type connection_messages log_timestamp clientid_prefixes
allow_anonymous password_file psk_file acl_file connection address topic clientid cleansession
notifications notification_topic keepalive_interval start_type restart_timeout idle_timeout
username password bridge_cafile bridge_capath bridge_certfile bridge_keyfile`)

func TestSeedKeysKnown(t *testing.T) {
	known := map[string]bool{"include_dir": true}
	for _, k := range Keys() {
		known[k] = true
	}
	for _, k := range seedKeys {
		if !known[k] {
			t.Errorf("seed-experiment key %q is not accepted", k)
		}
	}
}

func TestEveryKeyAccepted(t *testing.T) {
	keys := append(Keys(), "auth_opt_foo", "plugin_opt_bar")
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			v, ok := sample[key]
			if strings.HasSuffix(key, "_foo") || strings.HasSuffix(key, "_bar") {
				v, ok = "value", true
			}
			if !ok {
				t.Fatalf("no sample value for key %q: add one to the table", key)
			}
			var pre string
			sp := specs[key]
			switch {
			case sp.scope == scopeBridge:
				pre = "connection b1\n"
			case key == "auth_plugin_deny_special_chars" || strings.Contains(key, "_opt_"):
				pre = "auth_plugin /x.so\n"
			}
			post := ""
			if key == "connection" || sp.scope == scopeBridge {
				// Check() wants every bridge to have an address and a topic.
				post = "\naddress 127.0.0.1:1999\ntopic x out"
				if key == "address" || key == "addresses" {
					post = "\ntopic x out"
				}
			}
			text := pre + key + " " + v + post + "\n"
			c, err := Parse(strings.NewReader(text), "t.conf")
			if err != nil {
				t.Fatalf("Parse(%q): %v", text, err)
			}
			found := false
			for _, s := range c.Lines {
				if s.Key == key && s.Value == v {
					found = true
				}
			}
			if !found {
				t.Errorf("Lines %v lack %s %s", c.Lines, key, v)
			}
		})
	}
}

func TestUnknownKey(t *testing.T) {
	text := "# comment\n\npersistence true\nbogus_key 3\n"
	_, err := Parse(strings.NewReader(text), "/etc/m.conf")
	want := `/etc/m.conf:4: unknown configuration variable "bogus_key"`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 4 || ce.Key != "bogus_key" {
		t.Errorf("error not a *conf.Error with line 4 and key: %#v", err)
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		line string
		want string
	}{
		{"max_queued_messages abc", `b.conf:2: invalid value "abc" for max_queued_messages: not an integer`},
		{"max_queued_messages -1", `b.conf:2: invalid value "-1" for max_queued_messages: must not be negative`},
		{"max_queued_messages 1.5", `invalid value "1.5" for max_queued_messages: not an integer`},
		{"max_queued_messages", `invalid value "" for max_queued_messages: empty value`},
		{"max_queued_messages 10 20", `expected one value, got 2`},
		{"persistence yes", `b.conf:2: invalid value "yes" for persistence: not a boolean`},
		{"listener 70000", `invalid value "70000" for listener: port out of range`},
		{"listener abc", `invalid value "abc" for listener: port is not an integer`},
		{"listener", `invalid value "" for listener: empty value`},
		{"listener 1884 127.0.0.1 extra", `want PORT [ADDRESS]`},
		{"port 0", `invalid value "0" for port: out of range 1..65535`},
		{"port 65536", `out of range 1..65535`},
		{"autosave_interval abc", `b.conf:2: invalid value "abc" for autosave_interval: not a number of seconds`},
		{"autosave_interval -3", `invalid value "-3" for autosave_interval: must not be negative`},
		{"autosave_interval 1e3", `not a number of seconds`},
		{"sys_interval 70000", `out of range 0..65535`},
		{"max_inflight_messages 70000", `out of range 0..65535`},
		{"message_size_limit 268435456", `out of range`},
		{"log_dest elsewhere", `invalid value "elsewhere" for log_dest: must be one of`},
		{"log_dest file", `log_dest file needs a path`},
		{"log_type chatty", `invalid value "chatty" for log_type: must be one of`},
		{"persistence_file", `invalid value "" for persistence_file: empty value`},
		{"persistent_client_expiration 3", `want a count and a unit`},
		{"persistent_client_expiration 0d", `count must be between`},
		{"max_keepalive 5", `out of range 10..65535`},
		{"topic x out", `b.conf:2: bridge option topic outside a connection block`},
		{"auth_opt_x 1", `auth_opt_x needs an auth_plugin line before it`},
		{"socket_domain ipv5", `must be one of ipv4, ipv6`},
		{"mount_point a/+/", `must not contain wildcards`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			_, err := Parse(strings.NewReader("persistence true\n"+tt.line+"\n"), "b.conf")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestWholeFileErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"duplicate persistence_file", "persistence_file a.db\npersistence_file b.db\n",
			`f.conf:2: invalid value "b.db" for persistence_file: duplicate value (already set at f.conf:1)`},
		{"duplicate log file", "log_dest file /a\nlog_dest file /b\n", `f.conf:2: invalid value "file /b" for log_dest: duplicate log_dest file`},
		{"bridge without address", "connection b\ntopic x\n", `f.conf:1: bridge "b" has no address`},
		{"bridge without topic", "connection b\naddress h:1\n", `f.conf:1: bridge "b" has no topic`},
		{"duplicate bridge", "connection b\naddress h:1\ntopic x\nconnection b\n", `f.conf:4: invalid value "b" for connection: duplicate bridge name (first at f.conf:1)`},
		{"bad bridge port", "connection b\naddress h:0\n", `address "h:0": port must be 1..65535`},
		{"bad bridge direction", "connection b\naddress h\ntopic x sideways\n", `direction "sideways"`},
		{"fractional with on_changes", "autosave_interval 0.5\nautosave_on_changes true\n", `f.conf:2: invalid value "true" for autosave_on_changes: autosave_interval 0.5 is fractional`},
		{"on_changes then fractional", "autosave_on_changes true\nautosave_interval 2.5\n", `f.conf:2: invalid value "2.5" for autosave_interval: with autosave_on_changes true`},
		{"bad utf8", "persistence_file a\xffb\n", `f.conf:1: malformed UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.text), "f.conf")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse(strings.NewReader("# nothing\n"), "empty.conf")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"max_inflight", c.MaxInflightMessages, 20},
		{"max_queued", c.MaxQueuedMessages, 1000},
		{"max_queued_bytes", c.MaxQueuedBytes, int64(0)},
		{"sys_interval", c.SysInterval, 10 * time.Second},
		{"autosave_interval", c.AutosaveInterval, 1800 * time.Second},
		{"autosave_on_changes", c.AutosaveOnChanges, false},
		{"persistence", c.Persistence, false},
		{"persistence_file", c.PersistenceFile, "mosquitto.db"},
		{"persistence path", c.PersistencePath(), "mosquitto.db"},
		{"retry_interval", c.RetryInterval, 20 * time.Second},
		{"store_clean_interval", c.StoreCleanInterval, 10 * time.Second},
		{"message_size_limit", c.MessageSizeLimit, 0},
		{"queue_qos0", c.QueueQoS0Messages, false},
		{"log_dest", c.LogDest, []string{"stderr"}},
		{"log_type", c.LogType, []string{"error", "warning", "notice", "information"}},
		{"connection_messages", c.ConnectionMessages, true},
		{"log_timestamp", c.LogTimestamp, true},
		{"local only", c.LocalOnly(), true},
		{"anonymous", c.Anonymous(), true},
		{"allow_anonymous unset", c.Security.AllowAnonymous == nil, true},
		{"no lines", len(c.Lines), 0},
		{"no unacted", len(c.Unacted), 0},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestValues(t *testing.T) {
	text := `
persistence true
persistence_location /var/lib/m
persistence_file m.db
autosave_interval 3
max_inflight_messages 65535
max_queued_messages 0
max_queued_bytes 5000000
sys_interval 0
log_dest none
log_dest stdout
log_dest file /tmp/b.log
log_type none
log_type error
log_type warning
allow_anonymous false
persistent_client_expiration 2w
retry_interval 5
user nobody
message_size_limit 100 # trailing comment
`
	c, err := Parse(strings.NewReader(text), "v.conf")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"path", c.PersistencePath(), "/var/lib/m/m.db"},
		{"autosave", c.AutosaveInterval, 3 * time.Second},
		{"changes", c.AutosaveChanges, 3},
		{"inflight 65535 means unlimited", c.MaxInflightMessages, 0},
		{"queued", c.MaxQueuedMessages, 0},
		{"queued bytes", c.MaxQueuedBytes, int64(5000000)},
		{"sys", c.SysInterval, time.Duration(0)},
		{"log_dest", c.LogDest, []string{"stdout", "file /tmp/b.log"}},
		{"log_type", c.LogType, []string{"error", "warning"}},
		// No listener: Mosquitto 2.0.11's local-only mode forces anonymous on.
		{"anonymous", c.Anonymous(), true},
		{"allow_anonymous kept", *c.Security.AllowAnonymous, false},
		{"expiration", c.PersistentClientExpiration, 14 * 24 * time.Hour},
		{"retry", c.RetryInterval, 5 * time.Second},
		{"user", c.User, "nobody"},
		{"size limit", c.MessageSizeLimit, 100},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestAutosave(t *testing.T) {
	tests := []struct {
		text       string
		interval   time.Duration
		onChanges  bool
		changes    int
		fractional bool
	}{
		{"autosave_interval 0.5", 500 * time.Millisecond, false, 0, true},
		{"autosave_interval 0.25", 250 * time.Millisecond, false, 0, true},
		{"autosave_interval 30", 30 * time.Second, false, 30, false},
		{"autosave_interval 0", 0, false, 0, false},
		{"autosave_interval 100\nautosave_on_changes true", 100 * time.Second, true, 100, false},
		{"autosave_on_changes true\nautosave_interval 7", 7 * time.Second, true, 7, false},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.text), "a.conf")
			if err != nil {
				t.Fatal(err)
			}
			if c.AutosaveInterval != tt.interval || c.AutosaveOnChanges != tt.onChanges ||
				c.AutosaveChanges != tt.changes || c.AutosaveFractional() != tt.fractional {
				t.Errorf("got interval %v onChanges %v changes %d fractional %v",
					c.AutosaveInterval, c.AutosaveOnChanges, c.AutosaveChanges, c.AutosaveFractional())
			}
		})
	}
}

func TestListeners(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []Listener
		anon bool
	}{
		{"listener block scopes max_connections",
			"max_queued_messages 5\nlistener 1884 127.0.0.1\nmax_connections 10\nlistener 1885\n",
			[]Listener{{Port: 1884, BindAddress: "127.0.0.1", MaxConnections: 10}, {Port: 1885, MaxConnections: -1}}, false},
		{"second listener gets its own max_connections",
			"listener 1884\nlistener 1885 ::1\nmax_connections 3\n",
			[]Listener{{Port: 1884, MaxConnections: -1}, {Port: 1885, BindAddress: "::1", MaxConnections: 3}}, false},
		{"port and bind_address form the default listener",
			"port 1999\nbind_address 127.0.0.1\nmax_connections 2\n",
			[]Listener{{Default: true, Port: 1999, BindAddress: "127.0.0.1", MaxConnections: 2}}, false},
		{"listener options before any listener make Mosquitto's default 1883",
			"max_connections 4\nallow_anonymous true\n",
			[]Listener{{Default: true, Port: 1883, MaxConnections: 4}}, true},
		{"tls options are stored on their listener",
			"listener 8883\ncafile /ca.pem\nrequire_certificate true\n",
			[]Listener{{Port: 8883, MaxConnections: -1, CAFile: "/ca.pem", RequireCertificate: true}}, false},
		{"port 0 is accepted (mqbench: pick a free port)", "listener 0 127.0.0.1\n",
			[]Listener{{Port: 0, BindAddress: "127.0.0.1", MaxConnections: -1}}, false},
		{"negative max_connections is unlimited", "listener 1\nmax_connections -5\n",
			[]Listener{{Port: 1, MaxConnections: -1}}, false},
		{"trailing comment after listener", "listener 1884 # main\n",
			[]Listener{{Port: 1884, MaxConnections: -1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.text), "l.conf")
			if err != nil {
				t.Fatal(err)
			}
			for i := range c.Listeners {
				// Places and the listener line are checked by TestListenerPlaces.
				l := &c.Listeners[i]
				l.Line, l.Places, l.MaxQoS, l.MaxTopicAlias = Setting{}, nil, 0, 0
			}
			if !reflect.DeepEqual(c.Listeners, tt.want) {
				t.Errorf("listeners = %+v, want %+v", c.Listeners, tt.want)
			}
			if c.Anonymous() != tt.anon {
				t.Errorf("Anonymous() = %v, want %v", c.Anonymous(), tt.anon)
			}
		})
	}
}

func TestBridges(t *testing.T) {
	text := "connection one\naddress 127.0.0.1:1884\ntopic # out 1\nlistener 1890\nmax_connections 1\ncleansession true\n" +
		"connection two\naddresses 127.0.0.1:1885\ntopic a/# in\n"
	c, err := Parse(strings.NewReader(text), "br.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Bridges) != 2 {
		t.Fatalf("bridges = %+v", c.Bridges)
	}
	var got []string
	for _, s := range c.Bridges[0].Settings {
		got = append(got, s.Key)
	}
	// A listener line does not end the bridge block in Mosquitto.
	if want := []string{"address", "topic", "cleansession"}; !reflect.DeepEqual(got, want) {
		t.Errorf("bridge one settings = %v, want %v", got, want)
	}
	if c.Bridges[1].Name != "two" || len(c.Bridges[1].Settings) != 2 {
		t.Errorf("bridge two = %+v", c.Bridges[1])
	}
	if c.Listeners[0].MaxConnections != 1 {
		t.Errorf("max_connections did not go to the listener: %+v", c.Listeners)
	}
}

func TestUnacted(t *testing.T) {
	text := "persistence true\nuser root\nretry_interval 5\nretry_interval 6\nstore_clean_interval 3\n" +
		"clientid_prefixes x\npassword_file /p\nacl_file /a\npsk_file /k\npersistent_client_expiration 1d\n" +
		"listener 1884\ncafile /c\ncapath /cp\ncertfile /cf\nkeyfile /k\nrequire_certificate false\n" +
		"use_identity_as_username false\npsk_hint h\nciphers c\nlog_dest syslog\n" +
		"connection b\naddress h:1\ntopic x\nkeepalive_interval 30\nidle_timeout 5\n"
	c, err := Parse(strings.NewReader(text), "u.conf")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range c.Unacted {
		got = append(got, s.Key)
	}
	want := []string{"user", "retry_interval", "store_clean_interval", "psk_file", "cafile", "capath", "certfile", "keyfile",
		"require_certificate", "use_identity_as_username", "psk_hint", "ciphers", "log_dest",
		"idle_timeout"} // the bridge keys bridges honour are acted
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unacted = %v\nwant      %v", got, want)
	}
	if c.Unacted[1].Line != 3 {
		t.Errorf("unacted retry_interval recorded at line %d, want the first (3)", c.Unacted[1].Line)
	}
}
