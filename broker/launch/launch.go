// Package launch starts the broker a run drives: the bundled broker or a real
// Mosquitto as a child process in a fresh data directory on loopback and a free
// port, or an external broker by address. It exists so bench can restart, kill and
// sample any broker the same way (an *Instance is a bench.Target), and so the
// generated mosquitto.conf, the broker log and the persistence file all end up in
// the run's directory where they can be inspected afterwards.
package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
)

// Broker kinds reported by Kind.
const (
	KindBundled   = "bundled"
	KindMosquitto = "mosquitto"
	KindExternal  = "external"
)

// File names inside DataDir.
const (
	ConfName = "mosquitto.conf"
	LogName  = "broker.log"
)

// launchFile is the Setting.File of the lines launch adds, so errors and the
// written config say where they came from.
const launchFile = "mqbench launch"

// Options say which broker to start and how. Only Kind and DataDir matter for most
// runs; the rest have defaults.
type Options struct {
	Kind           string         // "bundled" (default), "mosquitto", or an external address: tcp://, mqtt://, mqtts://HOST:PORT, ws://, wss://HOST:PORT[/path]
	Settings       []conf.Setting // scenario broker keys (mosquitto.conf lines), applied verbatim
	DataDir        string         // fresh dir for conf, db, logs (created if missing)
	BundledCommand []string       // how to run the bundled broker as a child (default: this executable, "broker"); launch appends "-c", confPath
	MosquittoPath  string         // default: exec.LookPath("mosquitto"), else /usr/sbin/mosquitto
	DBPath         string         // external only: persistence file to sample (optional)
	StartTimeout   time.Duration  // default 10s: how long a broker may take to become ready
	StopTimeout    time.Duration  // default 10s: how long Stop/Kill/Close wait for the process to exit
	// Secure secures a local broker with generated certificates, password
	// and ACL files (see Secure); nil leaves it as the settings say.
	Secure *Secure
	// ConfFile is an external broker's own mosquitto.conf: the run records
	// its settings as the broker's (and samples its persistence file when
	// DBPath is empty).
	ConfFile string
}

// Where the configuration a run records came from (Instance.ConfigSource).
const (
	ConfigLaunched = "launched" // launch wrote it and started the broker with it
	ConfigFromFile = "file"     // an external broker's own file (Options.ConfFile)
	ConfigUnknown  = "unknown"  // an external broker whose settings are not known
)

// Instance is one started broker. Its methods are safe for concurrent use.
type Instance struct {
	kind        string
	version     string
	addr        string // tcp://HOST:PORT
	persistPath string
	lines       []string
	notices     []string
	opts        Options
	secure      *SecureFiles // generated security files, when Options.Secure
	confSource  string       // ConfigFromFile for an external broker with ConfFile

	// local kinds
	argv     []string
	dataDir  string
	confPath string
	logPath  string
	cfg      *conf.Config

	mu      sync.Mutex
	proc    *process // nil when not running
	logFile *os.File
	closed  bool
}

// Start starts the broker o describes and returns once it accepts connections.
func Start(ctx context.Context, o Options) (*Instance, error) {
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	kind := o.Kind
	switch {
	case kind == "" || kind == KindBundled:
		return startLocal(ctx, o, KindBundled)
	case kind == KindMosquitto:
		return startLocal(ctx, o, KindMosquitto)
	case strings.Contains(kind, "://"):
		return startExternal(ctx, o)
	}
	return nil, fmt.Errorf("unknown broker kind %q: want bundled, mosquitto or an address (tcp://, mqtts://, ws://, wss://HOST:PORT)", kind)
}

// Kind is bundled, mosquitto or external.
func (i *Instance) Kind() string { return i.kind }

// Version is the broker's version string ("" if unknown).
func (i *Instance) Version() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.version
}

// Addr is the broker address: tcp://HOST:PORT for the brokers launch runs,
// as given (normalised) for an external one, e.g. mqtts:// or ws://HOST:PORT/mqtt.
func (i *Instance) Addr() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.addr
}

// ConfigSource says whose settings ConfigLines are (ConfigLaunched,
// ConfigFromFile or ConfigUnknown), so a report never shows a scenario's
// settings as an external broker's.
func (i *Instance) ConfigSource() string {
	switch {
	case i.kind != KindExternal:
		return ConfigLaunched
	case i.confSource != "":
		return i.confSource
	}
	return ConfigUnknown
}

// PersistPath is the persistence file to sample, "" if persistence is off or unknown.
func (i *Instance) PersistPath() string { return i.persistPath }

// ConfigLines are the mosquitto.conf lines the broker runs with (for external
// brokers: the scenario settings, which were not applied; see Notices).
func (i *Instance) ConfigLines() []string { return append([]string(nil), i.lines...) }

// Notices are remarks a user should see once, e.g. that an external broker did
// not get the scenario's settings.
func (i *Instance) Notices() []string { return append([]string(nil), i.notices...) }

// LogPath is DataDir/broker.log: the child's stdout and stderr, and the broker's
// log file unless the scenario chose its own log_dest.
func (i *Instance) LogPath() string { return i.logPath }

// ConfPath is the generated mosquitto.conf ("" for external brokers).
func (i *Instance) ConfPath() string { return i.confPath }

// Config is the parsed configuration the broker runs with (nil for external).
func (i *Instance) Config() *conf.Config { return i.cfg }

// PID is the broker process id, 0 if it is not a running local child.
func (i *Instance) PID() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.proc == nil || i.proc.exited() {
		return 0
	}
	return i.proc.cmd.Process.Pid
}

// Running reports whether the child process is alive (false for external).
func (i *Instance) Running() bool { return i.PID() != 0 }

func unsupported(op, addr string) error {
	return fmt.Errorf("%s: external broker %s is not run by mqbench: %w", op, addr, errors.ErrUnsupported)
}

// Save asks the broker to write its persistence file now (SIGUSR1).
func (i *Instance) Save(ctx context.Context) error {
	if i.kind == KindExternal {
		return unsupported("save", i.addr)
	}
	p, err := i.running("save")
	if err != nil {
		return err
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return fmt.Errorf("save: signalling broker pid %d: %w", p.cmd.Process.Pid, err)
	}
	return nil
}

// Stop stops the broker cleanly (SIGTERM), so it writes its final save, and waits
// for it to exit. A broker that does not exit in time is left running and an
// error returned (Close kills it).
func (i *Instance) Stop(ctx context.Context) error {
	if i.kind == KindExternal {
		return unsupported("stop", i.addr)
	}
	p, err := i.running("stop")
	if err != nil {
		return err
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !p.exited() {
		return fmt.Errorf("stop: signalling broker pid %d: %w", p.cmd.Process.Pid, err)
	}
	if err := i.wait(ctx, p); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if p.waitErr != nil {
		return fmt.Errorf("stop: broker exited uncleanly after SIGTERM (%v)%s", p.waitErr, i.tail(p))
	}
	return nil
}

// Kill kills the broker (SIGKILL): nothing since its last save survives, which is
// what a crash experiment wants to measure.
func (i *Instance) Kill(ctx context.Context) error {
	if i.kind == KindExternal {
		return unsupported("kill", i.addr)
	}
	p, err := i.running("kill")
	if err != nil {
		return err
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !p.exited() {
		return fmt.Errorf("kill: signalling broker pid %d: %w", p.cmd.Process.Pid, err)
	}
	if err := i.wait(ctx, p); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	return nil
}

// Start starts the broker again after Stop or Kill: same config, port and data
// directory, so it restores what it saved and clients reconnect to the same address.
func (i *Instance) Start(ctx context.Context) error {
	if i.kind == KindExternal {
		return unsupported("start", i.addr)
	}
	i.mu.Lock()
	if i.closed {
		i.mu.Unlock()
		return errors.New("start: instance is closed")
	}
	if i.proc != nil && !i.proc.exited() {
		i.mu.Unlock()
		return fmt.Errorf("start: broker already running (pid %d)", i.proc.cmd.Process.Pid)
	}
	i.mu.Unlock()
	if err := i.spawn(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return nil
}

// Close stops the broker if it runs (SIGTERM, then SIGKILL after StopTimeout) and
// releases the log file. It is idempotent; an external Instance has nothing to close.
func (i *Instance) Close() error {
	if i.kind == KindExternal {
		return nil
	}
	i.mu.Lock()
	if i.closed {
		i.mu.Unlock()
		return nil
	}
	i.closed = true
	p := i.proc
	i.mu.Unlock()

	var err error
	if p != nil && !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(i.opts.StopTimeout):
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
			err = fmt.Errorf("closing broker: pid %d ignored SIGTERM for %v and was killed", p.cmd.Process.Pid, i.opts.StopTimeout)
		}
	}
	if p != nil {
		p.waitTee(i.opts.StopTimeout)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.logFile != nil {
		if cerr := i.logFile.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing %s: %w", i.logPath, cerr)
		}
		i.logFile = nil
	}
	return err
}

// running returns the live process or an error naming the operation.
func (i *Instance) running(op string) (*process, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.proc == nil || i.proc.exited() {
		return nil, fmt.Errorf("%s: broker is not running", op)
	}
	return i.proc, nil
}

// wait waits for p to exit, bounded by ctx and StopTimeout.
func (i *Instance) wait(ctx context.Context, p *process) error {
	t := time.NewTimer(i.opts.StopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		p.waitTee(i.opts.StopTimeout)
		return nil
	case <-t.C:
		return fmt.Errorf("broker pid %d did not exit within %v", p.cmd.Process.Pid, i.opts.StopTimeout)
	case <-ctx.Done():
		return fmt.Errorf("waiting for broker pid %d to exit: %w", p.cmd.Process.Pid, ctx.Err())
	}
}

// startLocal prepares DataDir and the config, then starts the child. When launch
// picked the port and the broker could not bind it (another process took it in
// between), it tries again with a new port, up to 3 times.
func startLocal(ctx context.Context, o Options, kind string) (*Instance, error) {
	if o.DataDir == "" {
		return nil, errors.New("launch: DataDir is required for a local broker")
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", o.DataDir, err)
	}
	scenarioCfg, err := conf.FromSettings(o.Settings)
	if err != nil {
		return nil, fmt.Errorf("broker settings: %w", err)
	}
	i := &Instance{kind: kind, opts: o, dataDir: dataDir,
		confPath: filepath.Join(dataDir, ConfName), logPath: filepath.Join(dataDir, LogName)}

	switch kind {
	case KindMosquitto:
		if scenarioCfg.AutosaveFractional() {
			s := findSetting(o.Settings, "autosave_interval")
			return nil, fmt.Errorf("broker setting autosave_interval %s (%s): fractional seconds are an mqbench extension of the bundled broker; mosquitto takes whole seconds", s.Value, where(s))
		}
		bin, err := mosquittoPath(o.MosquittoPath)
		if err != nil {
			return nil, err
		}
		i.argv = []string{bin, "-c", i.confPath}
		i.version, err = mosquittoVersion(ctx, bin)
		if err != nil {
			return nil, err
		}
	default:
		argv := o.BundledCommand
		if len(argv) == 0 {
			exe, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("finding the mqbench executable for the bundled broker: %w", err)
			}
			argv = []string{exe, "broker"}
		}
		i.argv = append(append([]string(nil), argv...), "-c", i.confPath)
	}

	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	if err := checkNotUserConf(i.confPath); err != nil {
		return nil, err
	}
	if o.Secure != nil {
		if i.secure, err = generateSecure(dataDir, o.Secure); err != nil {
			return nil, err
		}
	}
	lf, err := os.OpenFile(i.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening broker log: %w", err)
	}
	i.logFile = lf

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		settings, picked, err := i.buildSettings(scenarioCfg)
		if err != nil {
			_ = i.Close()
			return nil, err
		}
		cfg, err := conf.FromSettings(settings)
		if err != nil {
			_ = i.Close()
			return nil, fmt.Errorf("generated config: %w", err)
		}
		if err := writeConf(i.confPath, cfg); err != nil {
			_ = i.Close()
			return nil, err
		}
		i.cfg = cfg
		i.lines = cfg.Strings()
		i.persistPath = ""
		if cfg.Persistence {
			i.persistPath = cfg.PersistencePath()
			if !filepath.IsAbs(i.persistPath) {
				i.persistPath = filepath.Join(dataDir, i.persistPath)
			}
		}
		lastErr = i.spawn(ctx)
		if lastErr == nil {
			return i, nil
		}
		if !picked || !errors.Is(lastErr, errBind) {
			break
		}
	}
	_ = i.Close()
	return nil, lastErr
}

// fallbackMosquitto is where Debian installs mosquitto (/usr/sbin is often not on
// a non-root PATH). A variable so tests can exercise the not-found error.
var fallbackMosquitto = "/usr/sbin/mosquitto"

// mosquittoPath finds the mosquitto binary.
func mosquittoPath(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("mosquitto at %s: %w", explicit, err)
		}
		return explicit, nil
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(fallbackMosquitto); err == nil {
		return fallbackMosquitto, nil
	}
	return "", errors.New("mosquitto not found on PATH: install it (apt-get install -y mosquitto)")
}

var mosquittoVersionRE = regexp.MustCompile(`mosquitto version (\S+)`)

// mosquittoVersion runs `mosquitto -h` (which exits 3) and reads its version line.
func mosquittoVersion(ctx context.Context, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	m := mosquittoVersionRE.FindSubmatch(out)
	if m == nil {
		first, _, _ := strings.Cut(string(out), "\n")
		return "", fmt.Errorf("%s -h: no version line in its output (%q)", bin, first)
	}
	return string(m[1]), nil
}
