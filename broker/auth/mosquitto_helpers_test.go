package auth

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/testutil"
)

// The tests against the real Mosquitto 2.0.11 share these helpers. They skip
// when it is not installed (fail under MQBENCH_REQUIRE_MOSQUITTO=1).

// writeFile writes content to dir/name and returns the path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mosquittoConf is a loopback listener config with log output on stderr plus
// extra lines. `user root` keeps a root-run 2.0 from switching to the
// mosquitto user, which could not read the test's temporary files.
func mosquittoConf(port int, extra ...string) string {
	lines := append([]string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		"user root",
		"log_dest stderr",
		"log_type all",
	}, extra...)
	return strings.Join(lines, "\n") + "\n"
}

// startMosquitto starts the real broker with mosquittoConf and waits until it
// listens; it is killed when the test ends.
func startMosquitto(t testing.TB, dir string, extra ...string) *testutil.Mosquitto {
	t.Helper()
	testutil.RequireMosquitto(t)
	return testutil.StartMosquittoConf(t, dir, func(port int) string { return mosquittoConf(port, extra...) })
}

// startMosquittoOutcome starts the real broker with the extra config lines and
// reports whether it came up (then it is left running and returned) or exited
// (then its stderr is returned). Used where refusing to start is the result.
func startMosquittoOutcome(t testing.TB, dir string, extra ...string) (*testutil.Proc, string, bool) {
	t.Helper()
	bin := testutil.RequireMosquittoBroker(t)
	port := testutil.FreePort(t)
	conf := writeFile(t, dir, "mosquitto.conf", mosquittoConf(port, extra...))
	p := testutil.StartProc(t, nil, bin, "-c", conf)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return nil, p.Stderr(), false
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return p, p.Stderr(), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("mosquitto neither listened on %s nor exited (stderr: %s)", addr, p.Stderr())
	return nil, "", false
}

// runPasswd runs the real mosquitto_passwd with args.
func runPasswd(t testing.TB, args ...string) {
	t.Helper()
	testutil.RequireMosquitto(t)
	bin, ok := lookPasswd()
	if !ok {
		t.Skip("mosquitto_passwd not installed")
	}
	if _, stderr, err := testutil.Run(20*time.Second, nil, bin, args...); err != nil {
		t.Fatalf("mosquitto_passwd %v: %v (%s)", args, err, stderr)
	}
}

func lookPasswd() (string, bool) {
	for _, p := range []string{"/usr/bin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	return "", false
}

// droppedLogged counts the password entries the broker logged as dropped
// ("Invalid line in password file", "... removing entry"), waiting up to 2 s
// for want of them: stderr is collected asynchronously.
func droppedLogged(m *testutil.Mosquitto, want int) int {
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := 0
		for _, line := range strings.Split(m.Stderr(), "\n") {
			if strings.Contains(line, "Invalid line in password file") || strings.Contains(line, "removing entry") {
				n++
			}
		}
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}
