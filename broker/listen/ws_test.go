package listen_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqbench/mqbench/broker/listen"
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
	for _, protos := range [][]string{nil, {"foo"}} {
		_, resp, err := dialWS(t, "ws://"+ln.String()+"/mqtt", nil, protos...)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("subprotocols %v: err %v resp %v, want 400", protos, err, resp)
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
