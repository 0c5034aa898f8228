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
// mosquitto-clients). The broker lives in /usr/sbin, which is not always on PATH,
// so it is looked up on PATH first (as broker/launch does) and falls back there.
var (
	MosquittoPath    = defaultMosquittoPath()
	MosquittoPubPath = "mosquitto_pub"
	MosquittoSubPath = "mosquitto_sub"
)

func defaultMosquittoPath() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return "/usr/sbin/mosquitto"
}

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

// RequireMosquittoBroker is RequireMosquitto for tests that only start the
// broker (directly or through broker/launch) and need none of the clients; it
// returns the broker's path.
func RequireMosquittoBroker(t testing.TB) string {
	t.Helper()
	require(t, MosquittoPath)
	p, _ := findProgram(MosquittoPath)
	return p
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
	// Port is the listener port when the test must know it before the start
	// (e.g. it is written into a db file beforehand); 0 = a free port, with a
	// retry on the rare collision.
	Port int
}

// Mosquitto is a real Mosquitto started for a test.
type Mosquitto struct {
	*Proc
	Addr     string // 127.0.0.1:PORT
	Port     int
	Dir      string
	ConfPath string
	// DBPath is the persistence file path (whether or not persistence is on);
	// "" when the config came from StartMosquittoConf.
	DBPath string
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
// port (or o.Port) and waits until it accepts connections. Like
// RequireMosquittoBroker it skips the test (or fails it under RequireEnv) when
// the broker is missing; tests that also run the clients call RequireMosquitto.
// It is killed by PID when the test ends; use Stop for a clean shutdown
// (SIGTERM, final save).
func StartMosquitto(t testing.TB, o MosquittoOptions) *Mosquitto {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	file := o.PersistenceFile
	if file == "" {
		file = "mosquitto.db"
	}
	m := startMosquitto(t, o.Dir, o.Port, func(port int) string { return MosquittoConf(port, o) })
	m.DBPath = filepath.Join(o.Dir, file)
	return m
}

// StartMosquittoConf is StartMosquitto for a test whose config is the subject
// (a file broker/conf wrote, say): render returns the whole mosquitto.conf for
// the listener port it is given, which must include a loopback listener on it
// and, when run as root with persistence, `user root`. The config is written to
// dir/mosquitto.conf; a start failure reports the tail of a `log_dest file`.
func StartMosquittoConf(t testing.TB, dir string, render func(port int) string) *Mosquitto {
	t.Helper()
	return startMosquitto(t, dir, 0, render)
}

func startMosquitto(t testing.TB, dir string, fixedPort int, render func(port int) string) *Mosquitto {
	t.Helper()
	bin := RequireMosquittoBroker(t)
	attempts := 3
	if fixedPort != 0 {
		attempts = 1 // the same port again would collide again
	}
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		port := fixedPort
		if port == 0 {
			port = FreePort(t)
		}
		text := render(port)
		conf := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatalf("writing %s: %v", conf, err)
		}
		p, err := startProc(nil, bin, "-c", conf)
		if err != nil {
			t.Fatalf("starting mosquitto: %v", err)
		}
		t.Cleanup(p.Kill)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitListening(addr, p, 10*time.Second); err != nil {
			p.Kill()
			lastErr = fmt.Errorf("%w (stderr: %s%s)", err, tail(p.Stderr(), 2000), logFileTail(text))
			continue
		}
		return &Mosquitto{Proc: p, Addr: addr, Port: port, Dir: dir, ConfPath: conf}
	}
	t.Fatalf("mosquitto did not start: %v", lastErr)
	return nil
}

// logFileTail returns ", log FILE: TAIL" for the file a config logs to with
// `log_dest file FILE`, where Mosquitto then writes its start errors instead of
// stderr, or "" when there is none.
func logFileTail(conf string) string {
	for _, line := range strings.Split(conf, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "log_dest" && f[1] == "file" {
			b, err := os.ReadFile(f[2])
			if err != nil {
				return fmt.Sprintf(", log %s: %v", f[2], err)
			}
			return fmt.Sprintf(", log %s: %s", f[2], tail(string(b), 2000))
		}
	}
	return ""
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
