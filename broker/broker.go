// Package broker is mqbench's bundled MQTT 3.1/3.1.1/5 broker. It exists so a run
// can measure Mosquitto 2.0's queueing and persistence model (per-client in-flight
// window and queue limits with counted drops, one stored message referenced by
// every delivery, whole-snapshot autosave to the Mosquitto db format, restore on
// start, $SYS counters) without a Mosquitto install, and can look inside the
// broker (Stats) while it runs. Unlike Mosquitto it writes its snapshots off the
// message loop, so a large backlog does not stall publishers while it is saved.
//
// MQTT 5 (v5.go, v5codec.go) covers CONNECT/CONNACK properties and reason
// codes, PUBLISH properties, acknowledgement reason codes, session and message
// expiry, will delay, incoming topic aliases, subscription options and
// identifiers, shared subscriptions and DISCONNECT reason codes.
//
// One goroutine (the state owner) owns sessions, subscriptions, the message store
// and every queue; connections talk to it through a channel. That makes a snapshot
// a consistent cut without locks.
package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
)

// Options configure a Broker. They are plain values so the command, launch and
// tests can all start a broker in-process the same way.
type Options struct {
	Config     *conf.Config // nil = conf.Default()
	ConfigFile string       // for messages only
	Log        io.Writer    // broker log lines (per log_dest/log_type, formatted like mosquitto); nil discards
	Version    string       // reported in $SYS/broker/version as "mqbench VERSION"
	// LocalPorts are the ports of local-only mode (no listener configured):
	// mosquitto's -p. Empty means 1883.
	LocalPorts []int
}

// Stats are the broker's counters, read in one consistent cut by the state owner,
// so a sampler can reconcile kept, dropped and delivered messages exactly.
//
// StoreCount counts every store entry like Mosquitto's
// $SYS/broker/store/messages/count does, including retained $SYS messages
// (SysStored of them) and messages held only for connected clean-session clients.
type Stats struct {
	ClientsConnected, ClientsTotal, Subscriptions, Retained  int64
	MessagesReceived, MessagesSent, BytesReceived, BytesSent int64
	PublishReceived, PublishSent, Dropped                    int64 // Dropped: deliveries dropped by queue limits
	StoreCount, StoreBytes                                   int64 // stored messages and their payload bytes
	Held, Queued, Inflight                                   int64 // outgoing deliveries held for clients
	Saves                                                    int64
	LastSaveDuration                                         time.Duration
	LastSaveBytes                                            int64

	// SysStored is how many of StoreCount are retained $SYS messages, so a test
	// or report can subtract the broker's own bookkeeping.
	SysStored int64
	// SaveErrors counts snapshots that failed to write (the old file stays).
	SaveErrors int64
	// SavesStarted counts snapshots taken, including one being written now, so
	// autosave triggers can be observed without waiting for the disk.
	SavesStarted int64
}

// Broker is one running bundled broker. Create it with New, then Start it.
type Broker struct {
	cfg         *conf.Config
	opts        Options
	log         *logger
	notices     []string
	persistPath string
	// sec[i] governs clients of cfg.Listeners[i] (one shared value unless
	// per_listener_settings); secLocal those of local-only mode.
	sec      []*security
	secLocal *security
	// reloadBase is the configuration whose security settings are in force:
	// the one at start, or the last reload applied (see reload.go).
	reloadBase *conf.Config
	started    time.Time

	// counters updated by connection goroutines
	msgsRecv, msgsSent, bytesRecv, bytesSent, pubRecv, pubSent atomic.Int64

	st        *state
	inbox     chan event
	saveReq   chan chan error
	reloadReq chan reloadReq
	// reloadPending counts Reload requests not yet taken: the state owner
	// takes them before it handles anything more from clients.
	reloadPending atomic.Int32
	statsReq      chan chan Stats
	closeReq      chan chan error
	abortReq      chan struct{}
	saveDone      chan saveResult
	loopDone      chan struct{}

	mu         sync.Mutex
	listeners  []*listener
	conns      map[*conn]struct{}
	running    bool // Start done, loop running
	stopped    bool // Close or Abort called
	finalStats Stats
	closeErr   error
	connWG     sync.WaitGroup // accept loops and connection goroutines
	saveWG     sync.WaitGroup // snapshot writer goroutines
	nextConnID atomic.Uint64
	bridges    *bridgeSet // nil without `connection` blocks (bridge.go)
	// bridgeOps runs a bridge's function on the state owner (bridge.go).
	bridgeOps chan func(*state)
}

// listener is one bound socket, its connection limit and the security and
// listener options that govern the clients it accepts.
type listener struct {
	ln     net.Listener // a *listen.Listener: plain, TLS or websockets
	port   int
	max    int
	active atomic.Int64
	sec    *security
	cfg    *conf.Listener // nil in local-only mode
	index  int            // cfg is Config.Listeners[index]
	tls    bool           // connections are TLS (mqtts or wss)
	label  string         // how the log and the "listening on" line name it
}

// New validates the configuration and restores the persistence file, if any. A
// corrupt file is refused with an error naming the file and the byte offset, and
// left untouched so nothing the user had is lost.
func New(o Options) (*Broker, error) {
	cfg := o.Config
	if cfg == nil {
		cfg = conf.Default()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if cfg.MaxInflightMessages < 0 || cfg.MaxQueuedMessages < 0 || cfg.MaxQueuedBytes < 0 {
		return nil, errors.New("invalid config: queue limits must not be negative")
	}
	if cfg.MessageSizeLimit < 0 || cfg.MessageSizeLimit > maxRemainingLength {
		return nil, fmt.Errorf("invalid config: message_size_limit %d out of range 0..%d", cfg.MessageSizeLimit, maxRemainingLength)
	}
	if cfg.AutosaveInterval < 0 {
		return nil, errors.New("invalid config: autosave_interval must not be negative")
	}
	for i, l := range cfg.Listeners {
		if l.Port < 0 || l.Port > 65535 {
			return nil, fmt.Errorf("invalid config: listener %d: port %d out of range", i+1, l.Port)
		}
	}
	b := &Broker{
		cfg:        cfg,
		opts:       o,
		log:        newLogger(o.Log, cfg),
		inbox:      make(chan event, 1024),
		saveReq:    make(chan chan error),
		reloadReq:  make(chan reloadReq),
		reloadBase: cfg,
		statsReq:   make(chan chan Stats),
		closeReq:   make(chan chan error),
		abortReq:   make(chan struct{}),
		saveDone:   make(chan saveResult, 1),
		loopDone:   make(chan struct{}),
		conns:      make(map[*conn]struct{}),
		bridgeOps:  make(chan func(*state)),
	}
	if cfg.Persistence {
		b.persistPath = cfg.PersistencePath()
		if b.persistPath == "" {
			return nil, errors.New("invalid config: persistence is on but persistence_file is empty")
		}
	}
	if err := checkHonoured(cfg); err != nil {
		return nil, err
	}
	if len(cfg.Bridges) > 0 {
		bcs, err := parseBridges(cfg)
		if err != nil {
			return nil, err
		}
		b.bridges = newBridgeSet(bcs)
	}
	if err := b.loadSecurity(); err != nil {
		return nil, err
	}
	for _, s := range cfg.Unacted {
		if refusal(s) == "" {
			b.notices = append(b.notices, s.Key+" is accepted but has no effect on the bundled broker")
		}
	}
	b.st = newState(b)
	if b.persistPath != "" {
		if err := b.st.restore(b.persistPath); err != nil {
			return nil, err
		}
	}
	for _, s := range b.st.sessions {
		s.sec = b.securityForPort(int(s.listenerPort))
	}
	b.adoptBridgeSessions()
	return b, nil
}

// Notices are start-up remarks a user should see once, such as configuration keys
// the bundled broker accepts but ignores, so a run never silently differs from
// what the config asked for.
func (b *Broker) Notices() []string { return append([]string(nil), b.notices...) }

// Start binds every listener (port 0 picks a free port) and starts the message
// loop. Nothing is accepted before every listener is bound, so a failure leaves
// nothing running.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running || b.stopped {
		return errors.New("broker already started or stopped")
	}
	lns, err := b.openListeners()
	if err != nil {
		return err
	}
	b.listeners = lns
	b.started = time.Now()
	b.running = true
	b.log.printf(logNotice, "mqbench broker %s starting", b.opts.Version)
	if b.opts.ConfigFile != "" {
		b.log.printf(logInfo, "Config loaded from %s.", b.opts.ConfigFile)
	} else {
		b.log.printf(logInfo, "Using default config.")
	}
	for _, l := range lns {
		b.log.printf(logInfo, "Opening %s listen socket on %s.", l.label, l.ln.Addr())
	}
	go b.st.loop()
	for _, l := range lns {
		b.connWG.Add(1)
		go b.acceptLoop(l)
	}
	b.startBridges()
	return nil
}

// Listening describes every bound socket as the "listening on" line shows it:
// the address really bound (a wildcard stays a wildcard) and its protocol, so
// the broker never claims to be more private than it is.
func (b *Broker) Listening() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range b.listeners {
		out = append(out, l.ln.Addr().String()+" ("+l.label+")")
	}
	return out
}

// Addrs lists the bound listener addresses (with the real port when 0 was asked).
func (b *Broker) Addrs() []net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []net.Addr
	for _, l := range b.listeners {
		out = append(out, l.ln.Addr())
	}
	return out
}

// Addr is the first listener as a dialable "HOST:PORT", with a wildcard bind
// address replaced by 127.0.0.1 so clients on this machine can use it directly.
func (b *Broker) Addr() string {
	addrs := b.Addrs()
	if len(addrs) == 0 {
		return ""
	}
	return DialAddr(addrs[0])
}

// DialAddr renders a listener address as a client on this machine would dial
// it: a wildcard bind (0.0.0.0, ::) becomes 127.0.0.1.
func DialAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := ta.IP.String()
	if ta.IP == nil || ta.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port))
}

// Save takes a snapshot now (like SIGUSR1 to Mosquitto) and returns once it is on
// disk. A save already running is not interrupted; this one follows it. With
// persistence off it does nothing.
func (b *Broker) Save() error {
	if !b.isRunning() {
		return errors.New("saving: broker not running")
	}
	reply := make(chan error, 1)
	select {
	case b.saveReq <- reply:
	case <-b.loopDone:
		return errors.New("saving: broker stopped")
	}
	select {
	case err := <-reply:
		return err
	case <-b.loopDone:
		return errors.New("saving: broker stopped")
	}
}

// Stats returns the counters in one consistent cut. After Close or Abort it
// returns the last values.
func (b *Broker) Stats() Stats {
	if b.isRunning() {
		reply := make(chan Stats, 1)
		select {
		case b.statsReq <- reply:
			return <-reply
		case <-b.loopDone:
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.running && !b.stopped {
		// Never started: the restored state is still owned by nobody else.
		return b.st.stats()
	}
	return b.finalStats
}

func (b *Broker) isRunning() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running
}

// Close shuts down cleanly the way Mosquitto does on SIGTERM: stop accepting,
// send the wills of connected clients, write a final snapshot, then close every
// connection. It returns the final save's error.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return b.closeErr
	}
	b.stopped = true
	wasRunning := b.running
	lns := b.listeners
	b.mu.Unlock()
	if !wasRunning {
		return nil
	}
	b.stopBridges()
	for _, l := range lns {
		_ = l.ln.Close()
	}
	reply := make(chan error, 1)
	b.closeReq <- reply
	err := <-reply
	<-b.loopDone
	b.saveWG.Wait()
	b.shutdownConns(2 * time.Second)
	b.mu.Lock()
	b.closeErr = err
	b.mu.Unlock()
	b.log.printf(logNotice, "mqbench broker %s terminating", b.opts.Version)
	return err
}

// Abort stops the broker at once without saving, like a crash: whatever changed
// since the last save is lost, which is what crash tests need to observe.
func (b *Broker) Abort() {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return
	}
	b.stopped = true
	wasRunning := b.running
	lns := b.listeners
	b.mu.Unlock()
	if !wasRunning {
		return
	}
	b.stopBridges()
	for _, l := range lns {
		_ = l.ln.Close()
	}
	close(b.abortReq)
	<-b.loopDone
	b.saveWG.Wait()
	b.shutdownConns(0)
}

// shutdownConns closes every connection after giving writers up to grace to
// flush what the loop queued for them (wills, final acks), then waits for all
// connection goroutines.
func (b *Broker) shutdownConns(grace time.Duration) {
	b.mu.Lock()
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		if grace > 0 {
			_ = c.nc.SetWriteDeadline(time.Now().Add(grace))
			c.finish()
		} else {
			c.kill()
		}
	}
	done := make(chan struct{})
	go func() { b.connWG.Wait(); close(done) }()
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace + time.Second):
		}
		for _, c := range conns {
			c.kill()
		}
	}
	<-done
}

// loopStopped records the final counters once the state owner has exited.
func (b *Broker) loopStopped(s Stats) {
	b.mu.Lock()
	b.finalStats = s
	b.running = false
	b.mu.Unlock()
}

// WritePIDFile writes this process's pid to path (pid_file), so service
// managers and scripts can signal a `mqbench broker` the way they would Mosquitto.
// An empty path does nothing.
func WritePIDFile(path string) error {
	if path == "" {
		return nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing pid file: %w", err)
	}
	return nil
}
