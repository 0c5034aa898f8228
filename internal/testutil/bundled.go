package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// buildDirPrefix names the directories BuildMqbench creates, with the test
// binary's PID appended so a later run can remove the ones whose process is gone.
const buildDirPrefix = "mqbench-testbin-"

// BuildMqbench builds ./cmd/mqbench once per test binary and returns the path of
// the executable. The subprocess tests need the real command (signals, exit
// codes, the "listening on" line), not just the library. Directories left by
// earlier test binaries that have exited are removed here, since a test binary
// has no hook that runs after its last test without a TestMain (a package that
// has one calls RemoveBuild there).
func BuildMqbench(t testing.TB) string {
	t.Helper()
	bin, err := BuildMqbenchErr()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// BuildMqbenchErr is BuildMqbench for a TestMain, which has no testing.TB to
// fail: it returns the build error instead.
func BuildMqbenchErr() (string, error) {
	buildOnce.Do(func() {
		removeStaleBuildDirs()
		goBin, ok := findProgram("go")
		if !ok {
			if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
				goBin = "/usr/local/go/bin/go"
			} else {
				buildErr = fmt.Errorf("no go command to build mqbench")
				return
			}
		}
		dir := buildDir()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = fmt.Errorf("creating %s: %w", dir, err)
			return
		}
		out := filepath.Join(dir, "mqbench")
		_, stderr, err := Run(5*time.Minute, nil, goBin, "build", "-o", out, "github.com/mqbench/mqbench/cmd/mqbench")
		if err != nil {
			buildErr = fmt.Errorf("building mqbench: %w: %s", err, stderr)
			return
		}
		buildPath = out
	})
	return buildPath, buildErr
}

// RemoveBuild deletes what BuildMqbench built for this test binary. A TestMain
// calls it after m.Run, so the package leaves nothing in the temp directory;
// no test may use the binary afterwards.
func RemoveBuild() {
	_ = os.RemoveAll(buildDir())
}

// buildDir is this test binary's build directory.
func buildDir() string {
	return filepath.Join(os.TempDir(), buildDirPrefix+strconv.Itoa(os.Getpid()))
}

func removeStaleBuildDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), buildDirPrefix+"*"))
	for _, m := range matches {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(m), buildDirPrefix))
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(m)
	}
}

// Bundled is `mqbench broker -c FILE` running as a subprocess.
type Bundled struct {
	*Proc
	Addr     string // first "listening on" address
	ConfPath string
}

// StartBundled runs `BIN broker -c conf` and waits for its "listening on" line
// (the address is taken from it, so the config may use port 0). It is killed by
// PID when the test ends.
func StartBundled(t testing.TB, bin, conf string) *Bundled {
	t.Helper()
	b, err := startBundled(bin, conf)
	if b != nil {
		t.Cleanup(b.Kill)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// StartBundledErr is StartBundled returning the error instead of failing, for
// tests that expect a start to fail; the process is still cleaned up.
func StartBundledErr(t testing.TB, bin, conf string) (*Bundled, error) {
	t.Helper()
	b, err := startBundled(bin, conf)
	if b != nil {
		t.Cleanup(b.Kill)
	}
	return b, err
}

func startBundled(bin, conf string) (*Bundled, error) {
	p, err := startProc(nil, bin, "broker", "-c", conf)
	if err != nil {
		return nil, fmt.Errorf("starting %s broker: %w", bin, err)
	}
	b := &Bundled{Proc: p, ConfPath: conf}
	line, err := p.WaitStdoutLine("listening on", 20*time.Second)
	if err != nil {
		p.Kill()
		return b, fmt.Errorf("mqbench broker -c %s: %w (exit %d, stderr: %s)", conf, err, p.ExitCode(), tail(p.Stderr(), 2000))
	}
	i := strings.LastIndex(line, "listening on ")
	// "listening on HOST:PORT (mqtt)": the address is the first word.
	if f := strings.Fields(line[i+len("listening on "):]); len(f) > 0 {
		b.Addr = f[0]
	}
	return b, nil
}

// BundledConf renders a mosquitto.conf for the bundled broker: one loopback
// listener on port 0 (the broker picks and prints it), anonymous access, and
// persistence in dir when dir is not empty.
func BundledConf(dir string, extra ...string) string {
	var b strings.Builder
	b.WriteString("listener 0 127.0.0.1\n")
	b.WriteString("allow_anonymous true\n")
	if dir != "" {
		b.WriteString("persistence true\n")
		fmt.Fprintf(&b, "persistence_location %s/\n", strings.TrimSuffix(dir, "/"))
	}
	for _, l := range extra {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// WriteFile writes content to dir/name and returns the path, failing the test on error.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("writing %s: %v", p, err)
	}
	return p
}

// LookPath resolves one of the mosquitto client programs for exec.
func LookPath(name string) string {
	if p, ok := findProgram(name); ok {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}
