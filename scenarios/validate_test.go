package scenarios

import "testing"

// TestClientIDTemplate covers every way ApplyDefaults names clients, for both
// publishers and subscribers, which share the rule.
func TestClientIDTemplate(t *testing.T) {
	tests := []struct {
		name, id, prefix string
		i, n, count      int
		want             string
	}{
		{"only entry, one client", "", "pub", 0, 1, 1, "pub"},
		{"only entry, many clients", "", "sub", 0, 1, 3, "sub-%d"},
		{"second of two entries, one client", "", "pub", 1, 2, 1, "pub2"},
		{"second of two entries, many clients", "", "sub", 1, 2, 4, "sub2-%d"},
		{"given id, one client", "slowsub", "sub", 0, 1, 1, "slowsub"},
		{"given id, many clients", "worker", "pub", 2, 3, 2, "worker-%d"},
		{"given template, many clients", "w%d-x", "pub", 0, 1, 2, "w%d-x"},
		{"given template, one client", "w%d", "sub", 0, 2, 1, "w%d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clientIDTemplate(tt.id, tt.prefix, tt.i, tt.n, tt.count)
			if got != tt.want {
				t.Errorf("clientIDTemplate(%q, %q, %d, %d, %d) = %q, want %q", tt.id, tt.prefix, tt.i, tt.n, tt.count, got, tt.want)
			}
		})
	}
}

// TestApplyDefaultsIDsIdempotent: defaulting twice must not append a second
// "-%d" or rename anything.
func TestApplyDefaultsIDsIdempotent(t *testing.T) {
	s := &Scenario{
		Publishers:  []Publisher{{Count: 3}, {ClientID: "p"}},
		Subscribers: []Subscriber{{ClientID: "s", Count: 2}},
	}
	s.ApplyDefaults()
	s.ApplyDefaults()
	got := []string{s.Publishers[0].ClientID, s.Publishers[1].ClientID, s.Subscribers[0].ClientID}
	want := []string{"pub1-%d", "p", "s-%d"}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("ids after two ApplyDefaults = %q, want %q", got, want)
			break
		}
	}
}
