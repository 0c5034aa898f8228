package broker

import (
	"bytes"
	"io"
	"testing"

	"github.com/mqbench/mqbench/broker/conf"
)

// TestLogTypeMask checks which line types log_type and log_dest enable,
// including the order-dependent "none" and "all" and unknown names.
func TestLogTypeMask(t *testing.T) {
	all := []int{logError, logWarning, logNotice, logInfo, logDebug, logSubscribe, logUnsubscribe}
	cases := []struct {
		name  string
		types []string
		dest  []string
		w     io.Writer
		want  []int // enabled types; every other one must be off
	}{
		{name: "unset is the default four", want: []int{logError, logWarning, logNotice, logInfo}},
		{name: "each named", types: []string{"debug", "subscribe", "unsubscribe"}, want: []int{logDebug, logSubscribe, logUnsubscribe}},
		{name: "all", types: []string{"all"}, want: all},
		{name: "none clears what came before", types: []string{"error", "none", "warning"}, want: []int{logWarning}},
		{name: "none last", types: []string{"all", "none"}},
		{name: "unknown adds nothing", types: []string{"websockets", "notice"}, want: []int{logNotice}},
		{name: "log_dest none", types: []string{"all"}, dest: []string{"stdout", "none"}},
		{name: "discarded writer", types: []string{"all"}, w: io.Discard},
	}
	for _, tc := range cases {
		cfg := conf.Default()
		cfg.LogType = tc.types
		cfg.LogDest = tc.dest
		w := tc.w
		if w == nil {
			w = &bytes.Buffer{}
		}
		l := newLogger(w, cfg)
		on := map[int]bool{}
		for _, typ := range tc.want {
			on[typ] = true
		}
		for _, typ := range all {
			if got := l.enabled(typ); got != on[typ] {
				t.Errorf("%s: type %#x enabled = %v, want %v", tc.name, typ, got, on[typ])
			}
		}
	}
}
