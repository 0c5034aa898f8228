package broker_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/testutil"
)

// The cases of issue #7's "Why", each run against the bundled broker (the real
// `mqbench broker` subprocess) and against Mosquitto 2.0.11 with the same files
// and the same real clients, so a wrong expectation shows up as a Mosquitto
// failure. Each failed on the bundled broker before it enforced security.

// secured is one broker under test.
type secured struct {
	name string
	addr string
}

// startSecured starts both brokers on loopback with the given config lines
// after their listener line (password and ACL files are absolute paths).
func startSecured(t *testing.T, lines ...string) []secured {
	t.Helper()
	testutil.RequireMosquitto(t)
	bin := testutil.BuildMqbench(t)
	extra := strings.Join(lines, "\n") + "\n"
	dir := t.TempDir()
	bconf := testutil.WriteFile(t, dir, "bundled.conf", "listener 0 127.0.0.1\nlog_dest none\n"+extra)
	b := testutil.StartBundled(t, bin, bconf)
	m := testutil.StartMosquittoConf(t, t.TempDir(), func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nuser root\nlog_dest none\n", port) + extra
	})
	return []secured{{"bundled", b.Addr}, {"mosquitto", m.Addr}}
}

// startFails starts both brokers with the config lines and expects each to
// refuse to start, returning the bundled broker's error text.
func startFails(t *testing.T, lines ...string) string {
	t.Helper()
	testutil.RequireMosquitto(t)
	bin := testutil.BuildMqbench(t)
	extra := strings.Join(lines, "\n") + "\n"
	dir := t.TempDir()
	bconf := testutil.WriteFile(t, dir, "bundled.conf", "listener 0 127.0.0.1\nlog_dest none\n"+extra)
	_, berr := testutil.StartBundledErr(t, bin, bconf)
	if berr == nil {
		t.Errorf("bundled broker started with %q, want a refusal", extra)
	}
	mconf := testutil.WriteFile(t, dir, "mosquitto.conf", fmt.Sprintf("listener %d 127.0.0.1\nuser root\nlog_dest stderr\n", testutil.FreePort(t))+extra)
	_, stderr, merr := testutil.Run(10*time.Second, nil, testutil.LookPath(testutil.MosquittoPath), "-c", mconf)
	if merr == nil || strings.Contains(merr.Error(), "timed out") {
		t.Errorf("mosquitto with %q: %v (stderr %s), want it to refuse to start", extra, merr, stderr)
	}
	if berr == nil {
		return ""
	}
	return berr.Error()
}

// passwordFile makes alice/secret-a and bob/secret-b with the real mosquitto_passwd.
func passwordFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pw.txt")
	passwd := testutil.LookPath("mosquitto_passwd")
	for i, u := range [][2]string{{"alice", "secret-a"}, {"bob", "secret-b"}} {
		args := []string{"-b", path, u[0], u[1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if _, stderr, err := testutil.Run(10*time.Second, nil, passwd, args...); err != nil {
			t.Fatalf("mosquitto_passwd %v: %v (%s)", args, err, stderr)
		}
	}
	return path
}

// connects reports whether mosquitto_pub can connect and publish with args.
func connects(t *testing.T, addr string, args ...string) (bool, string) {
	t.Helper()
	h, p, _ := net.SplitHostPort(addr)
	all := append([]string{"-h", h, "-p", p, "-t", "probe", "-m", "x", "-q", "1"}, args...)
	_, stderr, err := testutil.Run(10*time.Second, nil, testutil.LookPath(testutil.MosquittoPubPath), all...)
	return err == nil, stderr
}

func TestWrongPasswordRefused(t *testing.T) {
	pw := passwordFile(t)
	for _, b := range startSecured(t, "allow_anonymous false", "password_file "+pw) {
		for _, tc := range []struct {
			name string
			args []string
			ok   bool
		}{
			{"right password", []string{"-u", "alice", "-P", "secret-a"}, true},
			{"wrong password", []string{"-u", "alice", "-P", "wrong"}, false},
			{"other user's password", []string{"-u", "alice", "-P", "secret-b"}, false},
			{"unknown user", []string{"-u", "mallory", "-P", "secret-a"}, false},
			{"username without password", []string{"-u", "alice"}, false},
			{"anonymous", nil, false},
		} {
			ok, stderr := connects(t, b.addr, tc.args...)
			if ok != tc.ok {
				t.Errorf("%s: %s: connected %v, want %v (%s)", b.name, tc.name, ok, tc.ok, stderr)
			}
			if !ok && !strings.Contains(stderr, "not authorised") {
				t.Errorf("%s: %s: stderr %q, want CONNACK 5 (not authorised)", b.name, tc.name, stderr)
			}
		}
	}
}

func TestNoPasswordFileRefusesEveryone(t *testing.T) {
	for _, b := range startSecured(t, "allow_anonymous false") {
		for _, args := range [][]string{nil, {"-u", "anyone"}, {"-u", "anyone", "-P", "x"}} {
			if ok, stderr := connects(t, b.addr, args...); ok {
				t.Errorf("%s: %v connected, want refused: allow_anonymous false and no password file (%s)", b.name, args, stderr)
			}
		}
	}
}

func TestAnonymousWithPasswordFile(t *testing.T) {
	pw := passwordFile(t)
	for _, b := range startSecured(t, "allow_anonymous true", "password_file "+pw) {
		if ok, stderr := connects(t, b.addr); !ok {
			t.Errorf("%s: anonymous refused with allow_anonymous true: %s", b.name, stderr)
		}
		if ok, _ := connects(t, b.addr, "-u", "alice", "-P", "wrong"); ok {
			t.Errorf("%s: a wrong password got in because anonymous access is allowed", b.name)
		}
	}
}

func TestMissingPasswordFileStopsBroker(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-pwfile")
	msg := startFails(t, "allow_anonymous false", "password_file "+missing)
	if !strings.Contains(msg, "bundled.conf:4") || !strings.Contains(msg, missing) {
		t.Errorf("bundled refusal %q should name bundled.conf:4 and %s", msg, missing)
	}
}

func TestACLHidesEverythingFromAnonymous(t *testing.T) {
	pw := passwordFile(t)
	acl := testutil.WriteFile(t, t.TempDir(), "acl", "user alice\ntopic readwrite #\n")
	for _, b := range startSecured(t, "allow_anonymous true", "password_file "+pw, "acl_file "+acl) {
		anon := testutil.StartSub(t, b.addr, "-t", "#", "-q", "1")
		alice := testutil.StartSub(t, b.addr, "-t", "#", "-q", "1", "-u", "alice", "-P", "secret-a")
		testutil.Pub(t, b.addr, nil, 10*time.Second, "-t", "private/x", "-m", "hello", "-q", "1", "-u", "alice", "-P", "secret-a")
		if _, err := alice.WaitTopic("private/x", 10*time.Second); err != nil {
			t.Fatalf("%s: alice did not receive her own message: %v", b.name, err)
		}
		// The anonymous delivery would have been routed with alice's.
		time.Sleep(300 * time.Millisecond)
		if msgs := anon.Messages(); len(msgs) != 0 {
			t.Errorf("%s: anonymous subscriber to # received %+v; the ACL gives it nothing", b.name, msgs)
		}
	}
}

func TestMissingTLSFilesStopBroker(t *testing.T) {
	dir := t.TempDir()
	msg := startFails(t, "cafile "+filepath.Join(dir, "ca.crt"), "certfile "+filepath.Join(dir, "server.crt"),
		"keyfile "+filepath.Join(dir, "server.key"), "require_certificate true", "allow_anonymous true")
	if !strings.Contains(msg, "bundled.conf:") {
		t.Errorf("bundled refusal %q should name the config file and line", msg)
	}
}

// TestListenerWithoutAddressSaysAllInterfaces: `listener PORT` binds every
// interface in Mosquitto 2.0.11, so the bundled broker binds them too and says
// so, instead of naming loopback. No traffic goes anywhere but loopback.
func TestListenerWithoutAddressSaysAllInterfaces(t *testing.T) {
	bin := testutil.BuildMqbench(t)
	port := testutil.FreePort(t)
	conf := testutil.WriteFile(t, t.TempDir(), "all.conf", "listener "+strconv.Itoa(port)+"\nallow_anonymous true\nlog_dest none\n")
	b := testutil.StartBundled(t, bin, conf)
	testutil.WaitFor(t, "every listening line", func() bool { return strings.Count(b.Stdout(), "listening on") >= 1 })
	out := b.Stdout()
	if strings.Contains(out, "listening on 127.0.0.1") {
		t.Errorf("a listener without address claims loopback:\n%s", out)
	}
	if !strings.Contains(out, "0.0.0.0:"+strconv.Itoa(port)) && !strings.Contains(out, "[::]:"+strconv.Itoa(port)) {
		t.Errorf("listening lines should name the wildcard address on port %d:\n%s", port, out)
	}
	if ok, stderr := connects(t, "127.0.0.1:"+strconv.Itoa(port)); !ok {
		t.Errorf("loopback connect to the all-interfaces listener failed: %s", stderr)
	}
}

// TestUnhonourableKeysStopBroker: every key the bundled broker cannot honour
// stops it at start-up naming file and line, never a warning and service.
func TestUnhonourableKeysStopBroker(t *testing.T) {
	bin := testutil.BuildMqbench(t)
	// A bridge block is honoured, except the keys bridges do not implement
	// yet (bridgeconf.go), which are refused at their own line.
	const bridge = "connection b\naddress 127.0.0.1:1884\ntopic # out\n"
	for _, tc := range []struct{ lines, place string }{
		{"psk_file /tmp/psk", "r.conf:3"}, {"psk_hint hint", "r.conf:3"}, {"plugin /usr/lib/x.so", "r.conf:3"},
		{"log_dest syslog", "r.conf:3"}, {"memory_limit 10", "r.conf:3"},
		{bridge + "bridge_tls_version tlsv9", "r.conf:6"}, {bridge + "bridge_psk 0102", "r.conf:6"},
		{bridge + "bridge_identity i", "r.conf:6"},
	} {
		conf := testutil.WriteFile(t, t.TempDir(), "r.conf", "listener 0 127.0.0.1\nallow_anonymous true\n"+tc.lines+"\n")
		_, err := testutil.StartBundledErr(t, bin, conf)
		if err == nil {
			t.Errorf("%q: broker started, want a refusal", tc.lines)
			continue
		}
		if !strings.Contains(err.Error(), tc.place) {
			t.Errorf("%q: refusal %q does not name %s", tc.lines, err, tc.place)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuild()
	os.Exit(code)
}

func TestClientIDPrefixes(t *testing.T) {
	for _, b := range startSecured(t, "allow_anonymous true", "clientid_prefixes ok-") {
		if ok, stderr := connects(t, b.addr, "-i", "ok-1"); !ok {
			t.Errorf("%s: prefixed id refused: %s", b.name, stderr)
		}
		if ok, _ := connects(t, b.addr, "-i", "other"); ok {
			t.Errorf("%s: an id without the prefix got in", b.name)
		}
	}
}

// TestPerListenerSettings: with per_listener_settings each listener has its
// own security options: one listener takes anonymous clients, the other only
// users of its password file.
func TestPerListenerSettings(t *testing.T) {
	testutil.RequireMosquitto(t)
	pw := passwordFile(t)
	bin := testutil.BuildMqbench(t)
	render := func(open, closed int) string {
		return fmt.Sprintf("per_listener_settings true\nlistener %d 127.0.0.1\nallow_anonymous true\n"+
			"listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nlog_dest none\n", open, closed, pw)
	}
	for _, name := range []string{"bundled", "mosquitto"} {
		open, closed := testutil.FreePort(t), testutil.FreePort(t)
		dir := t.TempDir()
		if name == "bundled" {
			testutil.StartBundled(t, bin, testutil.WriteFile(t, dir, "p.conf", render(open, closed)))
		} else {
			testutil.StartMosquittoConf(t, dir, func(port int) string {
				open = port
				return render(port, closed) + "user root\n"
			})
		}
		oa, ca := net.JoinHostPort("127.0.0.1", strconv.Itoa(open)), net.JoinHostPort("127.0.0.1", strconv.Itoa(closed))
		testutil.WaitFor(t, name+" listening", func() bool { ok, _ := connects(t, oa); return ok })
		if ok, _ := connects(t, ca); ok {
			t.Errorf("%s: anonymous client got into the password listener", name)
		}
		if ok, stderr := connects(t, ca, "-u", "bob", "-P", "secret-b"); !ok {
			t.Errorf("%s: bob refused on the password listener: %s", name, stderr)
		}
	}
}
