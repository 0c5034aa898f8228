// Package wsconn carries an MQTT byte stream over a websocket as a net.Conn,
// for the broker's websockets listeners and mqbench's ws:// and wss://
// clients alike, so both sides frame MQTT the same way.
//
// MQTT does not align packets with websocket messages (a message may hold
// several packets or part of one), so Write sends each buffer as one binary
// message and Read streams the payloads of consecutive binary messages. A text
// message ends the connection: MQTT 3.1.1 section 6 says the recipient of any
// other frame type must close it (Mosquitto 2.0.11 differs: libwebsockets
// hands it text payloads too and it parses them as MQTT). One reader and one
// writer may run at once, as on a TCP connection.
package wsconn

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Subprotocol is the websocket subprotocol MQTT uses (MQTT 3.1.1, 6.0).
const Subprotocol = "mqtt"

// ErrTextFrame is returned by Read when the peer sent a text message.
var ErrTextFrame = errors.New("websocket: text message received, MQTT needs binary messages")

// Conn is a websocket as a net.Conn.
type Conn struct {
	ws *websocket.Conn
	r  io.Reader // the message being read, nil between messages
	wm sync.Mutex
}

// New wraps an established websocket (dialled or upgraded).
func New(ws *websocket.Conn) *Conn { return &Conn{ws: ws} }

// Read returns payload bytes of binary messages. A clean close by the peer
// is io.EOF, which is what a closed TCP connection looks like to callers; a
// text message is answered with close code 1003 and ErrTextFrame.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				msg := websocket.FormatCloseMessage(websocket.CloseUnsupportedData, "binary messages only")
				_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
				_ = c.ws.Close()
				return 0, ErrTextFrame
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
		if err != nil {
			return n, fmt.Errorf("websocket read: %w", err)
		}
		return n, nil
	}
}

// Write sends p as one binary message.
func (c *Conn) Write(p []byte) (int, error) {
	c.wm.Lock()
	defer c.wm.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends a close frame (best effort, bounded) and closes the socket.
func (c *Conn) Close() error {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(100*time.Millisecond))
	return c.ws.Close()
}

// LocalAddr and RemoteAddr are the underlying connection's.
func (c *Conn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr: see LocalAddr.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// SetReadDeadline and SetWriteDeadline bound blocked reads and writes.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline: see SetReadDeadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return c.ws.SetWriteDeadline(t)
}
