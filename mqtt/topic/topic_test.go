package topic

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestMatchMeasured replays results of the real mosquitto_topic_matches_sub
// (libmosquitto 2.0.11) on random and derived inputs, odd ones included.
func TestMatchMeasured(t *testing.T) {
	f, err := os.Open("testdata/topic_matches.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		p := strings.Split(line, "\t")
		if len(p) != 3 {
			t.Fatalf("bad line %q", line)
		}
		n++
		if got := Match(p[0], p[1]); got != (p[2] == "1") {
			t.Errorf("Match(%q, %q) = %v, Mosquitto says %s", p[0], p[1], got, p[2])
		}
	}
	if n < 500 {
		t.Fatalf("only %d cases", n)
	}
}

// TestMatch is the table the analysis's and the broker's matchers were
// tested with: valid filters and topics, where every MQTT broker agrees.
func TestMatch(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"test", "test", true},
		{"test", "test2", false},
		{"a/b", "a/b", true},
		{"a/b", "a", false},
		{"a", "a/b", false},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+", "/a", false},
		{"+/+", "/a", true},
		{"a/+", "a/", true},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/d", false},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"a/b/#", "a", false},
		{"+/#", "a", true},
		{"#", "$SYS/broker/x", false},
		{"+/broker/#", "$SYS/broker/x", false},
		{"$SYS/#", "$SYS/broker/x", true},
		{"$SYS/+/x", "$SYS/broker/x", true},
		{"$SYS/#", "a", false},
		{"", "a", false},
		{"a", "", false},
		{"a/+", "a/+", false}, // a topic holding a wildcard is not a topic
	}
	for _, tt := range tests {
		if got := Match(tt.filter, tt.topic); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestValidFilter(t *testing.T) {
	for _, f := range []string{"a", "a/b", "+", "#", "a/+/c", "a/#", "+/+/#", "/", "$SYS/#", "$share/g/a"} {
		if err := ValidFilter(f); err != nil {
			t.Errorf("ValidFilter(%q) = %v, want nil", f, err)
		}
	}
	for f, want := range map[string]string{
		"":      "must not be empty",
		"a/#/b": "# must be a whole last level",
		"a#":    "# must be a whole last level",
		"a/b+":  "+ must be a whole level",
		"++":    "+ must be a whole level",
	} {
		if err := ValidFilter(f); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidFilter(%q) = %v, want %q", f, err, want)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"a", "a/b", "/", "$SYS/x"} {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", "a/+", "#", "a/#"} {
		if ValidName(n) == nil {
			t.Errorf("ValidName(%q) = nil, want an error", n)
		}
	}
}

// FuzzMatch: any input gives an answer, and a topic with a wildcard or a
// filter-less match never matches.
func FuzzMatch(f *testing.F) {
	f.Add("a/+/#", "a/b/c")
	f.Add("#", "$SYS")
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if Match(filter, topic) && (strings.ContainsAny(cTrunc(topic), "+#") || cTrunc(filter) == "") {
			t.Errorf("Match(%q, %q) is true", filter, topic)
		}
	})
}
