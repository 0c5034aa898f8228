package bench

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// leanTransport is how a lean connection reaches the broker: plain TCP, TLS
// over TCP, or a websocket (plain or TLS). Everything above it is the same
// byte stream of MQTT packets.
type leanTransport struct {
	kind     string // "tcp", "tls", "ws", "wss"
	hostport string // host:port to dial
	url      string // websockets: the URL to upgrade
}

// leanAddr turns the target's address into a transport: tcp:// and mqtt://
// are TCP, ssl://, tls:// and mqtts:// TLS, ws:// and wss:// websockets (the
// path is kept: brokers may serve MQTT on /mqtt only).
func leanAddr(addr string) (leanTransport, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return leanTransport{}, fmt.Errorf("broker address %q: want tcp://host:port", addr)
	}
	t := leanTransport{hostport: u.Host}
	switch u.Scheme {
	case "tcp", "mqtt":
		t.kind = "tcp"
	case "ssl", "tls", "mqtts":
		t.kind = "tls"
	case "ws", "wss":
		t.kind = u.Scheme
		v := *u
		v.User = nil
		t.url = v.String()
	default:
		return leanTransport{}, fmt.Errorf("broker address %q: the lean publisher speaks tcp, mqtt, mqtts, ssl, ws and wss (use client: paho)", addr)
	}
	return t, nil
}

// open dials the transport within timeout; a TLS handshake is part of it.
func (t leanTransport) open(tlsc *tls.Config, timeout time.Duration) (net.Conn, error) {
	switch t.kind {
	case "tcp":
		return net.DialTimeout("tcp", t.hostport, timeout)
	case "tls":
		if tlsc == nil {
			return nil, errNoTLS
		}
		return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", t.hostport, tlsc)
	case "ws":
		return dialWS(t.url, nil, timeout)
	case "wss":
		if tlsc == nil {
			return nil, errNoTLS
		}
		return dialWS(t.url, tlsc, timeout)
	}
	return nil, fmt.Errorf("unknown transport %q", t.kind)
}

// dialLean connects (CONNECT/CONNACK) and starts the reader, writer and
// monitor goroutines.
func dialLean(o leanOptions) (*leanClient, error) {
	if o.Stop == nil || o.Since == nil {
		return nil, errors.New("lean publisher: Stop and Since are required")
	}
	if o.QoS > 2 {
		return nil, fmt.Errorf("lean publisher: qos %d", o.QoS)
	}
	tr, err := leanAddr(o.Addr)
	if err != nil {
		return nil, err
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = keepAlive
	}
	if o.StallAfter <= 0 {
		o.StallAfter = stallAfter
	}
	w := o.Window
	if w < 1 {
		w = 1
	}
	if w > leanMaxWindow {
		w = leanMaxWindow
	}
	c := &leanClient{
		o: o, tr: tr, window: w, batch: min(max(w/4, 1), leanFlushBatch),
		msgs:  make([]*leanMsg, leanMaxWindow+1),
		space: make(chan struct{}, 1),
		down:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	cn, err := c.dial()
	if err != nil {
		return nil, err
	}
	c.cur = cn
	c.start(cn)
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.monitor() }()
	return c, nil
}

// connectPacket is the CONNECT the options ask for: session, keepalive,
// credentials and will.
func (o *leanOptions) connectPacket() *packets.ConnectPacket {
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName = "MQTT"
	cp.ProtocolVersion = 4
	cp.CleanSession = o.Clean
	cp.ClientIdentifier = o.ClientID
	cp.Keepalive = uint16(o.KeepAlive / time.Second)
	if o.Username != "" {
		cp.UsernameFlag, cp.Username = true, o.Username
	}
	if o.HasPassword {
		cp.PasswordFlag, cp.Password = true, []byte(o.Password)
	}
	if w := o.Will; w != nil {
		cp.WillFlag, cp.WillTopic, cp.WillMessage = true, w.Topic, []byte(w.Payload)
		cp.WillQos, cp.WillRetain = w.QoS, w.Retain
	}
	return cp
}

// dial opens a connection and completes CONNECT/CONNACK within connectTimeout.
func (c *leanClient) dial() (*leanConn, error) {
	where := c.tr.hostport
	nc, err := c.tr.open(c.o.TLS, connectTimeout)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", where, err)
	}
	if err := nc.SetDeadline(time.Now().Add(connectTimeout)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("connecting to %s: %w", where, err)
	}
	if err := c.o.connectPacket().Write(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("sending CONNECT to %s: %w", where, err)
	}
	br := bufio.NewReaderSize(nc, leanBufSize)
	pkt, err := packets.ReadPacket(br)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("reading CONNACK from %s: %w", where, err)
	}
	ca, ok := pkt.(*packets.ConnackPacket)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("connecting to %s: expected CONNACK, got %s", where, packetName(pkt))
	}
	if ca.ReturnCode != packets.Accepted {
		nc.Close()
		return nil, fmt.Errorf("connecting to %s: broker refused: %s (CONNACK %d)", where, packets.ConnackReturnCodes[ca.ReturnCode], ca.ReturnCode)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("connecting to %s: %w", where, err)
	}
	cn := &leanConn{
		nc: nc, br: br,
		ch:         make(chan leanItem, c.window+leanChanSlack),
		dead:       make(chan struct{}),
		writerDone: make(chan struct{}),
		kick:       make(chan struct{}, 1),
	}
	cn.lastWrite.Store(c.o.Since())
	return cn, nil
}

// start runs the connection's reader and writer.
func (c *leanClient) start(cn *leanConn) {
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.writer(cn) }()
	go func() { defer c.wg.Done(); c.reader(cn) }()
}
