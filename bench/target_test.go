package bench

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/mqbench/mqbench/broker"
	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/broker/launch"
	"github.com/mqbench/mqbench/internal/testutil"
	"github.com/mqbench/mqbench/scenarios"
)

// startMosquitto starts a real Mosquitto through launch with the scenario's broker settings.
func startMosquitto(tb testing.TB, sc *scenarios.Scenario) *launch.Instance {
	tb.Helper()
	bin := testutil.RequireMosquittoBroker(tb)
	settings, err := sc.Settings()
	if err != nil {
		tb.Fatal(err)
	}
	inst, err := launch.Start(context.Background(), launch.Options{
		Kind: launch.KindMosquitto, Settings: settings, DataDir: tb.TempDir(), MosquittoPath: bin,
	})
	if err != nil {
		tb.Fatalf("starting mosquitto: %v", err)
	}
	tb.Cleanup(func() { inst.Close() })
	return inst
}

// bundledTarget runs the bundled broker in this process: a test-only Target
// (launch would run it as a child of the mqbench binary, which tests lack).
// Lifecycle actions other than save are not supported.
type bundledTarget struct {
	b     *broker.Broker
	path  string
	lines []string
}

func startBundled(tb testing.TB, sc *scenarios.Scenario) *bundledTarget {
	tb.Helper()
	cfg := conf.Default()
	settings, err := sc.Settings()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	all := append([]conf.Setting{
		{Key: "listener", Value: "0 127.0.0.1"},
		{Key: "allow_anonymous", Value: "true"},
		{Key: "persistence_location", Value: dir + "/"},
		{Key: "log_dest", Value: "none"},
	}, settings...)
	var lines []string
	for _, s := range all {
		if err := cfg.Apply(s.Key, s.Value, "test", 0); err != nil {
			tb.Fatal(err)
		}
		lines = append(lines, s.Key+" "+s.Value)
	}
	b, err := broker.New(broker.Options{Config: cfg, Version: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := b.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	t := &bundledTarget{b: b, lines: lines}
	if cfg.Persistence {
		t.path = filepath.Join(dir, cfg.PersistenceFile)
	}
	return t
}

func (t *bundledTarget) Kind() string               { return "bundled" }
func (t *bundledTarget) Version() string            { return "test" }
func (t *bundledTarget) Addr() string               { return "tcp://" + t.b.Addr() }
func (t *bundledTarget) PersistPath() string        { return t.path }
func (t *bundledTarget) ConfigLines() []string      { return t.lines }
func (t *bundledTarget) Save(context.Context) error { return t.b.Save() }
func (t *bundledTarget) Stop(context.Context) error {
	return errors.New("stop: not supported in process")
}
func (t *bundledTarget) Kill(context.Context) error {
	return errors.New("kill: not supported in process")
}
func (t *bundledTarget) Start(context.Context) error {
	return errors.New("start: not supported in process")
}
func (t *bundledTarget) PID() int { return 0 }
