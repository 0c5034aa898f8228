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
			e := &engine{}
			e.brokerDown.Store(tc.down)
			e.backUpT.Store(tc.backUpT)
			if got := e.pubErrLevel(tc.sendT); got != tc.want {
				t.Errorf("pubErrLevel(%d) with down=%v backUpT=%d = %q, want %q", tc.sendT, tc.down, tc.backUpT, got, tc.want)
			}
		})
	}
}
