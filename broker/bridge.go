package broker

import (
	"context"
	"crypto/tls"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Bridges (Mosquitto 2.0.11's bridge.c). The bridge's local side is what
// Mosquitto makes it: a client of this broker with its own client id
// (local_clientid), subscribed to the `out` topics with No Local and Retain
// As Published, whose session queues while the link is down and is saved in
// the db file like any persistent session (with session expiry interval 0 and
// listener port 0, as Mosquitto saves its bridge contexts). Here that client
// really is a connection: one end of an in-process pipe served by the normal
// connection code, so queueing, in-flight windows, persistence and restore are
// the core's own and nothing is duplicated. The bridge goroutine speaks MQTT
// on both ends with the paho packet codec and forwards packets between them,
// remapping topics; packet identifiers pass through unchanged (each direction
// of each link has its own identifier space, exactly as on the two links).

// bridgeSet is the broker's bridges.
type bridgeSet struct {
	cfgs    []*bridgeConfig
	running []*bridge
	lis     *listener // the pseudo-listener local bridge connections belong to
	ids     map[string]bool
	// lazy holds, by local client id, the wake-up of every start_type lazy
	// bridge and its threshold: made before the broker's loop runs and
	// only read after, so the loop may consult it without a lock.
	lazy map[string]lazyWake
}

// lazyWake is how the state owner tells a lazy bridge to reconnect.
type lazyWake struct {
	threshold int
	wake      chan struct{} // buffered 1: a wake-up waits for the bridge
}

// bridgeSecurity lets a bridge's local client in and past every ACL:
// Mosquitto's mosquitto_acl_check returns success for a context with a bridge.
var bridgeSecurity = &security{anonymous: true, allowZeroLength: true, trusted: true}

func newBridgeSet(cfgs []*bridgeConfig) *bridgeSet {
	bs := &bridgeSet{cfgs: cfgs, ids: map[string]bool{}, lazy: map[string]lazyWake{},
		lis: &listener{port: 0, sec: bridgeSecurity, label: "bridge"}}
	for _, c := range cfgs {
		bs.ids[c.localID] = true
		if c.start == startLazy {
			bs.lazy[c.localID] = lazyWake{threshold: c.threshold, wake: make(chan struct{}, 1)}
		}
	}
	return bs
}

// isBridgeLocalID reports whether id is a configured bridge's local client id,
// whose saved session (expiry interval 0) is the bridge's to resume.
func (b *Broker) isBridgeLocalID(id string) bool {
	return b.bridges != nil && b.bridges.ids[id]
}

// adoptBridgeSessions marks restored bridge sessions as the bridges' own:
// trusted, and kept while offline (Mosquitto's bridge contexts never expire).
func (b *Broker) adoptBridgeSessions() {
	for id, s := range b.st.sessions {
		if b.isBridgeLocalID(id) {
			s.sec = bridgeSecurity
			s.expiry = sessionExpiryNever
		}
	}
}

// lazyBridge is the wake-up of the lazy bridge whose local session s is,
// or false.
func (b *Broker) lazyBridge(s *session) (lazyWake, bool) {
	if b.bridges == nil || s.sec != bridgeSecurity {
		return lazyWake{}, false
	}
	w, ok := b.bridges.lazy[s.id]
	return w, ok
}

// lazyQueued is database.c's lazy_reconnect: a delivery queued for a lazy
// bridge's session while its link is down that brings what the session holds
// (QoS 0 included) to threshold wakes the bridge.
func (st *state) lazyQueued(s *session) {
	if s.conn != nil {
		return
	}
	if w, ok := st.b.lazyBridge(s); ok && s.inflight.n+s.queued.n >= w.threshold {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// savedExpiry is the session expiry interval a session is saved with: 0 for a
// bridge's local session, as Mosquitto 2.0.11 saves its bridge contexts.
func savedExpiry(s *session) uint32 {
	if s.sec != nil && s.sec.trusted {
		return 0
	}
	return s.expiry
}

// startBridges starts every bridge; Mosquitto's bridge__start_all.
func (b *Broker) startBridges() {
	if b.bridges == nil {
		return
	}
	for _, bc := range b.bridges.cfgs {
		br := &bridge{b: b, cfg: bc, stop: make(chan struct{}), done: make(chan struct{})}
		br.ctx, br.cancel = context.WithCancel(context.Background())
		b.bridges.running = append(b.bridges.running, br)
		go br.run()
	}
}

// stopBridges ends every bridge link and waits for its goroutine.
func (b *Broker) stopBridges() {
	if b.bridges == nil {
		return
	}
	for _, br := range b.bridges.running {
		close(br.stop)
		br.cancel()
		br.closeLinks()
	}
	for _, br := range b.bridges.running {
		<-br.done
	}
}

// onLoop runs fn on the state owner and waits for it; false when the loop
// has stopped.
func (b *Broker) onLoop(fn func(*state)) bool {
	done := make(chan struct{})
	select {
	case b.bridgeOps <- func(st *state) { fn(st); close(done) }:
	case <-b.loopDone:
		return false
	}
	select {
	case <-done:
		return true
	case <-b.loopDone:
		return false
	}
}

// sessionMid takes the next packet identifier of the bridge's local session:
// Mosquitto's bridge context has one counter for the remote SUBSCRIBEs,
// UNSUBSCRIBEs and notification it sends itself and for the messages it
// forwards (which the local session numbers), so the remote sees one
// sequence, and the saved last_mid counts both.
func (b *Broker) sessionMid(id string) uint16 {
	var mid uint16
	b.onLoop(func(st *state) {
		if s := st.sessions[id]; s != nil {
			mid = s.nextMid()
		}
	})
	if mid == 0 {
		mid = 1
	}
	return mid
}

// dialLocal opens a connection to this broker for a bridge's local side:
// served exactly like an accepted connection of the bridge pseudo-listener.
func (b *Broker) dialLocal() (net.Conn, bool) {
	mine, theirs := net.Pipe()
	l := b.bridges.lis
	// As acceptLoop makes an accepted connection (conn.go).
	c := &conn{b: b, nc: theirs, lis: l, id: b.nextConnID.Add(1), remote: "bridge", gate: make(chan bool, 1)}
	b.mu.Lock()
	if b.stopped || !b.running {
		b.mu.Unlock()
		_ = mine.Close()
		_ = theirs.Close()
		return nil, false
	}
	l.active.Add(1)
	b.conns[c] = struct{}{}
	b.connWG.Add(2)
	b.mu.Unlock()
	go c.readLoop()
	return mine, true
}

// bridge is one running `connection`.
type bridge struct {
	b    *Broker
	cfg  *bridgeConfig
	stop chan struct{}
	done chan struct{}
	// ctx ends with stop, so a dial or TLS handshake does not hold up Close.
	ctx    context.Context
	cancel context.CancelFunc

	proto        byte // the remote protocol now (mqttv50 falls back to 3.1.1)
	cur          int  // addresses[cur] is tried next
	delay        int  // Mosquitto's restart_timeout, stepped by the backoff
	notified     bool // initial_notification_done
	privateNoted bool // try_private refused once: try without it

	mu   sync.Mutex
	link *bridgeLink // the current attempt's link, for stopBridges
}

func (br *bridge) stopped() bool {
	select {
	case <-br.stop:
		return true
	default:
		return false
	}
}

func (br *bridge) closeLinks() {
	br.mu.Lock()
	l := br.link
	br.mu.Unlock()
	if l != nil {
		l.close()
	}
}

// run is bridge__new followed by bridge_check's restarts: connect at once,
// then after every failure or lost link wait restart_timeout (whole seconds,
// strictly past the deadline) and try the next address; start_type once
// never reconnects, start_type lazy when the state owner wakes it (see
// lazyQueued).
func (br *bridge) run() {
	defer close(br.done)
	bc := br.cfg
	br.delay = bc.restartInit
	br.proto = bc.proto
	lazy, isLazy := br.b.bridges.lazy[bc.localID]
	if isLazy {
		// bridge__connect_step1 at start: the local session subscribes
		// and holds what is published; step 2, the remote connection,
		// waits for the first wake-up (Debian's 2.0.11 is built with
		// asynchronous DNS, so a lazy bridge does not connect at start).
		br.attempt(true)
		select {
		case <-br.stop:
			return
		case <-lazy.wake:
		}
	}
	for !br.stopped() {
		br.delay = bc.restartDelay(br.delay, func(n int) int { return rand.IntN(n) })
		if isLazy {
			// bridge__connect clears lazy_reconnect: only a delivery
			// queued after this attempt starts wakes the next one.
			select {
			case <-lazy.wake:
			default:
			}
		}
		if br.attempt(false) {
			br.delay = bc.restartBase // bridge__backoff_reset
		}
		if br.stopped() || bc.start == startOnce {
			return
		}
		br.cur = (br.cur + 1) % len(bc.addrs)
		if isLazy {
			select {
			case <-br.stop:
				return
			case <-lazy.wake:
			}
			continue
		}
		due := time.Unix(time.Now().Unix()+int64(br.delay)+1, 0)
		select {
		case <-br.stop:
			return
		case <-time.After(time.Until(due)):
		}
	}
}

// attempt is one bridge__connect and, when the remote accepts, the link's
// life until it ends. It reports whether the remote accepted the CONNECT.
// localOnly stops after the local side (a lazy bridge's start).
func (br *bridge) attempt(localOnly bool) bool {
	bc := br.cfg
	local, ok := br.b.dialLocal()
	if !ok {
		return false
	}
	l := newBridgeLink(br, local)
	br.mu.Lock()
	br.link = l
	br.mu.Unlock()
	defer func() {
		l.close()
		l.wait()
		br.mu.Lock()
		br.link = nil
		br.mu.Unlock()
	}()
	if br.stopped() {
		return false
	}
	// The local session and its subscriptions exist from the first attempt,
	// so what is published while the remote is unreachable is queued (and
	// the retained messages of the out topics are queued again, as
	// bridge__connect_step1's retain__queue does on every attempt).
	if err := l.localConnect(); err != nil {
		br.b.log.printf(logError, "Error creating bridge %s: local connection: %v.", bc.name, err)
		return false
	}
	l.dropStaleSubs()
	l.localSubscribe()
	if bc.notifications && !br.notified {
		l.localPublish(bc.notificationTopic(), '0')
		br.notified = true
	}
	if localOnly {
		return false
	}
	addr := bc.addrs[br.cur]
	br.b.log.printf(logNotice, "Connecting bridge %s (%s)", bc.name, addr)
	nc, err := br.dialRemote(addr)
	if err != nil {
		br.b.log.printf(logError, "Error creating bridge: %v.", err)
		return false
	}
	if !l.setRemote(nc) {
		return false
	}
	code, err := l.remoteConnect(br.tryPrivate())
	if err != nil {
		br.b.log.printf(logNotice, "Bridge %s: connection to %s failed: %v.", bc.name, addr, err)
		return false
	}
	if code != 0 {
		if br.proto == 5 && (code == 0x84 || code == 1) {
			// handle__connack: a remote without MQTT 5 gets 3.1.1 next.
			br.b.log.printf(logWarning, "Warning: Remote bridge %s does not support MQTT v5.0, reconnecting using MQTT v3.1.1.", bc.name)
			br.proto = 4
			return false
		}
		if code == 1 && br.tryPrivate() {
			// handle__connack: the remote refused the bridge protocol
			// bit; later attempts go without it.
			br.privateNoted = true
		}
		br.b.log.printf(logError, "Connection Refused: %s", connackReason(code))
		return false
	}
	br.b.log.printf(logNotice, "Bridge %s connected to %s.", bc.name, addr)
	l.onConnect()
	l.run()
	return true
}

func (br *bridge) tryPrivate() bool { return br.cfg.tryPrivate && !br.privateNoted }

// dialRemote opens the TCP (and, with bridge_cafile/bridge_capath, TLS)
// connection to addr.
func (br *bridge) dialRemote(addr string) (net.Conn, error) {
	// No bridge_bind_address here: Debian's 2.0.11 is built with
	// asynchronous DNS, and its connect path (net__try_connect_step2)
	// never binds; only the primary-address probe does (bridge_link.go).
	d := net.Dialer{Timeout: 20 * time.Second}
	nc, err := d.DialContext(br.ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if br.cfg.tlsConf == nil {
		return nc, nil
	}
	tc := br.cfg.tlsConf.Clone()
	if host, _, err := net.SplitHostPort(addr); err == nil && !br.cfg.insecure {
		tc.ServerName = host
	}
	t := tls.Client(nc, tc)
	hctx, cancel := context.WithTimeout(br.ctx, 20*time.Second)
	defer cancel()
	if err := t.HandshakeContext(hctx); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return t, nil
}

// connackReason is Mosquitto's text for a refused 3.1/3.1.1 CONNACK.
func connackReason(code byte) string {
	switch code {
	case 1:
		return "unacceptable protocol version"
	case 2:
		return "identifier rejected"
	case 3:
		return "broker unavailable"
	case 4:
		return "bad user name or password"
	case 5:
		return "not authorised"
	}
	return "unknown reason"
}
