package reports

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mqbench/mqbench/bench"
)

// MQTT 5 findings: the reason codes a run received and the messages that
// may have expired, in words. The names and meanings come from bench's one
// table (bench.ReasonName, bench.ReasonMeaning).

// reasonCounted says how many of what each packet's code counts.
var reasonCounted = map[string][2]string{
	"puback":     {"publish", "publishes"},
	"pubrec":     {"publish", "publishes"},
	"pubcomp":    {"publish", "publishes"},
	"suback":     {"subscription", "subscriptions"},
	"connack":    {"connection", "connections"},
	"disconnect": {"connection", "connections"},
}

// reasonFindings explains every reason code of the run that is not plain
// success, most frequent first ("PUBACK 0x10 (no matching subscribers) for
// 123 publishes: nobody was subscribed when they arrived"), and says when
// every code was success; "" for a run without reason codes (MQTT 3.1.1).
func reasonFindings(s *bench.Summary) string {
	if len(s.ReasonCodes) == 0 {
		return ""
	}
	type rc struct {
		label string
		n     int64
	}
	var notable []rc
	var total int64
	for label, n := range s.ReasonCodes {
		total += n
		pkt, code, ok := bench.ParseReason(label)
		if ok && code == 0 && pkt != "disconnect" {
			continue
		}
		if ok && pkt == "suback" && code <= 2 {
			continue // granted QoS 1 or 2: as asked, or the broker's maximum
		}
		notable = append(notable, rc{label, n})
	}
	if len(notable) == 0 {
		return fmt.Sprintf("Every MQTT 5 acknowledgement (%s) reported success.", groupInt(total))
	}
	sort.Slice(notable, func(i, j int) bool {
		if notable[i].n != notable[j].n {
			return notable[i].n > notable[j].n
		}
		return notable[i].label < notable[j].label
	})
	parts := make([]string, 0, len(notable))
	for _, r := range notable {
		pkt, code, ok := bench.ParseReason(r.label)
		if !ok {
			parts = append(parts, fmt.Sprintf("%s %s", groupInt(r.n), r.label))
			continue
		}
		what := reasonCounted[pkt]
		if what[0] == "" {
			what = [2]string{"packet", "packets"}
		}
		parts = append(parts, fmt.Sprintf("%s 0x%02X (%s) for %s %s: %s",
			strings.ToUpper(pkt), code, bench.ReasonName(pkt, code), groupInt(r.n), plural(r.n, what[0], what[1]), bench.ReasonMeaning(pkt, code)))
	}
	msg := "MQTT 5 reason codes: " + strings.Join(parts, "; ") + "."
	if s.Refused > 0 {
		msg += fmt.Sprintf(" The broker refused %s %s (codes 0x80 and above): they were never acknowledged and are not expected by anyone.",
			groupInt(s.Refused), plural(s.Refused, "publish", "publishes"))
	}
	return msg
}

// expiredFinding explains expired_or_lost: Mosquitto discards an expired
// message without counting it anywhere a client can read, so mqbench can
// only say the message's expiry had passed, not that it expired.
func expiredFinding(s *bench.Summary) string {
	if s.ExpiredOrLost == 0 {
		return ""
	}
	return fmt.Sprintf("%s %s expired or lost: sent with an MQTT 5 message expiry, never received, and held longer than their expiry by the end of the run, so the broker may have discarded them as expired (it counts expiries nowhere a client can read); they are not counted as lost.",
		groupInt(s.ExpiredOrLost), plural(s.ExpiredOrLost, "message", "messages")+" "+plural(s.ExpiredOrLost, "was", "were"))
}
