package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/internal/testutil"
)

// An Instance is what bench drives.
var _ bench.Target = (*Instance)(nil)

// TestMain removes the mqbench binary bundledCommand builds, so the package
// leaves nothing in the temp directory.
func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuild()
	os.Exit(code)
}

func setting(key, value string, line int) conf.Setting {
	return conf.Setting{Key: key, Value: value, File: "scenario.yaml", Line: line}
}

// fakeBroker writes a shell script that behaves like `mqbench broker -c CONF` for
// lifecycle tests that need no real broker: it prints the ready line for the
// conf's listener port, counts SIGUSR1 in DataDir/saves, exits 0 on SIGTERM.
// FAKE_MODE=exit fails before ready, hang never gets ready, ignoreterm ignores SIGTERM.
func fakeBroker(t *testing.T) []string {
	t.Helper()
	script := `#!/bin/sh
conf="$3"
port=$(awk '$1=="listener"{print $2; exit}' "$conf")
case "$FAKE_MODE" in
exit) echo "fatal: cannot open persistence file" >&2; exit 3 ;;
bind) echo "opening listener: listen tcp 127.0.0.1:$port: bind: address already in use" >&2; exit 1 ;;
hang) port=never ;;
esac
if [ "$FAKE_MODE" = ignoreterm ]; then trap '' TERM; else trap 'echo stopping; exit 0' TERM; fi
trap 'echo save >> saves' USR1
[ "$port" = never ] || echo "mqbench broker fake-1.0 listening on 127.0.0.1:$port"
while :; do sleep 0.05 & wait $!; done
`
	p := filepath.Join(t.TempDir(), "fakebroker")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{p, "broker"}
}

func startFake(t *testing.T, o Options) *Instance {
	t.Helper()
	o.BundledCommand = fakeBroker(t)
	if o.DataDir == "" {
		o.DataDir = filepath.Join(t.TempDir(), "data")
	}
	i, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = i.Close() })
	return i
}

func readConf(t *testing.T, i *Instance) string {
	t.Helper()
	b, err := os.ReadFile(i.ConfPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGeneratedConfig(t *testing.T) {
	tests := []struct {
		name     string
		settings []conf.Setting
		want     []string // lines that must appear, in this order
		absent   []string
	}{
		{"defaults", nil,
			[]string{"listener PORT 127.0.0.1", "allow_anonymous true", "log_dest file DATA/broker.log"},
			[]string{"persistence_location", "user root"}},
		{"persistence gets a location in the data dir",
			[]conf.Setting{setting("persistence", "true", 3), setting("autosave_interval", "0.5", 4)},
			[]string{"listener PORT 127.0.0.1", "persistence true", "autosave_interval 0.5", "allow_anonymous true", "persistence_location DATA/"},
			nil},
		{"scenario choices are kept",
			[]conf.Setting{setting("persistence", "true", 3), setting("persistence_location", "/elsewhere/", 4),
				setting("allow_anonymous", "true", 5), setting("log_dest", "none", 6)},
			[]string{"persistence_location /elsewhere/", "allow_anonymous true", "log_dest none"},
			[]string{"persistence_location DATA/", "log_dest file"}},
		{"listener options attach to launch's listener",
			[]conf.Setting{setting("max_connections", "7", 3)},
			[]string{"listener PORT 127.0.0.1", "max_connections 7"}, nil},
		{"scenario listener on loopback with port 0 gets a real port",
			[]conf.Setting{setting("listener", "0 127.0.0.1", 3)},
			[]string{"listener PORT 127.0.0.1", "allow_anonymous true"}, []string{"listener 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := startFake(t, Options{Settings: tt.settings})
			text := readConf(t, i)
			port := i.Addr()[strings.LastIndex(i.Addr(), ":")+1:]
			text = strings.ReplaceAll(text, filepath.Dir(i.LogPath()), "DATA")
			text = strings.ReplaceAll(text, "listener "+port+" ", "listener PORT ")
			if !strings.HasPrefix(text, conf.Header+"\n") {
				t.Errorf("config lacks the mqbench header:\n%s", text)
			}
			pos := 0
			for _, w := range tt.want {
				k := strings.Index(text[pos:], w+"\n")
				if k < 0 {
					t.Fatalf("config lacks %q (in order):\n%s", w, text)
				}
				pos += k + len(w)
			}
			for _, a := range tt.absent {
				if strings.Contains(text, a) {
					t.Errorf("config should not contain %q:\n%s", a, text)
				}
			}
			if got := len(i.ConfigLines()); got != strings.Count(text, "\n")-1 {
				t.Errorf("ConfigLines has %d lines, the file %d", got, strings.Count(text, "\n")-1)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		mode string
		want string
	}{
		{"unknown kind", Options{Kind: "rabbit"}, "", `unknown broker kind "rabbit"`},
		{"bad external address", Options{Kind: "tcp://127.0.0.1"}, "", `want tcp://HOST:PORT`},
		{"unknown key names the scenario line", Options{Settings: []conf.Setting{setting("autosave_intervall", "3", 9)}}, "",
			`broker settings: scenario.yaml:9: unknown configuration variable "autosave_intervall"`},
		{"bad value", Options{Settings: []conf.Setting{setting("max_queued_messages", "lots", 4)}}, "",
			`scenario.yaml:4: invalid value "lots" for max_queued_messages`},
		{"non-loopback listener", Options{Settings: []conf.Setting{setting("listener", "1884 0.0.0.0", 5)}}, "",
			`broker setting listener (scenario.yaml:5): binds 0.0.0.0; mqbench runs brokers on loopback only`},
		{"listener on all interfaces", Options{Settings: []conf.Setting{setting("listener", "1884", 5)}}, "",
			`binds all interfaces`},
		{"port without bind address", Options{Settings: []conf.Setting{setting("port", "1884", 2)}}, "",
			`(scenario.yaml:2): binds all interfaces`},
		{"fractional autosave on mosquitto", Options{Kind: "mosquitto", Settings: []conf.Setting{setting("autosave_interval", "0.5", 6)}}, "",
			`broker setting autosave_interval 0.5 (scenario.yaml:6): fractional seconds are an mqbench extension`},
		{"exits before ready", Options{}, "exit", "broker exited before it was ready (exit status 3); last lines of"},
		{"never ready", Options{StartTimeout: 300 * time.Millisecond}, "hang", `broker printed no "listening on" line within 300ms`},
		{"bind failures are retried, then reported", Options{}, "bind", "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FAKE_MODE", tt.mode)
			o := tt.o
			if o.Kind == "" {
				o.BundledCommand = fakeBroker(t)
			}
			o.DataDir = t.TempDir()
			i, err := Start(context.Background(), o)
			if err == nil {
				i.Close()
				t.Fatalf("Start succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
			if tt.mode == "exit" && !strings.Contains(err.Error(), "cannot open persistence file") {
				t.Errorf("error lacks the broker's last log line: %v", err)
			}
		})
	}
}

func TestBindRetry(t *testing.T) {
	// The fake fails to bind every time: launch must try 3 ports, each start
	// appending to the same log.
	t.Setenv("FAKE_MODE", "bind")
	dir := t.TempDir()
	_, err := Start(context.Background(), Options{BundledCommand: fakeBroker(t), DataDir: dir})
	if err == nil {
		t.Fatal("want an error")
	}
	b, _ := os.ReadFile(filepath.Join(dir, LogName))
	if n := strings.Count(string(b), "address already in use"); n != 3 {
		t.Errorf("broker started %d times, want 3:\n%s", n, b)
	}
}

func TestMissingMosquitto(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := fallbackMosquitto
	fallbackMosquitto = filepath.Join(t.TempDir(), "none")
	defer func() { fallbackMosquitto = old }()
	_, err := Start(context.Background(), Options{Kind: "mosquitto", DataDir: t.TempDir()})
	want := "mosquitto not found on PATH: install it (apt-get install -y mosquitto)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func TestRefusesUserConfig(t *testing.T) {
	dir := t.TempDir()
	user := []byte("# my precious config\nlistener 1883\n")
	if err := os.WriteFile(filepath.Join(dir, ConfName), user, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{BundledCommand: fakeBroker(t), DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("err = %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, ConfName))
	if string(got) != string(user) {
		t.Errorf("user config changed: %q", got)
	}
}

func TestLifecycleFake(t *testing.T) {
	ctx := context.Background()
	i := startFake(t, Options{StopTimeout: 2 * time.Second})
	if i.Kind() != KindBundled || i.Version() != "fake-1.0" {
		t.Errorf("kind %q version %q", i.Kind(), i.Version())
	}
	addr := i.Addr()
	pid := i.PID()
	if pid == 0 {
		t.Fatal("PID 0 for a running broker")
	}
	if err := i.Save(ctx); err != nil {
		t.Fatal(err)
	}
	savesPath := filepath.Join(filepath.Dir(i.LogPath()), "saves")
	testutil.WaitFor(t, "the fake to record SIGUSR1", func() bool { _, err := os.Stat(savesPath); return err == nil })

	if err := i.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if i.PID() != 0 {
		t.Error("PID should be 0 after Stop")
	}
	for _, op := range []func(context.Context) error{i.Save, i.Stop, i.Kill} {
		if err := op(ctx); err == nil || !strings.Contains(err.Error(), "not running") {
			t.Errorf("lifecycle op on a stopped broker: err = %v", err)
		}
	}
	if err := i.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if i.Addr() != addr || i.PID() == pid || i.PID() == 0 {
		t.Errorf("after restart addr %s (was %s), pid %d (was %d)", i.Addr(), addr, i.PID(), pid)
	}
	if err := i.Start(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Start: %v", err)
	}
	if err := i.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := i.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := i.Close(); err != nil {
		t.Fatal(err)
	}
	if err := i.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if i.PID() != 0 {
		t.Error("PID should be 0 after Close")
	}
	log, _ := os.ReadFile(i.LogPath())
	if strings.Count(string(log), "listening on") != 3 || strings.Count(string(log), "stopping") != 2 {
		t.Errorf("log should show 3 starts and 2 clean stops:\n%s", log)
	}
}

func TestStopTimeoutThenCloseKills(t *testing.T) {
	t.Setenv("FAKE_MODE", "ignoreterm")
	i := startFake(t, Options{StopTimeout: 300 * time.Millisecond})
	err := i.Stop(context.Background())
	if err == nil || !strings.Contains(err.Error(), "did not exit within 300ms") {
		t.Fatalf("Stop: %v", err)
	}
	if i.PID() == 0 {
		t.Fatal("broker should still run after a timed-out Stop")
	}
	err = i.Close()
	if err == nil || !strings.Contains(err.Error(), "was killed") {
		t.Fatalf("Close: %v", err)
	}
	if i.PID() != 0 {
		t.Error("broker still running after Close")
	}
}

func TestExternal(t *testing.T) {
	ctx := context.Background()
	i, err := Start(ctx, Options{Kind: "tcp://127.0.0.1:1", DBPath: "/data/mosquitto.db",
		Settings: []conf.Setting{setting("persistence", "true", 2)}})
	if err != nil {
		t.Fatal(err)
	}
	defer i.Close()
	if i.Kind() != KindExternal || i.Addr() != "tcp://127.0.0.1:1" || i.PersistPath() != "/data/mosquitto.db" || i.PID() != 0 {
		t.Errorf("kind %q addr %q persist %q pid %d", i.Kind(), i.Addr(), i.PersistPath(), i.PID())
	}
	if i.Version() != "" {
		t.Errorf("version of an unreachable broker = %q", i.Version())
	}
	if len(i.Notices()) != 1 || !strings.Contains(i.Notices()[0], "not applied") {
		t.Errorf("notices = %v", i.Notices())
	}
	for name, op := range map[string]func(context.Context) error{"save": i.Save, "stop": i.Stop, "kill": i.Kill, "start": i.Start} {
		if err := op(ctx); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s on external: %v, want ErrUnsupported", name, err)
		}
	}
}

// bundledCommand builds the mqbench binary (once per test binary) and returns
// the command that runs its bundled broker.
func bundledCommand(t testing.TB) []string {
	t.Helper()
	return []string{testutil.BuildMqbench(t), "broker"}
}

func connect(t *testing.T, addr, id string, clean bool) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(addr).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connecting %s to %s: %v", id, addr, tok.Error())
	}
	return c
}

// queue leaves n QoS 1 messages queued for an offline persistent subscriber, so
// every save has something to write and more messages make a bigger file.
func queue(t *testing.T, addr string, n int) {
	t.Helper()
	pub := connect(t, addr, "launch-pub", true)
	defer pub.Disconnect(50)
	for k := 0; k < n; k++ {
		tok := pub.Publish("launch/test", 1, false, fmt.Sprintf("message %d", k))
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", k, tok.Error())
		}
	}
}

func subscribeOffline(t *testing.T, addr string) {
	t.Helper()
	sub := connect(t, addr, "launch-sub", false)
	tok := sub.Subscribe("launch/test", 1, nil)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(50)
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return st.Size()
}

// testPersistenceLifecycle is the same story for every local kind: Save writes
// the file, Stop saves what was queued since, Kill loses what came after, Start
// brings the broker back on the same address with its saved state.
func testPersistenceLifecycle(t *testing.T, o Options) {
	ctx := context.Background()
	o.DataDir = filepath.Join(t.TempDir(), "data")
	// autosave_interval 0: only explicit and shutdown saves, so sizes are deterministic.
	o.Settings = []conf.Setting{setting("persistence", "true", 1), setting("autosave_interval", "0", 2)}
	i, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer i.Close()
	db := i.PersistPath()
	if db != filepath.Join(o.DataDir, "mosquitto.db") {
		t.Errorf("PersistPath = %s", db)
	}
	if i.Version() == "" || i.PID() == 0 {
		t.Errorf("version %q pid %d", i.Version(), i.PID())
	}
	addr := i.Addr()
	if !strings.HasPrefix(addr, "tcp://127.0.0.1:") {
		t.Errorf("Addr = %s", addr)
	}

	subscribeOffline(t, addr)
	queue(t, addr, 5)
	if fileSize(db) != -1 {
		t.Fatalf("db exists before any save")
	}
	if err := i.Save(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the save requested by SIGUSR1", func() bool { return fileSize(db) > 0 })
	size1 := fileSize(db)

	queue(t, addr, 5)
	if err := i.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	size2 := fileSize(db)
	if size2 <= size1 {
		t.Errorf("final save on Stop: size %d, want more than %d (5 more messages queued)", size2, size1)
	}

	if err := i.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if i.Addr() != addr {
		t.Errorf("restart moved the broker: %s, was %s", i.Addr(), addr)
	}
	queue(t, addr, 5) // connects to the same address, so the broker is back
	if err := i.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(db); got != size2 {
		t.Errorf("after Kill the db is %d bytes, want %d (the last save, from Stop)", got, size2)
	}
	if err := i.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := i.Close(); err != nil {
		t.Fatal(err)
	}
	if i.PID() != 0 {
		t.Error("still running after Close")
	}
}

func TestMosquittoLifecycle(t *testing.T) {
	testutil.RequireMosquittoBroker(t)
	testPersistenceLifecycle(t, Options{Kind: KindMosquitto})
}

func TestBundledLifecycle(t *testing.T) {
	testPersistenceLifecycle(t, Options{BundledCommand: bundledCommand(t)})
}

func TestMosquittoVersionAndExternal(t *testing.T) {
	testutil.RequireMosquittoBroker(t)
	ctx := context.Background()
	i, err := Start(ctx, Options{Kind: KindMosquitto, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer i.Close()
	if i.Version() != "2.0.11" && !strings.HasPrefix(i.Version(), "2.") {
		t.Errorf("mosquitto version = %q", i.Version())
	}
	ext, err := Start(ctx, Options{Kind: i.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if want := "mosquitto version " + i.Version(); ext.Version() != want {
		t.Errorf("external version via $SYS = %q, want %q", ext.Version(), want)
	}
}

func TestMosquittoStartFailureCarriesLog(t *testing.T) {
	testutil.RequireMosquittoBroker(t)
	// mosquitto cannot write a pid file into a missing directory and exits: the
	// error must say so with the broker's own words.
	_, err := Start(context.Background(), Options{Kind: KindMosquitto, DataDir: t.TempDir(),
		Settings: []conf.Setting{setting("pid_file", "/nonexistent-mqbench-dir/m.pid", 1)}})
	if err == nil {
		t.Fatal("Start succeeded with an unwritable pid_file")
	}
	for _, want := range []string{"broker exited before it was ready", "last lines of", "pid file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}
}

// BenchmarkStartStop measures what a run or a restart action pays to bring a
// broker up until it accepts connections and to stop it cleanly.
func BenchmarkStartStop(b *testing.B) {
	for _, kind := range []string{KindBundled, KindMosquitto} {
		b.Run(kind, func(b *testing.B) {
			o := Options{Kind: kind, DataDir: b.TempDir()}
			if kind == KindBundled {
				o.BundledCommand = bundledCommand(b)
			} else {
				testutil.RequireMosquittoBroker(b)
			}
			ctx := context.Background()
			i, err := Start(ctx, o)
			if err != nil {
				b.Fatal(err)
			}
			defer i.Close()
			if err := i.Stop(ctx); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := i.Start(ctx); err != nil {
					b.Fatal(err)
				}
				if err := i.Stop(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
