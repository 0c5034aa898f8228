package bench

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/internal/pki"
	"github.com/mqbench/mqbench/scenarios"
)

func TestParseTarget(t *testing.T) {
	for _, tt := range []struct{ addr, err string }{
		{"tcp://127.0.0.1:1883", ""},
		{"mqtt://127.0.0.1:1883", ""},
		{"mqtts://127.0.0.1:8883", ""},
		{"ws://127.0.0.1:9001/mqtt", ""},
		{"wss://127.0.0.1:9001", ""},
		{"mqtt://alice:hunter2@127.0.0.1:1883", "credentials in the address are not supported"},
		{"http://127.0.0.1:80", "unknown scheme"},
		{"tcp://127.0.0.1", "want SCHEME://HOST:PORT"},
	} {
		_, err := parseTarget(tt.addr)
		if (tt.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("parseTarget(%q) = %v, want %q", tt.addr, err, tt.err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// connScenario loads a scenario with the given connect section.
func connScenario(t *testing.T, connect string) *scenarios.Scenario {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	text := "name: c\n" + connect + "publishers:\n  - {messages: 1, qos: 1, topic: t}\nduration: 1s\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestResolveConns(t *testing.T) {
	dir := t.TempDir()
	f, err := pki.WriteSet(dir, []string{"127.0.0.1"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o644)
	tlsSection := "connect:\n  tls:\n    ca: " + f.CA + "\n    cert: " + f.ClientCert + "\n    key: " + f.ClientKey + "\n"

	r, err := resolveConns(connScenario(t, tlsSection), "mqtts://127.0.0.1:8883")
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.pubs[0].tls
	if cfg == nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "127.0.0.1" || cfg.InsecureSkipVerify || r.sys.tls == nil {
		t.Errorf("tls config %+v", cfg)
	}
	r, err = resolveConns(connScenario(t, "connect:\n  tls: {insecure: true, server_name: broker.test}\n"), "wss://127.0.0.1:1/mqtt")
	if err != nil {
		t.Fatal(err)
	}
	if c := r.pubs[0]; !c.tls.InsecureSkipVerify || c.tls.ServerName != "broker.test" || !strings.Contains(c.insecure, "c.yaml:3: connect.tls.insecure") {
		t.Errorf("insecure: %+v %q", c.tls, c.insecure)
	}
	for _, tt := range []struct{ connect, addr, want string }{
		{tlsSection, "tcp://127.0.0.1:1883", "c.yaml:4: connect.tls: TLS settings, but the broker address tcp://127.0.0.1:1883 is not a TLS one"},
		{tlsSection, "ws://127.0.0.1:1883", "is not a TLS one"},
		{"", "mqtts://127.0.0.1:8883", "give the CA"},
		{"connect:\n  tls: {ca: " + notPEM + "}\n", "mqtts://127.0.0.1:8883", "c.yaml:3: connect.tls.ca: " + notPEM + " holds no PEM certificate"},
		{"connect:\n  tls: {ca: /nonexistent/ca.pem}\n", "mqtts://127.0.0.1:8883", "c.yaml:3: connect.tls.ca: reading the CA file"},
		{"connect:\n  tls: {ca: " + f.CA + ", cert: " + f.ClientCert + ", key: " + f.CA + "}\n", "mqtts://127.0.0.1:8883", "connect.tls.cert: loading the client certificate"},
	} {
		if _, err := resolveConns(connScenario(t, tt.connect), tt.addr); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q to %s: err %v, want %q", tt.connect, tt.addr, err, tt.want)
		}
	}
}

const credsSection = "connect:\n  username: alice\n  password: hunter2\n  keepalive: 17s\n  will: {topic: gone, payload: bye, qos: 1, retain: true}\n"

// TestConnSettingsPaho: paho clients get the credentials, keepalive and will;
// the $SYS monitor (withWill false) no will.
func TestConnSettingsPaho(t *testing.T) {
	r, err := resolveConns(connScenario(t, credsSection), "tcp://127.0.0.1:1883")
	if err != nil {
		t.Fatal(err)
	}
	o := r.pubs[0].apply(mqtt.NewClientOptions(), true)
	if o.Username != "alice" || o.Password != "hunter2" || o.KeepAlive != 17 || !o.WillEnabled ||
		o.WillTopic != "gone" || string(o.WillPayload) != "bye" || o.WillQos != 1 || !o.WillRetained {
		t.Errorf("paho options %+v", o)
	}
	if o := r.sys.apply(mqtt.NewClientOptions(), false); o.WillEnabled || o.Username != "alice" {
		t.Errorf("$SYS monitor options: will %v user %q", o.WillEnabled, o.Username)
	}
}

// TestLeanConnectPacket: the lean publisher's CONNECT carries the same, as
// a broker reads it off the wire.
func TestLeanConnectPacket(t *testing.T) {
	r, err := resolveConns(connScenario(t, credsSection), "tcp://127.0.0.1:1883")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *packets.ConnectPacket, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(hangGuard))
		pkt, err := packets.ReadPacket(bufio.NewReader(c))
		if err != nil {
			close(got)
			return
		}
		cp, _ := pkt.(*packets.ConnectPacket)
		got <- cp
		packets.NewControlPacket(packets.Connack).Write(c)
		c.Read(make([]byte, 1)) // until the client goes
	}()
	cs := r.pubs[0]
	stop := make(chan struct{})
	c, err := dialLean(leanOptions{
		Addr: "tcp://" + ln.Addr().String(), ClientID: "lean-creds", Clean: true, QoS: 1, Topic: "t", Window: 1,
		Username: cs.username, Password: cs.password, HasPassword: cs.hasPass, Will: cs.will, KeepAlive: cs.keepAlive,
		Stop: stop, Since: func() int64 { return 0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	close(stop)
	c.close()
	cp := <-got
	if cp == nil || !cp.UsernameFlag || cp.Username != "alice" || !cp.PasswordFlag || string(cp.Password) != "hunter2" || cp.Keepalive != 17 ||
		!cp.WillFlag || cp.WillTopic != "gone" || string(cp.WillMessage) != "bye" || cp.WillQos != 1 || !cp.WillRetain {
		t.Errorf("CONNECT %v", cp)
	}
}
