package reports

import (
	"strings"
	"testing"

	"github.com/mqbench/mqbench/bench"
)

// TestReasonFindings: reason codes are explained in words, most frequent
// first, plain success summed up, refusals and expiries said.
func TestReasonFindings(t *testing.T) {
	s := &bench.Summary{ReasonCodes: map[string]int64{"puback 0x00": 10, "puback 0x10": 123, "connack 0x00": 2, "suback 0x01": 1}}
	want := "MQTT 5 reason codes: PUBACK 0x10 (no matching subscribers) for 123 publishes: nobody was subscribed when they arrived."
	if got := reasonFindings(s); got != want {
		t.Errorf("reasonFindings = %q\nwant %q", got, want)
	}
	s.ReasonCodes = map[string]int64{"puback 0x00": 3}
	if got := reasonFindings(s); got != "Every MQTT 5 acknowledgement (3) reported success." {
		t.Errorf("all success: %q", got)
	}
	s.ReasonCodes = map[string]int64{"puback 0x87": 2, "disconnect 0x8E": 1}
	s.Refused = 2
	got := reasonFindings(s)
	for _, w := range []string{"PUBACK 0x87 (not authorized) for 2 publishes", "DISCONNECT 0x8E (session taken over) for 1 connection", "refused 2 publishes"} {
		if !strings.Contains(got, w) {
			t.Errorf("reasonFindings = %q, want %q in it", got, w)
		}
	}
	if reasonFindings(&bench.Summary{}) != "" {
		t.Error("a 3.1.1 run has no reason finding")
	}
	s = &bench.Summary{Acked: 200, Delivered: 100, ExpiredOrLost: 100, Drops: bench.DropCounter{Source: "$SYS"}}
	acc := accountingFinding(s, 200)
	for _, w := range []string{"100 were expired or lost and 0 were lost.", "100 messages were expired or lost: sent with an MQTT 5 message expiry"} {
		if !strings.Contains(acc, w) {
			t.Errorf("accountingFinding = %q, want %q in it", acc, w)
		}
	}
}
