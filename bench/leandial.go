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
	// local is the source address to dial from (nil: the kernel's choice),
	// for runs with more connections than one address has ports.
	local *net.TCPAddr
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
	d := &net.Dialer{Timeout: timeout}
	if t.local != nil {
		d.LocalAddr = t.local
	}
	switch t.kind {
	case "tcp":
		return d.Dial("tcp", t.hostport)
	case "tls":
		if tlsc == nil {
			return nil, errNoTLS
		}
		return tls.DialWithDialer(d, "tcp", t.hostport, tlsc)
	case "ws":
		return dialWS(t.url, nil, d)
	case "wss":
		if tlsc == nil {
			return nil, errNoTLS
		}
		return dialWS(t.url, tlsc, d)
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
	tr.local = o.Local
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
	if o.V5 != nil {
		c.r5 = &leanReader5{}
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
	if o.Protocol == 3 {
		cp.ProtocolName, cp.ProtocolVersion = "MQIsdp", 3
	}
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
	br := bufio.NewReaderSize(nc, leanBufSize)
	var aliasMax uint16
	if c.o.V5 != nil {
		recvMax, am, err := c.connectV5(nc, br)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("connecting to %s: %w", where, err)
		}
		aliasMax = am
		c.capWindow(int(recvMax))
	} else if err := c.connect311(nc, br); err != nil {
		nc.Close()
		return nil, fmt.Errorf("connecting to %s: %w", where, err)
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
	cn.aliasMax = aliasMax
	cn.lastWrite.Store(c.o.Since())
	return cn, nil
}

// connect311 sends the 3.1/3.1.1 CONNECT and checks the CONNACK.
func (c *leanClient) connect311(nc net.Conn, br *bufio.Reader) error {
	if err := c.o.connectPacket().Write(nc); err != nil {
		return fmt.Errorf("sending CONNECT: %w", err)
	}
	pkt, err := packets.ReadPacket(br)
	if err != nil {
		return fmt.Errorf("reading CONNACK: %w", err)
	}
	ca, ok := pkt.(*packets.ConnackPacket)
	if !ok {
		return fmt.Errorf("expected CONNACK, got %s", packetName(pkt))
	}
	if ca.ReturnCode != packets.Accepted {
		return fmt.Errorf("broker refused: %s (CONNACK %d)", packets.ConnackReturnCodes[ca.ReturnCode], ca.ReturnCode)
	}
	return nil
}

// capWindow keeps the window within the broker's receive maximum (MQTT 5
// CONNACK): more unacknowledged QoS 1/2 publishes would be a protocol error
// (DISCONNECT 0x93). A reconnect may lower it further, never raise it.
func (c *leanClient) capWindow(recvMax int) {
	if c.o.QoS == 0 || recvMax <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if recvMax < c.window {
		c.note(LevelInfo, fmt.Sprintf("publisher %s: window %d capped to the broker's receive maximum %d", c.o.ClientID, c.window, recvMax))
		c.window = recvMax
		c.batch = min(max(recvMax/4, 1), leanFlushBatch)
	}
}

// start runs the connection's reader and writer.
func (c *leanClient) start(cn *leanConn) {
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.writer(cn) }()
	go func() { defer c.wg.Done(); c.reader(cn) }()
}
