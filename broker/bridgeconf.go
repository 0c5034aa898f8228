package broker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
)

// A `connection` block as Mosquitto 2.0.11's conf.c reads it (defaults set
// where it starts a bridge, client ids filled in by config__check). Only the
// keys in bridgeActed are honoured; failclosed.go refuses the rest naming
// FILE:LINE, so a bridge never silently does less than its block says.

// bridgeDir is a topic line's direction.
type bridgeDir int

const (
	dirOut bridgeDir = iota
	dirIn
	dirBoth
)

// bridgeTopic is one `topic` line: the local and remote filters are the
// pattern with the prefixes in front (bridge__add_topic).
type bridgeTopic struct {
	pattern                   string // "" when the line gave "" (prefix-only mapping)
	dir                       bridgeDir
	qos                       byte
	localPrefix, remotePrefix string
	localTopic, remoteTopic   string
}

func (t bridgeTopic) out() bool { return t.dir == dirOut || t.dir == dirBoth }
func (t bridgeTopic) in() bool  { return t.dir == dirIn || t.dir == dirBoth }

// bridgeStart is start_type.
type bridgeStart string

const (
	startAutomatic bridgeStart = "automatic"
	startOnce      bridgeStart = "once"
	// startLazy connects at start like automatic, but after the link is
	// lost it reconnects only when a message queued for the remote brings
	// what the local session holds to threshold (database.c sets
	// lazy_reconnect on that insert), with no restart_timeout wait.
	startLazy bridgeStart = "lazy"
)

// bridgeConfig is one bridge's settings.
type bridgeConfig struct {
	name               string
	addrs              []string // HOST:PORT, port 1883 when not given
	roundRobin         bool
	topics             []bridgeTopic
	cleanRemote        bool // cleansession
	cleanLocal         bool // local_cleansession (defaults to cleansession)
	remoteID, localID  string
	user, pass         string
	hasUser, hasPass   bool
	keepalive          uint16
	restartInit        int // restart_timeout as read (0 when not given)
	restartBase        int // seconds (backoff_base)
	restartCap         int // backoff_cap
	start              bridgeStart
	threshold          int // start_type lazy: held messages that bring the link back
	notifications      bool
	notifLocalOnly     bool
	notifTopic         string // "" = $SYS/broker/connection/REMOTE_ID/state
	tryPrivate         bool
	proto              byte // 3 (mqttv31), 4 (mqttv311) or 5 (mqttv50)
	outgoingRetain     bool
	attemptUnsubscribe bool
	maxPacket          uint32      // bridge_max_packet_size, 0 = no limit
	tlsConf            *tls.Config // nil = plain TCP
	cafile, capath     string
	certfile, keyfile  string
	insecure           bool
	requireOCSP        bool         // bridge_require_ocsp: the remote must staple a good OCSP response
	tlsVersion         string       // bridge_tls_version as given, "" = Mosquitto's default
	alpn               string       // bridge_alpn: the one protocol offered, "" = none
	bindAddr           *net.TCPAddr // bridge_bind_address resolved, nil = any
	connection         conf.Setting
	settingsPlace      map[string]conf.Setting
}

// bridgeActed are the `connection` block keys the bundled broker honours.
var bridgeActed = map[string]bool{
	"connection": true, "address": true, "addresses": true, "round_robin": true, "topic": true,
	"cleansession": true, "local_cleansession": true, "clientid": true, "remote_clientid": true,
	"local_clientid": true, "remote_username": true, "username": true, "remote_password": true,
	"password": true, "keepalive_interval": true, "restart_timeout": true, "start_type": true,
	"notifications": true, "notifications_local_only": true, "notification_topic": true,
	"try_private": true, "bridge_protocol_version": true, "bridge_outgoing_retain": true,
	"bridge_attempt_unsubscribe": true, "bridge_cafile": true, "bridge_capath": true,
	"bridge_certfile": true, "bridge_keyfile": true, "bridge_insecure": true, "bridge_max_packet_size": true,
	"threshold": true, "bridge_tls_version": true, "bridge_alpn": true, "bridge_bind_address": true,
	"bridge_require_ocsp": true,
}

// bridgeRefusal says why a bridge key (or one of its values) is not honoured,
// "" when it is.
func bridgeRefusal(s conf.Setting) string {
	if s.Key == "idle_timeout" {
		// Mosquitto 2.0.11 checks a lazy bridge's idle time as now -
		// next_msg_out - keepalive (mosquitto__check_keepalive), and since
		// next_msg_out is the last packet out plus keepalive and a PINGREQ
		// goes out every keepalive, that never reaches idle_timeout: the
		// link is never closed for idleness. Accepted with the start-up
		// notice of keys without effect.
		return ""
	}
	if s.Key == "local_username" || s.Key == "local_password" {
		// The bridge's local side is trusted past authentication and
		// every ACL (mosquitto_acl_check); 2.0.11 hands local_username
		// only to plugins, which the bundled broker refuses. Accepted
		// with the notice of keys without effect.
		return ""
	}
	if !bridgeActed[s.Key] {
		return s.Key + " is not supported by the bundled broker's bridges yet; run this configuration with --broker mosquitto"
	}
	return ""
}

// parseBridges reads every `connection` block of cfg.
func parseBridges(cfg *conf.Config) ([]*bridgeConfig, error) {
	host, _ := os.Hostname()
	var out []*bridgeConfig
	for _, b := range cfg.Bridges {
		bc, err := parseBridge(b, host)
		if err != nil {
			return nil, err
		}
		for _, o := range out {
			if o.localID == bc.localID {
				return nil, fmt.Errorf("%s: bridge %q: local client id %q is already used by bridge %q", place(bc.connection), bc.name, bc.localID, o.name)
			}
		}
		out = append(out, bc)
	}
	return out, nil
}

func place(s conf.Setting) string {
	if p := s.Place(); p != "" {
		return p
	}
	return "config"
}

func parseBridge(b conf.Bridge, host string) (*bridgeConfig, error) {
	bc := &bridgeConfig{
		name: b.Name, keepalive: 60, restartBase: 5, restartCap: 30, start: startAutomatic, threshold: 10,
		notifications: true, tryPrivate: true, proto: 4, outgoingRetain: true, attemptUnsubscribe: true,
		connection: b.Connection, settingsPlace: map[string]conf.Setting{},
	}
	cleanLocalSet := false
	bad := func(s conf.Setting, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", place(s), s.Key, fmt.Sprintf(format, args...))
	}
	for _, s := range b.Settings {
		bc.settingsPlace[s.Key] = s
		v := strings.TrimSpace(s.Value)
		on := v == "true"
		switch s.Key {
		case "address", "addresses":
			for _, a := range strings.Fields(v) {
				if strings.HasPrefix(a, "#") {
					break
				}
				bc.addrs = append(bc.addrs, bridgeAddr(a))
			}
		case "round_robin":
			bc.roundRobin = on
		case "topic":
			t, err := parseBridgeTopic(v)
			if err != nil {
				return nil, bad(s, "%v", err)
			}
			bc.topics = append(bc.topics, t)
		case "cleansession":
			bc.cleanRemote = on
		case "local_cleansession":
			bc.cleanLocal, cleanLocalSet = on, true
		case "clientid", "remote_clientid":
			bc.remoteID = v
		case "local_clientid":
			bc.localID = v
		case "remote_username", "username":
			bc.user, bc.hasUser = v, true
		case "remote_password", "password":
			bc.pass, bc.hasPass = v, true
		case "keepalive_interval":
			n, _ := strconv.Atoi(v)
			bc.keepalive = uint16(n)
		case "restart_timeout":
			f := strings.Fields(v)
			// A single value is only the first delay: the backoff
			// (base 5, cap 30) stays on, as in conf.c.
			n, _ := strconv.Atoi(f[0])
			bc.restartInit = max(n, 1)
			if len(f) == 2 {
				c, _ := strconv.Atoi(f[1])
				bc.restartBase, bc.restartCap = bc.restartInit, c
			}
		case "start_type":
			bc.start = bridgeStart(v)
		case "threshold":
			n, _ := strconv.Atoi(v)
			bc.threshold = max(n, 1) // conf.c: "threshold too low, using 1 message"
		case "notifications":
			bc.notifications = on
		case "notifications_local_only":
			bc.notifLocalOnly = on
		case "notification_topic":
			bc.notifTopic = v
		case "try_private":
			bc.tryPrivate = on
		case "bridge_protocol_version":
			switch v {
			case "mqttv31":
				bc.proto = 3
			case "mqttv50":
				bc.proto = 5
			}
		case "bridge_outgoing_retain":
			bc.outgoingRetain = on
		case "bridge_attempt_unsubscribe":
			bc.attemptUnsubscribe = on
		case "bridge_cafile":
			bc.cafile = v
		case "bridge_capath":
			bc.capath = v
		case "bridge_certfile":
			bc.certfile = v
		case "bridge_keyfile":
			bc.keyfile = v
		case "bridge_insecure":
			bc.insecure = on
		case "bridge_tls_version":
			if _, ok := bridgeTLSVersions[v]; !ok {
				// Mosquitto 2.0.11 takes any value and fails every
				// connect attempt on it ("Protocol %s not supported").
				return nil, bad(s, "bridge %q: bridge_tls_version %q: want tlsv1.3, tlsv1.2 or tlsv1.1", bc.name, v)
			}
			bc.tlsVersion = v
		case "bridge_alpn":
			bc.alpn = v
		case "bridge_require_ocsp":
			bc.requireOCSP = on
		case "bridge_bind_address":
			a, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(v, "0"))
			if err != nil {
				return nil, bad(s, "bridge %q: bridge_bind_address %q: %v", bc.name, v, err)
			}
			bc.bindAddr = a
		case "bridge_max_packet_size":
			n, _ := strconv.Atoi(v)
			bc.maxPacket = uint32(n)
		}
	}
	if !cleanLocalSet {
		bc.cleanLocal = bc.cleanRemote
	}
	if bc.remoteID == "" {
		bc.remoteID = host + "." + bc.name
	}
	if bc.localID == "" {
		bc.localID = "local." + bc.remoteID
	}
	if bc.hasPass && !bc.hasUser {
		// config__check: a password needs a username.
		return nil, bad(bc.settingsPlace["remote_password"], "bridge %q has a password but no username", bc.name)
	}
	if err := bc.loadTLS(); err != nil {
		return nil, err
	}
	return bc, nil
}

// bridgeAddr adds Mosquitto's default port 1883 to an address without one.
func bridgeAddr(a string) string {
	if i := strings.LastIndexByte(a, ':'); i >= 0 && !strings.Contains(a[:i], ":") {
		return a
	}
	if strings.HasPrefix(a, "[") {
		return a
	}
	return net.JoinHostPort(a, "1883")
}

// parseBridgeTopic is conf.c's `topic` reading and bridge__add_topic: a
// pattern of "" stands for none and needs both prefixes; a prefix of "" is no
// prefix; a `#` starts a comment.
func parseBridgeTopic(v string) (bridgeTopic, error) {
	var f []string
	for _, w := range strings.Fields(v) {
		if strings.HasPrefix(w, "#") && len(f) >= 2 {
			break
		}
		f = append(f, w)
	}
	t := bridgeTopic{dir: dirOut}
	if len(f) == 0 {
		return t, fmt.Errorf("empty topic")
	}
	if f[0] != `""` {
		t.pattern = f[0]
	}
	if len(f) > 1 {
		switch strings.ToLower(f[1]) {
		case "out":
			t.dir = dirOut
		case "in":
			t.dir = dirIn
		case "both":
			t.dir = dirBoth
		}
	}
	if len(f) > 2 {
		q, _ := strconv.Atoi(f[2])
		t.qos = byte(q)
	}
	if len(f) > 3 && f[3] != `""` {
		t.localPrefix = f[3]
	}
	if len(f) > 4 && f[4] != `""` {
		t.remotePrefix = f[4]
	}
	if t.pattern == "" && (t.localPrefix == "" || t.remotePrefix == "") {
		return t, fmt.Errorf("invalid bridge remapping (an empty pattern needs both prefixes)")
	}
	for _, p := range []string{t.localPrefix, t.remotePrefix} {
		if p != "" && !validTopicName(p) {
			return t, fmt.Errorf("invalid bridge topic prefix %q", p)
		}
	}
	t.localTopic = t.localPrefix + t.pattern
	t.remoteTopic = t.remotePrefix + t.pattern
	if !validFilter(t.localTopic) || !validFilter(t.remoteTopic) {
		return t, fmt.Errorf("invalid bridge topic prefix and pattern combination %q / %q", t.localTopic, t.remoteTopic)
	}
	return t, nil
}

// loadTLS builds the link's TLS client configuration from bridge_cafile /
// bridge_capath (TLS is on when either is given, as in Mosquitto), the client
// certificate and bridge_insecure (no host name check).
func (bc *bridgeConfig) loadTLS() error {
	if bc.cafile == "" && bc.capath == "" {
		for _, k := range []string{"bridge_certfile", "bridge_keyfile", "bridge_insecure"} {
			if s, ok := bc.settingsPlace[k]; ok {
				return fmt.Errorf("%s: %s: bridge %q: TLS needs bridge_cafile or bridge_capath", place(s), k, bc.name)
			}
		}
		return nil
	}
	if (bc.certfile == "") != (bc.keyfile == "") {
		s := bc.settingsPlace["bridge_certfile"]
		if bc.certfile == "" {
			s = bc.settingsPlace["bridge_keyfile"]
		}
		return fmt.Errorf("%s: %s: bridge %q: both bridge_certfile and bridge_keyfile must be given", place(s), s.Key, bc.name)
	}
	pool := x509.NewCertPool()
	var files []string
	if bc.cafile != "" {
		files = append(files, bc.cafile)
	}
	if bc.capath != "" {
		ents, err := os.ReadDir(bc.capath)
		if err != nil {
			s := bc.settingsPlace["bridge_capath"]
			return fmt.Errorf("%s: bridge_capath: %w", place(s), err)
		}
		for _, e := range ents {
			if !e.IsDir() {
				files = append(files, filepath.Join(bc.capath, e.Name()))
			}
		}
	}
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			s := bc.settingsPlace["bridge_cafile"]
			return fmt.Errorf("%s: bridge_cafile: %w", place(s), err)
		}
		if !pool.AppendCertsFromPEM(pem) && f == bc.cafile {
			s := bc.settingsPlace["bridge_cafile"]
			return fmt.Errorf("%s: bridge_cafile: %s holds no PEM certificate", place(s), f)
		}
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: bridgeTLSVersions[bc.tlsVersion]}
	if bc.alpn != "" {
		tc.NextProtos = []string{bc.alpn}
	}
	if bc.certfile != "" {
		cert, err := tls.LoadX509KeyPair(bc.certfile, bc.keyfile)
		if err != nil {
			s := bc.settingsPlace["bridge_certfile"]
			return fmt.Errorf("%s: bridge_certfile: %w", place(s), err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if bc.insecure {
		// bridge_insecure: the chain is still verified against the CA, only
		// the host name is not checked (OpenSSL's verify without host check).
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("no server certificate")
			}
			opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	if bc.requireOCSP {
		chained := tc.VerifyConnection
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if chained != nil {
				if err := chained(cs); err != nil {
					return err
				}
			}
			return checkStapledOCSP(cs, pool, time.Now())
		}
	}
	bc.tlsConf = tc
	return nil
}

// bridgeTLSVersions is bridge_tls_version as net__init_ssl_ctx reads it: the
// lowest version the bridge offers (it sets only SSL_OP_NO_* below it), TLS
// 1.2 when not given.
var bridgeTLSVersions = map[string]uint16{
	"": tls.VersionTLS12, "tlsv1.3": tls.VersionTLS13, "tlsv1.2": tls.VersionTLS12, "tlsv1.1": tls.VersionTLS11,
}

// restartDelay is bridge__backoff_step, which Mosquitto 2.0.11 always
// applies (its backoff cap is never 0): a "decorrelated jitter" between the
// base and three times the previous delay, capped.
func (bc *bridgeConfig) restartDelay(prev int, rnd func(int) int) int {
	lo, hi := bc.restartBase, prev*3
	span := hi - lo
	if span < 0 {
		span = -span
	}
	d := lo
	if span > 0 {
		d = lo + rnd(span)
	}
	return min(d, bc.restartCap)
}

// notificationTopic is where the bridge's state (1 up, 0 down) is published.
func (bc *bridgeConfig) notificationTopic() string {
	if bc.notifTopic != "" {
		return bc.notifTopic
	}
	return "$SYS/broker/connection/" + bc.remoteID + "/state"
}
