package listen_test

import (
	"crypto/tls"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker/listen"
	"github.com/mqbench/mqbench/internal/testutil"
)

// Handshake rate of our TLS listener and, for scale, of the real Mosquitto
// with the same certificate (ECDSA P-256, TLS 1.3, full handshakes: the
// client keeps no session cache). The client runs in the same process, so
// the numbers include its half of each handshake.
//
//	go test -run XXX -bench TLSHandshake -benchtime 2000x ./broker/listen
//
// On the shared 2-core test machine (load varying, best of runs): ours
// ~510 handshakes/s server-auth, ~390/s mutual; Mosquitto ~580/s
// server-auth. Under load 16 all three fall to 175-490/s.

func BenchmarkTLSHandshake(b *testing.B) {
	for _, mutual := range []bool{false, true} {
		name := "server-auth"
		if mutual {
			name = "mutual"
		}
		b.Run(name, func(b *testing.B) {
			f := newTLSFixture(b)
			kv := []string{"certfile", f.serverCert, "keyfile", f.serverKey}
			if mutual {
				kv = append(kv, "cafile", f.caFile, "require_certificate", "true")
			}
			ln := openOne(b, lconf(kv...))
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, _ = listen.Handshake(c, 5*time.Second)
						c.Close()
					}()
				}
			}()
			b.Cleanup(func() { ln.Close(); wg.Wait() })
			runHandshakes(b, ln.String(), clientTLS(b, f, mutual))
		})
	}
}

func BenchmarkTLSHandshakeMosquitto(b *testing.B) {
	testutil.RequireMosquittoBroker(b)
	f := newTLSFixture(b)
	kv := []string{"certfile", f.serverCert, "keyfile", f.serverKey}
	m := testutil.StartMosquittoConf(b, b.TempDir(), func(port int) string {
		return mosqLines(port, kv...) + "log_type none\n"
	})
	runHandshakes(b, m.Addr, clientTLS(b, f, false))
}

func runHandshakes(b *testing.B, addr string, cfg *tls.Config) {
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			b.Fatalf("handshake %d: %v", i, err)
		}
		c.Close()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
}

func clientTLS(b *testing.B, f *tlsFixture, mutual bool) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(f.ca.Cert)
	cfg := &tls.Config{RootCAs: pool} // no ClientSessionCache: every handshake is a full one
	if mutual {
		pair, err := tls.LoadX509KeyPair(f.clients["good"][0], f.clients["good"][1])
		if err != nil {
			b.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}
