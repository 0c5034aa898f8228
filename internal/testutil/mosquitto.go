package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Paths of the real Mosquitto 2.0.11 programs (Debian packages mosquitto and
// mosquitto-clients). The broker lives in /usr/sbin, which is not always on PATH.
var (
	MosquittoPath    = "/usr/sbin/mosquitto"
	MosquittoPubPath = "mosquitto_pub"
	MosquittoSubPath = "mosquitto_sub"
)

// RequireEnv is the variable that turns a missing Mosquitto from a skip into a
// failure, so CI (which installs it) can never pass by skipping.
const RequireEnv = "MQBENCH_REQUIRE_MOSQUITTO"

func findProgram(name string) (string, bool) {
	if filepath.IsAbs(name) {
		if st, err := os.Stat(name); err == nil && !st.IsDir() {
			return name, true
		}
		return "", false
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	return "", false
}

func require(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, ok := findProgram(n); !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("mosquitto programs not installed: %s (apt-get install mosquitto mosquitto-clients)", strings.Join(missing, ", "))
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s, and %s=1", msg, RequireEnv)
		return
	}
	t.Skip(msg)
}

// RequireMosquitto skips the test when the real Mosquitto broker or its clients
// are missing, unless MQBENCH_REQUIRE_MOSQUITTO=1, then it fails the test.
func RequireMosquitto(t testing.TB) {
	t.Helper()
	require(t, MosquittoPath, MosquittoPubPath, MosquittoSubPath)
}

// RequireClients is RequireMosquitto for tests that only need mosquitto_pub and
// mosquitto_sub (they run against the bundled broker).
func RequireClients(t testing.TB) {
	t.Helper()
	require(t, MosquittoPubPath, MosquittoSubPath)
}

// FreePort returns a loopback TCP port that was free a moment ago. Real
// Mosquitto cannot bind port 0 and report it, so its tests need one; callers
// retry on the rare collision.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// MosquittoOptions configure StartMosquitto.
type MosquittoOptions struct {
	// Dir is the data directory (persistence_location) and where the config is
	// written; "" = a new t.TempDir().
	Dir string
	// Persistence turns on `persistence true` with the file Dir/PersistenceFile.
	Persistence bool
	// PersistenceFile is the db file name; "" = mosquitto.db.
	PersistenceFile string
	// Extra config lines appended verbatim (e.g. "max_queued_messages 0").
	Extra []string
	// LogDest is the log_dest value; "" = none (stderr is kept for failures when
	// set to "stderr").
	LogDest string
}

// Mosquitto is a real Mosquitto started for a test.
type Mosquitto struct {
	*Proc
	Addr     string // 127.0.0.1:PORT
	Port     int
	Dir      string
	ConfPath string
	DBPath   string // persistence file path (whether or not persistence is on)
}

// MosquittoConf renders the config StartMosquitto writes: a loopback listener,
// anonymous access, `user root` (2.0 run as root would otherwise drop to user
// mosquitto and fail to write the data directory), persistence in dir.
func MosquittoConf(port int, o MosquittoOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listener %d 127.0.0.1\n", port)
	b.WriteString("allow_anonymous true\n")
	b.WriteString("user root\n")
	logDest := o.LogDest
	if logDest == "" {
		logDest = "none"
	}
	fmt.Fprintf(&b, "log_dest %s\n", logDest)
	if o.Persistence {
		b.WriteString("persistence true\n")
		fmt.Fprintf(&b, "persistence_location %s/\n", strings.TrimSuffix(o.Dir, "/"))
		file := o.PersistenceFile
		if file == "" {
			file = "mosquitto.db"
		}
		fmt.Fprintf(&b, "persistence_file %s\n", file)
	}
	for _, l := range o.Extra {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// StartMosquitto starts the real Mosquitto with the options on a free loopback
// port and waits until it accepts connections. It is killed by PID when the test
// ends; use Stop for a clean shutdown (SIGTERM, final save).
func StartMosquitto(t testing.TB, o MosquittoOptions) *Mosquitto {
	t.Helper()
	RequireMosquitto(t)
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	file := o.PersistenceFile
	if file == "" {
		file = "mosquitto.db"
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := FreePort(t)
		conf := filepath.Join(o.Dir, "mosquitto.conf")
		if err := os.WriteFile(conf, []byte(MosquittoConf(port, o)), 0o644); err != nil {
			t.Fatalf("writing %s: %v", conf, err)
		}
		p, err := startProc(nil, MosquittoPath, "-c", conf)
		if err != nil {
			t.Fatalf("starting mosquitto: %v", err)
		}
		t.Cleanup(p.Kill)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitListening(addr, p, 10*time.Second); err != nil {
			p.Kill()
			lastErr = fmt.Errorf("%w (stderr: %s)", err, tail(p.Stderr(), 2000))
			continue
		}
		return &Mosquitto{Proc: p, Addr: addr, Port: port, Dir: o.Dir, ConfPath: conf, DBPath: filepath.Join(o.Dir, file)}
	}
	t.Fatalf("mosquitto did not start: %v", lastErr)
	return nil
}

// waitListening polls addr until a TCP connect succeeds or the process exits.
func waitListening(addr string, p *Proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("%s exited before listening on %s: %v", p.Name, addr, p.waitErr)
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listening on %s after %v", addr, timeout)
}
