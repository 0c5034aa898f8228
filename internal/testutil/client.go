package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// ClientOptions configure Dial.
type ClientOptions struct {
	ClientID     string
	CleanSession bool
	KeepAlive    uint16 // seconds; 0 = none (the client sends no PINGREQ)
	// ProtocolVersion 4 (MQTT 3.1.1, default) or 3 (MQTT 3.1, "MQIsdp").
	ProtocolVersion    byte
	Username, Password string
	WillTopic          string // "" = no will
	WillPayload        []byte
	WillQoS            byte
	WillRetain         bool
	// NoAck leaves incoming QoS 1/2 publishes unacknowledged: a stuck subscriber
	// whose deliveries stay in flight at the broker.
	NoAck bool
	// OnMessage, when set, is called on the reader goroutine for each incoming
	// publish instead of queueing it on Messages(); benchmarks use it to count
	// without a channel hop.
	OnMessage func(Message)
	// Buffer is the capacity of the Messages channel (default 4096). When it is
	// full the reader stops reading: back-pressure, like a slow consumer.
	Buffer int
	// Timeout bounds the dial and the CONNACK wait (default 5 s).
	Timeout time.Duration
}

// Message is one incoming publish.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retain   bool
	Dup      bool
	PacketID uint16
}

// ConnackError is a refused connection, carrying the CONNACK return code.
type ConnackError struct{ Code byte }

func (e *ConnackError) Error() string {
	return fmt.Sprintf("connection refused: connack code %d", e.Code)
}

// Client is a lean MQTT 3.1/3.1.1 client on the paho packets codec. The paho
// client hides packet ids, windows and acknowledgements; the tests and benchmarks
// need to control them (an exact in-flight window, a subscriber that never acks,
// a will left by a dropped connection), and the same client drives both brokers
// so their numbers compare.
type Client struct {
	opts           ClientOptions
	conn           net.Conn
	sessionPresent bool

	out      chan outItem
	msgs     chan Message
	done     chan struct{} // closed when the reader ends
	wdone    chan struct{} // closed when the writer ends
	closing  chan struct{}
	closeMu  sync.Once
	leaving  atomic.Bool // Disconnect sent: the broker closing is expected
	errMu    sync.Mutex
	err      error
	received atomic.Int64

	mu        sync.Mutex
	nextID    uint16
	pending   map[uint16]byte // outgoing qos 1/2 publishes awaiting completion
	acks      map[uint16]chan []byte
	inQoS2    map[uint16]bool // incoming qos 2 ids received, not yet released
	completed chan struct{}   // one token per completed outgoing publish
	pings     []chan struct{} // Sync calls waiting for PINGRESP, in order
}

type outItem struct {
	pk         packets.ControlPacket
	closeAfter bool
}

// Dial connects and completes the CONNECT/CONNACK exchange.
func Dial(addr string, o ClientOptions) (*Client, error) {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.ProtocolVersion == 0 {
		o.ProtocolVersion = 4
	}
	if o.Buffer == 0 {
		o.Buffer = 4096
	}
	conn, err := net.DialTimeout("tcp", addr, o.Timeout)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName = "MQTT"
	if o.ProtocolVersion == 3 {
		cp.ProtocolName = "MQIsdp"
	}
	cp.ProtocolVersion = o.ProtocolVersion
	cp.CleanSession = o.CleanSession
	cp.Keepalive = o.KeepAlive
	cp.ClientIdentifier = o.ClientID
	if o.WillTopic != "" {
		cp.WillFlag = true
		cp.WillTopic = o.WillTopic
		cp.WillMessage = o.WillPayload
		cp.WillQos = o.WillQoS
		cp.WillRetain = o.WillRetain
	}
	if o.Username != "" {
		cp.UsernameFlag = true
		cp.Username = o.Username
	}
	if o.Password != "" {
		cp.PasswordFlag = true
		cp.Password = []byte(o.Password)
	}
	_ = conn.SetDeadline(time.Now().Add(o.Timeout))
	if err := cp.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sending connect to %s: %w", addr, err)
	}
	br := bufio.NewReaderSize(conn, 64*1024)
	pk, err := packets.ReadPacket(br)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading connack from %s: %w", addr, err)
	}
	ca, ok := pk.(*packets.ConnackPacket)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("expected connack from %s, got %T", addr, pk)
	}
	if ca.ReturnCode != 0 {
		conn.Close()
		return nil, &ConnackError{Code: ca.ReturnCode}
	}
	_ = conn.SetDeadline(time.Time{})
	c := &Client{
		opts:           o,
		conn:           conn,
		sessionPresent: ca.SessionPresent,
		out:            make(chan outItem, 8192),
		msgs:           make(chan Message, o.Buffer),
		done:           make(chan struct{}),
		wdone:          make(chan struct{}),
		closing:        make(chan struct{}),
		pending:        map[uint16]byte{},
		acks:           map[uint16]chan []byte{},
		inQoS2:         map[uint16]bool{},
	}
	go c.writer()
	go c.reader(br)
	return c, nil
}

// SessionPresent is the CONNACK session-present flag.
func (c *Client) SessionPresent() bool { return c.sessionPresent }

// Messages delivers incoming publishes (unless OnMessage is set). It is closed
// when the connection ends.
func (c *Client) Messages() <-chan Message { return c.msgs }

// Received counts incoming publishes, duplicates of unreleased QoS 2 ids excluded.
func (c *Client) Received() int64 { return c.received.Load() }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (nil while it is up or after Disconnect).
func (c *Client) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

func (c *Client) setErr(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
}

func (c *Client) send(pk packets.ControlPacket) error {
	select {
	case c.out <- outItem{pk: pk}:
		return nil
	case <-c.closing:
		return errors.New("client closed")
	case <-c.done:
		if err := c.Err(); err != nil {
			return fmt.Errorf("connection lost: %w", err)
		}
		return errors.New("connection closed")
	}
}

func (c *Client) writer() {
	defer close(c.wdone)
	bw := bufio.NewWriterSize(c.conn, 64*1024)
	for {
		var it outItem
		select {
		case it = <-c.out:
		case <-c.closing:
			return
		}
		if err := it.pk.Write(bw); err != nil {
			c.setErr(fmt.Errorf("writing: %w", err))
			c.conn.Close()
			return
		}
		if it.closeAfter || len(c.out) == 0 {
			if err := bw.Flush(); err != nil {
				c.setErr(fmt.Errorf("writing: %w", err))
				c.conn.Close()
				return
			}
		}
		if it.closeAfter {
			// Half-close so the broker reads DISCONNECT before EOF.
			if tc, ok := c.conn.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

func (c *Client) reader(br *bufio.Reader) {
	defer close(c.done)
	defer close(c.msgs)
	for {
		pk, err := packets.ReadPacket(br)
		if err != nil {
			select {
			case <-c.closing:
			default:
				if !c.leaving.Load() {
					c.setErr(fmt.Errorf("reading: %w", err))
				}
			}
			c.conn.Close()
			return
		}
		switch p := pk.(type) {
		case *packets.PublishPacket:
			c.incoming(p)
		case *packets.PubackPacket:
			c.complete(p.MessageID)
		case *packets.PubrecPacket:
			rel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
			rel.MessageID = p.MessageID
			_ = c.send(rel)
		case *packets.PubcompPacket:
			c.complete(p.MessageID)
		case *packets.PubrelPacket:
			c.mu.Lock()
			delete(c.inQoS2, p.MessageID)
			c.mu.Unlock()
			if !c.opts.NoAck {
				comp := packets.NewControlPacket(packets.Pubcomp).(*packets.PubcompPacket)
				comp.MessageID = p.MessageID
				_ = c.send(comp)
			}
		case *packets.SubackPacket:
			c.ack(p.MessageID, p.ReturnCodes)
		case *packets.UnsubackPacket:
			c.ack(p.MessageID, nil)
		case *packets.PingrespPacket:
			c.mu.Lock()
			if len(c.pings) > 0 {
				close(c.pings[0])
				c.pings = c.pings[1:]
			}
			c.mu.Unlock()
		default:
			c.setErr(fmt.Errorf("unexpected packet %T from broker", pk))
			c.conn.Close()
			return
		}
	}
}

func (c *Client) incoming(p *packets.PublishPacket) {
	m := Message{Topic: p.TopicName, Payload: p.Payload, QoS: p.Qos, Retain: p.Retain, Dup: p.Dup, PacketID: p.MessageID}
	deliver := true
	if p.Qos == 2 {
		c.mu.Lock()
		if c.inQoS2[p.MessageID] {
			deliver = false
		} else {
			c.inQoS2[p.MessageID] = true
		}
		c.mu.Unlock()
	}
	if deliver {
		c.received.Add(1)
		if c.opts.OnMessage != nil {
			c.opts.OnMessage(m)
		} else {
			select {
			case c.msgs <- m:
			case <-c.closing:
			}
		}
	}
	if c.opts.NoAck {
		return
	}
	switch p.Qos {
	case 1:
		a := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
		a.MessageID = p.MessageID
		_ = c.send(a)
	case 2:
		r := packets.NewControlPacket(packets.Pubrec).(*packets.PubrecPacket)
		r.MessageID = p.MessageID
		_ = c.send(r)
	}
}

func (c *Client) complete(id uint16) {
	c.mu.Lock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	done := c.completed
	c.mu.Unlock()
	if ok && done != nil {
		select {
		case <-done:
		default:
		}
	}
}

func (c *Client) ack(id uint16, codes []byte) {
	c.mu.Lock()
	ch := c.acks[id]
	delete(c.acks, id)
	c.mu.Unlock()
	if ch != nil {
		ch <- codes
	}
}

// allocID returns a packet id not in use by an outgoing publish or a pending
// subscribe.
func (c *Client) allocID() uint16 {
	for {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if _, busy := c.pending[c.nextID]; busy {
			continue
		}
		if _, busy := c.acks[c.nextID]; busy {
			continue
		}
		return c.nextID
	}
}

func (c *Client) request(pk packets.ControlPacket, setID func(uint16), timeout time.Duration) ([]byte, error) {
	ch := make(chan []byte, 1)
	c.mu.Lock()
	id := c.allocID()
	c.acks[id] = ch
	c.mu.Unlock()
	setID(id)
	if err := c.send(pk); err != nil {
		return nil, err
	}
	select {
	case codes := <-ch:
		return codes, nil
	case <-c.done:
		return nil, fmt.Errorf("connection ended waiting for ack: %v", c.Err())
	case <-time.After(timeout):
		return nil, fmt.Errorf("no ack within %v", timeout)
	}
}

// Subscribe subscribes to one filter and returns the granted QoS (0x80 = refused).
func (c *Client) Subscribe(filter string, qos byte) (byte, error) {
	sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sp.Topics = []string{filter}
	sp.Qoss = []byte{qos}
	codes, err := c.request(sp, func(id uint16) { sp.MessageID = id }, c.opts.Timeout)
	if err != nil {
		return 0, fmt.Errorf("subscribing to %q: %w", filter, err)
	}
	if len(codes) != 1 {
		return 0, fmt.Errorf("subscribing to %q: suback has %d codes", filter, len(codes))
	}
	return codes[0], nil
}

// Unsubscribe removes one subscription and waits for UNSUBACK.
func (c *Client) Unsubscribe(filter string) error {
	up := packets.NewControlPacket(packets.Unsubscribe).(*packets.UnsubscribePacket)
	up.Topics = []string{filter}
	if _, err := c.request(up, func(id uint16) { up.MessageID = id }, c.opts.Timeout); err != nil {
		return fmt.Errorf("unsubscribing from %q: %w", filter, err)
	}
	return nil
}

// Sync sends PINGREQ and waits for PINGRESP. A broker answers packets of one
// connection in order, so after Sync every acknowledgement the client had
// queued before it (PUBREC, PUBCOMP, PUBACK) has reached the broker and been
// processed: a test can then disconnect without leaving a flow half done.
func (c *Client) Sync() error {
	ch := make(chan struct{})
	c.mu.Lock()
	c.pings = append(c.pings, ch)
	c.mu.Unlock()
	if err := c.send(packets.NewControlPacket(packets.Pingreq)); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-c.done:
		return fmt.Errorf("connection ended waiting for pingresp: %v", c.Err())
	case <-time.After(c.opts.Timeout):
		return fmt.Errorf("no pingresp within %v", c.opts.Timeout)
	}
}

// SendRaw writes an already built packet, for tests that need odd packets.
func (c *Client) SendRaw(pk packets.ControlPacket) error { return c.send(pk) }

// Settle makes sure every flow for messages already received is finished at
// the broker: the first Sync lets any acknowledgement the reader was about to
// queue go out and brings back the broker's PUBREL, the second carries our
// PUBCOMP to the broker. Tests call it before disconnecting when the broker's
// saved state must not contain half-acknowledged deliveries.
func (c *Client) Settle() error {
	for k := 0; k < 2; k++ {
		if err := c.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// Disconnect sends DISCONNECT, waits for it to be written and closes the connection.
func (c *Client) Disconnect() error {
	c.leaving.Store(true)
	select {
	case c.out <- outItem{pk: packets.NewControlPacket(packets.Disconnect), closeAfter: true}:
	case <-c.done:
		c.Close()
		return c.Err()
	}
	select {
	case <-c.wdone:
	case <-time.After(c.opts.Timeout):
	}
	// Wait for the broker to close its side, so a following connect with the
	// same id does not race the disconnect.
	select {
	case <-c.done:
	case <-time.After(c.opts.Timeout):
	}
	c.Close()
	return nil
}

// Close drops the connection without DISCONNECT (the broker sees an abnormal
// disconnect and sends the will).
func (c *Client) Close() {
	c.closeMu.Do(func() {
		close(c.closing)
		c.conn.Close()
	})
	<-c.done
	<-c.wdone
}

// Collect reads n messages from Messages() or fails after timeout.
func (c *Client) Collect(n int, timeout time.Duration) ([]Message, error) {
	out := make([]Message, 0, n)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(out) < n {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				return out, fmt.Errorf("connection ended after %d of %d messages: %v", len(out), n, c.Err())
			}
			out = append(out, m)
		case <-deadline.C:
			return out, fmt.Errorf("received %d of %d messages within %v", len(out), n, timeout)
		}
	}
	return out, nil
}
