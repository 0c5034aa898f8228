package bench

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/scenarios"
)

// The lean publisher exists because paho's client costs a token, a store entry
// and goroutine hand-offs per message (measured: 2.4 KB and ~50 µs of CPU per
// QoS 2 message), so with the broker on the same small machine a run partly
// measures its own client. The lean publisher speaks MQTT 3.1.1 through paho's
// own packets codec (no hand-written encoding) over one connection (TCP, TLS
// or a websocket, see leandial.go): a
// writer goroutine writes queued packets through a bufio.Writer and flushes in
// batches (see wantFlush), a reader goroutine completes the QoS 1/2 flows and
// stamps each acknowledgement the moment it is read, so publish-to-ack latency
// is the broker's. Measured on 2 shared cores (BenchmarkPublishQoS2): about
// 0.85 KB and ~22 µs of CPU per message, 1.3x paho's rate with 1,000 in
// flight, where Mosquitto itself (~28 µs of CPU per message) is the limit.

// Lean publisher timing and sizes.
const (
	leanBufSize        = 64 << 10               // bufio buffer for each direction
	leanMaxWindow      = 65535                  // MQTT packet ids 1..65535
	leanChanSlack      = 64                     // writer queue room beyond the window (PINGREQ, duplicate PUBRECs)
	leanFlushBatch     = 128                    // queued packets that make a batch worth sending at once (at most)
	leanReconnectEvery = 250 * time.Millisecond // retry pace while a stopped/killed broker comes back
	leanTick           = time.Second            // stall and keepalive checks
	leanDisconnectWait = disconnectQuiet * time.Millisecond
)

// errLeanClosed is the cause recorded when the publisher closes its own connection.
var errLeanClosed = errors.New("publisher closed the connection")

// leanOptions configures a lean publisher connection. The callbacks decouple
// it from the run engine, so the benchmark can drive it bare; nil callbacks do
// nothing.
type leanOptions struct {
	Addr     string       // tcp://, mqtt://, mqtts://, ssl://, ws:// or wss://host:port (see leanAddr)
	Local    *net.TCPAddr // source address to dial from; nil = the kernel's choice
	TLS      *tls.Config  // for mqtts://, ssl:// and wss://
	ClientID string
	Username string // sent when non-empty
	Password string // sent when HasPassword
	// HasPassword sends Password even when empty (MQTT tells an empty password from none).
	HasPassword bool
	Will        *scenarios.Will // nil = no will
	// Protocol is 3 (MQTT 3.1) or 4 (3.1.1, also for 0); V5 non-nil makes
	// the connection MQTT 5 (leanv5.go) and Protocol is then ignored.
	Protocol   byte
	V5         *leanV5
	Clean      bool
	QoS        byte
	Topic      string
	Retain     bool
	Window     int           // unacknowledged publishes allowed (1..65535); QoS 0: unwritten ones
	KeepAlive  time.Duration // 0 = keepAlive (60 s)
	StallAfter time.Duration // 0 = stallAfter (10 s)
	// Stop ends everything: waits return, the connection is closed. Required.
	Stop <-chan struct{}
	// Since stamps acknowledgements (ns since the run's start). Required.
	Since func() int64
	// OnAck is called once per acknowledged publish, from the reader (QoS 1/2)
	// or the writer (QoS 0, once written).
	OnAck func(seq, t int64)
	// OnStall is told when acknowledgements stop for StallAfter while some are
	// due (true) and when they resume (false).
	OnStall func(stalled bool)
	// OnLost is told the connection is gone; true asks for a reconnect (the
	// broker was stopped on purpose), false ends the publisher.
	OnLost func(err error) bool
	// OnReconnect is called after a reconnect, once unacknowledged messages are queued again.
	OnReconnect func()
	// Note records anything else worth keeping.
	Note func(level, msg string)
}

// leanMsg is an unacknowledged QoS 1/2 publish, kept until its final ack so a
// reconnect can resend it.
type leanMsg struct {
	seq     int64
	payload []byte
	rec     bool // PUBREC seen: a resend sends PUBREL, not the PUBLISH
	recRC   byte // MQTT 5: the PUBREC's reason code
}

// leanItem is one packet for the writer. Packets are built by the writer from
// these plain values, so nothing is shared between connections.
type leanItem struct {
	kind    byte // packets.Publish, Pubrel, Pingreq, Disconnect
	id      uint16
	dup     bool
	seq     int64
	payload []byte
}

// leanConn is one connection (TCP, TLS or websocket); a reconnect makes a new one.
type leanConn struct {
	nc         net.Conn
	br         *bufio.Reader
	ch         chan leanItem
	dead       chan struct{}
	failOnce   sync.Once
	err        error
	writerDone chan struct{}
	lastWrite  atomic.Int64  // Since() of the last flush
	pingSent   atomic.Int64  // Since() of the outstanding PINGREQ, 0 if none
	kick       chan struct{} // wakes the writer to write and flush what is queued (capacity 1)
	aliasMax   uint16        // MQTT 5: the broker's topic alias maximum (0 = no aliases)
	unflushed  atomic.Int64  // PUBLISH/PUBREL queued and not yet flushed

	sendMu sync.Mutex // publisher sends vs the drain after death
	closed bool
}

// fail closes the connection once, keeping the first cause.
func (cn *leanConn) fail(err error) {
	cn.failOnce.Do(func() {
		cn.err = err
		close(cn.dead)
		cn.nc.Close()
	})
}

// send queues a publisher packet; false if the connection died first.
func (cn *leanConn) send(it leanItem, stop <-chan struct{}) bool {
	cn.sendMu.Lock()
	defer cn.sendMu.Unlock()
	if cn.closed {
		return false
	}
	select {
	case cn.ch <- it:
		return true
	default:
		cn.requestFlush() // full: the writer must drain before we can queue
	}
	select {
	case cn.ch <- it:
		return true
	case <-cn.dead:
		return false
	case <-stop:
		return false
	}
}

// trySend queues a packet without blocking (reader and monitor must never
// block on the writer, or a broker that stops reading could deadlock us).
func (cn *leanConn) trySend(it leanItem) bool {
	select {
	case cn.ch <- it:
		return true
	default:
		return false
	}
}

// leanClient is a lean publisher: session state (unacknowledged messages by
// packet id, the window) that survives reconnects, and the current connection.
type leanClient struct {
	o      leanOptions
	tr     leanTransport
	r5     *leanReader5 // MQTT 5: the reader's reused packets (one reader at a time)
	window int
	batch  int // packets worth a flush on their own (wantFlush)

	mu       sync.Mutex
	msgs     []*leanMsg // by packet id; nil = free
	nextID   uint16
	inflight int       // reserved + unacknowledged (QoS 0: unwritten)
	cur      *leanConn // nil while disconnected
	closing  bool

	space     chan struct{} // an ack freed a slot (capacity 1)
	down      chan struct{} // closed when the publisher can send no more
	downOnce  sync.Once
	done      chan struct{} // closed by shutdown
	closeOnce sync.Once
	wg        sync.WaitGroup
	acks      atomic.Int64
	overflow  atomic.Int64 // reader packets that found the writer queue full
}

// packetName names a packet for messages ("PUBLISH").
func packetName(pkt packets.ControlPacket) string {
	return strings.ToUpper(strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%T", pkt), "*packets."), "Packet"))
}

func (c *leanClient) note(level, msg string) {
	if c.o.Note != nil {
		c.o.Note(level, msg)
	}
}

// signal wakes a publisher waiting for window space.
func (c *leanClient) signal() {
	select {
	case c.space <- struct{}{}:
	default:
	}
}

func (c *leanClient) giveUp() { c.downOnce.Do(func() { close(c.down) }) }

// acquire reserves a window slot; false when stop closes or the publisher is down.
func (c *leanClient) acquire(stop <-chan struct{}) bool {
	for {
		select {
		case <-c.down:
			return false
		default:
		}
		c.mu.Lock()
		if c.inflight < c.window {
			c.inflight++
			c.mu.Unlock()
			return true
		}
		cn := c.cur
		c.mu.Unlock()
		if cn != nil && c.wantFlush(cn, true) {
			cn.requestFlush()
		}
		if !c.waitSpace(stop) {
			return false
		}
	}
}

// waitSpace waits for an acknowledgement to free a window slot; false if stop
// closed or the publisher went down first.
func (c *leanClient) waitSpace(stop <-chan struct{}) bool {
	select {
	case <-c.space:
		return true
	case <-stop:
	case <-c.down:
	case <-c.o.Stop:
	}
	return false
}

// release gives back a slot reserved by acquire but not used.
func (c *leanClient) release() {
	c.mu.Lock()
	c.inflight--
	c.mu.Unlock()
	c.signal()
}

// publish hands message seq to the connection in a slot from acquire. A QoS
// 1/2 message is kept until acknowledged and resent after a reconnect; a QoS 0
// message is lost (false) when there is no connection to take it.
func (c *leanClient) publish(seq int64, payload []byte) bool {
	it := leanItem{kind: packets.Publish, seq: seq, payload: payload}
	c.mu.Lock()
	if c.o.QoS > 0 {
		it.id = c.allocID()
		c.msgs[it.id] = &leanMsg{seq: seq, payload: payload}
	}
	cn := c.cur
	inflight := c.inflight
	c.mu.Unlock()
	if cn != nil && cn.send(it, c.o.Stop) {
		cn.unflushed.Add(1)
		if c.wantFlush(cn, inflight >= c.window) {
			cn.requestFlush()
		}
		return true
	}
	if c.o.QoS == 0 {
		c.release()
		return false
	}
	return true // kept: the reconnect resends it
}

// allocID returns a free packet id after the last one; the caller holds mu and
// a window slot, so one is free.
func (c *leanClient) allocID() uint16 {
	for i := 0; i < leanMaxWindow; i++ {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if c.msgs[c.nextID] == nil {
			return c.nextID
		}
	}
	panic("lean publisher: no free packet id with a window slot held")
}

// unacked is how many publishes await acknowledgement (QoS 0: writing).
func (c *leanClient) unacked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight
}

// waitIdle waits until every publish is acknowledged; false if stop closed or
// the publisher went down first.
func (c *leanClient) waitIdle(stop <-chan struct{}) bool {
	c.flush()
	for c.unacked() > 0 {
		if !c.waitSpace(stop) {
			return false
		}
	}
	return true
}

// ack records one acknowledgement; the caller holds mu, so whoever sees the
// window drain also sees every OnAck that drained it.
func (c *leanClient) ack(seq, t int64, reason string) {
	c.acks.Add(1)
	if c.o.V5 != nil && c.o.V5.OnAck != nil {
		c.o.V5.OnAck(seq, t, reason)
		return
	}
	if c.o.OnAck != nil {
		c.o.OnAck(seq, t)
	}
}

// lost handles the end of a connection: unwritten QoS 0 messages are lost;
// then either reconnect and resend, or give up.
func (c *leanClient) lost(cn *leanConn) {
	<-cn.writerDone
	cn.sendMu.Lock()
	cn.closed = true
	cn.sendMu.Unlock()
	lost0 := 0
	for drained := false; !drained; {
		select {
		case it := <-cn.ch:
			if it.kind == packets.Publish && c.o.QoS == 0 {
				lost0++
			}
		default:
			drained = true
		}
	}
	c.mu.Lock()
	if c.cur == cn {
		c.cur = nil
	}
	c.inflight -= lost0
	closing := c.closing
	c.mu.Unlock()
	if lost0 > 0 {
		c.signal()
	}
	if closing {
		return
	}
	reconnect := c.o.OnLost != nil && c.o.OnLost(cn.err)
	if lost0 > 0 {
		c.note(LevelInfo, fmt.Sprintf("publisher %s: %d QoS 0 messages not written before the connection was lost", c.o.ClientID, lost0))
	}
	if !reconnect {
		c.giveUp()
		return
	}
	c.reconnect()
}

// reconnect dials until it succeeds or the run ends, then queues every
// unacknowledged message again in publish order: PUBLISH with DUP, or PUBREL
// when the broker had already sent PUBREC, as MQTT 3.1.1 (4.4) asks.
func (c *leanClient) reconnect() {
	t := time.NewTimer(leanReconnectEvery)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.o.Stop:
			return
		case <-t.C:
		}
		cn, err := c.dial()
		if err != nil {
			t.Reset(leanReconnectEvery)
			continue
		}
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			cn.fail(errLeanClosed)
			return
		}
		var ids []uint16
		for id, m := range c.msgs {
			if m != nil {
				ids = append(ids, uint16(id))
			}
		}
		sort.Slice(ids, func(i, j int) bool { return c.msgs[ids[i]].seq < c.msgs[ids[j]].seq })
		for _, id := range ids {
			m := c.msgs[id]
			it := leanItem{kind: packets.Publish, id: id, dup: true, seq: m.seq, payload: m.payload}
			if m.rec {
				it = leanItem{kind: packets.Pubrel, id: id}
			}
			if cn.trySend(it) { // room for a whole window: cannot fail
				cn.unflushed.Add(1)
			}
		}
		c.cur = cn
		c.mu.Unlock()
		// Tell the owner before the new connection moves anything, so the
		// reconnect is recorded ahead of the acknowledgements it brings.
		if c.o.OnReconnect != nil {
			c.o.OnReconnect()
		}
		cn.requestFlush()
		c.start(cn)
		return
	}
}

// monitor notes stalls, keeps the connection alive with PINGREQ when idle, and
// closes everything when Stop closes, so no path leaves a connection behind.
func (c *leanClient) monitor() {
	tick := leanTick
	if q := c.o.KeepAlive / 4; q < tick {
		tick = q
	}
	if q := c.o.StallAfter / 4; q < tick {
		tick = q
	}
	tk := time.NewTicker(tick)
	defer tk.Stop()
	stalled := false
	lastAcks := c.acks.Load()
	lastChange := c.o.Since()
	for {
		select {
		case <-c.done:
			return
		case <-c.o.Stop:
			c.shutdown()
			return
		case <-tk.C:
		}
		now := c.o.Since()
		c.mu.Lock()
		busy := c.inflight > 0
		cn := c.cur
		c.mu.Unlock()
		if a := c.acks.Load(); a != lastAcks {
			lastAcks, lastChange = a, now
			if stalled {
				stalled = false
				if c.o.OnStall != nil {
					c.o.OnStall(false)
				}
			}
		}
		if !busy && !stalled {
			lastChange = now
		}
		if busy && !stalled && time.Duration(now-lastChange) >= c.o.StallAfter {
			stalled = true
			if c.o.OnStall != nil {
				c.o.OnStall(true)
			}
		}
		if cn == nil {
			continue
		}
		if ps := cn.pingSent.Load(); ps != 0 {
			if time.Duration(now-ps) > connectTimeout {
				cn.fail(fmt.Errorf("no PINGRESP within %s", connectTimeout))
			}
		} else if time.Duration(now-cn.lastWrite.Load()) >= c.o.KeepAlive*3/4 {
			cn.pingSent.Store(now)
			if cn.trySend(leanItem{kind: packets.Pingreq}) {
				cn.requestFlush()
			} else {
				cn.pingSent.Store(0) // the writer is busy, so the connection is not idle
			}
		}
	}
}

// shutdown sends DISCONNECT (waiting at most leanDisconnectWait for it to be
// written), closes the connection and ends every wait. Idempotent.
func (c *leanClient) shutdown() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		cn := c.cur
		c.mu.Unlock()
		close(c.done)
		if cn != nil {
			if cn.trySend(leanItem{kind: packets.Disconnect}) {
				cn.requestFlush()
				t := time.NewTimer(leanDisconnectWait)
				select {
				case <-cn.dead:
				case <-t.C:
				}
				t.Stop()
			}
			cn.fail(errLeanClosed)
		}
		c.giveUp()
	})
}

// close shuts the publisher down and waits (bounded) for its goroutines.
func (c *leanClient) close() {
	c.shutdown()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	t := time.NewTimer(shutdownWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}
