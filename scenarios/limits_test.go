package scenarios

import (
	"strings"
	"testing"
	"time"
)

const limitsBase = `name: l
publishers:
  - client_id: pub-%d
    count: 1
    messages: 10
    qos: 1
    topic: t
subscribers:
  - filter: t
    qos: 1
duration: 1s
`

// TestLimitsAtLoad: sizes that would exhaust memory or that MQTT cannot carry
// are refused at load, naming file, line and field, and quickly: nothing is
// expanded before the numbers are checked.
func TestLimitsAtLoad(t *testing.T) {
	long := strings.Repeat("x", 70000)
	for _, tc := range []struct{ from, to, want string }{
		{"count: 1", "count: 1000000000", "l.yaml:4: publishers[0].count"},
		{"    qos: 1\n    topic: t", "    qos: 1\n    topic: t\n    payload: {kind: random, size: 100000000000}", "publishers[0].payload.size"},
		{"    qos: 1\n    topic: t", "    qos: 1\n    topic: t\n    payload: {kind: random, size: 268435456}", "publishers[0].payload.size"},
		{"    qos: 1\n    topic: t", "    qos: 1\n    topic: t\n    payload: {kind: template, template: \"{{.Random 100000000000}}\"}", "publishers[0].payload.template"},
		{"    qos: 1\n    topic: t", "    qos: 1\n    topic: t\n    payload: {kind: template, template: \"a{{if .Seq}}{{.Random -1}}{{end}}\"}", "publishers[0].payload.template"},
		{"    qos: 1\n    topic: t", "    qos: 1\n    topic: t\n    payload: {kind: template, template: \"{{.Random .Seq}}\"}", "publishers[0].payload.template"},
		{"client_id: pub-%d", "client_id: pub-%d" + long, "publishers[0].client_id"},
		{"topic: t", "topic: " + long, "publishers[0].topic"},
		{"messages: 10", "messages: 10000000000", "publishers[0].messages"},
	} {
		y := strings.Replace(limitsBase, tc.from, tc.to, 1)
		start := time.Now()
		s, err := Parse([]byte(y), "l.yaml")
		if err == nil {
			s.ApplyDefaults()
			err = s.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60s: err = %.200v, want one naming %s", tc.to, err, tc.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%.60s: validation took %v", tc.to, d)
		}
	}
	// A template with sane Random sizes passes.
	y := strings.Replace(limitsBase, "    qos: 1\n    topic: t", "    qos: 1\n    topic: t\n    payload: {kind: template, template: \"{{.Seq}} {{.Random 50}}\"}", 1)
	s, err := Parse([]byte(y), "l.yaml")
	if err == nil {
		s.ApplyDefaults()
		err = s.Validate()
	}
	if err != nil {
		t.Errorf("a sane template was refused: %v", err)
	}
}

// TestSetTakesFieldType: --set gives a string field its value verbatim, so a
// filter of # is not read as a YAML comment.
func TestSetTakesFieldType(t *testing.T) {
	s, err := Parse([]byte(limitsBase), "l.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []string{"subscribers.0.filter=#", "publishers.0.topic=a: b", "publishers.0.messages=7"} {
		if err := s.Set(kv); err != nil {
			t.Fatalf("--set %s: %v", kv, err)
		}
	}
	if s.Subscribers[0].Filter != "#" || s.Publishers[0].Topic != "a: b" || s.Publishers[0].Messages != 7 {
		t.Errorf("filter %q topic %q messages %d", s.Subscribers[0].Filter, s.Publishers[0].Topic, s.Publishers[0].Messages)
	}
	if err := s.Set("publishers.0.messages=many"); err == nil {
		t.Error("a non-number for messages was accepted")
	}
}
