package listen_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/broker/listen"
	"github.com/mqbench/mqbench/internal/testutil"
)

// testConf is where test listener settings claim to come from, so error
// places can be asserted.
const testConf = "test.conf"

// lconf builds a listener on 127.0.0.1 port 0 from key/value pairs, with
// Places recording each key at a distinct line (line = 10 + index).
func lconf(kv ...string) conf.Listener {
	l := conf.Listener{BindAddress: "127.0.0.1", MaxConnections: -1, Protocol: "mqtt",
		Line:   conf.Setting{Key: "listener", Value: "0 127.0.0.1", File: testConf, Line: 1},
		Places: map[string]conf.Setting{}}
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		l.Places[k] = conf.Setting{Key: k, Value: v, File: testConf, Line: 10 + i/2}
		switch k {
		case "bind_address":
			l.BindAddress = v
		case "port":
			l.Port, _ = strconv.Atoi(v)
		case "protocol":
			l.Protocol = v
		case "bind_interface":
			l.BindInterface = v
		case "socket_domain":
			l.SocketDomain = v
		case "cafile":
			l.CAFile = v
		case "capath":
			l.CAPath = v
		case "certfile":
			l.CertFile = v
		case "keyfile":
			l.KeyFile = v
		case "crlfile":
			l.CRLFile = v
		case "ciphers":
			l.Ciphers = v
		case "ciphers_tls1.3":
			l.CiphersTLS13 = v
		case "tls_version":
			l.TLSVersion = v
		case "dhparamfile":
			l.DHParamFile = v
		case "tls_engine":
			l.TLSEngine = v
		case "tls_keyform":
			l.TLSKeyform = v
		case "psk_hint":
			l.PSKHint = v
		case "http_dir":
			l.HTTPDir = v
		case "require_certificate":
			l.RequireCertificate = v == "true"
		case "use_identity_as_username":
			l.UseIdentityAsUsername = v == "true"
		case "use_subject_as_username":
			l.UseSubjectAsUsername = v == "true"
		default:
			panic("lconf: unknown key " + k)
		}
	}
	return l
}

// mosqLines renders the listener keys of kv as mosquitto.conf lines for a
// real Mosquitto on port (bind_address becomes the listener address).
func mosqLines(port int, kv ...string) string {
	addr := "127.0.0.1"
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "bind_address" {
			addr = kv[i+1]
		}
	}
	fmt.Fprintf(&b, "listener %d %s\n", port, addr)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] != "bind_address" {
			fmt.Fprintf(&b, "%s %s\n", kv[i], kv[i+1])
		}
	}
	b.WriteString("allow_anonymous true\nuser root\nlog_dest stderr\nlog_type all\nconnection_messages true\n")
	return b.String()
}

// openOne opens a listener that must bind exactly one socket, closed at cleanup.
func openOne(t testing.TB, l conf.Listener) *listen.Listener {
	t.Helper()
	lns, _, err := listen.Open(l)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { listen.CloseAll(lns) })
	if len(lns) != 1 {
		t.Fatalf("open bound %d sockets, want 1", len(lns))
	}
	return lns[0]
}

// session is what the mini broker saw of one connection.
type session struct {
	handshakeErr error
	state        *tls.ConnectionState
	username     string // from the certificate when listen.CertificateUsername
	identityOK   bool
	connected    bool // a CONNECT arrived and was answered
}

// miniBroker is just enough MQTT for mosquitto_pub: it answers CONNECT with
// CONNACK (refusing with code 4 when the certificate yields no username),
// PINGREQ with PINGRESP, and ignores the rest until the client leaves. Each
// finished connection is reported on the returned channel.
func miniBroker(t *testing.T, ln *listen.Listener) <-chan session {
	t.Helper()
	out := make(chan session, 64)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
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
				defer c.Close()
				out <- serveMini(c, ln)
			}()
		}
	}()
	return out
}

func serveMini(c net.Conn, ln *listen.Listener) session {
	var s session
	st, err := listen.Handshake(c, 5*time.Second)
	if err != nil {
		s.handshakeErr = err
		return s
	}
	s.state = st
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for {
		typ, _, err := readPacket(r)
		if err != nil {
			if s.state != nil && !s.connected && s.handshakeErr == nil {
				// TLS 1.3: a client certificate the server rejects surfaces on
				// the first read, after Handshake returned.
				s.handshakeErr = err
			}
			return s
		}
		switch typ >> 4 {
		case 1: // CONNECT
			code := byte(0)
			if listen.CertificateUsername(ln.Conf) {
				if st == nil {
					code = 4
				} else if s.username, s.identityOK = listen.Identity(*st, ln.Conf); !s.identityOK {
					code = 4
				}
			}
			if _, err := c.Write([]byte{0x20, 2, 0, code}); err != nil {
				return s
			}
			s.connected = true
			if code != 0 {
				return s
			}
		case 12: // PINGREQ
			_, _ = c.Write([]byte{0xd0, 0})
		case 14: // DISCONNECT
			return s
		}
	}
}

func readPacket(r *bufio.Reader) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&127) * mult
		mult *= 128
		if b&128 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("bad remaining length")
		}
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return typ, body, err
}

// pub runs mosquitto_pub against addr with extra args; nil = it published.
func pub(addr string, args ...string) error {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	full := append([]string{"-h", h, "-p", p, "-t", "listen/test", "-m", "x", "-q", "0"}, args...)
	_, stderr, err := testutil.Run(15*time.Second, nil, testutil.LookPath(testutil.MosquittoPubPath), full...)
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr))
	}
	return nil
}

// nextSession waits for the mini broker's next finished connection.
func nextSession(t *testing.T, ch <-chan session) session {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no connection reached the listener")
		return session{}
	}
}

func requireOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv(testutil.RequireEnv) == "1" {
			t.Fatal("openssl not installed")
		}
		t.Skip("openssl not installed")
	}
	return p
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// confWith is a config holding exactly these listeners.
func confWith(ls ...conf.Listener) *conf.Config {
	c := conf.Default()
	c.Listeners = ls
	return c
}
