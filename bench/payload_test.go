package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

func TestPayloadRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 123e6)
	tests := []struct {
		name    string
		p       scenarios.Payload
		pub     string
		withPub bool
		seq     int64
		wantPub string // what parsePayload finds ("" = not carried)
		minLen  int
		maxLen  int
	}{
		{"experiment single", scenarios.Payload{Kind: "experiment"}, "pub", false, 1, "", 150, 156},
		{"experiment big id", scenarios.Payload{Kind: "experiment"}, "pub", false, 10000, "", 150, 160},
		{"experiment several", scenarios.Payload{Kind: "experiment"}, "pub-2", true, 42, "pub-2", 150, 175},
		{"random", scenarios.Payload{Kind: "random", Size: 150}, "p1", false, 7, "p1", 150, 150},
		{"random tiny", scenarios.Payload{Kind: "random", Size: 32}, "a-long-publisher-id-here", false, 123456789, "a-long-publisher-id-here", 32, 64},
		{"template", scenarios.Payload{Kind: "template", Template: `{"n": {{.Seq}}, "r": "{{.Random 5}}", "ts": {{.Timestamp}}}`}, "t", false, 9, "t", 20, 80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := newPayloadGen(tt.p, tt.pub, tt.withPub, 1)
			if err != nil {
				t.Fatal(err)
			}
			b, err := g.make(tt.seq, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < tt.minLen || len(b) > tt.maxLen {
				t.Errorf("len %d not in [%d, %d]: %s", len(b), tt.minLen, tt.maxLen, b)
			}
			pub, seq, ok := parsePayload(b)
			if !ok || seq != tt.seq || pub != tt.wantPub {
				t.Errorf("parse %q = %q %d %v, want %q %d", b, pub, seq, ok, tt.wantPub, tt.seq)
			}
			b2, _ := g.make(tt.seq, now)
			if string(b2) == string(b) && len(b) > len(idHeader)+len(tt.pub)+12 && tt.p.Kind != "template" {
				t.Errorf("two payloads are identical: random parts do not vary")
			}
		})
	}
}

// The experiment payload must stay the seed experiment's JSON object.
func TestExperimentPayloadIsSeedJSON(t *testing.T) {
	g, _ := newPayloadGen(scenarios.Payload{Kind: "experiment"}, "pub", false, 3)
	now := time.UnixMilli(1700000000123)
	b, _ := g.make(5, now)
	var m map[string]interface{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	if len(m) != 4 || m["id"] != 5.0 || m["Timestamp"] != 1700000000123.0 {
		t.Fatalf("fields %v", m)
	}
	for _, k := range []string{"str1", "str2"} {
		s, _ := m[k].(string)
		if len(s) != 50 || strings.Trim(s, alnum) != "" {
			t.Errorf("%s = %q: want 50 letters and digits", k, s)
		}
	}
}

// Spaced JSON (Python's json.dumps default) is read as well.
func TestParsePayloadSpaced(t *testing.T) {
	pub, seq, ok := parsePayload([]byte(`{"id": 77, "pub": "p-3", "Timestamp": 1}`))
	if !ok || seq != 77 || pub != "p-3" {
		t.Fatalf("got %q %d %v", pub, seq, ok)
	}
}

func TestParsePayloadForeign(t *testing.T) {
	for _, p := range []string{"", "hello", `{"id": x}`, `{"id":}`, "mqb:nope", "mqb:p:12x"} {
		if _, _, ok := parsePayload([]byte(p)); ok {
			t.Errorf("%q parsed as an mqbench payload", p)
		}
	}
}

func TestCheckPubID(t *testing.T) {
	for id, ok := range map[string]bool{"pub": true, "pub-1": true, "a:b": false, `a"b`: false} {
		if err := checkPubID(id); (err == nil) != ok {
			t.Errorf("checkPubID(%q) = %v", id, err)
		}
	}
}

func TestLimiterSchedule(t *testing.T) {
	l := newLimiter(1e6) // 1 µs apart: waits return at once, the schedule is what counts
	stop := make(chan struct{})
	l.wait(stop)
	after1 := l.next
	for i := 0; i < 99; i++ {
		if !l.wait(stop) {
			t.Fatal("wait returned false without stop")
		}
	}
	if got := l.next.Sub(after1); got != 99*time.Microsecond {
		t.Fatalf("99 slots span %v, want 99µs", got)
	}
	close(stop)
	slow := newLimiter(0.001) // one per 1000 s: the second wait must be cut by stop
	slow.wait(make(chan struct{}))
	if slow.wait(stop) {
		t.Fatal("wait ignored stop")
	}
	if newLimiter(0) != nil {
		t.Fatal("rate 0 must mean unlimited (nil limiter)")
	}
}
