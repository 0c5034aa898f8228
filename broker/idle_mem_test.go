package broker_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/internal/testutil"
)

// BenchmarkIdleConnections (issue #10, item 5): the broker process's RSS per
// idle connection, each connected (3.1.1, clean session) and subscribed to
// its own topic at QoS 1, then left alone. MQBENCH_IDLE_CONNS sets how many
// (default 5,000; the open-file limit holds both ends in this process and
// the broker's). Reported as B/conn: (RSS after - RSS before) / n, measured
// a second after the last SUBACK.
//
//	go test -run '^$' -bench IdleConnections -benchtime 1x ./broker/
func BenchmarkIdleConnections(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("MQBENCH_IDLE_CONNS")); err == nil && v > 0 {
		n = v
	}
	for _, kind := range []string{"bundled-proc", "mosquitto"} {
		b.Run(kind, func(b *testing.B) {
			var perConn float64
			for i := 0; i < b.N; i++ {
				tg := startBenchBroker(b, kind, false)
				time.Sleep(500 * time.Millisecond)
				base, err := testutil.RSSBytes(tg.pid)
				if err != nil {
					b.Fatal(err)
				}
				conns := connectIdle(b, tg.addr, n)
				time.Sleep(time.Second)
				rss, err := testutil.RSSBytes(tg.pid)
				if err != nil {
					b.Fatal(err)
				}
				for _, c := range conns {
					_ = c.Close()
				}
				perConn = float64(rss-base) / float64(n)
				b.ReportMetric(float64(rss)/(1<<20), "rss_MB")
			}
			b.ReportMetric(perConn, "B/conn")
		})
	}
}

// connectIdle opens n connections, each CONNECTed and SUBSCRIBEd, 16 at a
// time, and returns them open.
func connectIdle(b *testing.B, addr string, n int) []net.Conn {
	b.Helper()
	conns := make([]net.Conn, n)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := idleClient(addr, i)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
		b.Fatal(err)
	default:
	}
	return conns
}

func idleClient(addr string, i int) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cp := connectPacket("idle-"+strconv.Itoa(i), true)
	cp.Keepalive = 0
	sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sp.MessageID, sp.Topics, sp.Qoss = 1, []string{"idle/" + strconv.Itoa(i)}, []byte{1}
	if err := cp.Write(&out); err != nil {
		return nil, err
	}
	if err := sp.Write(&out); err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(out.Bytes()); err != nil {
		_ = c.Close()
		return nil, err
	}
	var in [9]byte // CONNACK (4) and SUBACK (5)
	if _, err := io.ReadFull(c, in[:]); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("client %d: %w", i, err)
	}
	if in[0] != 0x20 || in[3] != 0 || in[4] != 0x90 {
		_ = c.Close()
		return nil, fmt.Errorf("client %d: answers % x", i, in)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
