package runfile

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestDecodeScenario: the header's scenario decodes whichever way its
// durations were recorded (strings now, integer nanoseconds in early runs);
// an absent one is nil without error, a damaged one an error saying where.
func TestDecodeScenario(t *testing.T) {
	for name, raw := range map[string]string{
		"strings":  `{"name":"s","duration":"3s","publishers":[{"client_id":"p","start_at":"1.5s"}],"subscribers":[{"pace":"100ms"}]}`,
		"integers": `{"name":"s","duration":3000000000,"publishers":[{"client_id":"p","start_at":1500000000}],"subscribers":[{"pace":100000000}]}`,
	} {
		h := Header{Scenario: json.RawMessage(raw)}
		sc, err := h.DecodeScenario()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if sc.Name != "s" || sc.Duration.D() != 3*time.Second || sc.Publishers[0].StartAt.D() != 1500*time.Millisecond || sc.Subscribers[0].Pace.D() != 100*time.Millisecond {
			t.Errorf("%s: decoded %+v", name, sc)
		}
	}
	for _, raw := range []string{"", "null", " null\n"} {
		if sc, err := (&Header{Scenario: json.RawMessage(raw)}).DecodeScenario(); sc != nil || err != nil {
			t.Errorf("%q: %v, %v; want nil, nil", raw, sc, err)
		}
	}
	if _, err := (&Header{Scenario: json.RawMessage(`{"publishers":5}`)}).DecodeScenario(); err == nil || !strings.Contains(err.Error(), "scenario recorded in the header") {
		t.Errorf("bad scenario: %v", err)
	}
}
