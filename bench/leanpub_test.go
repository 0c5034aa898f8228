package bench

import (
	"bufio"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// hangGuard bounds a wait that must end on its own; it is not a speed
// assertion (the limit is orders of magnitude above the expected time).
const hangGuard = 20 * time.Second

func TestLeanAddr(t *testing.T) {
	tests := []struct {
		addr string
		want leanTransport
		err  string
	}{
		{"tcp://127.0.0.1:1883", leanTransport{kind: "tcp", hostport: "127.0.0.1:1883"}, ""},
		{"mqtt://[::1]:1884", leanTransport{kind: "tcp", hostport: "[::1]:1884"}, ""},
		{"mqtts://127.0.0.1:8883", leanTransport{kind: "tls", hostport: "127.0.0.1:8883"}, ""},
		{"ssl://127.0.0.1:8883", leanTransport{kind: "tls", hostport: "127.0.0.1:8883"}, ""},
		{"ws://127.0.0.1:9001", leanTransport{kind: "ws", hostport: "127.0.0.1:9001", url: "ws://127.0.0.1:9001"}, ""},
		{"wss://127.0.0.1:9001/mqtt", leanTransport{kind: "wss", hostport: "127.0.0.1:9001", url: "wss://127.0.0.1:9001/mqtt"}, ""},
		{"unix:///tmp/sock", leanTransport{}, "want tcp://host:port"},
		{"quic://127.0.0.1:1", leanTransport{}, "use client: paho"},
		{"127.0.0.1:1883", leanTransport{}, "want tcp://host:port"},
		{"", leanTransport{}, "want tcp://host:port"},
	}
	for _, tt := range tests {
		got, err := leanAddr(tt.addr)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("leanAddr(%q) = %+v, %v; want error with %q", tt.addr, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("leanAddr(%q) = %+v, %v; want %+v", tt.addr, got, err, tt.want)
		}
	}
}

func TestLeanAllocID(t *testing.T) {
	tests := []struct {
		name  string
		last  uint16
		inUse []uint16
		want  uint16
	}{
		{"next", 7, nil, 8},
		{"wraps past 65535 to 1, never 0", 65535, nil, 1},
		{"skips ids in flight", 10, []uint16{11, 12}, 13},
		{"skips in flight across the wrap", 65534, []uint16{65535, 1, 2}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &leanClient{msgs: make([]*leanMsg, leanMaxWindow+1), nextID: tt.last}
			for _, id := range tt.inUse {
				c.msgs[id] = &leanMsg{}
			}
			if got := c.allocID(); got != tt.want {
				t.Errorf("allocID after %d with %v in flight = %d, want %d", tt.last, tt.inUse, got, tt.want)
			}
		})
	}
}

// fakeBroker is a scripted MQTT server on 127.0.0.1:0 speaking paho's codec,
// for what a real broker will not do on demand: hold acks until the window is
// full, drop a connection at a chosen packet, take a reconnect.
type fakeBroker struct {
	ln    net.Listener
	conns chan net.Conn
}

func startFake(t *testing.T) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBroker{ln: ln, conns: make(chan net.Conn, 4)}
	var mu sync.Mutex
	var all []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			all = append(all, c)
			mu.Unlock()
			f.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range all {
			c.Close()
		}
	})
	return f
}

func (f *fakeBroker) addr() string { return "tcp://" + f.ln.Addr().String() }

// accept takes the next connection and answers its CONNECT.
func (f *fakeBroker) accept() (net.Conn, *bufio.Reader, error) {
	var c net.Conn
	select {
	case c = <-f.conns:
	case <-time.After(hangGuard):
		return nil, nil, fmt.Errorf("no connection")
	}
	c.SetDeadline(time.Now().Add(hangGuard))
	br := bufio.NewReader(c)
	pkt, err := packets.ReadPacket(br)
	if err != nil {
		return nil, nil, fmt.Errorf("reading CONNECT: %w", err)
	}
	if cp, ok := pkt.(*packets.ConnectPacket); !ok || cp.ProtocolVersion != 4 || cp.ClientIdentifier == "" {
		return nil, nil, fmt.Errorf("want CONNECT 3.1.1 with a client id, got %v", pkt)
	}
	ca := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
	if err := ca.Write(c); err != nil {
		return nil, nil, err
	}
	return c, br, nil
}

func ackPacket(kind byte, id uint16) packets.ControlPacket {
	p := packets.NewControlPacket(kind)
	switch q := p.(type) {
	case *packets.PubackPacket:
		q.MessageID = id
	case *packets.PubrecPacket:
		q.MessageID = id
	case *packets.PubcompPacket:
		q.MessageID = id
	}
	return p
}

// ackLog collects OnAck calls.
type ackLog struct {
	mu   sync.Mutex
	seqs map[int64]int
	n    int
}

func (a *ackLog) add(seq, _ int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seqs == nil {
		a.seqs = map[int64]int{}
	}
	a.seqs[seq]++
	a.n++
}

// check fails unless seqs 1..n were each acknowledged exactly once.
func (a *ackLog) check(t *testing.T, n int) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for seq := int64(1); seq <= int64(n); seq++ {
		if a.seqs[seq] != 1 {
			t.Errorf("seq %d acknowledged %d times, want once", seq, a.seqs[seq])
		}
	}
	if a.n != n {
		t.Errorf("%d acks, want %d", a.n, n)
	}
}

func leanTestOptions(addr string, qos byte, window int, stop chan struct{}, acks *ackLog) leanOptions {
	start := time.Now()
	return leanOptions{
		Addr: addr, ClientID: "lean-test", Clean: true, QoS: qos, Topic: "test", Window: window,
		Stop: stop, Since: func() int64 { return int64(time.Since(start)) }, OnAck: acks.add,
	}
}

// publishAll publishes n messages and waits for their acks; false if the
// publisher went down first.
func publishAll(c *leanClient, n int, stop chan struct{}) (sent int, idle bool) {
	for seq := int64(1); seq <= int64(n); seq++ {
		if !c.acquire(stop) {
			return sent, false
		}
		c.publish(seq, []byte(fmt.Sprintf("mqb:p:%d:", seq)))
		sent++
	}
	return sent, c.waitIdle(stop)
}

// TestLeanWindowFakeBroker: the broker acknowledges only when it holds a whole
// window unacknowledged, so a client that stops short of the window would hang
// (caught by the guard) and one that exceeds it is seen doing so.
func TestLeanWindowFakeBroker(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		for _, window := range []int{1, 5, 20} {
			t.Run(fmt.Sprintf("qos%d/window%d", qos, window), func(t *testing.T) {
				const n = 103
				f := startFake(t)
				type result struct {
					maxOut, rels int
					err          error
				}
				res := make(chan result, 1)
				go func() {
					var r result
					defer func() { res <- r }()
					conn, br, err := f.accept()
					if err != nil {
						r.err = err
						return
					}
					out := map[uint16]bool{} // id -> PUBREC sent
					received := 0
					for received < n || len(out) > 0 {
						pkt, err := packets.ReadPacket(br)
						if err != nil {
							r.err = fmt.Errorf("after %d publishes: %w", received, err)
							return
						}
						switch p := pkt.(type) {
						case *packets.PublishPacket:
							if _, dup := out[p.MessageID]; dup || p.MessageID == 0 || p.Qos != qos {
								r.err = fmt.Errorf("bad PUBLISH id %d qos %d (in flight: %v)", p.MessageID, p.Qos, dup)
								return
							}
							out[p.MessageID] = false
							received++
							r.maxOut = max(r.maxOut, len(out))
							if len(out) < window && received < n {
								continue
							}
							var ids []int
							for id, rec := range out {
								if !rec {
									ids = append(ids, int(id))
								}
							}
							sort.Ints(ids)
							for _, id := range ids {
								kind := byte(packets.Puback)
								if qos == 2 {
									kind = packets.Pubrec
									out[uint16(id)] = true
								} else {
									delete(out, uint16(id))
								}
								ackPacket(kind, uint16(id)).Write(conn)
							}
						case *packets.PubrelPacket:
							if rec, ok := out[p.MessageID]; !ok || !rec {
								r.err = fmt.Errorf("PUBREL %d without PUBREC", p.MessageID)
								return
							}
							r.rels++
							delete(out, p.MessageID)
							ackPacket(packets.Pubcomp, p.MessageID).Write(conn)
						default:
							r.err = fmt.Errorf("unexpected %v", pkt)
							return
						}
					}
				}()
				stop := make(chan struct{})
				defer close(stop)
				var acks ackLog
				c, err := dialLean(leanTestOptions(f.addr(), qos, window, stop, &acks))
				if err != nil {
					t.Fatal(err)
				}
				defer c.close()
				done := make(chan bool, 1)
				go func() { _, idle := publishAll(c, n, stop); done <- idle }()
				select {
				case idle := <-done:
					if !idle {
						t.Fatal("publisher went down")
					}
				case <-time.After(hangGuard):
					t.Fatal("publisher hung: window never filled or a flush was lost")
				}
				r := <-res
				if r.err != nil {
					t.Fatal(r.err)
				}
				if r.maxOut != window {
					t.Errorf("broker saw at most %d unacknowledged, want exactly the window %d", r.maxOut, window)
				}
				if qos == 2 && r.rels != n {
					t.Errorf("%d PUBRELs, want %d", r.rels, n)
				}
				acks.check(t, n)
			})
		}
	}
}

// TestLeanBrokers runs the lean publisher against the bundled broker and real
// Mosquitto at every QoS: every message acknowledged exactly once, and never
// more than the window unacknowledged as the client sees it.
func TestLeanBrokers(t *testing.T) {
	sc := loadTiny(t)
	brokers := []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"bundled", func(t *testing.T) string { return startBundled(t, sc).Addr() }},
		{"mosquitto", func(t *testing.T) string { return startMosquitto(t, sc).Addr() }},
	}
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			addr := b.start(t)
			for _, qos := range []byte{0, 1, 2} {
				t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
					const n, window = 500, 5
					stop := make(chan struct{})
					defer close(stop)
					var acks ackLog
					var mu sync.Mutex
					sent, maxUnacked := 0, 0
					o := leanTestOptions(addr, qos, window, stop, &acks)
					c, err := dialLean(o)
					if err != nil {
						t.Fatal(err)
					}
					defer c.close()
					done := make(chan bool, 1)
					go func() {
						for seq := int64(1); seq <= n; seq++ {
							if !c.acquire(stop) {
								done <- false
								return
							}
							mu.Lock()
							sent++
							acks.mu.Lock()
							maxUnacked = max(maxUnacked, sent-acks.n)
							acks.mu.Unlock()
							mu.Unlock()
							c.publish(seq, []byte(fmt.Sprintf("mqb:p:%d:", seq)))
						}
						done <- c.waitIdle(stop)
					}()
					select {
					case ok := <-done:
						if !ok {
							t.Fatal("publisher went down")
						}
					case <-time.After(hangGuard):
						t.Fatal("publisher hung")
					}
					acks.check(t, n)
					if maxUnacked > window {
						t.Errorf("%d unacknowledged at once, window %d", maxUnacked, window)
					}
				})
			}
		})
	}
}

// TestLeanBrokerDisconnect: the broker drops the connection mid-run without a
// scheduled stop: OnLost is told once, the publisher stops, nothing hangs.
func TestLeanBrokerDisconnect(t *testing.T) {
	f := startFake(t)
	go func() {
		conn, br, err := f.accept()
		if err != nil {
			return
		}
		for i := 0; i < 3; i++ {
			if _, err := packets.ReadPacket(br); err != nil {
				break
			}
		}
		conn.Close()
	}()
	stop := make(chan struct{})
	defer close(stop)
	var acks ackLog
	var lostMu sync.Mutex
	var lost []error
	o := leanTestOptions(f.addr(), 1, 5, stop, &acks)
	o.OnLost = func(err error) bool {
		lostMu.Lock()
		defer lostMu.Unlock()
		lost = append(lost, err)
		return false
	}
	c, err := dialLean(o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	type res struct {
		sent int
		idle bool
	}
	done := make(chan res, 1)
	go func() { s, idle := publishAll(c, 1000, stop); done <- res{s, idle} }()
	var r res
	select {
	case r = <-done:
	case <-time.After(hangGuard):
		t.Fatal("publisher hung after the broker closed the connection")
	}
	if r.idle || r.sent >= 1000 {
		t.Errorf("publisher carried on: sent %d, idle %v", r.sent, r.idle)
	}
	lostMu.Lock()
	defer lostMu.Unlock()
	if len(lost) != 1 || lost[0] == nil {
		t.Errorf("OnLost calls: %v, want one with an error", lost)
	}
}

// TestLeanReconnectResend: after a loss the engine calls expected (a scheduled
// stop/kill), the publisher reconnects and resends what was not acknowledged
// with the same packet ids: PUBREL where PUBREC had come, PUBLISH with DUP
// otherwise, in publish order; every message is acknowledged exactly once.
func TestLeanReconnectResend(t *testing.T) {
	f := startFake(t)
	const n, window = 8, 5
	type seen struct {
		kind byte
		id   uint16
		dup  bool
	}
	second := make(chan []seen, 1)
	errc := make(chan error, 2)
	go func() {
		conn, br, err := f.accept()
		if err != nil {
			errc <- err
			return
		}
		// First connection: take a window of publishes, PUBREC ids 1 and 2, die.
		for i := 0; i < window; i++ {
			if _, err := packets.ReadPacket(br); err != nil {
				errc <- fmt.Errorf("first connection: %w", err)
				return
			}
		}
		for _, id := range []uint16{1, 2} {
			ackPacket(packets.Pubrec, id).Write(conn)
		}
		// Wait for both PUBRELs so the client has recorded the PUBRECs.
		for i := 0; i < 2; i++ {
			if _, err := packets.ReadPacket(br); err != nil {
				errc <- fmt.Errorf("first connection PUBREL: %w", err)
				return
			}
		}
		conn.Close()
		// Second connection: record the resend, then complete everything.
		conn, br, err = f.accept()
		if err != nil {
			errc <- err
			return
		}
		var got []seen
		done := 0
		for done < n {
			pkt, err := packets.ReadPacket(br)
			if err != nil {
				errc <- fmt.Errorf("second connection after %d completions: %w", done, err)
				return
			}
			switch p := pkt.(type) {
			case *packets.PublishPacket:
				got = append(got, seen{packets.Publish, p.MessageID, p.Dup})
				ackPacket(packets.Pubrec, p.MessageID).Write(conn)
			case *packets.PubrelPacket:
				got = append(got, seen{packets.Pubrel, p.MessageID, false})
				ackPacket(packets.Pubcomp, p.MessageID).Write(conn)
				done++
			}
		}
		second <- got
	}()
	stop := make(chan struct{})
	defer close(stop)
	var acks ackLog
	reconnected := make(chan struct{}, 1)
	o := leanTestOptions(f.addr(), 2, window, stop, &acks)
	o.OnLost = func(error) bool { return true }
	o.OnReconnect = func() { reconnected <- struct{}{} }
	c, err := dialLean(o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	done := make(chan bool, 1)
	go func() { _, idle := publishAll(c, n, stop); done <- idle }()
	var got []seen
	select {
	case got = <-second:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(hangGuard):
		t.Fatal("no completed second connection")
	}
	select {
	case idle := <-done:
		if !idle {
			t.Fatal("publisher went down")
		}
	case <-time.After(hangGuard):
		t.Fatal("publisher hung after the reconnect")
	}
	select {
	case <-reconnected:
	default:
		t.Error("OnReconnect not called")
	}
	// The resend comes first, in publish order: ids 1-2 released, 3-5 again with DUP.
	want := []seen{{packets.Pubrel, 1, false}, {packets.Pubrel, 2, false},
		{packets.Publish, 3, true}, {packets.Publish, 4, true}, {packets.Publish, 5, true}}
	if len(got) < len(want) {
		t.Fatalf("second connection saw %v", got)
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("resend %d: got %+v, want %+v (all: %v)", i, got[i], w, got)
		}
	}
	for _, s := range got[len(want):] {
		if s.kind == packets.Publish && s.dup {
			t.Errorf("new publish %d sent with DUP", s.id)
		}
	}
	acks.check(t, n)
}
