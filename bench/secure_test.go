package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker/launch"
	"github.com/mqbench/mqbench/internal/pki"
	"github.com/mqbench/mqbench/internal/testutil"
	"github.com/mqbench/mqbench/scenarios"
)

// secureScenario has every kind of client: a lean and a paho publisher, a
// subscriber, and the $SYS monitor (on by default).
const secureScenario = `name: secure
publishers:
  - client_id: lean
    messages: 50
    qos: 2
    topic: sec/lean
    inflight: 10
  - client_id: paho
    client: paho
    messages: 50
    qos: 1
    topic: sec/paho
    inflight: 10
subscribers:
  - client_id: sub
    filter: sec/#
    qos: 2
duration: 1500ms
drain_timeout: 10s
`

func loadSecure(t *testing.T, flags scenarios.ConnectFlags, sets ...string) *scenarios.Scenario {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secure.yaml")
	if err := os.WriteFile(p, []byte(secureScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Load(p, sets)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.ApplyConnectFlags(flags); err != nil {
		t.Fatal(err)
	}
	return sc
}

// external is the target for a broker address, through launch as `mqbench
// run --broker ADDR` gets it.
func external(t *testing.T, addr string) *launch.Instance {
	t.Helper()
	inst, err := launch.Start(context.Background(), launch.Options{Kind: addr})
	if err != nil {
		t.Fatalf("external target %s: %v", addr, err)
	}
	return inst
}

// requirePasswd finds mosquitto_passwd (package mosquitto), skipping the test
// when it is missing unless MQBENCH_REQUIRE_MOSQUITTO=1.
func requirePasswd(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"mosquitto_passwd", "/usr/bin/mosquitto_passwd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv(testutil.RequireEnv) == "1" {
		t.Fatalf("mosquitto_passwd not installed, and %s=1", testutil.RequireEnv)
	}
	t.Skip("mosquitto_passwd not installed (apt-get install mosquitto)")
	return ""
}

// passwordFile writes a Mosquitto password file with the real mosquitto_passwd.
func passwordFile(t *testing.T, dir string, users ...string) string {
	t.Helper()
	bin := requirePasswd(t)
	file := filepath.Join(dir, "passwd")
	for i := 0; i+1 < len(users); i += 2 {
		args := []string{"-b", file, users[i], users[i+1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if _, stderr, err := testutil.Run(hangGuard, nil, bin, args...); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, stderr)
		}
	}
	return file
}

// rootUser keeps Mosquitto 2.0 started as root from dropping to user
// mosquitto, which cannot read the test's files.
func rootUser() string {
	if os.Geteuid() == 0 {
		return "user root\n"
	}
	return ""
}

// checkSecureRun checks a run of secureScenario: every message published,
// acknowledged and delivered, the $SYS monitor connected, nothing tainted
// except by the notes allowed.
func checkSecureRun(t *testing.T, dir string, allowWarn ...string) *Run {
	t.Helper()
	run, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if run.Footer == nil || run.Footer.Status != "ok" {
		t.Fatalf("footer %+v", run.Footer)
	}
	for _, r := range run.Footer.Reasons {
		ok := false
		for _, a := range allowWarn {
			ok = ok || strings.Contains(r, a)
		}
		if !ok {
			t.Errorf("run tainted: %s", r)
		}
	}
	gauges := 0
	for _, e := range run.Events {
		if e.Type == EvGauge && e.Name == GaugeClients {
			gauges++
		}
		if e.Type == EvNote {
			t.Logf("note at %s: %s: %s", time.Duration(e.T), e.Level, e.Msg)
		}
		if e.Type == EvPhase {
			t.Logf("phase at %s: %s", time.Duration(e.T), e.Msg)
		}
		if e.Type == EvNote && strings.Contains(e.Msg, "no $SYS") {
			t.Errorf("$SYS monitor: %s", e.Msg)
		}
	}
	if gauges == 0 {
		t.Error("no $SYS gauge recorded: the monitor did not get through")
	}
	s := Summarize(run)
	if s.Published != 100 || s.Acked != 100 || s.Lost != 0 || s.Delivered+s.HeldAtEnd != 100 {
		t.Errorf("published %d acked %d delivered %d held %d lost %d, want 100 through", s.Published, s.Acked, s.Delivered, s.HeldAtEnd, s.Lost)
	}
	return run
}

// grepRunDir fails if secret appears in any file of the run directory
// (events.jsonl.gz decompressed).
func grepRunDir(t *testing.T, dir, secret string) {
	t.Helper()
	for _, p := range testutil.FilesContaining(t, dir, secret) {
		t.Errorf("%s contains the password", p)
	}
}

// TestMosquittoPasswordAuth: against Mosquitto with allow_anonymous false
// and a password file, a run without credentials fails saying so, and with
// them every client (lean and paho publishers, subscriber, $SYS monitor)
// gets through; the password is nowhere in the recorded run.
func TestMosquittoPasswordAuth(t *testing.T) {
	dir := t.TempDir()
	pw := passwordFile(t, dir, "alice", "secret", "bob", "bobs-own")
	m := testutil.StartMosquittoConf(t, dir, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nsys_interval 1\nlog_dest none\n%s", port, pw, rootUser())
	})
	addr := "tcp://" + m.Addr

	t.Run("no credentials", func(t *testing.T) {
		sc := loadSecure(t, scenarios.ConnectFlags{})
		_, err := Execute(context.Background(), Options{Scenario: sc, Target: external(t, addr), OutDir: t.TempDir()})
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "not authori") {
			t.Fatalf("err %v, want not authorised", err)
		}
	})
	t.Run("lean publisher alone, wrong password", func(t *testing.T) {
		sc := loadSecure(t, scenarios.ConnectFlags{Username: "alice", Password: "wrong"}, "sample.sys=false")
		sc.Subscribers, sc.Publishers = nil, sc.Publishers[:1]
		_, err := Execute(context.Background(), Options{Scenario: sc, Target: external(t, addr), OutDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "Not Authorised (CONNACK 5)") || !strings.Contains(err.Error(), "publisher lean") {
			t.Fatalf("err %v, want the lean publisher refused with CONNACK 5", err)
		}
	})
	t.Run("alice", func(t *testing.T) {
		sc := loadSecure(t, scenarios.ConnectFlags{Username: "alice", Password: "secret"})
		out := filepath.Join(t.TempDir(), "run")
		if _, err := Execute(context.Background(), Options{Scenario: sc, Target: external(t, addr), OutDir: out}); err != nil {
			t.Fatal(err)
		}
		run := checkSecureRun(t, out)
		version := false
		for _, e := range run.Events {
			version = version || e.Type == EvNote && strings.HasPrefix(e.Msg, "broker version (from $SYS/broker/version): mosquitto version 2.")
		}
		if run.Header.BrokerVersion == "" && !version {
			t.Error("the broker's version is neither in the header nor in a note")
		}
		if !bytes.Contains(run.Header.Scenario, []byte(`"password":"(set)"`)) {
			t.Errorf("header scenario does not record the password as set: %s", run.Header.Scenario)
		}
		grepRunDir(t, out, "secret")
	})
	t.Run("subscriber group as bob", func(t *testing.T) {
		// The group's connect section wins over the run-wide flags, for it only.
		sets := []string{"subscribers.0.connect.username=bob", "subscribers.0.connect.password=bobs-own"}
		out := filepath.Join(t.TempDir(), "run")
		sc := loadSecure(t, scenarios.ConnectFlags{Username: "alice", Password: "secret"}, sets...)
		if _, err := Execute(context.Background(), Options{Scenario: sc, Target: external(t, addr), OutDir: out}); err != nil {
			t.Fatal(err)
		}
		checkSecureRun(t, out)
		grepRunDir(t, out, "bobs-own")
		sc = loadSecure(t, scenarios.ConnectFlags{Username: "alice", Password: "secret"}, sets[0], "subscribers.0.connect.password=wrong")
		_, err := Execute(context.Background(), Options{Scenario: sc, Target: external(t, addr), OutDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "connecting subscriber sub") || !strings.Contains(strings.ToLower(err.Error()), "not authori") {
			t.Fatalf("bob with a wrong password: %v", err)
		}
	})
	t.Run("password_env", func(t *testing.T) {
		t.Setenv("MQB_SECURE_PW", "secret")
		sc := loadSecure(t, scenarios.ConnectFlags{}, "connect.username=alice", "connect.password_env=MQB_SECURE_PW")
		out := filepath.Join(t.TempDir(), "run")
		if _, err := Execute(context.Background(), Options{Scenario: sc, Target: external(t, addr), OutDir: out}); err != nil {
			t.Fatal(err)
		}
		checkSecureRun(t, out)
		grepRunDir(t, out, "secret")
		// Unset, the run does not start, and says where the variable is named.
		unsetenvBench(t, "MQB_SECURE_PW")
		_, err := Execute(context.Background(), Options{Scenario: sc, Target: external(t, addr), OutDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "--set connect.password_env: connect.password_env: environment variable MQB_SECURE_PW is not set") {
			t.Fatalf("err %v", err)
		}
	})
}

func unsetenvBench(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	os.Unsetenv(name)
}

// tlsBroker starts Mosquitto with a plain listener, a TLS listener that
// requires a client certificate, and websockets listeners (plain and TLS),
// all on loopback, with certificates from internal/pki. Two quirks of
// Mosquitto 2.0.11's websockets (libwebsockets 4.1): it refuses to start with
// websockets listeners only, so the plain one is needed anyway, and without
// `socket_domain ipv4` it ignores the bind address and listens on [::] on
// every interface, IPv6 only (so 127.0.0.1 is refused).
type tlsBroker struct {
	files                 *pki.Files
	plain, mqtts, ws, wss string
}

func startTLSBroker(t *testing.T) *tlsBroker {
	t.Helper()
	dir := t.TempDir()
	files, err := pki.WriteSet(filepath.Join(dir, "pki"), []string{"127.0.0.1", "localhost"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	b := &tlsBroker{files: files}
	tlsLines := fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n", files.CA, files.ServerCert, files.ServerKey)
	m := testutil.StartMosquittoConf(t, dir, func(port int) string {
		p2, p3, p4 := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
		b.mqtts = fmt.Sprintf("mqtts://127.0.0.1:%d", p2)
		b.ws = fmt.Sprintf("ws://127.0.0.1:%d/mqtt", p3)
		b.wss = fmt.Sprintf("wss://127.0.0.1:%d/mqtt", p4)
		return fmt.Sprintf("listener %d 127.0.0.1\nlistener %d 127.0.0.1\n%slistener %d 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\nlistener %d 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n%s"+
			"allow_anonymous true\nsys_interval 1\nlog_dest none\n%s", port, p2, tlsLines, p3, p4, tlsLines, rootUser())
	})
	b.plain = "tcp://" + m.Addr
	// StartMosquittoConf waited for the first listener; the others open just after.
	for _, a := range []string{b.mqtts, b.ws, b.wss} {
		u, _ := url.Parse(a)
		waitPort(t, u.Host)
	}
	return b
}

// waitPort waits (bounded) until hostport accepts TCP connections.
func waitPort(t testing.TB, hostport string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		c, err := net.DialTimeout("tcp", hostport, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listening on %s: %v", hostport, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMosquittoTLS: mqtts:// to a listener that requires a client
// certificate: the run gets through with the CA and alice's certificate, and
// fails clearly without the certificate, with another CA or with a server
// name the certificate does not carry; insecure gets through with a warning.
func TestMosquittoTLS(t *testing.T) {
	b := startTLSBroker(t)
	f := b.files
	client := scenarios.ConnectFlags{CAFile: f.CA, Cert: f.ClientCert, Key: f.ClientKey}
	t.Run("client certificate", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run")
		if _, err := Execute(context.Background(), Options{Scenario: loadSecure(t, client), Target: external(t, b.mqtts), OutDir: out}); err != nil {
			t.Fatal(err)
		}
		checkSecureRun(t, out)
	})
	t.Run("insecure", func(t *testing.T) {
		flags := client
		flags.CAFile, flags.Insecure = "", true
		out := filepath.Join(t.TempDir(), "run")
		if _, err := Execute(context.Background(), Options{Scenario: loadSecure(t, flags), Target: external(t, b.mqtts), OutDir: out}); err != nil {
			t.Fatal(err)
		}
		run := checkSecureRun(t, out, "TLS certificate verification is OFF")
		if !run.Footer.Tainted || !strings.Contains(strings.Join(run.Footer.Reasons, ";"), "--insecure: connect.tls.insecure") {
			t.Errorf("insecure run not flagged: %+v", run.Footer)
		}
	})
	other, err := pki.WriteSet(t.TempDir(), []string{"127.0.0.1"}, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		flags scenarios.ConnectFlags
		want  string
	}{
		{"no client certificate", scenarios.ConnectFlags{CAFile: f.CA}, "connecting"},
		{"another CA", scenarios.ConnectFlags{CAFile: other.CA, Cert: f.ClientCert, Key: f.ClientKey}, "certificate signed by unknown authority"},
		{"wrong server name", scenarios.ConnectFlags{CAFile: f.CA, Cert: f.ClientCert, Key: f.ClientKey, ServerName: "wrong.example"}, "wrong.example"},
		{"client certificate of another CA", scenarios.ConnectFlags{CAFile: f.CA, Cert: other.ClientCert, Key: other.ClientKey}, "connecting"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, client := range []string{scenarios.ClientLean, scenarios.ClientPaho} {
				sc := loadSecure(t, tt.flags, "sample.sys=false")
				sc.Subscribers, sc.Publishers = nil, sc.Publishers[:1]
				sc.Publishers[0].Client = client
				_, err := Execute(context.Background(), Options{Scenario: sc, Target: external(t, b.mqtts), OutDir: t.TempDir()})
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s publisher: err %v, want %q", client, err, tt.want)
				}
			}
		})
	}
	t.Run("no CA for a TLS address", func(t *testing.T) {
		_, err := Execute(context.Background(), Options{Scenario: loadSecure(t, scenarios.ConnectFlags{}), Target: external(t, b.mqtts), OutDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "give the CA") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("TLS settings for a plain address", func(t *testing.T) {
		_, err := Execute(context.Background(), Options{Scenario: loadSecure(t, client), Target: external(t, b.plain), OutDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "--cafile: connect.tls: TLS settings, but the broker address tcp://") &&
			!strings.Contains(err.Error(), "connect.tls: TLS settings, but the broker address tcp://") {
			t.Fatalf("err %v", err)
		}
	})
}

// TestMosquittoWebsockets: ws:// and wss:// (with the client certificate) to
// Mosquitto's websockets listeners, every client kind.
func TestMosquittoWebsockets(t *testing.T) {
	b := startTLSBroker(t)
	f := b.files
	t.Run("ws", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run")
		if _, err := Execute(context.Background(), Options{Scenario: loadSecure(t, scenarios.ConnectFlags{}), Target: external(t, b.ws), OutDir: out}); err != nil {
			t.Fatal(err)
		}
		checkSecureRun(t, out)
	})
	t.Run("wss", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run")
		flags := scenarios.ConnectFlags{CAFile: f.CA, Cert: f.ClientCert, Key: f.ClientKey}
		if _, err := Execute(context.Background(), Options{Scenario: loadSecure(t, flags), Target: external(t, b.wss), OutDir: out}); err != nil {
			t.Fatal(err)
		}
		checkSecureRun(t, out)
	})
}
