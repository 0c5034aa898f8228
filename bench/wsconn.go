package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsSubprotocol is the websocket subprotocol MQTT uses (MQTT 3.1.1, 6.0);
// brokers refuse or misroute an upgrade without it.
const wsSubprotocol = "mqtt"

// wsConn carries MQTT over a websocket as a net.Conn, so the lean publisher
// runs unchanged on ws:// and wss://. MQTT does not align packets with
// websocket messages (a message may hold several packets or part of one), so
// Write sends each buffer as one binary message and Read streams the
// messages' payloads back to back. One reader and one writer may run at
// once, as on a TCP connection.
type wsConn struct {
	ws *websocket.Conn
	r  io.Reader // the message being read, nil between messages
	wm sync.Mutex
}

// dialWS opens a websocket to url (ws:// or wss://, tlsc for the latter)
// with the mqtt subprotocol, within timeout.
func dialWS(url string, tlsc *tls.Config, timeout time.Duration) (net.Conn, error) {
	d := websocket.Dialer{
		HandshakeTimeout: timeout,
		TLSClientConfig:  tlsc,
		Subprotocols:     []string{wsSubprotocol},
		NetDialContext:   (&net.Dialer{Timeout: timeout}).DialContext,
		ReadBufferSize:   leanBufSize,
		WriteBufferSize:  leanBufSize,
	}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("websocket upgrade at %s refused: %s", url, resp.Status)
		}
		return nil, fmt.Errorf("websocket to %s: %w", url, err)
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if ws.Subprotocol() != wsSubprotocol {
		ws.Close()
		return nil, fmt.Errorf("websocket to %s: the server did not accept subprotocol %q (got %q)", url, wsSubprotocol, ws.Subprotocol())
	}
	return &wsConn{ws: ws}, nil
}

// Read returns payload bytes of binary messages; a text message is a
// protocol error (MQTT 3.1.1, 6.0: the connection must be closed).
func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, wsErr(err)
			}
			if typ != websocket.BinaryMessage {
				return 0, fmt.Errorf("websocket: got a non-binary message (type %d)", typ)
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// wsErr turns a clean close from the peer into io.EOF, which is what a
// broker closing a TCP connection looks like to the callers.
func wsErr(err error) error {
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
		return io.EOF
	}
	return err
}

// Write sends p as one binary message.
func (c *wsConn) Write(p []byte) (int, error) {
	c.wm.Lock()
	defer c.wm.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close says goodbye (a close frame, best effort, bounded) and closes the
// connection.
func (c *wsConn) Close() error {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(100*time.Millisecond))
	return c.ws.Close()
}

func (c *wsConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }

// SetDeadline sets both deadlines.
func (c *wsConn) SetDeadline(t time.Time) error {
	if err := c.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return c.ws.SetWriteDeadline(t)
}
