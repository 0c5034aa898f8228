package broker_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mqbench/mqbench/broker"
	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/internal/pki"
	"github.com/mqbench/mqbench/internal/testutil"
)

// How a bridge dials its remote: the source address (bridge_bind_address,
// which Debian's 2.0.11 does not apply to the link itself),
// the TLS versions it offers (bridge_tls_version) and its ALPN protocol
// (bridge_alpn). The remote here is a recording listener, not a broker, so
// what the bridge offers is seen directly; Mosquitto 2.0.11 and the bundled
// broker dial it with the same block, so an expectation Mosquitto does not
// meet fails on its side.

// dialSeen is what the recording listener saw of one incoming connection.
type dialSeen struct {
	source   string   // the connection's source IP
	versions []uint16 // TLS versions the ClientHello offered (nil: plain TCP)
	alpn     []string // ALPN protocols it offered
	connect  bool     // a CONNECT followed (for TLS: the handshake succeeded)
}

// recordingRemote accepts connections on 127.0.0.1 (with TLS when cert is
// set) and reports what each offered, then closes it.
func recordingRemote(t *testing.T, cert *tls.Certificate) (string, <-chan dialSeen) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	seen := make(chan dialSeen, 1000) // a retrying bridge dials again and again
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
				d := dialSeen{source: nc.RemoteAddr().(*net.TCPAddr).IP.String()}
				if cert != nil {
					tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{*cert},
						GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
							d.versions, d.alpn = slices.Clone(h.SupportedVersions), slices.Clone(h.SupportedProtos)
							return nil, nil
						}})
					if tc.Handshake() != nil {
						seen <- d
						return
					}
					nc = tc
				}
				var b [1]byte
				if _, err := nc.Read(b[:]); err == nil && b[0] == 0x10 {
					d.connect = true
				}
				seen <- d
			}()
		}
	}()
	return ln.Addr().String(), seen
}

// startLocal starts a broker of kind with the bridge block.
func startLocal(t *testing.T, kind string, block []string) {
	t.Helper()
	startSide(t, kind, t.TempDir(), 0, block...)
}

func firstDial(t *testing.T, seen <-chan dialSeen) dialSeen {
	t.Helper()
	select {
	case d := <-seen:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("the bridge never dialled its remote")
	}
	return dialSeen{}
}

func TestBridgeDialOptions(t *testing.T) {
	testutil.RequireMosquitto(t)
	f := makeTLSFiles(t)
	cert, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{kindMosquitto, kindBundled} {
		t.Run(kind, func(t *testing.T) {
			t.Run("bind_address", func(t *testing.T) {
				// Debian's 2.0.11 connects through its asynchronous-DNS
				// path, which does not bind to bridge_bind_address (only
				// the primary-address probe does): the link comes from
				// the default source address.
				addr, seen := recordingRemote(t, nil)
				startLocal(t, kind, bridgeBlock(addr, "bridge_bind_address 127.0.0.2", "topic x out"))
				if d := firstDial(t, seen); d.source != "127.0.0.1" {
					t.Errorf("bridge dialled from %s, want 127.0.0.1 as Mosquitto 2.0.11 does", d.source)
				}
			})
			for _, tc := range []struct {
				name, lines string
				min         uint16
				alpn        []string
			}{
				{"default", "", tls.VersionTLS12, nil},
				{"tlsv1.2 and alpn", "bridge_tls_version tlsv1.2\nbridge_alpn mqtt", tls.VersionTLS12, []string{"mqtt"}},
				{"tlsv1.3", "bridge_tls_version tlsv1.3", tls.VersionTLS13, nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					addr, seen := recordingRemote(t, &cert)
					lines := []string{"bridge_cafile " + f.CA, "topic x out"}
					if tc.lines != "" {
						lines = append(lines, tc.lines)
					}
					startLocal(t, kind, bridgeBlock(addr, lines...))
					d := firstDial(t, seen)
					if len(d.versions) == 0 {
						t.Fatalf("no TLS ClientHello from the bridge")
					}
					if m := slices.Min(d.versions); m != tc.min {
						t.Errorf("lowest TLS version offered %s, want %s (offered %v)", tls.VersionName(m), tls.VersionName(tc.min), names(d.versions))
					}
					if !slices.Equal(d.alpn, tc.alpn) {
						t.Errorf("ALPN offered %q, want %q", d.alpn, tc.alpn)
					}
				})
			}
		})
	}
}

func names(vs []uint16) []string {
	var out []string
	for _, v := range vs {
		out = append(out, tls.VersionName(v))
	}
	return out
}

// TestBridgeTLSVersionUnknown: a bridge_tls_version Mosquitto would only fail
// on at every connect attempt stops the bundled broker at start, naming the
// line (fail closed).
func TestBridgeTLSVersionUnknown(t *testing.T) {
	f := makeTLSFiles(t)
	text := "listener 0 127.0.0.1\nallow_anonymous true\nconnection b\naddress 127.0.0.1:1\nbridge_cafile " + f.CA + "\nbridge_tls_version tlsv9\ntopic x out\n"
	cfg, err := conf.Parse(strings.NewReader(text), "b.conf")
	if err != nil {
		t.Fatal(err)
	}
	_, err = broker.New(broker.Options{Config: cfg, ConfigFile: "b.conf"})
	if err == nil || !strings.Contains(err.Error(), "b.conf:6") {
		t.Errorf("err = %v, want a refusal naming b.conf:6", err)
	}
}

// TestBridgeRequireOCSP: with bridge_require_ocsp the remote must staple a
// good, current OCSP response for its certificate, whose signer OpenSSL can
// find (sent by the server); without one, or with a revoked one, the bridge
// does not connect.
func TestBridgeRequireOCSP(t *testing.T) {
	testutil.RequireMosquitto(t)
	dir := t.TempDir()
	ca, err := pki.NewCA("ocsp-ca")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server([]string{"127.0.0.1"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	staple := func(status int, next time.Duration) []byte {
		now := time.Now()
		der, err := ocsp.CreateResponse(ca.Cert, ca.Cert, ocsp.Response{Status: status, SerialNumber: leaf.Cert.SerialNumber,
			ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(next), RevokedAt: now.Add(-time.Hour)}, ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	for _, kind := range []string{kindMosquitto, kindBundled} {
		for _, tc := range []struct {
			name         string
			require      bool
			staple       []byte
			noIssuerSent bool // the server sends its certificate alone
			want         bool
		}{
			{"not required, none stapled", false, nil, false, true},
			{"required, none stapled", true, nil, false, false},
			{"required, good", true, staple(ocsp.Good, time.Hour), false, true},
			{"required, good, issuer not sent", true, staple(ocsp.Good, time.Hour), true, false},
			{"required, good but 1 min out of date", true, staple(ocsp.Good, -time.Minute), false, true},
			{"required, good but expired 10 min ago", true, staple(ocsp.Good, -10*time.Minute), false, false},
			{"required, revoked", true, staple(ocsp.Revoked, time.Hour), false, false},
		} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
				if err != nil {
					t.Fatal(err)
				}
				cert.OCSPStaple = tc.staple
				if !tc.noIssuerSent {
					cert.Certificate = append(cert.Certificate, ca.Cert.Raw)
				}
				addr, seen := recordingRemote(t, &cert)
				lines := []string{"bridge_cafile " + caFile, "topic x out"}
				if tc.require {
					lines = append(lines, "bridge_require_ocsp true")
				}
				startLocal(t, kind, bridgeBlock(addr, lines...))
				if d := firstDial(t, seen); d.connect != tc.want {
					t.Errorf("bridge sent CONNECT %v, want %v", d.connect, tc.want)
				}
			})
		}
	}
}
