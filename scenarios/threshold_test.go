package scenarios

import (
	"strings"
	"testing"
	"time"
)

func TestParseThreshold(t *testing.T) {
	tests := []struct {
		expr    string
		metric  string
		op      string
		value   float64
		wantErr string
	}{
		{expr: "lost == 0", metric: "lost", op: "==", value: 0},
		{expr: "lost==0", metric: "lost", op: "==", value: 0},
		{expr: "  duplicates != 1 ", metric: "duplicates", op: "!=", value: 1},
		{expr: "persist.max_bytes <= 3MB", metric: "persist.max_bytes", op: "<=", value: 3e6},
		{expr: "persist.max_bytes < 2.5kB", metric: "persist.max_bytes", op: "<", value: 2500},
		{expr: "persist.final_bytes >= 1KiB", metric: "persist.final_bytes", op: ">=", value: 1024},
		{expr: "persist.final_bytes > 2MiB", metric: "persist.final_bytes", op: ">", value: 2 << 20},
		{expr: "persist.max_bytes <= 1GiB", metric: "persist.max_bytes", op: "<=", value: 1 << 30},
		{expr: "persist.max_bytes <= 1GB", metric: "persist.max_bytes", op: "<=", value: 1e9},
		{expr: "persist.bytes_per_held_message <= 230", metric: "persist.bytes_per_held_message", op: "<=", value: 230},
		{expr: "latency.publish_to_ack.p99_ns < 250ms", metric: "latency.publish_to_ack.p99_ns", op: "<", value: float64(250 * time.Millisecond)},
		{expr: "latency.publish_to_ack.p99_ns < 1m30s", metric: "latency.publish_to_ack.p99_ns", op: "<", value: float64(90 * time.Second)},
		{expr: "latency.publish_to_delivery.max_ns <= 2m", metric: "latency.publish_to_delivery.max_ns", op: "<=", value: float64(2 * time.Minute)},
		{expr: "latency.publish_to_ack.p50_ns < 1500", metric: "latency.publish_to_ack.p50_ns", op: "<", value: 1500},
		{expr: "publish.msgs_per_s >= 10k", metric: "publish.msgs_per_s", op: ">=", value: 1e4},
		{expr: "published == 1.5M", metric: "published", op: "==", value: 1.5e6},
		{expr: "published == 10_000", metric: "published", op: "==", value: 1e4},
		{expr: "lost = 0", wantErr: `use "=="`},
		{expr: "lost", wantErr: "want METRIC OP VALUE"},
		{expr: "lost == ", wantErr: "want METRIC OP VALUE"},
		{expr: "lost =< 3", wantErr: "want METRIC OP VALUE"},
		{expr: "lost == zero", wantErr: "not a number"},
		{expr: "persist.max_bytes <= 3XB", wantErr: `unknown unit "XB"`},
		{expr: "lost <= 3MB", wantErr: "not a bytes metric"},
		{expr: "persist.max_bytes <= 3s", wantErr: "not a _ns metric"},
		{expr: "latency.publish_to_ack.p99_ns < 3k", wantErr: "count unit"},
		{expr: "persist..max_bytes < 3", wantErr: "bad metric path"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			th, err := ParseThreshold(tc.expr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), strings.TrimSpace(tc.expr)) {
					t.Fatalf("err = %v, want one containing %q and the expression", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if th.Metric != tc.metric || th.Op != tc.op || th.Value != tc.value {
				t.Errorf("got %s %s %v, want %s %s %v", th.Metric, th.Op, th.Value, tc.metric, tc.op, tc.value)
			}
		})
	}
}

func TestThresholdHolds(t *testing.T) {
	tests := []struct {
		expr string
		v    float64
		want bool
	}{
		{"lost == 0", 0, true}, {"lost == 0", 1, false},
		{"lost != 0", 1, true}, {"lost != 0", 0, false},
		{"lost < 5", 4, true}, {"lost < 5", 5, false},
		{"lost <= 5", 5, true}, {"lost <= 5", 6, false},
		{"lost > 5", 6, true}, {"lost > 5", 5, false},
		{"lost >= 5", 5, true}, {"lost >= 5", 4, false},
		{"persist.max_bytes <= 3MB", 3e6, true}, {"persist.max_bytes <= 3MB", 3e6 + 1, false},
	}
	for _, tc := range tests {
		th, err := ParseThreshold(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := th.Holds(tc.v); got != tc.want {
			t.Errorf("%q holds for %v = %v, want %v", tc.expr, tc.v, got, tc.want)
		}
	}
}

// BenchmarkParseThreshold measures the threshold parser, run once per
// threshold per check.
func BenchmarkParseThreshold(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := ParseThreshold("latency.publish_to_ack.p99_ns < 250ms"); err != nil {
			b.Fatal(err)
		}
	}
}
