package bench

import "testing"

// TestPubErrLevel pins which publish failures taint a run. paho reports a
// failed publish only when the in-order acknowledgement loop reaches it, which
// after a kill action can be after the broker is back: such a failure was
// caused by the scheduled outage and must not taint the run (crash-3s was
// reported tainted by "write: broken pipe" on messages sent before the kill).
func TestPubErrLevel(t *testing.T) {
	tests := []struct {
		name    string
		down    bool
		backUpT int64
		sendT   int64
		want    string
	}{
		{"no outage ever", false, 0, 500, "warn"},
		{"broker down now", true, 0, 500, "info"},
		{"sent before the broker came back", false, 2000, 1500, "info"},
		{"sent after the broker came back", false, 2000, 2500, "warn"},
		{"down again after a restart", true, 2000, 2500, "info"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &brokerRun{}
			e := &engine{brokers: []*brokerRun{b}}
			b.down.Store(tc.down)
			b.backUpT.Store(tc.backUpT)
			if got := e.pubErrLevel("pub", tc.sendT); got != tc.want {
				t.Errorf("pubErrLevel(%d) with down=%v backUpT=%d = %q, want %q", tc.sendT, tc.down, tc.backUpT, got, tc.want)
			}
		})
	}
}

// TestLevelPerBroker: a stop of one broker explains only its own clients'
// trouble; the same trouble on another broker's client still taints.
func TestLevelPerBroker(t *testing.T) {
	edge, core := &brokerRun{name: "edge"}, &brokerRun{name: "core"}
	e := &engine{brokers: []*brokerRun{edge, core}, byClient: map[string]*brokerRun{"pub": edge, "sub": core, core.sysID(): core}}
	core.down.Store(true)
	if got := e.levelFor("sub"); got != LevelInfo {
		t.Errorf("core's subscriber while the core is down: %q, want info", got)
	}
	if got := e.levelFor(core.sysID()); got != LevelInfo {
		t.Errorf("core's $SYS monitor while the core is down: %q, want info", got)
	}
	if got := e.levelFor("pub"); got != LevelWarn {
		t.Errorf("edge's publisher while only the core is down: %q, want warn", got)
	}
	if got := e.pubErrLevel("pub", 10); got != LevelWarn {
		t.Errorf("edge publish failure while only the core is down: %q, want warn", got)
	}
}
