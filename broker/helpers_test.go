package broker_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/broker"
	"github.com/mqbench/mqbench/broker/conf"
)

// testConfig is a loopback-only config on a free port with anonymous access
// and persistence in a fresh temporary directory.
func testConfig(t testing.TB) *conf.Config {
	t.Helper()
	cfg := conf.Default()
	cfg.Listeners = []conf.Listener{{Port: 0, BindAddress: "127.0.0.1", MaxConnections: -1}}
	anon := true
	cfg.Security.AllowAnonymous = &anon
	cfg.Persistence = true
	cfg.PersistenceLocation = t.TempDir()
	cfg.AutosaveInterval = 0
	return cfg
}

// quietConfig is testConfig without $SYS publishing, for tests that count
// every message or store entry.
func quietConfig(t testing.TB) *conf.Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.SysInterval = 0
	return cfg
}

// offlineSubscriber leaves a persistent session for id subscribed to filter at
// qos and disconnects cleanly, so what follows is held for an offline client.
func offlineSubscriber(t testing.TB, addr, id, filter string, qos byte) {
	t.Helper()
	sub := connected(t, addr, id, false)
	sub.subscribe(1, filter, qos)
	sub.send(packets.NewControlPacket(packets.Disconnect))
	sub.expectClosed()
}

// startBroker starts a broker on cfg; it is aborted when the test ends (a no-op
// after Close).
func startBroker(t testing.TB, cfg *conf.Config) *broker.Broker {
	t.Helper()
	b, err := broker.New(broker.Options{Config: cfg, Version: "test"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(b.Abort)
	return b
}

// rawClient speaks MQTT with the paho packets codec and nothing else, so a test
// controls every packet id and acknowledgement.
type rawClient struct {
	t       testing.TB
	nc      net.Conn
	br      *bufio.Reader
	pending []packets.ControlPacket // read while waiting for an ack, not yet consumed
}

func dial(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
}

func (c *rawClient) send(p packets.ControlPacket) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := p.Write(c.nc); err != nil {
		c.t.Fatalf("writing %s: %v", p, err)
	}
}

func (c *rawClient) sendRaw(b []byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("writing raw bytes: %v", err)
	}
}

// readErr reads the next packet or returns the error (EOF when the broker closed).
func (c *rawClient) readErr(timeout time.Duration) (packets.ControlPacket, error) {
	if len(c.pending) > 0 {
		p := c.pending[0]
		c.pending = c.pending[1:]
		return p, nil
	}
	return c.readWire(timeout)
}

func (c *rawClient) readWire(timeout time.Duration) (packets.ControlPacket, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	return packets.ReadPacket(c.br)
}

func (c *rawClient) read() packets.ControlPacket {
	c.t.Helper()
	p, err := c.readErr(5 * time.Second)
	if err != nil {
		c.t.Fatalf("reading packet: %v", err)
	}
	return p
}

// expectClosed asserts the broker closes the connection (without sending
// anything but, optionally, packets the caller does not care about).
func (c *rawClient) expectClosed() {
	c.t.Helper()
	for i := 0; i < 100; i++ {
		p, err := c.readErr(5 * time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("connection still open after 5 s")
			}
			return
		}
		_ = p
	}
	c.t.Fatalf("connection not closed after 100 packets")
}

func connectPacket(id string, clean bool) *packets.ConnectPacket {
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName = "MQTT"
	cp.ProtocolVersion = 4
	cp.ClientIdentifier = id
	cp.CleanSession = clean
	cp.Keepalive = 60
	return cp
}

// connected dials addr and completes CONNECT as id, for the many tests that
// need a client but not its CONNACK.
func connected(t testing.TB, addr, id string, clean bool) *rawClient {
	t.Helper()
	c := dial(t, addr)
	c.connect(id, clean)
	return c
}

func (c *rawClient) connect(id string, clean bool) *packets.ConnackPacket {
	c.t.Helper()
	c.send(connectPacket(id, clean))
	ack, ok := c.read().(*packets.ConnackPacket)
	if !ok || ack.ReturnCode != 0 {
		c.t.Fatalf("connect %s: %v", id, ack)
	}
	return ack
}

func (c *rawClient) subscribe(mid uint16, filter string, qos byte) []byte {
	c.t.Helper()
	sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sp.MessageID = mid
	sp.Topics = []string{filter}
	sp.Qoss = []byte{qos}
	c.send(sp)
	sa := c.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.SubackPacket); return ok }).(*packets.SubackPacket)
	if sa.MessageID != mid {
		c.t.Fatalf("SUBACK for %d, want %d", sa.MessageID, mid)
	}
	return sa.ReturnCodes
}

// await reads until a packet satisfies want, keeping the others for read.
func (c *rawClient) await(want func(packets.ControlPacket) bool) packets.ControlPacket {
	c.t.Helper()
	for {
		p, err := c.readWire(5 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for a packet: %v", err)
		}
		if want(p) {
			return p
		}
		c.pending = append(c.pending, p)
	}
}

// sync makes sure the broker has processed everything sent so far: packets from
// one connection are handled in order, so a PINGRESP means the rest was seen.
func (c *rawClient) sync() {
	c.t.Helper()
	c.send(packets.NewControlPacket(packets.Pingreq))
	c.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.PingrespPacket); return ok })
}

func publishPacket(topic string, qos byte, mid uint16, payload []byte, retain bool) *packets.PublishPacket {
	pp := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pp.TopicName = topic
	pp.Qos = qos
	pp.MessageID = mid
	pp.Payload = payload
	pp.Retain = retain
	return pp
}

// publish sends one message and completes its QoS flow.
func (c *rawClient) publish(topic string, qos byte, mid uint16, payload []byte, retain bool) {
	c.t.Helper()
	c.send(publishPacket(topic, qos, mid, payload, retain))
	switch qos {
	case 0:
		c.sync()
	case 1:
		c.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.PubackPacket); return ok })
	case 2:
		c.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.PubrecPacket); return ok })
		rel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
		rel.MessageID = mid
		c.send(rel)
		c.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.PubcompPacket); return ok })
	}
}

// publishMany sends n QoS 2 messages with at most window unfinished at once and
// waits until all are complete. payload(i) gives message i.
func (c *rawClient) publishMany(topic string, n, window int, payload func(i int) []byte) {
	c.t.Helper()
	var mu sync.Mutex
	write := func(p packets.ControlPacket) error {
		mu.Lock()
		defer mu.Unlock()
		return p.Write(c.nc)
	}
	sem := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		completed := 0
		for completed < n {
			p, err := c.readErr(30 * time.Second)
			if err != nil {
				done <- err
				return
			}
			switch p := p.(type) {
			case *packets.PubrecPacket:
				rel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
				rel.MessageID = p.MessageID
				if err := write(rel); err != nil {
					done <- err
					return
				}
			case *packets.PubcompPacket:
				completed++
				<-sem
			}
		}
		done <- nil
	}()
	_ = c.nc.SetWriteDeadline(time.Now().Add(60 * time.Second))
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case err := <-done:
			c.t.Fatalf("publishing: reader ended early: %v", err)
		}
		mid := uint16(i%60000 + 1)
		if err := write(publishPacket(topic, 2, mid, payload(i), false)); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		c.t.Fatalf("publishing %d messages: %v", n, err)
	}
}

// payload150 is a deterministic 150-byte JSON-like message body, as in the
// seed experiment.
func payload150(i int) []byte {
	s := fmt.Sprintf(`{"id":%d,"Timestamp":1700000000000,"str1":"%s","str2":"%s"}`, i, pad(i, 50), pad(i+7, 50))
	for len(s) < 150 {
		s += " "
	}
	return []byte(s[:150])
}

func pad(seed, n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = letters[x%uint32(len(letters))]
	}
	return string(b)
}

func dbPath(cfg *conf.Config) string {
	return filepath.Join(cfg.PersistenceLocation, cfg.PersistenceFile)
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
