// Package testutil holds the helpers the module's integration tests share:
// skipping (or, with MQBENCH_REQUIRE_MOSQUITTO=1, failing) when Mosquitto is
// missing, starting a real Mosquitto or the bundled broker as a subprocess on a
// free loopback port, building the mqbench binary, running the Debian
// mosquitto-clients with time limits, a lean MQTT client on the paho packets
// codec, and deterministic payloads. It sits at the module root so every package
// can import it (under broker/ it was reachable from broker/ only, and the
// others grew copies). They live in one place so every test starts, bounds and
// cleans up processes the same way (killed by PID in t.Cleanup, never by name),
// which is what keeps a failing test from leaving a broker behind on a shared
// machine.
package testutil

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a child process started for a test. It exists so that every subprocess
// is tracked by PID, its output is kept for failure messages, and it is killed
// and reaped when the test ends, whatever happened.
type Proc struct {
	Name string
	PID  int
	cmd  *exec.Cmd

	out     *lineBuffer
	errBuf  *lineBuffer
	done    chan struct{}
	waitErr error
}

// lineBuffer collects a stream and lets a caller wait for a line containing a
// string; waiting for output is how a test learns a subprocess is ready without
// sleeping for a guessed time.
type lineBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	lines  []string
	closed bool
	cond   *sync.Cond
}

func newLineBuffer() *lineBuffer {
	lb := &lineBuffer{}
	lb.cond = sync.NewCond(&lb.mu)
	return lb
}

func (lb *lineBuffer) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		lb.mu.Lock()
		lb.buf.Write(sc.Bytes())
		lb.buf.WriteByte('\n')
		lb.lines = append(lb.lines, sc.Text())
		lb.cond.Broadcast()
		lb.mu.Unlock()
	}
	// Drain anything left after a scanner error so the child never blocks on a
	// full pipe.
	_, _ = io.Copy(io.Discard, r)
	lb.mu.Lock()
	lb.closed = true
	lb.cond.Broadcast()
	lb.mu.Unlock()
}

func (lb *lineBuffer) String() string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.buf.String()
}

func (lb *lineBuffer) Lines() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return append([]string(nil), lb.lines...)
}

// await waits until ready reports true, the stream closes or the timeout
// passes; closed and late say which of the last two stopped it. The caller
// holds lb.mu, and ready runs with it held.
func (lb *lineBuffer) await(timeout time.Duration, ready func() bool) (closed, late bool) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		lb.mu.Lock()
		lb.cond.Broadcast()
		lb.mu.Unlock()
	})
	defer timer.Stop()
	for !ready() {
		if lb.closed {
			return true, false
		}
		if !time.Now().Before(deadline) {
			return false, true
		}
		lb.cond.Wait()
	}
	return false, false
}

// waitLine returns the first line containing sub, or an error when the stream
// closes or the timeout passes first.
func (lb *lineBuffer) waitLine(sub string, timeout time.Duration) (string, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	next := 0
	closed, late := lb.await(timeout, func() bool {
		for ; next < len(lb.lines); next++ {
			if strings.Contains(lb.lines[next], sub) {
				return true
			}
		}
		return false
	})
	switch {
	case closed:
		return "", fmt.Errorf("output ended without a line containing %q", sub)
	case late:
		return "", fmt.Errorf("no line containing %q within %v", sub, timeout)
	}
	return lb.lines[next], nil
}

// waitCount waits until at least n lines were seen.
func (lb *lineBuffer) waitCount(n int, timeout time.Duration) ([]string, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	closed, late := lb.await(timeout, func() bool { return len(lb.lines) >= n })
	lines := append([]string(nil), lb.lines...)
	switch {
	case closed:
		return lines, fmt.Errorf("output ended after %d of %d lines", len(lines), n)
	case late:
		return lines, fmt.Errorf("only %d of %d lines within %v", len(lines), n, timeout)
	}
	return lines, nil
}

// StartProc starts name with args, stdin from stdin (nil: none), and registers a
// cleanup that kills it by PID and reaps it. It fails the test when the program
// cannot be started.
func StartProc(t testing.TB, stdin io.Reader, name string, args ...string) *Proc {
	t.Helper()
	p, err := startProc(stdin, name, args...)
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(p.Kill)
	return p
}

func startProc(stdin io.Reader, name string, args ...string) (*Proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = stdin
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{
		Name:   name,
		PID:    cmd.Process.Pid,
		cmd:    cmd,
		out:    newLineBuffer(),
		errBuf: newLineBuffer(),
		done:   make(chan struct{}),
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); p.out.consume(stdout) }()
	go func() { defer readers.Done(); p.errBuf.consume(stderr) }()
	go func() {
		// Reading both pipes to EOF before Wait is what exec requires.
		readers.Wait()
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Stdout is everything the process printed on stdout so far.
func (p *Proc) Stdout() string { return p.out.String() }

// Stderr is everything the process printed on stderr so far.
func (p *Proc) Stderr() string { return p.errBuf.String() }

// StdoutLines are the stdout lines so far.
func (p *Proc) StdoutLines() []string { return p.out.Lines() }

// WaitStdoutLine waits for a stdout line containing sub.
func (p *Proc) WaitStdoutLine(sub string, timeout time.Duration) (string, error) {
	return p.out.waitLine(sub, timeout)
}

// WaitStdoutLines waits until at least n stdout lines were printed and returns them.
func (p *Proc) WaitStdoutLines(n int, timeout time.Duration) ([]string, error) {
	return p.out.waitCount(n, timeout)
}

// WaitStderrLine waits for a stderr line containing sub.
func (p *Proc) WaitStderrLine(sub string, timeout time.Duration) (string, error) {
	return p.errBuf.waitLine(sub, timeout)
}

// Done is closed when the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit and returns its exit error
// (nil for status 0).
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running after %v", p.Name, p.PID, timeout)
	}
}

// ExitCode is the exit status after the process ended, -1 when it was killed by
// a signal or is still running.
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Signal sends sig to the process by its PID.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("%s (pid %d) already exited", p.Name, p.PID)
	}
	return syscall.Kill(p.PID, sig)
}

// Kill sends SIGKILL by PID (if still running) and reaps the process.
func (p *Proc) Kill() {
	if !p.Exited() {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// Stop sends SIGTERM and waits up to timeout for a clean exit; it returns an
// error (after killing the process) when it does not exit in time or exits
// non-zero.
func (p *Proc) Stop(timeout time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := p.Wait(timeout); err != nil {
		if !p.Exited() {
			p.Kill()
			return err
		}
		return fmt.Errorf("%s exited after SIGTERM: %w (stderr: %s)", p.Name, err, tail(p.Stderr(), 2000))
	}
	return nil
}

// WaitFor polls cond until it holds and fails the test with what after a
// generous bound (10 s). It bounds a background effect (a save, a client
// going away), it is not a timing assertion.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Run runs name with args and stdin under a timeout and returns stdout and
// stderr. The process is killed when the timeout passes.
func Run(timeout time.Duration, stdin []byte, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout = &o
	cmd.Stderr = &e
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %v: %w", name, timeout, ctx.Err())
	}
	return o.String(), e.String(), err
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// processAlive reports whether a process with this PID exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// RSSBytes reads VmRSS of a process from /proc/PID/status.
func RSSBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading status of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("parsing %q of pid %d: %w", line, pid, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS line for pid %d", pid)
}
