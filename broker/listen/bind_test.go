package listen_test

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/broker/listen"
	"github.com/mqbench/mqbench/internal/testutil"
)

func addrs(lns []*listen.Listener) []string {
	var out []string
	for _, l := range lns {
		out = append(out, l.String())
	}
	return out
}

func openAddrs(t *testing.T, l conf.Listener) ([]string, []string) {
	t.Helper()
	lns, warnings, err := listen.Open(l)
	if err != nil {
		t.Fatalf("open %+v: %v", l, err)
	}
	t.Cleanup(func() { listen.CloseAll(lns) })
	return addrs(lns), warnings
}

// TestWildcardBindsBothFamilies: no address = 0.0.0.0 and :: (two sockets,
// IPv6 one v6-only), sharing the one free port picked for port 0.
func TestWildcardBindsBothFamilies(t *testing.T) {
	l := lconf()
	l.BindAddress = ""
	got, _ := openAddrs(t, l)
	if len(got) != 2 || !strings.HasPrefix(got[0], "0.0.0.0:") || !strings.HasPrefix(got[1], "[::]:") {
		t.Fatalf("addresses %v, want 0.0.0.0:P and [::]:P", got)
	}
	if p0, p1 := got[0][strings.LastIndex(got[0], ":"):], got[1][strings.LastIndex(got[1], ":"):]; p0 != p1 {
		t.Fatalf("ports differ: %v", got)
	}
	// Both answer on loopback.
	port := got[0][strings.LastIndex(got[0], ":")+1:]
	for _, a := range []string{"127.0.0.1:" + port, "[::1]:" + port} {
		c, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err != nil {
			t.Errorf("dial %s: %v", a, err)
			continue
		}
		c.Close()
	}

	l.SocketDomain = "ipv4"
	if got, _ := openAddrs(t, l); len(got) != 1 || !strings.HasPrefix(got[0], "0.0.0.0:") {
		t.Errorf("socket_domain ipv4: %v", got)
	}
	l.SocketDomain = "ipv6"
	if got, _ := openAddrs(t, l); len(got) != 1 || !strings.HasPrefix(got[0], "[::]:") {
		t.Errorf("socket_domain ipv6: %v", got)
	}
}

func TestHostAddresses(t *testing.T) {
	if got, _ := openAddrs(t, lconf("bind_address", "::1")); len(got) != 1 || !strings.HasPrefix(got[0], "[::1]:") {
		t.Errorf("::1: %v", got)
	}
	got, _ := openAddrs(t, lconf("bind_address", "localhost"))
	for _, a := range got {
		if !strings.HasPrefix(a, "127.0.0.1:") && !strings.HasPrefix(a, "[::1]:") {
			t.Errorf("localhost bound %s", a)
		}
	}
	if _, _, err := listen.Open(lconf("bind_address", "::1", "socket_domain", "ipv4")); err == nil {
		t.Error("::1 with socket_domain ipv4 opened")
	}
	// A taken port fails the listener and leaves nothing open.
	first := openOne(t, lconf())
	l := lconf()
	l.BindAddress = ""
	l.Port = first.Addr().(*net.TCPAddr).Port
	if lns, _, err := listen.Open(l); err == nil {
		listen.CloseAll(lns)
		t.Error("bound a port in use")
	} else if !strings.Contains(err.Error(), "test.conf:1") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %q", err)
	}
}

// TestBindInterfaceMatchesMosquitto: bind_interface binds the interface's
// addresses (Mosquitto's getifaddrs lookup, not SO_BINDTODEVICE); each case
// is run against the real Mosquitto with the same lines.
func TestBindInterfaceMatchesMosquitto(t *testing.T) {
	testutil.RequireMosquittoBroker(t)
	for _, tc := range []struct {
		kv   []string
		want []string // address prefixes; nil = the listener fails
	}{
		{[]string{"bind_interface", "lo"}, []string{"127.0.0.1:", "[::1]:"}},
		{[]string{"bind_interface", "LO"}, []string{"127.0.0.1:", "[::1]:"}}, // strcasecmp
		{[]string{"bind_interface", "lo", "socket_domain", "ipv4"}, []string{"127.0.0.1:"}},
		{[]string{"bind_address", "127.0.0.1", "bind_interface", "lo"}, []string{"127.0.0.1:"}},
		{[]string{"bind_address", "127.0.0.2", "bind_interface", "lo"}, nil},
		{[]string{"bind_interface", "nosuch0"}, nil},
	} {
		l := lconf(tc.kv...)
		if _, ok := l.Places["bind_address"]; !ok {
			l.BindAddress = ""
		}
		lns, warnings, err := listen.Open(l)
		got := addrs(lns)
		listen.CloseAll(lns)
		mosqOK := mosquittoStarts(t, tc.kv)
		if (err == nil) != (tc.want != nil) || mosqOK != (tc.want != nil) {
			t.Errorf("%v: our error %v (warnings %q), mosquitto started %v, want ok=%v", tc.kv, err, warnings, mosqOK, tc.want != nil)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%v: bound %v, want %v", tc.kv, got, tc.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.want[i]) {
				t.Errorf("%v: bound %v, want %v", tc.kv, got, tc.want)
			}
		}
	}
}

// mosquittoStarts runs the real Mosquitto on a free port with the listener
// lines (no address = all interfaces, as in the case) and reports whether it
// came up (still running after a short wait, answering on loopback).
func mosquittoStarts(t *testing.T, kv []string) bool {
	t.Helper()
	dir := t.TempDir()
	port := testutil.FreePort(t)
	var b strings.Builder
	addr := ""
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "bind_address" {
			addr = " " + kv[i+1]
		}
	}
	fmt.Fprintf(&b, "listener %d%s\nuser root\nallow_anonymous true\nlog_dest stderr\n", port, addr)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] != "bind_address" {
			fmt.Fprintf(&b, "%s %s\n", kv[i], kv[i+1])
		}
	}
	path := writeFile(t, dir, "mosquitto.conf", []byte(b.String()))
	_, stderr, err := testutil.Run(time.Second, nil, testutil.MosquittoPath, "-c", path)
	var exit *exec.ExitError
	if errors.As(err, &exit) && !strings.Contains(err.Error(), "timed out") {
		t.Logf("mosquitto %v: %v: %s", kv, err, strings.TrimSpace(stderr))
		return false
	}
	return strings.Contains(err.Error(), "timed out") // still running when stopped
}

func TestLocalOnly(t *testing.T) {
	if !conf.Default().LocalOnly() {
		t.Fatal("a config without listeners is not local-only")
	}
	port := testutil.FreePort(t)
	lns, _, err := listen.OpenLocalOnly(port)
	if err != nil {
		t.Fatal(err)
	}
	defer listen.CloseAll(lns)
	got := addrs(lns)
	want := []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("[::1]:%d", port)}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] || lns[0].Index != -1 {
		t.Fatalf("local-only bound %v, want %v", got, want)
	}
	// One address failing is tolerated, as in Mosquitto.
	taken, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no ::1: %v", err)
	}
	defer taken.Close()
	lns2, warnings, err := listen.OpenLocalOnly(taken.Addr().(*net.TCPAddr).Port)
	if err != nil {
		t.Fatal(err)
	}
	defer listen.CloseAll(lns2)
	if len(lns2) != 1 || !strings.HasPrefix(lns2[0].String(), "127.0.0.1:") || len(warnings) != 1 {
		t.Fatalf("with ::1 taken: %v, warnings %q", addrs(lns2), warnings)
	}
}

func TestOpenAllClosesOnError(t *testing.T) {
	good := lconf()
	good.Port = testutil.FreePort(t)
	bad := lconf("psk_hint", "x")
	lns, _, err := listen.OpenAll(confWith(good, bad))
	if err == nil {
		listen.CloseAll(lns)
		t.Fatal("opened a psk_hint listener")
	}
	if lns != nil {
		t.Fatalf("returned listeners with an error: %v", addrs(lns))
	}
	// The good listener's port is free again.
	again := openOne(t, good)
	if again.Addr().(*net.TCPAddr).Port != good.Port {
		t.Fatalf("reopened on %s", again)
	}
}

// TestBacklogLikeMosquitto: sockets listen with Mosquitto's backlog of 100,
// not somaxconn (ss reports the backlog as a listening socket's Send-Q).
func TestBacklogLikeMosquitto(t *testing.T) {
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Skip("ss not installed")
	}
	ln := openOne(t, lconf())
	out, _, err := testutil.Run(5*time.Second, nil, ss, "-ltnH", fmt.Sprintf("sport = :%d", ln.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Skipf("ss: %v", err)
	}
	if f := strings.Fields(out); len(f) < 3 || f[2] != "100" {
		t.Fatalf("ss line %q, want Send-Q (backlog) 100", out)
	}
}
