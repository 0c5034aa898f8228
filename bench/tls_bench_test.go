package bench

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/internal/pki"
	"github.com/mqbench/mqbench/internal/testutil"
)

// transportBroker is a broker (Mosquitto, or the bundled one as a subprocess)
// with the same broker settings as
// throughput-qos2 (no queue or inflight limits) on four loopback listeners:
// plain, TLS, websockets and websockets over TLS, so one broker process
// serves every transport and only the transport differs between runs.
// Mosquitto's websockets listeners need `socket_domain ipv4` to keep to
// 127.0.0.1 (see startTLSBroker).
type transportBroker struct {
	pid   int
	addrs map[string]string // transport name -> address
	tls   *tls.Config       // trusts the test CA, verifies 127.0.0.1
}

// benchBrokers are the brokers the transport benchmarks compare in one run:
// Mosquitto and the bundled broker as a subprocess, with the same config.
var benchBrokers = []string{"mosquitto", "bundled"}

func startTransportBroker(b *testing.B, kind, extraConf string) *transportBroker {
	b.Helper()
	dir := b.TempDir()
	f, err := pki.WriteSet(filepath.Join(dir, "pki"), []string{"127.0.0.1"}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tb := &transportBroker{tls: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	certs := fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\n", f.CA, f.ServerCert, f.ServerKey)
	render := func(port int) string {
		p2, p3, p4 := testutil.FreePort(b), testutil.FreePort(b), testutil.FreePort(b)
		tb.addrs = map[string]string{
			"tcp": fmt.Sprintf("tcp://127.0.0.1:%d", port),
			"tls": fmt.Sprintf("mqtts://127.0.0.1:%d", p2),
			"ws":  fmt.Sprintf("ws://127.0.0.1:%d/mqtt", p3),
			"wss": fmt.Sprintf("wss://127.0.0.1:%d/mqtt", p4),
		}
		return fmt.Sprintf("listener %d 127.0.0.1\nlistener %d 127.0.0.1\n%s"+
			"listener %d 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\nlistener %d 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n%s"+
			"allow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n%s%s",
			port, p2, certs, p3, p4, certs, rootUser(), extraConf)
	}
	if kind == "bundled" {
		bin := testutil.BuildMqbench(b)
		conf := testutil.WriteFile(b, dir, "bundled.conf", render(testutil.FreePort(b)))
		tb.pid = testutil.StartBundled(b, bin, conf).PID
	} else {
		tb.pid = testutil.StartMosquittoConf(b, dir, render).PID
	}
	for _, a := range tb.addrs {
		u, _ := url.Parse(a)
		waitPort(b, u.Host)
	}
	return tb
}

// transports in the order the benchmarks report them.
var transports = []string{"tcp", "tls", "ws", "wss"}

// BenchmarkPublishQoS2Transport is BenchmarkPublishQoS2's lean publisher
// (10,000 QoS 2 150-byte messages, window 1,000, no subscriber) over each
// transport to the same Mosquitto: what TLS and websockets cost the
// throughput a run measures. Measured: not much, and plain TCP is not the
// cheapest for Mosquitto 2.0.11, which reads a plain socket a few bytes at a
// time (7 read() calls per QoS 2 message, /proc/PID/io syscr) where OpenSSL
// and libwebsockets hand it whole buffered records.
func BenchmarkPublishQoS2Transport(b *testing.B) {
	for _, kind := range benchBrokers {
		b.Run(kind, func(b *testing.B) {
			tb := startTransportBroker(b, kind, "")
			for _, tr := range transports {
				b.Run(tr, func(b *testing.B) {
					measure(b, tb.pid, func() time.Duration {
						return leanPublishTLS(b, tb.addrs[tr], tb.tls, benchMessages, 1000)
					})
				})
			}
		})
	}
}

// BenchmarkConnect measures connections per second: dial (with the TLS
// handshake or websocket upgrade), CONNECT, CONNACK, DISCONNECT, close,
// one after the other, as connection_per_message runs do. "tls-resumed"
// keeps a session cache, so later handshakes resume the first; "tls1.2"
// stops at TLS 1.2. Each runs
// against Mosquitto as configured by default and with set_tcp_nodelay true:
// with TLS 1.3 the default costs a delayed-ACK wait per connection (OpenSSL
// writes its session tickets, then CONNACK waits behind them for our ACK,
// about 40 ms), which TLS 1.2 or set_tcp_nodelay avoid.
func BenchmarkConnect(b *testing.B) {
	for _, kind := range benchBrokers {
		for _, conf := range []struct{ name, extra string }{{"default", ""}, {"nodelay", "set_tcp_nodelay true\n"}} {
			b.Run(kind+"/"+conf.name, func(b *testing.B) {
				tb := startTransportBroker(b, kind, conf.extra)
				for _, name := range append(transports, "tls-resumed", "tls1.2") {
					b.Run(name, func(b *testing.B) { benchConnect(b, tb, name) })
				}
			})
		}
	}
}

func benchConnect(b *testing.B, tb *transportBroker, name string) {
	addr, cfg := tb.addrs[name], tb.tls
	switch name {
	case "tls-resumed":
		addr, cfg = tb.addrs["tls"], tb.tls.Clone()
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	case "tls1.2":
		addr, cfg = tb.addrs["tls"], tb.tls.Clone()
		cfg.MaxVersion = tls.VersionTLS12
	}
	tr, err := leanAddr(addr)
	if err != nil {
		b.Fatal(err)
	}
	o := leanOptions{ClientID: "bench-connect", Clean: true, KeepAlive: keepAlive}
	cpu0, bcpu0 := cpuTime(b), brokerCPU(tb.pid)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		connectOnce(b, tr, cfg, &o)
	}
	d := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/d.Seconds(), "connects/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/connect")
	b.ReportMetric(float64((brokerCPU(tb.pid)-bcpu0).Microseconds())/float64(b.N), "broker-cpu-µs/connect")
}

// connectOnce is one connect, CONNACK, DISCONNECT, close, bounded by connectTimeout.
func connectOnce(b *testing.B, tr leanTransport, cfg *tls.Config, o *leanOptions) {
	nc, err := tr.open(cfg, connectTimeout)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(connectTimeout)); err != nil {
		b.Fatal(err)
	}
	if err := o.connectPacket().Write(nc); err != nil {
		b.Fatal(err)
	}
	pkt, err := packets.ReadPacket(bufio.NewReader(nc))
	if err != nil {
		b.Fatal(err)
	}
	if ca, ok := pkt.(*packets.ConnackPacket); !ok || ca.ReturnCode != packets.Accepted {
		b.Fatalf("got %v, want CONNACK accepted", pkt)
	}
	if err := packets.NewControlPacket(packets.Disconnect).Write(nc); err != nil {
		b.Fatal(err)
	}
}
