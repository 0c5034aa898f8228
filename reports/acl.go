package reports

import (
	"fmt"
	"strings"

	"github.com/mqbench/mqbench/bench"
)

// aclMarkdown is the table of what a secured run's ACL allowed and held back,
// publisher by subscriber, so an auth scenario's report answers "who could
// read what" from the recorded counts, not from a reading of the ACL file.
func aclMarkdown(s *bench.Summary) string {
	if len(s.ACL) == 0 {
		return ""
	}
	var rows [][]string
	var denied int64
	for _, d := range s.ACL {
		rows = append(rows, []string{"`" + d.Publisher + "`", "`" + d.Topic + "`", "`" + d.Subscriber + "`", d.Verdict, groupInt(d.Messages)})
		if d.Verdict != bench.ACLAllowed {
			denied += d.Messages
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nWhat the scenario's ACL allowed: %s %s held back from subscribers whose filter matched, judged with Mosquitto's rules (the per-subscriber table above shows what was delivered):\n\n",
		groupInt(denied), plural(denied, "message was", "messages were"))
	b.WriteString(renderTable(true, []string{"publisher", "topic", "subscriber", "ACL", "messages"}, rows))
	return b.String()
}
