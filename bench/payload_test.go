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
	const sendT = 599_999_999_999 // ns: the end of a 10-minute run
	tests := []struct {
		name    string
		p       scenarios.Payload
		pub     string
		withPub bool
		seq     int64
		wantPub string // what parsePayload finds ("" = not carried)
		minLen  int
		maxLen  int
		wantT   int64 // the send time parsePayload finds (0 = not carried)
	}{
		{"experiment single", scenarios.Payload{Kind: "experiment"}, "pub", false, 1, "", 150, 156, 0},
		{"experiment big id", scenarios.Payload{Kind: "experiment"}, "pub", false, 10000, "", 150, 160, 0},
		{"experiment several", scenarios.Payload{Kind: "experiment"}, "pub-2", true, 42, "pub-2", 150, 175, 0},
		{"random", scenarios.Payload{Kind: "random", Size: 150}, "p1", false, 7, "p1", 150, 150, sendT},
		// Too small for the time: the size wins, the time is left out.
		{"random tiny", scenarios.Payload{Kind: "random", Size: 32}, "a-long-publisher-id-here", false, 123456789, "a-long-publisher-id-here", 32, 64, 0},
		{"random just fits", scenarios.Payload{Kind: "random", Size: 32}, "pub", false, 12000000, "pub", 32, 32, sendT},
		{"template", scenarios.Payload{Kind: "template", Template: `{"n": {{.Seq}}, "r": "{{.Random 5}}", "ts": {{.Timestamp}}}`}, "t", false, 9, "t", 20, 80, sendT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := newPayloadGen(tt.p, tt.pub, tt.withPub, 1)
			if err != nil {
				t.Fatal(err)
			}
			b, err := g.make(tt.seq, sendT, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < tt.minLen || len(b) > tt.maxLen {
				t.Errorf("len %d not in [%d, %d]: %s", len(b), tt.minLen, tt.maxLen, b)
			}
			pub, seq, gotT, ok := parsePayload(b)
			if !ok || seq != tt.seq || pub != tt.wantPub || gotT != tt.wantT {
				t.Errorf("parse %q = %q %d %d %v, want %q %d %d", b, pub, seq, gotT, ok, tt.wantPub, tt.seq, tt.wantT)
			}
			if b0, _ := g.make(tt.seq, 0, now); len(b0) != len(b) && tt.p.Kind != "template" && tt.wantT == 0 {
				t.Errorf("a payload without a time has %d bytes, with one %d", len(b0), len(b))
			}
			b2, _ := g.make(tt.seq, sendT, now)
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
	b, _ := g.make(5, 12345, now)
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
	pub, seq, sendT, ok := parsePayload([]byte(`{"id": 77, "pub": "p-3", "Timestamp": 1}`))
	if !ok || seq != 77 || pub != "p-3" || sendT != 0 {
		t.Fatalf("got %q %d %d %v", pub, seq, sendT, ok)
	}
}

// Payloads of older mqbench versions (no send time; publisher ids with ':')
// still parse, and their bodies never pass for a send time.
func TestParsePayloadOlder(t *testing.T) {
	for _, tc := range []struct {
		p     string
		pub   string
		seq   int64
		sendT int64
	}{
		{"mqb:pub:7:Ab3xYz09", "pub", 7, 0},
		{"mqb:pub:7:123abc", "pub", 7, 0},
		{"mqb:pub:7:", "pub", 7, 0},
		{"mqb:a:b:12:xyz", "a:b", 12, 0},
		{"mqb:pub:7:555:rest", "pub", 7, 555},
		{"mqb:pub:7:555:", "pub", 7, 555},
	} {
		pub, seq, sendT, ok := parsePayload([]byte(tc.p))
		if !ok || pub != tc.pub || seq != tc.seq || sendT != tc.sendT {
			t.Errorf("parse %q = %q %d %d %v, want %q %d %d", tc.p, pub, seq, sendT, ok, tc.pub, tc.seq, tc.sendT)
		}
	}
}

func TestParsePayloadForeign(t *testing.T) {
	for _, p := range []string{"", "hello", `{"id": x}`, `{"id":}`, "mqb:nope", "mqb:p:12x"} {
		if _, _, _, ok := parsePayload([]byte(p)); ok {
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
