package bench

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mqbench/mqbench/scenarios"
)

// Connection scale: what it costs to hold many connections, and what a run
// needs from the machine to open them.

// fileReserve is what a run needs besides its connections: the event file,
// logs, /proc reads, the persistence file the sampler opens, the Go runtime.
const fileReserve = 64

// RaiseFileLimit raises the soft open-file limit to the hard one. Go raises
// its own soft limit at start but gives child processes the original one; a
// limit set here is inherited by the broker a run starts (the bundled broker
// and Mosquitto alike), which needs a descriptor per connection too. It
// returns the limit now in force.
func RaiseFileLimit() (uint64, error) {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("reading the open-file limit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("raising the open-file limit to %d: %w", l.Max, err)
		}
	}
	return l.Cur, nil
}

// connectionsOf counts the connections the run holds open at once on this
// shard: every publisher that keeps one (not connection_per_message, which
// opens one at a time) and every subscriber, and the $SYS monitor.
func connectionsOf(sc *scenarios.Scenario) int {
	n := 1
	for g, p := range sc.Publishers {
		if !p.ConnectionPerMessage {
			n += len(sc.LocalPublisherIDs(g))
		}
	}
	for g := range sc.Subscribers {
		n += len(sc.LocalSubscriberIDs(g))
	}
	return n
}

// checkFileLimit refuses, before anything connects, a run whose connections
// the open-file limit cannot hold (after raising it to the hard limit), so a
// 15,000-connection scenario fails with the fix in the message rather than
// with "too many open files" half way through connecting.
func checkFileLimit(conns int) error {
	limit, err := RaiseFileLimit()
	if err != nil {
		return err
	}
	if need := uint64(conns + fileReserve); need > limit {
		return fmt.Errorf("the scenario holds %d connections at once and needs about %d open files, but this process may open %d (the hard limit): raise it (ulimit -Hn, or LimitNOFILE in a systemd unit) or split the run with --shard", conns, need, limit)
	}
	return nil
}

// portsPerSource is how many connections one local address can open to one
// broker address: the kernel's ephemeral port range, less a margin for ports
// still in TIME_WAIT from an earlier run. A variable so a test can make it small.
var portsPerSource = ephemeralPorts() * 9 / 10

func ephemeralPorts() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 28232 // Linux's default 32768-60999
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 28232
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return 28232
	}
	return hi - lo + 1
}

// sourcePlan spreads the clients over several loopback source addresses
// (127.0.0.1, 127.0.0.2, ...: the whole 127/8 is the loopback interface on
// Linux) when one address's ephemeral ports cannot hold the run's
// connections to a loopback broker; nil when one is enough.
type sourcePlan struct {
	addrs []*net.TCPAddr
	byID  map[string]*net.TCPAddr
}

func newSourcePlan(e *engine) (*sourcePlan, error) {
	conns := connectionsOf(e.sc)
	if conns <= portsPerSource {
		return nil, nil
	}
	var loopback bool
	for _, a := range splitAddrs(e.addr) {
		u, err := url.Parse(a)
		if err != nil {
			return nil, err
		}
		ip := net.ParseIP(u.Hostname())
		loopback = ip != nil && ip.To4() != nil && ip.IsLoopback()
		if !loopback {
			break
		}
	}
	k := (conns + portsPerSource - 1) / portsPerSource
	if !loopback {
		return nil, fmt.Errorf("the run opens %d connections, more than the %d one local address has ephemeral ports for to one broker address; only an IPv4 loopback broker (127.0.0.1) can be reached from several source addresses here: split the run with --shard or give the broker several addresses", conns, portsPerSource)
	}
	if k > 254 {
		return nil, fmt.Errorf("the run opens %d connections: more than 254 loopback source addresses would be needed", conns)
	}
	p := &sourcePlan{byID: map[string]*net.TCPAddr{}}
	for i := 1; i <= k; i++ {
		p.addrs = append(p.addrs, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i))})
	}
	i := 0
	assign := func(id string) {
		p.byID[id] = p.addrs[i%k]
		i++
	}
	assign(sysClientID)
	for g := range e.sc.Publishers {
		for _, id := range e.sc.LocalPublisherIDs(g) {
			assign(id)
		}
	}
	for g := range e.sc.Subscribers {
		for _, id := range e.sc.LocalSubscriberIDs(g) {
			assign(id)
		}
	}
	return p, nil
}

// localAddr is the source address client id dials from (nil: the kernel's choice).
func (e *engine) localAddr(id string) *net.TCPAddr {
	if e.sources == nil {
		return nil
	}
	return e.sources.byID[id]
}

// errStopped is returned by a connect the end of the run interrupted.
var errStopped = errors.New("the run ended")

// timedConnect is a client's first connect at the start of the run: it
// waits for its group's connect rate, connects, and records how long it took.
func (e *engine) timedConnect(id string, lim *limiter, connect func() error) error {
	if lim != nil && !lim.wait(e.stop) {
		return errStopped
	}
	t0 := e.rec.Since()
	if err := connect(); err != nil {
		return err
	}
	t := e.rec.Since()
	e.emit(Event{T: t, Type: EvConn, Client: id, Msg: ConnUp, Dur: t - t0})
	return nil
}

// sampleConnMemory records mqbench's and the broker's resident memory at the
// edges of the connect phase, so the summary can divide what the connections
// added by how many there are.
func (e *engine) sampleConnMemory(benchGauge, brokerGauge string) {
	now := e.rec.Since()
	self := os.Getpid()
	if s, err := readProc(self); err == nil {
		e.emit(Event{T: now, Type: EvGauge, Name: benchGauge, Value: float64(s.RSSBytes)})
	}
	if pid := e.target.PID(); pid > 0 && pid != self {
		if s, err := readProc(pid); err == nil {
			e.emit(Event{T: now, Type: EvGauge, Name: brokerGauge, Value: float64(s.RSSBytes)})
		}
	}
}

// localAddrOrNil is localAddr as a net.Addr: a nil *net.TCPAddr in the
// interface would not be nil to net.Dialer.
func (e *engine) localAddrOrNil(id string) net.Addr {
	if a := e.localAddr(id); a != nil {
		return a
	}
	return nil
}

// transportFor is how client id reaches the broker: its node of a cluster
// target and, when the run needs several, its source address. Every client
// that dials through leanTransport (lean subscriber, MQTT 5 paho clients)
// takes it from here.
func (e *engine) transportFor(id string) (leanTransport, error) {
	tr, err := leanAddr(e.addrFor(id))
	if err != nil {
		return tr, err
	}
	tr.local = e.localAddr(id)
	return tr, nil
}
