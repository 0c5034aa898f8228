package broker

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// connectTimeout bounds how long a new connection may take to send CONNECT.
const connectTimeout = 20 * time.Second

// maxBatch bounds how many packets a reader hands to the state owner at once.
const maxBatch = 128

// event is what connection readers send to the state owner: a batch of decoded
// packets, and/or the end of the connection. Batching keeps channel traffic low
// when a client pipelines many packets.
type event struct {
	c        *conn
	pkts     []packets.ControlPacket
	closed   bool
	graceful bool  // closed by DISCONNECT
	err      error // why the connection ended, when not graceful
	// takeover: the grace a CONNECT waited for the connection it takes
	// over is up (see state.parkTakeover); c is the new connection.
	takeover bool
	disc     *v5Disconnect // an MQTT 5 client's DISCONNECT
}

// conn is one client connection: a reader goroutine decoding packets, and a
// writer goroutine, started only while the state owner has queued something,
// that encodes the queue and flushes it when it runs dry. The owner never
// blocks on a slow client: it only appends to the queue. Buffers are taken
// from pools only while data moves, so an idle connection holds little more
// than its reader's stack (issue #10).
type conn struct {
	b      *Broker
	nc     net.Conn
	id     uint64
	lis    *listener
	remote string

	// gate lets the reader go on past CONNECT once the state owner accepted
	// it (true), or tells it the connection is gone (closed: false). Until
	// then the reader reads nothing more, so an unauthenticated client cannot
	// make the broker buffer anything beyond one capped CONNECT.
	gate chan bool

	mu      sync.Mutex
	q       []outPkt
	closing bool // write what is queued, then close
	dead    bool // writer gone: drop whatever is queued
	writing bool // a writer goroutine is running (see connwrite.go)
	gone    bool // the connection was closed and let go

	// tlsState is set by the reader after a TLS handshake, before the first
	// packet reaches the state owner.
	tlsState *tls.ConnectionState

	// Owned by the state owner goroutine.
	sess     *session
	detached bool
	clientID string
	// A CONNECT taking over another connection's client id waits for that
	// connection's reader first (state.parkTakeover): parked is the
	// CONNECT and parkedOn the old connection while it waits, takeovers the
	// new connections waiting on this one, waited that c has had its wait.
	parked    *packets.ConnectPacket
	parked5   *v5Connect
	parkedOn  *conn
	takeovers []*conn
	waited    bool
	v5        bool // the client connected with MQTT 5
	isBridge  bool // its CONNECT had the bridge bit (try_private): Mosquitto's is_bridge
	// loginUser and loginPass are the credentials its CONNECT gave ("" when
	// absent), kept as Mosquitto keeps them, so a reload can check them again.
	loginUser, loginPass string
	aliases              map[uint16]string // its incoming topic aliases
}

func (b *Broker) acceptLoop(l *listener) {
	defer b.connWG.Done()
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			b.log.printf(logError, "Error accepting connection: %v", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if nd := b.cfg.SetTCPNoDelay; nd != nil {
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(*nd)
			}
		}
		if l.max > 0 && l.active.Load() >= int64(l.max) {
			b.log.printf(logNotice, "Client connection from %s denied: max_connections exceeded.", nc.RemoteAddr())
			_ = nc.Close()
			continue
		}
		c := &conn{b: b, nc: nc, lis: l, id: b.nextConnID.Add(1), remote: nc.RemoteAddr().String(),
			gate: make(chan bool, 1)}
		b.mu.Lock()
		if b.stopped {
			b.mu.Unlock()
			_ = nc.Close()
			continue
		}
		l.active.Add(1)
		b.conns[c] = struct{}{}
		b.connWG.Add(2)
		b.mu.Unlock()
		if host, port, err := net.SplitHostPort(c.remote); err == nil {
			b.log.conn("New connection from %s:%s on port %d.", host, port, l.port)
		}
		go c.readLoop()
	}
}

// counted adds the bytes read from or written to a connection to one of the
// broker's totals (the reader counts into bytesRecv, the writer into
// bytesSent), beneath the bufio layer so the totals are what crossed the socket.
type counted struct {
	nc net.Conn
	n  *atomic.Int64
}

func (c counted) Read(p []byte) (int, error) {
	n, err := c.nc.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c counted) Write(p []byte) (int, error) {
	n, err := c.nc.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// reading is a connection reader's state between packets, on the heap so
// that the frame the reader waits in while the client is quiet stays small
// (an idle connection's stack can then shrink to the minimum).
type reading struct {
	in        idleReader
	batch     []packets.ControlPacket
	rules     readRules
	connected bool
	keepalive time.Duration
}

// deliver hands an event to the state owner; false when the broker is gone.
func (c *conn) deliver(ev event) bool {
	ev.c = c
	select {
	case c.b.inbox <- ev:
		return true
	case <-c.b.loopDone:
		c.kill()
		return false
	}
}

// readLoop is kept to the few calls around the wait, with the rest in the
// functions it calls (see reading).
func (c *conn) readLoop() { c.readOn(&reading{}, false) }

// readOn reads c's packets until the connection ends or, once it has read
// some, goes quiet for handoffAfter: then a new goroutine takes over the
// waiting and this one ends. An idle connection's reader is so a goroutine
// that has done nothing but wait, on the smallest stack, where one that had
// handled packets would keep the larger stack they grew it to (Go shrinks a
// stack only when a quarter of it is enough, which the blocking read's
// frames exceed); the stack is most of what an idle connection costs (issue
// #10). A busy connection never goes quiet that long and never hands over.
// started is false for the connection's first reader.
func (c *conn) readOn(r *reading, started bool) {
	handed := false
	defer func() {
		if !handed {
			c.b.connWG.Done()
		}
	}()
	defer c.recoverRead(r)
	if !started && !c.startReading(r) {
		return
	}
	defer func() {
		if !handed {
			r.in.release()
		}
	}()
	fresh := true
	for {
		br, err, quiet := r.in.busy()
		if quiet && fresh {
			br, err = r.in.wait()
			fresh = false
		} else if quiet {
			var still bool
			if br, err, still = r.in.waitQuiet(handoffAfter); still {
				handed = true
				go c.readOn(r, true)
				return
			}
		}
		if err != nil {
			c.readEnded(r, err)
			return
		}
		if !c.readPacket(r, br) {
			return
		}
	}
}

// recoverRead turns a panic in the reader into the end of that connection.
func (c *conn) recoverRead(r *reading) {
	if v := recover(); v != nil {
		c.b.log.printf(logError, "Internal error reading from %s: %v", c.remote, v)
		c.deliver(event{pkts: r.batch, closed: true, err: fmt.Errorf("panic: %v", v)})
	}
}

// readEnded hands the state owner what was read and why the reading ended.
func (c *conn) readEnded(r *reading, err error) {
	c.deliver(event{pkts: r.batch, closed: true, err: err})
}

// startReading completes a TLS handshake and sets up r; false when the
// connection is already over.
func (c *conn) startReading(r *reading) bool {
	b := c.b
	if c.lis.tls {
		if err := c.handshake(); err != nil {
			b.log.printf(logNotice, "Client connection from %s failed: %v.", c.remote, err)
			c.kill()
			c.deliver(event{closed: true, err: err})
			return false
		}
	}
	r.in.nc, r.in.src = c.nc, counted{nc: c.nc, n: &b.bytesRecv}
	r.rules = readRules{limit: b.cfg.MessageSizeLimit, maxPacket: b.cfg.MaxPacketSize, first: true}
	r.in.setDeadline(time.Now().Add(connectTimeout))
	return true
}

// readPacket reads and hands on one packet; false when the connection ends.
func (c *conn) readPacket(r *reading, br *bufio.Reader) bool {
	b := c.b
	p, err := readPacketRules(br, r.rules)
	if err != nil {
		c.deliver(event{pkts: r.batch, closed: true, err: err})
		return false
	}
	b.msgsRecv.Add(1)
	switch cp := p.(type) {
	case *packets.PublishPacket, *oversizePublish:
		b.pubRecv.Add(1)
	case *packets.ConnectPacket, *v5Connect:
		return c.readConnect(r, p)
	case *packets.DisconnectPacket:
		c.deliver(event{pkts: r.batch, closed: true, graceful: true})
		return false
	case *v5Disconnect:
		c.deliver(event{pkts: r.batch, closed: true, graceful: true, disc: cp})
		return false
	}
	r.batch = append(r.batch, p)
	if len(r.batch) >= maxBatch || !packetBuffered(br) {
		if r.keepalive > 0 {
			r.in.setDeadline(time.Now().Add(r.keepalive))
		}
		if !c.deliver(event{pkts: r.batch}) {
			return false
		}
		r.batch = nil
	}
	return true
}

// readConnect hands the CONNECT over alone and reads nothing more until the
// state owner has accepted it.
func (c *conn) readConnect(r *reading, p packets.ControlPacket) bool {
	var conp *packets.ConnectPacket
	switch v := p.(type) {
	case *packets.ConnectPacket:
		conp = v
	case *v5Connect:
		conp = v.ConnectPacket
	}
	if r.connected {
		c.deliver(event{pkts: r.batch, closed: true, err: errors.New("second CONNECT")})
		return false
	}
	r.connected = true
	r.rules.first, r.rules.proto = false, conp.ProtocolVersion
	ka := conp.Keepalive
	if _, v5 := p.(*v5Connect); v5 {
		if s := serverKeepAlive(c.b.cfg.MaxKeepalive, ka); s > 0 {
			ka = s // the Server Keep Alive its CONNACK will carry
		}
	}
	r.keepalive = time.Duration(ka) * 1500 * time.Millisecond
	if r.keepalive == 0 {
		r.in.setDeadline(time.Time{})
	}
	if !c.deliver(event{pkts: []packets.ControlPacket{p}}) {
		return false
	}
	if !<-c.gate {
		c.deliver(event{closed: true, err: errors.New("connection refused")})
		return false
	}
	if r.keepalive > 0 {
		r.in.setDeadline(time.Now().Add(r.keepalive))
	}
	return true
}

// packetBuffered reports whether a whole packet is already in the reader's
// buffer, so a batch is handed over before the reader would block.
func packetBuffered(br *bufio.Reader) bool {
	n := br.Buffered()
	if n < 2 {
		return false
	}
	hdr, _ := br.Peek(min(n, 5))
	rl, mult := 0, 0
	for i := 1; i < len(hdr); i++ {
		rl |= int(hdr[i]&0x7f) << (7 * uint(mult))
		mult++
		if hdr[i]&0x80 == 0 {
			return 1+i+rl <= n
		}
	}
	return false
}
