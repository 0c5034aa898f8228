package broker_test

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// benchConn is a minimal MQTT client for throughput: one buffered writer shared
// by the caller and the reader goroutine, flushed when nothing else is pending.
type benchConn struct {
	nc net.Conn
	br *bufio.Reader
	mu sync.Mutex
	bw *bufio.Writer
}

func benchDial(b *testing.B, addr, id string, clean bool) *benchConn {
	b.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = nc.Close() })
	c := &benchConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
	c.write(connectPacket(id, clean), true)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p, err := packets.ReadPacket(c.br); err != nil || p.(*packets.ConnackPacket).ReturnCode != 0 {
		b.Fatalf("connect %s: %v %v", id, p, err)
	}
	_ = nc.SetReadDeadline(time.Time{})
	return c
}

func (c *benchConn) write(p packets.ControlPacket, flush bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = p.Write(c.bw)
	if flush {
		_ = c.bw.Flush()
	}
}

func (c *benchConn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.bw.Flush()
}

// BenchmarkQoS2Throughput: 10,000 QoS 2 150-byte messages per iteration from one
// publisher keeping WINDOW publishes unfinished, to one acknowledging QoS 2
// subscriber; reports msgs/s end to end (delivered and completed).
func BenchmarkQoS2Throughput(b *testing.B) {
	for _, window := range []int{20, 1000} {
		b.Run("inflight="+itoa(window), func(b *testing.B) { benchQoS2(b, window) })
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

func benchQoS2(b *testing.B, window int) {
	const perIter = 10000
	cfg := testConfig(b)
	cfg.SysInterval = 0
	cfg.Persistence = false
	cfg.MaxQueuedMessages = 0
	if window > cfg.MaxInflightMessages {
		// The broker's receive quota must hold the publisher's window, or
		// it refuses the excess, as Mosquitto does.
		cfg.MaxInflightMessages = window
	}
	br := startBroker(b, cfg)

	sub := benchDial(b, br.Addr(), "sub", true)
	sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sp.MessageID, sp.Topics, sp.Qoss = 1, []string{"test"}, []byte{2}
	sub.write(sp, true)
	if _, err := packets.ReadPacket(sub.br); err != nil {
		b.Fatal(err)
	}
	var received atomic.Int64
	go func() {
		for {
			p, err := packets.ReadPacket(sub.br)
			if err != nil {
				return
			}
			switch p := p.(type) {
			case *packets.PublishPacket:
				rec := packets.NewControlPacket(packets.Pubrec).(*packets.PubrecPacket)
				rec.MessageID = p.MessageID
				sub.write(rec, false)
			case *packets.PubrelPacket:
				comp := packets.NewControlPacket(packets.Pubcomp).(*packets.PubcompPacket)
				comp.MessageID = p.MessageID
				sub.write(comp, false)
				received.Add(1)
			}
			if sub.br.Buffered() == 0 {
				sub.flush()
			}
		}
	}()

	pub := benchDial(b, br.Addr(), "pub", true)
	sem := make(chan struct{}, window)
	go func() {
		for {
			p, err := packets.ReadPacket(pub.br)
			if err != nil {
				return
			}
			switch p := p.(type) {
			case *packets.PubrecPacket:
				rel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
				rel.MessageID = p.MessageID
				pub.write(rel, false)
			case *packets.PubcompPacket:
				<-sem
			}
			if pub.br.Buffered() == 0 {
				pub.flush()
			}
		}
	}()
	payload := payload150(1)
	b.ResetTimer()
	var mid uint16
	for i := 0; i < b.N; i++ {
		for j := 0; j < perIter; j++ {
			select {
			case sem <- struct{}{}:
			default:
				pub.flush()
				select {
				case sem <- struct{}{}:
				case <-time.After(30 * time.Second):
					b.Fatal("publisher stalled")
				}
			}
			mid++
			if mid == 0 {
				mid = 1
			}
			pub.write(publishPacket("test", 2, mid, payload, false), false)
		}
		pub.flush()
		want := int64(i+1) * perIter
		deadline := time.Now().Add(60 * time.Second)
		for received.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("received %d of %d", received.Load(), want)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	b.ReportMetric(float64(b.N*perIter)/b.Elapsed().Seconds(), "msgs/s")
}
