package listen_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqbench/mqbench/broker/listen"
	"github.com/mqbench/mqbench/internal/testutil"
)

// connectPacket is a minimal MQTT 3.1.1 CONNECT (client id "ws", clean
// session, keep alive 0).
var connectPacket = []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 2, 'w', 's'}

func dialWS(t *testing.T, url string, tlsc *tls.Config, protos ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: tlsc, Subprotocols: protos}
	ws, resp, err := d.Dial(url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

// roundTrip sends CONNECT split over two binary messages and expects CONNACK.
func roundTrip(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	for _, part := range [][]byte{connectPacket[:5], connectPacket[5:]} {
		if err := ws.WriteMessage(websocket.BinaryMessage, part); err != nil {
			t.Fatal(err)
		}
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, msg, err := ws.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage || string(msg) != "\x20\x02\x00\x00" {
		t.Fatalf("connack: type %d %x %v", typ, msg, err)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte{0xe0, 0}); err != nil {
		t.Fatal(err)
	}
}

func TestWebsocketsRoundTrip(t *testing.T) {
	ln := openOne(t, lconf("protocol", "websockets"))
	if ln.Protocol() != "websockets" || ln.TLS() {
		t.Fatalf("protocol %s tls %v", ln.Protocol(), ln.TLS())
	}
	sessions := miniBroker(t, ln)
	for _, tc := range []struct{ path, proto string }{{"/mqtt", "mqtt"}, {"/", "mqttv3.1"}, {"/any/path?x=1", "mqtt"}} {
		ws, _, err := dialWS(t, "ws://"+ln.String()+tc.path, nil, "foo", tc.proto)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if ws.Subprotocol() != tc.proto {
			t.Errorf("subprotocol %q, want %q", ws.Subprotocol(), tc.proto)
		}
		roundTrip(t, ws)
		if s := nextSession(t, sessions); !s.connected || s.state != nil {
			t.Errorf("%s: session %+v", tc.path, s)
		}
	}
	// Offering only other subprotocols: closed without a response.
	if _, resp, err := dialWS(t, "ws://"+ln.String()+"/mqtt", nil, "foo"); err == nil || resp != nil {
		t.Errorf("subprotocol foo: err %v resp %v, want a bare close", err, resp)
	}
}

// wsOutcome is what a websocket client sees of one request.
type wsOutcome struct {
	upgraded bool
	proto    string
	connack  bool // a CONNACK answered CONNECT
	closed   bool // the server closed the websocket after the message
}

func wsTry(t *testing.T, url string, protos []string, msgType int) wsOutcome {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 3 * time.Second, Subprotocols: protos}
	ws, resp, err := d.Dial(url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return wsOutcome{}
	}
	defer ws.Close()
	o := wsOutcome{upgraded: true, proto: ws.Subprotocol()}
	if err := ws.WriteMessage(msgType, connectPacket); err != nil {
		return o
	}
	_ = ws.SetReadDeadline(time.Now().Add(time.Second))
	typ, msg, err := ws.ReadMessage()
	o.connack = err == nil && typ == websocket.BinaryMessage && string(msg) == "\x20\x02\x00\x00"
	o.closed = websocket.IsCloseError(err, websocket.CloseUnsupportedData)
	return o
}

// rawHTTP sends a request head and returns the first line of the answer.
func rawHTTP(t *testing.T, addr, head string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte(head))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestWebsocketsMatchesMosquitto runs the same websocket requests against
// our listener and the real Mosquitto's (which only services websockets
// when it also has an mqtt listener, and is given the interface name "lo"
// so it binds loopback only).
func TestWebsocketsMatchesMosquitto(t *testing.T) {
	testutil.RequireMosquittoBroker(t)
	ln := openOne(t, lconf("protocol", "websockets", "bind_address", "lo"))
	if !strings.HasPrefix(ln.String(), "127.0.0.1:") {
		t.Fatalf("ws listener on lo bound %s", ln)
	}
	miniBroker(t, ln)
	wsPort := testutil.FreePort(t)
	testutil.StartMosquittoConf(t, t.TempDir(), func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nlistener %d lo\nprotocol websockets\nallow_anonymous true\nuser root\nlog_dest none\n", port, wsPort)
	})
	targets := []struct{ who, addr string }{{"ours", ln.String()}, {"mosquitto", fmt.Sprintf("127.0.0.1:%d", wsPort)}}
	testutil.WaitFor(t, "mosquitto's websockets listener", func() bool {
		c, err := net.DialTimeout("tcp", targets[1].addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	for _, tc := range []struct {
		protos []string
		want   wsOutcome
	}{
		{[]string{"mqtt"}, wsOutcome{upgraded: true, proto: "mqtt", connack: true}},
		{[]string{"mqttv3.1"}, wsOutcome{upgraded: true, proto: "mqttv3.1", connack: true}},
		{[]string{"foo", "mqtt"}, wsOutcome{upgraded: true, proto: "mqtt", connack: true}},
		{[]string{"foo"}, wsOutcome{}},
		{nil, wsOutcome{upgraded: true}}, // http-only: upgraded, MQTT ignored
	} {
		for _, tg := range targets {
			if got := wsTry(t, "ws://"+tg.addr+"/any/path", tc.protos, websocket.BinaryMessage); got != tc.want {
				t.Errorf("%s, subprotocols %v: %+v, want %+v", tg.who, tc.protos, got, tc.want)
			}
		}
	}
	// Text messages: the one deliberate difference. Mosquitto parses them as
	// MQTT; MQTT 3.1.1 section 6 says to close, and we do.
	if got := wsTry(t, "ws://"+targets[1].addr+"/", []string{"mqtt"}, websocket.TextMessage); !got.connack {
		t.Errorf("mosquitto no longer answers MQTT in a text message: %+v", got)
	}
	if got := wsTry(t, "ws://"+targets[0].addr+"/", []string{"mqtt"}, websocket.TextMessage); !got.closed {
		t.Errorf("ours answered a text message: %+v", got)
	}
	upgrade := "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n"
	for _, tg := range targets {
		if line := rawHTTP(t, tg.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); line != "" {
			t.Errorf("%s: plain GET answered %q", tg.who, line)
		}
		if line := rawHTTP(t, tg.addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("a", 3000)+"\r\n"+upgrade+"\r\n"); !strings.Contains(line, "101") {
			t.Errorf("%s: 3 KB head answered %q, want 101", tg.who, line)
		}
		if line := rawHTTP(t, tg.addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("a", 4100)+"\r\n"+upgrade+"\r\n"); strings.Contains(line, "101") {
			t.Errorf("%s: 4 KB head upgraded", tg.who)
		}
	}
}

func TestWebsocketsTLS(t *testing.T) {
	f := newTLSFixture(t)
	ln := openOne(t, lconf("protocol", "websockets", "cafile", f.caFile, "certfile", f.serverCert, "keyfile", f.serverKey, "require_certificate", "true"))
	sessions := miniBroker(t, ln)
	pool := x509.NewCertPool()
	pool.AddCert(f.ca.Cert)
	pair, err := tls.LoadX509KeyPair(f.clients["good"][0], f.clients["good"][1])
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := dialWS(t, "wss://"+ln.String()+"/mqtt", &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ws)
	s := nextSession(t, sessions)
	if s.state == nil || len(s.state.PeerCertificates) == 0 || s.state.PeerCertificates[0].Subject.CommonName != "good" {
		t.Fatalf("session state %+v", s.state)
	}
	// Without a client certificate the TLS handshake fails.
	if _, _, err := dialWS(t, "wss://"+ln.String()+"/mqtt", &tls.Config{RootCAs: pool}, "mqtt"); err == nil {
		t.Error("wss without a client certificate connected")
	}
}

func TestWebsocketsBadClients(t *testing.T) {
	ln := openOne(t, lconf("protocol", "websockets"))
	sessions := miniBroker(t, ln)

	// A text message closes the connection with 1003.
	ws, _, err := dialWS(t, "ws://"+ln.String()+"/", nil, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, connectPacket); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseUnsupportedData) {
		t.Errorf("after a text message: %v, want close 1003", err)
	}
	if s := nextSession(t, sessions); s.connected {
		t.Error("text message connected")
	}

	// Garbage after the upgrade (not websocket framing) ends the connection.
	ws, _, err = dialWS(t, "ws://"+ln.String()+"/", nil, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = ws.UnderlyingConn().Write([]byte("\xff\xff\xff\xff garbage garbage garbage"))
	if s := nextSession(t, sessions); s.connected {
		t.Error("garbage connected")
	}

	// Plain HTTP, raw garbage and an oversized header get the connection
	// closed; none reaches Accept.
	huge := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n"
	for _, req := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x10\x0e\x00\x04MQTT garbage\r\n\r\n", huge} {
		c, err := net.DialTimeout("tcp", ln.String(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte(req))
		resp, err := io.ReadAll(bufio.NewReader(c))
		c.Close()
		if err != nil {
			t.Errorf("%.20q: %v (want the server to close)", req, err)
		}
		if strings.Contains(string(resp), "101 Switching") {
			t.Errorf("%.20q upgraded", req)
		}
	}
	select {
	case s := <-sessions:
		t.Errorf("a bad client reached Accept: %+v", s)
	case <-time.After(100 * time.Millisecond):
	}

	// Closing the listener stops Accept.
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("accept after close")
	}
}

// TestWebsocketsListenerIgnores: bind_interface is not given to
// libwebsockets and socket_domain ipv6 only keeps IPv4 (both families bound).
func TestWebsocketsListenerIgnores(t *testing.T) {
	l := lconf("protocol", "websockets", "socket_domain", "ipv6")
	l.BindAddress = ""
	lns, warnings, err := listen.Open(l)
	if err != nil {
		t.Fatal(err)
	}
	defer listen.CloseAll(lns)
	if got := addrs(lns); len(got) != 2 || len(warnings) != 1 {
		t.Fatalf("bound %v, warnings %q", got, warnings)
	}
}
