// Package listen opens the listening sockets of a Mosquitto configuration
// the way Mosquitto 2.0.11 does, so the bundled broker is reachable on
// exactly the addresses, protocols and TLS settings a real Mosquitto with the
// same mosquitto.conf would offer, and refuses what it cannot reproduce
// instead of quietly doing something else.
//
// One configured listener becomes one or more Listener values, one per bound
// socket (a listener without an address binds 0.0.0.0 and :: separately, as
// Mosquitto does). Each Listener's Accept returns a net.Conn carrying the
// MQTT byte stream: a TCP connection, a *tls.Conn whose handshake has not
// run yet (call Handshake from the connection's goroutine), or for protocol
// websockets an adapter over an upgraded websocket. The broker's connection
// code is the same for all of them.
//
// What is refused or ignored, and why, is decided in one table (check.go);
// Check exposes it so the broker can report it at start-up. In short:
//
//   - refused: psk_hint (Go's TLS has no PSK suites), dhparamfile (no
//     finite-field DHE), tls_engine and tls_keyform engine (no OpenSSL
//     engines), ciphers entries Go cannot honour (OpenSSL keywords and
//     operators, DHE/CCM/... suites; see CipherNames), ciphers_tls1.3 other
//     than Go's fixed set, http_dir (static files are not served), and what
//     Mosquitto itself refuses (bad tls_version, unreadable or unparsable
//     certfile, keyfile, cafile or crlfile);
//   - ignored as Mosquitto ignores them (a warning): TLS keys on a listener
//     without both certfile and keyfile, certificate usernames on plain and
//     websockets listeners, and capath, crlfile, tls_version and
//     bind_interface on websockets listeners;
//   - deliberately different: a websocket text message closes the
//     connection (MQTT 3.1.1 section 6); Mosquitto parses it as MQTT.
//     Handshake failures are not logged here (the broker decides).
//
// The tests hold each of these to the installed mosquitto 2.0.11 with the
// same files and lines (TLS, CRL, capath, tls_version, bind_interface,
// certificate usernames, websockets), so a wrong expectation shows up as a
// Mosquitto failure.
package listen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
)

// Listener is one bound socket of a configured listener.
type Listener struct {
	// Conf is the configured listener this socket belongs to.
	Conf conf.Listener
	// Index is Conf's position in Config.Listeners, -1 for the local-only
	// listeners OpenAll makes when none is configured.
	Index int

	tcp *net.TCPListener
	tls *tls.Config // nil: plain
	ws  *wsServer   // nil: protocol mqtt
}

// Open binds every socket of one configured listener (see bindAll for the
// address rules) and prepares TLS and websockets. It returns the ignored
// settings as warnings (Check) next to the bind warnings Mosquitto would log.
// On error nothing stays open.
func Open(l conf.Listener) ([]*Listener, []string, error) {
	return open(l, -1)
}

func open(l conf.Listener, index int) ([]*Listener, []string, error) {
	if l.Protocol == "" {
		l.Protocol = "mqtt"
	}
	warnings := Warnings(l)
	tlsCfg, err := ServerTLS(l)
	if err != nil {
		return nil, warnings, err
	}
	bindConf, backlog := l, mqttBacklog
	if isWS(l) {
		backlog = wsBacklog
		// libwebsockets is given the address and only "disable IPv6". It
		// binds one dual-stack socket where two are bound here: the same
		// addresses answer. (The installed mosquitto's libwebsockets even
		// binds the wildcard when an address is given, and never services
		// the socket unless an mqtt listener exists; neither is reproduced.)
		bindConf.BindInterface = ""
		if bindConf.SocketDomain == "ipv6" {
			bindConf.SocketDomain = ""
		}
		// libwebsockets also takes an interface name as the address; the
		// installed mosquitto then listens on the interface's IPv4 address
		// only (ss shows [::ffff:127.0.0.1] for `listener PORT lo`).
		if ifc := interfaceNamed(l.BindAddress); ifc != "" {
			bindConf.BindAddress, bindConf.BindInterface, bindConf.SocketDomain = "", ifc, "ipv4"
		}
	}
	tcps, bindWarnings, err := bindAll(bindConf, backlog)
	warnings = append(warnings, bindWarnings...)
	if err != nil {
		return nil, warnings, err
	}
	out := make([]*Listener, 0, len(tcps))
	for _, t := range tcps {
		ln := &Listener{Conf: l, Index: index, tcp: t, tls: tlsCfg}
		if isWS(l) {
			ln.ws = serveWS(t, tlsCfg)
		}
		out = append(out, ln)
	}
	return out, warnings, nil
}

// OpenAll opens every listener of cfg in order. With none configured it is
// Mosquitto 2.0's local-only mode (listeners__start_local_only): 127.0.0.1
// and ::1 on port 1883, each allowed to fail as long as one opens. On any
// other error whatever was opened is closed again.
func OpenAll(cfg *conf.Config) ([]*Listener, []string, error) {
	if cfg.LocalOnly() {
		return openLocalOnly(localOnlyPort)
	}
	var (
		all      []*Listener
		warnings []string
	)
	for i, l := range cfg.Listeners {
		lns, w, err := open(l, i)
		warnings = append(warnings, w...)
		if err != nil {
			CloseAll(all)
			return nil, warnings, err
		}
		all = append(all, lns...)
	}
	return all, warnings, nil
}

// localOnlyPort is Mosquitto's default port, used by local-only mode.
const localOnlyPort = 1883

func openLocalOnly(port int) ([]*Listener, []string, error) {
	var (
		all      []*Listener
		warnings []string
		errs     []error
	)
	for _, host := range []string{"127.0.0.1", "::1"} {
		l := conf.Listener{Port: port, BindAddress: host, MaxConnections: -1, Protocol: "mqtt"}
		lns, w, err := open(l, -1)
		warnings = append(warnings, w...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, lns...)
	}
	if len(all) == 0 {
		return nil, warnings, fmt.Errorf("local-only mode: %w", errors.Join(errs...))
	}
	for _, err := range errs {
		warnings = append(warnings, "local-only mode: "+err.Error())
	}
	return all, warnings, nil
}

// CloseAll closes every listener, ignoring errors (used on start-up failure
// and shutdown).
func CloseAll(lns []*Listener) {
	for _, ln := range lns {
		_ = ln.Close()
	}
}

// Accept waits for the next connection. For TLS listeners the handshake has
// not happened yet: a slow or hostile client must not stall the accept loop,
// so the caller runs Handshake in the connection's own goroutine.
// Websockets listeners return connections already upgraded (their HTTP and
// TLS handshakes run in the HTTP server's per-connection goroutines).
func (l *Listener) Accept() (net.Conn, error) {
	if l.ws != nil {
		return l.ws.accept()
	}
	c, err := l.tcp.Accept()
	if err != nil {
		return nil, err
	}
	if l.tls != nil {
		return tls.Server(c, l.tls), nil
	}
	return c, nil
}

// Close stops accepting; established connections stay open.
func (l *Listener) Close() error {
	if l.ws != nil {
		return l.ws.close()
	}
	return l.tcp.Close()
}

// Addr is the address really bound (the port chosen for port 0 included).
func (l *Listener) Addr() net.Addr { return l.tcp.Addr() }

// String is Addr as "HOST:PORT" ("0.0.0.0:1883", "[::]:1883").
func (l *Listener) String() string { return l.tcp.Addr().String() }

// TLS reports whether connections are TLS (Handshake yields a state).
func (l *Listener) TLS() bool { return l.tls != nil }

// Protocol is "mqtt" or "websockets".
func (l *Listener) Protocol() string {
	if l.ws != nil {
		return "websockets"
	}
	return "mqtt"
}

// Handshake completes the TLS handshake of a connection from Accept within
// timeout and returns its state, or nil for a plain connection. Call it on
// the connection Accept returned, before wrapping it (it recognises the
// connection by type). For a
// websockets connection it returns the state of the TLS connection the
// upgrade came over (nil for ws://). On error the caller closes c.
func Handshake(c net.Conn, timeout time.Duration) (*tls.ConnectionState, error) {
	switch tc := c.(type) {
	case *tls.Conn:
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := tc.SetDeadline(time.Now().Add(timeout)); err != nil {
			return nil, err
		}
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("tls handshake with %s: %w", c.RemoteAddr(), err)
		}
		if err := tc.SetDeadline(time.Time{}); err != nil {
			return nil, err
		}
		st := tc.ConnectionState()
		return &st, nil
	case *wsConn:
		return tc.tlsState, nil
	}
	return nil, nil
}
