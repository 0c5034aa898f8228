package launch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// process is one run of the child: it is reaped by its own goroutine, so a
// broker that dies on its own never lingers as a zombie.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed after Wait returned
	waitErr error
	logFrom int64         // broker.log size when this process started
	ready   chan string   // the bundled broker's ready line
	teeDone chan struct{} // stdout reader finished
}

// waitTee waits for the stdout copy to reach EOF. A grandchild that inherited the
// pipe could hold it open after the broker exited, so the wait is bounded.
func (p *process) waitTee(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.teeDone:
	case <-t.C:
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// errBind marks a start failure caused by the port being taken.
var errBind = errors.New("address already in use")

var readyRE = regexp.MustCompile(`mqbench broker (\S+) listening on (\S+)`)

// spawn starts the child and waits until it is ready.
func (i *Instance) spawn(ctx context.Context) error {
	i.mu.Lock()
	lf := i.logFile
	i.mu.Unlock()
	if lf == nil {
		return errors.New("instance is closed")
	}
	st, err := lf.Stat()
	if err != nil {
		return fmt.Errorf("broker log: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating stdout pipe: %w", err)
	}
	cmd := exec.Command(i.argv[0], i.argv[1:]...)
	cmd.Dir = i.dataDir
	// If mqbench dies without stopping the broker (SIGKILL, OOM, a second
	// Ctrl-C), the kernel kills the broker too instead of leaving it holding
	// its port and data directory. (Linux: mqbench targets Linux.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout = pw
	cmd.Stderr = lf
	p := &process{cmd: cmd, done: make(chan struct{}), logFrom: st.Size(),
		ready: make(chan string, 1), teeDone: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("starting %s: %w", i.argv[0], err)
	}
	pw.Close()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	go tee(pr, lf, p.ready, p.teeDone)
	i.mu.Lock()
	i.proc = p
	i.mu.Unlock()

	if err := i.waitReady(ctx, p); err != nil {
		if !p.exited() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
		p.waitTee(i.opts.StopTimeout)
		tail := i.tail(p)
		if strings.Contains(strings.ToLower(tail), "address already in use") {
			return fmt.Errorf("%w: %v%s", errBind, err, tail)
		}
		return fmt.Errorf("%v%s", err, tail)
	}
	return nil
}

// tee copies the child's stdout to the log, line by line, and hands the first
// ready line to waitReady.
func tee(r io.ReadCloser, w io.Writer, ready chan<- string, done chan<- struct{}) {
	defer close(done)
	defer r.Close()
	br := bufio.NewReader(r)
	sent := false
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			_, _ = io.WriteString(w, line)
			if !sent && readyRE.MatchString(line) {
				ready <- line
				sent = true
			}
		}
		if err != nil {
			return
		}
	}
}

func (i *Instance) waitReady(ctx context.Context, p *process) error {
	deadline := time.NewTimer(i.opts.StartTimeout)
	defer deadline.Stop()
	if i.kind == KindBundled {
		select {
		case line := <-p.ready:
			m := readyRE.FindStringSubmatch(line)
			i.mu.Lock()
			i.version = m[1]
			i.addr = i.scheme() + m[2]
			i.mu.Unlock()
			return nil
		case <-p.done:
			return fmt.Errorf("broker exited before it was ready (%v)", exitText(p.waitErr))
		case <-deadline.C:
			return fmt.Errorf("broker printed no \"listening on\" line within %v", i.opts.StartTimeout)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the broker to start: %w", ctx.Err())
		}
	}
	hostport := i.Addr()
	if k := strings.Index(hostport, "://"); k >= 0 {
		hostport = hostport[k+3:]
	}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", hostport, 250*time.Millisecond)
		if err == nil {
			c.Close()
			if p.exited() { // someone else answered on that port
				return fmt.Errorf("broker exited before it was ready (%v)", exitText(p.waitErr))
			}
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("broker exited before it was ready (%v)", exitText(p.waitErr))
		case <-deadline.C:
			return fmt.Errorf("broker did not accept connections on %s within %v", hostport, i.opts.StartTimeout)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the broker to start: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// tail returns the last lines this process wrote to the log, formatted to append
// to an error.
func (i *Instance) tail(p *process) string {
	f, err := os.Open(i.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(p.logFrom, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	text := strings.TrimSpace(strings.Join(lines, "\n"))
	if text == "" {
		return " (" + i.logPath + " is empty)"
	}
	return "; last lines of " + i.logPath + ":\n" + text
}
