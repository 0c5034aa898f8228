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

// conn is one client connection: a reader goroutine decoding packets and a writer
// goroutine encoding whatever the state owner queued, flushed when the queue runs
// dry. The owner never blocks on a slow client: it only appends to the queue.
type conn struct {
	b      *Broker
	nc     net.Conn
	id     uint64
	lis    *listener
	remote string

	// gate lets the reader go on past CONNECT once the state owner accepted
	// it; writerDone is closed when the connection is gone. Until then the
	// reader reads nothing more, so an unauthenticated client cannot make the
	// broker buffer anything beyond one capped CONNECT.
	gate       chan struct{}
	writerDone chan struct{}

	mu      sync.Mutex
	q       []outPkt
	closing bool // write what is queued, then close
	dead    bool // writer gone: drop whatever is queued
	sig     chan struct{}

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
		c := &conn{b: b, nc: nc, lis: l, id: b.nextConnID.Add(1), remote: nc.RemoteAddr().String(), sig: make(chan struct{}, 1),
			gate: make(chan struct{}, 1), writerDone: make(chan struct{})}
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
		go c.writeLoop()
	}
}

// send queues a packet for the writer. Called by the state owner only.
func (c *conn) send(p outPkt) {
	c.mu.Lock()
	if c.dead || c.closing {
		c.mu.Unlock()
		return
	}
	c.q = append(c.q, p)
	c.mu.Unlock()
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

// queueLen is how many packets wait for the writer (Mosquitto's out_packet_count).
func (c *conn) queueLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.q)
}

// authorised releases the reader past CONNECT. Called by the state owner once.
func (c *conn) authorised() {
	select {
	case c.gate <- struct{}{}:
	default:
	}
}

// finish closes the connection once the writer has sent what is queued.
func (c *conn) finish() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

// kill closes the connection at once, dropping anything queued.
func (c *conn) kill() {
	c.mu.Lock()
	c.closing = true
	c.dead = true
	c.q = nil
	c.mu.Unlock()
	_ = c.nc.Close()
	select {
	case c.sig <- struct{}{}:
	default:
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

func (c *conn) writeLoop() {
	b := c.b
	defer func() {
		_ = c.nc.Close()
		close(c.writerDone)
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.lis.active.Add(-1)
		b.connWG.Done()
	}()
	bw := bufio.NewWriterSize(counted{nc: c.nc, n: &b.bytesSent}, 32<<10)
	var enc encoder
	var batch []outPkt
	fail := func() {
		c.mu.Lock()
		c.dead = true
		c.q = nil
		c.mu.Unlock()
		_ = c.nc.Close()
	}
	for {
		c.mu.Lock()
		batch, c.q = c.q, batch[:0]
		closing, dead := c.closing, c.dead
		c.mu.Unlock()
		if dead {
			return
		}
		var pubs int64
		for i := range batch {
			if batch[i].kind == outPublish {
				pubs++
			}
			if err := enc.write(bw, &batch[i]); err != nil {
				fail()
				return
			}
		}
		n := len(batch)
		clear(batch)
		if n > 0 {
			b.msgsSent.Add(int64(n))
			b.pubSent.Add(pubs)
			if c.queueLen() > 0 {
				continue // more to come: keep filling the buffer
			}
			if err := bw.Flush(); err != nil {
				fail()
				return
			}
			continue
		}
		if closing {
			_ = bw.Flush()
			return
		}
		<-c.sig
	}
}

func (c *conn) readLoop() {
	b := c.b
	defer b.connWG.Done()
	var batch []packets.ControlPacket
	deliver := func(ev event) bool {
		ev.c = c
		select {
		case b.inbox <- ev:
			return true
		case <-b.loopDone:
			c.kill()
			return false
		}
	}
	defer func() {
		if r := recover(); r != nil {
			b.log.printf(logError, "Internal error reading from %s: %v", c.remote, r)
			deliver(event{pkts: batch, closed: true, err: fmt.Errorf("panic: %v", r)})
		}
	}()
	if c.lis.tls {
		if err := c.handshake(); err != nil {
			b.log.printf(logNotice, "Client connection from %s failed: %v.", c.remote, err)
			c.kill()
			deliver(event{closed: true, err: err})
			return
		}
	}
	br := bufio.NewReaderSize(counted{nc: c.nc, n: &b.bytesRecv}, 32<<10)
	rules := readRules{limit: b.cfg.MessageSizeLimit, maxPacket: b.cfg.MaxPacketSize, first: true}
	_ = c.nc.SetReadDeadline(time.Now().Add(connectTimeout))
	connected := false
	var keepalive time.Duration
	for {
		p, err := readPacketRules(br, rules)
		if err != nil {
			deliver(event{pkts: batch, closed: true, err: err})
			return
		}
		b.msgsRecv.Add(1)
		switch cp := p.(type) {
		case *packets.PublishPacket, *oversizePublish:
			b.pubRecv.Add(1)
		case *packets.ConnectPacket, *v5Connect:
			var conp *packets.ConnectPacket
			switch v := cp.(type) {
			case *packets.ConnectPacket:
				conp = v
			case *v5Connect:
				conp = v.ConnectPacket
			}
			if connected {
				deliver(event{pkts: batch, closed: true, err: errors.New("second CONNECT")})
				return
			}
			connected = true
			rules.first, rules.proto = false, conp.ProtocolVersion
			ka := conp.Keepalive
			if _, v5 := cp.(*v5Connect); v5 {
				if s := serverKeepAlive(b.cfg.MaxKeepalive, ka); s > 0 {
					ka = s // the Server Keep Alive its CONNACK will carry
				}
			}
			keepalive = time.Duration(ka) * 1500 * time.Millisecond
			if keepalive == 0 {
				_ = c.nc.SetReadDeadline(time.Time{})
			}
			// Hand the CONNECT over alone and read nothing more until the
			// state owner has accepted it.
			if !deliver(event{pkts: []packets.ControlPacket{p}}) {
				return
			}
			select {
			case <-c.gate:
			case <-c.writerDone:
				deliver(event{closed: true, err: errors.New("connection refused")})
				return
			}
			if keepalive > 0 {
				_ = c.nc.SetReadDeadline(time.Now().Add(keepalive))
			}
			continue
		case *packets.DisconnectPacket:
			deliver(event{pkts: batch, closed: true, graceful: true})
			return
		case *v5Disconnect:
			deliver(event{pkts: batch, closed: true, graceful: true, disc: cp})
			return
		}
		batch = append(batch, p)
		if len(batch) >= maxBatch || !packetBuffered(br) {
			if keepalive > 0 {
				_ = c.nc.SetReadDeadline(time.Now().Add(keepalive))
			}
			if !deliver(event{pkts: batch}) {
				return
			}
			batch = nil
		}
	}
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
