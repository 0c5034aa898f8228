package listen

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqbench/mqbench/internal/wsconn"
)

// Websockets listener limits, comparable to what libwebsockets applies for
// Mosquitto (a 4096 byte request head, measured; its own pending-connection
// timeouts).
const (
	// wsMaxHeaderBytes: net/http allows MaxHeaderBytes plus 4096 bytes of
	// slack for the request head, so 1 makes the limit about 4 KiB.
	wsMaxHeaderBytes = 1
	wsHandshakeTime  = 10 * time.Second
	// wsReadLimit bounds one websocket message: the largest MQTT packet
	// (268,435,455 bytes of remaining length plus a 5 byte fixed header).
	// Messages are streamed into Read, never buffered whole.
	wsReadLimit = 268435455 + 5
	wsBufSize   = 4096
)

// wsSubprotocols are the protocols Mosquitto registers with libwebsockets
// (websockets.c protocols[]) after its first, "http-only" handler.
var wsSubprotocols = []string{"mqtt", "mqttv3.1"}

// wsServer is the HTTP server of one websockets socket; upgraded connections
// come out of Accept through conns.
type wsServer struct {
	srv      *http.Server
	conns    chan *wsConn
	done     chan struct{}
	once     sync.Once
	closeErr error
}

// serveWS starts an HTTP server on t (over TLS when cfg is set) that
// upgrades requests the way the installed Mosquitto 2.0.11 (with its
// libwebsockets) answers them, checked by TestWebsocketsMatchesMosquitto:
//
//   - any path upgrades (no mount restriction);
//   - the subprotocol is the first of the client's list that is "mqtt" or
//     "mqttv3.1"; a list naming neither gets the connection closed without a
//     response; no list at all upgrades to libwebsockets' first, "http-only"
//     protocol, where MQTT never reaches the broker: the connection stays
//     open, its messages are discarded, and it never comes out of Accept;
//   - a request that is no upgrade gets the connection closed without a
//     response (Mosquitto without http_dir: callback_http returns -1);
//   - the request head is limited to about 4 KiB, libwebsockets' limit;
//     beyond it Go answers 431 where libwebsockets closes silently.
func serveWS(t *net.TCPListener, cfg *tls.Config) *wsServer {
	s := &wsServer{conns: make(chan *wsConn), done: make(chan struct{})}
	up := &websocket.Upgrader{
		HandshakeTimeout: wsHandshakeTime,
		ReadBufferSize:   wsBufSize,
		WriteBufferSize:  wsBufSize,
		CheckOrigin:      func(*http.Request) bool { return true }, // Mosquitto checks no origin
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.handle(up, w, r) }),
		ReadHeaderTimeout: wsHandshakeTime,
		MaxHeaderBytes:    wsMaxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0), // a library does not print
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	var ln net.Listener = t
	if cfg != nil {
		c := cfg.Clone()
		c.NextProtos = []string{"http/1.1"}
		ln = tls.NewListener(t, c)
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

func (s *wsServer) handle(up *websocket.Upgrader, w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		hijackClose(w)
		return
	}
	offered := websocket.Subprotocols(r)
	proto := ""
	for _, p := range offered {
		if p == wsSubprotocols[0] || p == wsSubprotocols[1] {
			proto = p
			break
		}
	}
	if proto == "" && len(offered) > 0 {
		hijackClose(w)
		return
	}
	var hdr http.Header
	if proto != "" {
		hdr = http.Header{"Sec-Websocket-Protocol": {proto}}
	}
	ws, err := up.Upgrade(w, r, hdr)
	if err != nil {
		return // Upgrade has answered the client
	}
	ws.SetReadLimit(wsReadLimit)
	if proto == "" {
		discard(ws)
		return
	}
	c := &wsConn{Conn: wsconn.New(ws), tlsState: r.TLS}
	select {
	case s.conns <- c:
	case <-s.done:
		_ = ws.Close()
	}
}

// discard is libwebsockets' "http-only" protocol for an upgraded connection:
// everything the client sends is dropped until it goes away.
func discard(ws *websocket.Conn) {
	defer ws.Close()
	for {
		_, r, err := ws.NextReader()
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

// hijackClose drops the connection without an HTTP response.
func hijackClose(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	c, _, err := hj.Hijack()
	if err == nil {
		_ = c.Close()
	}
}

func (s *wsServer) accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// close stops the HTTP server (its listener and idle, not-yet-upgraded
// connections); upgraded connections are hijacked and stay open.
func (s *wsServer) close() error {
	s.once.Do(func() {
		close(s.done)
		s.closeErr = s.srv.Close()
	})
	return s.closeErr
}

// wsConn is an upgraded websocket carrying the MQTT byte stream
// (package wsconn, shared with mqbench's clients), with the state of the TLS
// connection it arrived over for certificate usernames.
type wsConn struct {
	*wsconn.Conn
	tlsState *tls.ConnectionState
}
