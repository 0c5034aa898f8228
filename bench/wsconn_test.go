package bench

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/gorilla/websocket"

	"github.com/mqbench/mqbench/internal/wsconn"
)

// wsServer is a loopback websocket server running handle on each upgraded
// connection; protocols are the subprotocols it accepts.
func wsServer(t *testing.T, protocols []string, handle func(*websocket.Conn)) string {
	t.Helper()
	up := websocket.Upgrader{Subprotocols: protocols}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mqtt" {
			http.NotFound(w, r)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		handle(ws)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// TestWSConnStream: MQTT packets survive being split across and merged into
// websocket messages, as MQTT over websockets allows, and each Write is one
// binary message.
func TestWSConnStream(t *testing.T) {
	got := make(chan []byte, 16)
	url := wsServer(t, []string{"mqtt"}, func(ws *websocket.Conn) {
		var all []byte
		for i := 0; i < 3; i++ {
			typ, m, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if typ != websocket.BinaryMessage {
				t.Errorf("message type %d, want binary", typ)
			}
			got <- m
			all = append(all, m...)
		}
		// Echo everything back split badly: 1 byte, then the rest but 3, then 3.
		for _, part := range [][]byte{all[:1], all[1 : len(all)-3], all[len(all)-3:]} {
			if err := ws.WriteMessage(websocket.BinaryMessage, part); err != nil {
				return
			}
		}
		ws.ReadMessage() // until the client closes
	})
	nc, err := dialWS(url+"/mqtt", nil, &net.Dialer{Timeout: hangGuard})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var sent []packets.ControlPacket
	for i, topic := range []string{"a", "bb", "ccc"} {
		p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		p.TopicName, p.Qos, p.MessageID, p.Payload = topic, 1, uint16(i+1), bytes.Repeat([]byte{byte(i)}, 100*i)
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		if m := <-got; !bytes.Equal(m, buf.Bytes()) {
			t.Fatalf("write %d arrived as %d bytes, want one message of %d", i, len(m), buf.Len())
		}
		sent = append(sent, p)
	}
	if err := nc.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	for i, want := range sent {
		pkt, err := packets.ReadPacket(br)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		p, ok := pkt.(*packets.PublishPacket)
		w := want.(*packets.PublishPacket)
		if !ok || p.TopicName != w.TopicName || p.MessageID != w.MessageID || !bytes.Equal(p.Payload, w.Payload) {
			t.Fatalf("packet %d = %v, want %v", i, pkt, want)
		}
	}
}

func TestWSConnErrors(t *testing.T) {
	t.Run("no mqtt subprotocol", func(t *testing.T) {
		url := wsServer(t, nil, func(ws *websocket.Conn) { ws.ReadMessage() })
		_, err := dialWS(url+"/mqtt", nil, &net.Dialer{Timeout: hangGuard})
		if err == nil || !strings.Contains(err.Error(), `did not accept subprotocol "mqtt"`) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("upgrade refused", func(t *testing.T) {
		url := wsServer(t, []string{"mqtt"}, func(ws *websocket.Conn) {})
		_, err := dialWS(url+"/other", nil, &net.Dialer{Timeout: hangGuard})
		if err == nil || !strings.Contains(err.Error(), "refused: 404") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("text message", func(t *testing.T) {
		url := wsServer(t, []string{"mqtt"}, func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.TextMessage, []byte("hello"))
			ws.ReadMessage()
		})
		nc, err := dialWS(url+"/mqtt", nil, &net.Dialer{Timeout: hangGuard})
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetReadDeadline(time.Now().Add(hangGuard))
		if _, err := nc.Read(make([]byte, 10)); !errors.Is(err, wsconn.ErrTextFrame) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("peer closes", func(t *testing.T) {
		url := wsServer(t, []string{"mqtt"}, func(ws *websocket.Conn) {
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		})
		nc, err := dialWS(url+"/mqtt", nil, &net.Dialer{Timeout: hangGuard})
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetReadDeadline(time.Now().Add(hangGuard))
		if _, err := nc.Read(make([]byte, 10)); err != io.EOF {
			t.Fatalf("err %v, want io.EOF", err)
		}
	})
}
