// Package launch starts the broker a run drives: the bundled broker or a real
// Mosquitto as a child process in a fresh data directory on loopback and a free
// port, or an external broker by address. It exists so bench can restart, kill and
// sample any broker the same way (an *Instance is a bench.Target), and so the
// generated mosquitto.conf, the broker log and the persistence file all end up in
// the run's directory where they can be inspected afterwards.
package launch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

// startExternal describes a broker mqbench does not run. Nothing is applied to
// it; its version is read from $SYS if it answers quickly (without the run's
// credentials or TLS files, so a secured broker's version stays unknown).
func startExternal(ctx context.Context, o Options) (*Instance, error) {
	addr, err := externalAddr(o.Kind)
	if err != nil {
		return nil, err
	}
	i := &Instance{kind: KindExternal, addr: addr, persistPath: o.DBPath, opts: o}
	if o.ConfFile != "" {
		// The broker's own configuration: what the report shows as its
		// settings, and where its persistence file is when --db is not given.
		cfg, err := conf.ParseFile(o.ConfFile)
		if err != nil {
			return nil, fmt.Errorf("external broker configuration: %w", err)
		}
		i.lines, i.confSource = cfg.Strings(), ConfigFromFile
		if i.persistPath == "" && cfg.Persistence {
			i.persistPath = cfg.PersistencePath()
			i.notices = append(i.notices, fmt.Sprintf("external broker %s: sampling its persistence file %s (from %s)", i.addr, i.persistPath, o.ConfFile))
		}
		if len(o.Settings) > 0 {
			i.notices = append(i.notices, fmt.Sprintf("external broker %s: the scenario's %d broker setting(s) are not applied; its own configuration is %s", i.addr, len(o.Settings), o.ConfFile))
		}
		i.version = sysVersion(ctx, i.addr, 2*time.Second)
		return i, nil
	}
	if len(o.Settings) > 0 {
		cfg, err := conf.FromSettings(o.Settings)
		if err != nil {
			return nil, fmt.Errorf("broker settings: %w", err)
		}
		i.lines = cfg.Strings()
		i.notices = append(i.notices, fmt.Sprintf("external broker %s: the scenario's %d broker setting(s) are not applied; configure the broker yourself", i.addr, len(i.lines)))
	}
	i.version = sysVersion(ctx, i.addr, 2*time.Second)
	return i, nil
}

// externalSchemes are the broker address schemes mqbench's clients speak:
// MQTT over TCP, over TLS, and over websockets (plain or TLS).
var externalSchemes = map[string]bool{"tcp": true, "mqtt": true, "mqtts": true, "ssl": true, "ws": true, "wss": true}

// externalAddr checks an external broker address and returns it normalised
// (SCHEME://HOST:PORT, plus the path for websockets). Credentials in the
// address are refused: the address is recorded with the run, a password
// must not be.
func externalAddr(kind string) (string, error) {
	const want = "want tcp://HOST:PORT, mqtt://, mqtts://HOST:PORT or ws://, wss://HOST:PORT[/path]"
	u, err := url.Parse(kind)
	if err != nil {
		return "", fmt.Errorf("external broker address %q: %s", kind, want)
	}
	if u.User != nil {
		return "", fmt.Errorf("external broker address %s: credentials in the address are not supported: use -u/--username and -P/--password (or the scenario's connect section)", u.Redacted())
	}
	if !externalSchemes[u.Scheme] || u.Hostname() == "" || u.Port() == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("external broker address %q: %s", kind, want)
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("external broker address %q: port out of range 1..65535", kind)
	}
	path := u.EscapedPath()
	if path != "" && u.Scheme != "ws" && u.Scheme != "wss" {
		return "", fmt.Errorf("external broker address %q: only ws:// and wss:// addresses take a path", kind)
	}
	return u.Scheme + "://" + u.Host + path, nil
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

// buildSettings makes the config the run needs around the scenario's settings.
// It reports whether launch picked the port (so a bind failure may be retried).
func (i *Instance) buildSettings(sc *conf.Config) ([]conf.Setting, bool, error) {
	add := func(key, value string) conf.Setting {
		return conf.Setting{Key: key, Value: value, File: launchFile}
	}
	var out []conf.Setting
	picked := false
	settings := append([]conf.Setting(nil), i.opts.Settings...)

	// Listener options alone (max_connections...) make conf create Mosquitto's
	// default listener; they are meant for the run's listener, which comes first.
	explicit := hasKey(settings, "listener") || hasKey(settings, "port") || hasKey(settings, "bind_address")
	if explicit && i.secure != nil {
		s := findSetting(settings, "listener")
		return nil, false, fmt.Errorf("broker setting %s (%s): a secured run's listener is the one mqbench makes; drop the listener lines or the security section", s, where(s))
	}
	if !explicit {
		port, err := freePort("127.0.0.1")
		if err != nil {
			return nil, false, err
		}
		picked = true
		// First, so listener options in the scenario (max_connections...) apply to it.
		out = append(out, add("listener", fmt.Sprintf("%d 127.0.0.1", port)))
		if i.secure != nil {
			out = append(out, i.secure.settings...)
		}
		i.addr = fmt.Sprintf("%s127.0.0.1:%d", i.scheme(), port)
	} else {
		i.addr = ""
		for _, l := range sc.Listeners {
			if err := checkLoopback(l, settings); err != nil {
				return nil, false, err
			}
		}
		// Rewrite `listener 0 ADDR` (mqbench: any free port) to a real port.
		for k, s := range settings {
			if s.Key != "listener" {
				continue
			}
			f := strings.Fields(s.Value)
			host := "127.0.0.1"
			if len(f) > 1 && !strings.HasPrefix(f[1], "#") {
				host = f[1]
			}
			if f[0] == "0" {
				port, err := freePort(host)
				if err != nil {
					return nil, false, err
				}
				picked = true
				f[0] = strconv.Itoa(port)
				settings[k].Value = strings.Join(f, " ")
			}
			if i.addr == "" {
				if host == "localhost" {
					host = "127.0.0.1"
				}
				i.addr = "tcp://" + net.JoinHostPort(host, f[0])
			}
		}
		if i.addr == "" { // only port/bind_address lines
			l := sc.Listeners[0]
			host := l.BindAddress
			if host == "localhost" {
				host = "127.0.0.1"
			}
			i.addr = "tcp://" + net.JoinHostPort(host, strconv.Itoa(l.Port))
		}
	}
	out = append(out, settings...)
	if sc.Security.AllowAnonymous == nil && !sc.PerListenerSettings && i.secure == nil {
		out = append(out, add("allow_anonymous", "true"))
	}
	if sc.Persistence && sc.PersistenceLocation == "" {
		out = append(out, add("persistence_location", i.dataDir+"/"))
	}
	if !hasKey(settings, "log_dest") {
		out = append(out, add("log_dest", "file "+i.logPath))
	}
	if i.kind == KindMosquitto && os.Geteuid() == 0 && !hasKey(settings, "user") {
		// Mosquitto 2.0 started as root drops to user mosquitto, which cannot
		// write the data dir: stay root.
		out = append(out, add("user", "root"))
	}
	return out, picked, nil
}

// checkLoopback refuses a scenario listener that would be reachable from other
// hosts: benchmark brokers bind loopback only.
func checkLoopback(l conf.Listener, settings []conf.Setting) error {
	switch l.BindAddress {
	case "127.0.0.1", "::1", "localhost":
		return nil
	}
	key := "listener"
	if l.Default {
		key = "port/bind_address (or a listener option before any listener line)"
	}
	s := findListenerSetting(settings, l)
	addr := l.BindAddress
	if addr == "" {
		addr = "all interfaces"
	}
	return fmt.Errorf("broker setting %s (%s): binds %s; mqbench runs brokers on loopback only: use `listener PORT 127.0.0.1` (or ::1), or no listener at all", key, where(s), addr)
}

func findListenerSetting(settings []conf.Setting, l conf.Listener) conf.Setting {
	for _, s := range settings {
		if l.Default && (s.Key == "port" || s.Key == "bind_address") {
			return s
		}
		if !l.Default && s.Key == "listener" {
			f := strings.Fields(s.Value)
			if len(f) > 0 && f[0] == strconv.Itoa(l.Port) {
				return s
			}
		}
	}
	return conf.Setting{}
}

// where names the place of a scenario setting for an error ("scenario" when
// the setting carries none).
func where(s conf.Setting) string {
	if p := s.Place(); p != "" {
		return p
	}
	return "scenario"
}

func hasKey(settings []conf.Setting, key string) bool {
	return findSetting(settings, key).Key != ""
}

func findSetting(settings []conf.Setting, key string) conf.Setting {
	for _, s := range settings {
		if s.Key == key {
			return s
		}
	}
	return conf.Setting{}
}

// checkNotUserConf refuses to overwrite a mosquitto.conf that launch did not write.
func checkNotUserConf(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	defer f.Close()
	first, _ := bufio.NewReader(f).ReadString('\n')
	if strings.TrimSpace(first) != conf.Header {
		return fmt.Errorf("%s exists and was not written by mqbench: refusing to overwrite it (use a fresh data dir)", path)
	}
	return nil
}

func writeConf(path string, cfg *conf.Config) error {
	var buf bytes.Buffer
	if err := cfg.Write(&buf); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// freePort asks the kernel for a free port on host. It is released before the
// broker binds it, so a race is possible: startLocal retries on a bind failure.
func freePort(host string) (int, error) {
	if host == "localhost" {
		host = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("picking a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
