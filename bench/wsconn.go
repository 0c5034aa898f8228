package bench

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/gorilla/websocket"

	"github.com/mqbench/mqbench/internal/wsconn"
)

// wsSubprotocol is the websocket subprotocol MQTT uses (MQTT 3.1.1, 6.0);
// brokers refuse or misroute an upgrade without it.
const wsSubprotocol = wsconn.Subprotocol

// dialWS opens a websocket to url (ws:// or wss://, tlsc for the latter)
// with the mqtt subprotocol, within timeout, as a net.Conn (package wsconn,
// shared with the broker's websockets listeners), so the lean publisher runs
// unchanged on ws:// and wss://.
func dialWS(url string, tlsc *tls.Config, nd *net.Dialer) (net.Conn, error) {
	d := websocket.Dialer{
		HandshakeTimeout: nd.Timeout,
		TLSClientConfig:  tlsc,
		Subprotocols:     []string{wsSubprotocol},
		NetDialContext:   nd.DialContext,
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
	return wsconn.New(ws), nil
}
