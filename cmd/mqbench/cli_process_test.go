package main

// Processes: an interrupted or crashed run, and the broker command; the
// helpers that find and watch the children a run started.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/internal/testutil"
)

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// childPIDs lists the live children of pid from /proc.
func childPIDs(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := procStat(n); ok && ppid == pid && state != "Z" {
			out = append(out, n)
		}
	}
	return out
}

// procStat reads the parent PID and state of pid from /proc/PID/stat.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != "Z"
}

// startedRun is a `mqbench run` in progress, with the PID of its broker child.
type startedRun struct {
	cmd            *exec.Cmd
	waited         chan error
	brokerPID      int
	stdout, stderr *bytes.Buffer
}

// startRun starts `mqbench run ARGS --out dir` and returns once its broker
// child runs and the event file exists. The run is killed (as a process
// group) when the test ends, if it has not exited by then.
func startRun(t *testing.T, dir string, args ...string) *startedRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	cmd, stdout, stderr := newCmd(ctx, t, cliOpts{}, append(append([]string{"run"}, args...), "--out", dir, "--no-progress")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &startedRun{cmd: cmd, waited: make(chan error, 1), stdout: stdout, stderr: stderr}
	go func() { r.waited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-r.waited
		}
		if r.brokerPID != 0 && alive(r.brokerPID) {
			_ = syscall.Kill(r.brokerPID, syscall.SIGKILL) // our grandchild, left behind
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pid := 0
		for _, c := range childPIDs(cmd.Process.Pid) {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c)); err == nil && bytes.Contains(b, []byte("broker")) {
				pid = c
			}
		}
		if _, err := os.Stat(filepath.Join(dir, bench.EventsFile)); err == nil && pid != 0 {
			r.brokerPID = pid
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no broker child and event file within 20 s\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	return nil
}

// wait waits for mqbench to exit; bound is a hang guard, not a speed assertion.
func (r *startedRun) wait(t *testing.T, bound time.Duration) error {
	t.Helper()
	select {
	case err := <-r.waited:
		return err
	case <-time.After(bound):
		t.Fatalf("mqbench did not exit within %s\nstderr:\n%s", bound, r.stderr)
		return nil
	}
}

// TestInterrupt stops a run from outside: SIGINT (Ctrl-C) to mqbench itself,
// not its process group, so mqbench alone must stop its broker, and SIGKILL,
// after which the kernel must take the broker down with it. Either way no
// broker is left running; after SIGINT the run is recorded as interrupted.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sig  syscall.Signal
	}{
		{"SIGINT", syscall.SIGINT},
		{"SIGKILL", syscall.SIGKILL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "run")
			r := startRun(t, dir, "persist-3s", "--time-scale", "0.2")
			time.Sleep(2 * time.Second) // let the backlog build
			if err := r.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err := r.wait(t, 30*time.Second)
			brokerGone := func() bool { return !alive(r.brokerPID) }
			for deadline := time.Now().Add(10 * time.Second); !brokerGone() && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond) // SIGKILL: the kernel's parent-death signal is asynchronous
			}
			if !brokerGone() {
				t.Errorf("broker PID %d still running after mqbench exited", r.brokerPID)
			}
			run := readRun(t, dir)
			addr := strings.TrimPrefix(run.Header.BrokerAddr, "tcp://")
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("broker address %s still accepts connections", addr)
			}
			if tc.sig != syscall.SIGINT {
				return
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Errorf("exit: %v, want exit status 130 (interrupted)\nstderr:\n%s", err, r.stderr)
			}
			if !strings.Contains(r.stderr.String(), "interrupted") {
				t.Errorf("stderr does not say interrupted:\n%s", r.stderr)
			}
			if run.Footer == nil || run.Footer.Status != "interrupted" {
				t.Errorf("footer %+v, want status interrupted", run.Footer)
			}
			if s := readSummary(t, dir); s.Status != "interrupted" || s.Published == 0 {
				t.Errorf("summary status %q published %d, want interrupted with some messages", s.Status, s.Published)
			}
		})
	}
}

// TestCrash runs the shipped crash scenario (SIGKILL between two saves, then a
// restart) shortened, with each publisher client: the loss is measured and the
// planned kill does not taint the run (paho reports the publishes the kill
// broke only once the broker is back; that must not count as unexpected).
func TestCrash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sets []string
	}{
		{"default client", nil},
		{"paho client", []string{"--set", "publishers.0.client=paho"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "run")
			args := append([]string{"run", "crash-3s", "--time-scale", "0.3", "--out", dir, "--no-progress"}, tc.sets...)
			res := runCLI(t, cliOpts{timeout: 90 * time.Second}, args...)
			if res.code != 0 {
				t.Fatalf("%s", res)
			}
			s := readSummary(t, dir)
			if s.Crash == nil {
				t.Fatalf("summary has no crash section\n%s", res)
			}
			if s.LostInCrash <= 0 || s.LostInCrash > s.Acked {
				t.Errorf("lost_in_crash %d, want in (0, acked %d]", s.LostInCrash, s.Acked)
			}
			if s.Tainted {
				t.Errorf("planned kill tainted the run: %v", s.TaintReasons)
			}
			if s.Status != "ok" {
				t.Errorf("status %q, want ok", s.Status)
			}
		})
	}
}

// TestBrokerCommand runs `mqbench broker -c CONF` as a user would: it reports
// its address, takes a retained message, saves it on SIGTERM, removes its pid
// file and exits 0; `mqbench inspect` then finds the message in the file.
func TestBrokerCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	confPath := filepath.Join(dir, "broker.conf")
	pidPath := filepath.Join(dir, "broker.pid")
	conf := fmt.Sprintf("listener 0 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\npid_file %s\nlog_dest none\n", dir, pidPath)
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b := testutil.StartBundled(t, mqbenchBin, confPath)
	addr := b.Addr
	if pid, err := os.ReadFile(pidPath); err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(b.PID) {
		t.Errorf("pid file %q (%v), want %d", pid, err, b.PID)
	}

	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("cli-test").SetConnectRetry(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connecting to %s: %v", addr, tok.Error())
	}
	if tok := c.Publish("cli/retained", 1, true, "kept"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publishing: %v", tok.Error())
	}
	c.Disconnect(100)

	if err := b.Stop(15 * time.Second); err != nil {
		t.Fatalf("broker exit after SIGTERM: %v", err)
	}
	if _, err := os.Stat(pidPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left behind (%v)", err)
	}
	res := runCLI(t, cliOpts{}, "inspect", "--json", filepath.Join(dir, "mosquitto.db"))
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	var st struct {
		Shutdown bool `json:"shutdown"`
		Chunks   struct {
			Retain   int `json:"retain"`
			MsgStore int `json:"msg_store"`
		} `json:"chunks"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, res.stdout)
	}
	if !st.Shutdown || st.Chunks.Retain != 1 || st.Chunks.MsgStore < 1 {
		t.Errorf("saved db: shutdown %v, %d RETAIN, %d MSG_STORE; want a clean shutdown with the retained message", st.Shutdown, st.Chunks.Retain, st.Chunks.MsgStore)
	}
}
