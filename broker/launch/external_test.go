package launch

import (
	"strings"
	"testing"
)

func TestExternalAddrsCluster(t *testing.T) {
	got, err := externalAddrs("tcp://127.0.0.1:1883, mqtt://127.0.0.2:1884", false)
	if err != nil || got != "tcp://127.0.0.1:1883,mqtt://127.0.0.2:1884" {
		t.Fatalf("externalAddrs = %q, %v", got, err)
	}
	for in, want := range map[string]string{
		"tcp://127.0.0.1:1883,tcp://127.0.0.1:1883": "given twice",
		"tcp://127.0.0.1:1883,":                     "external broker address",
		"tcp://127.0.0.1:1883,bundled":              "external broker address",
	} {
		if _, err := externalAddrs(in, false); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("externalAddrs(%q) = %v, want an error with %q", in, err, want)
		}
	}
	if _, err := externalAddrs("tcp://127.0.0.1:1883,tcp://127.0.0.1:1884", true); err == nil || !strings.Contains(err.Error(), "describe one broker") {
		t.Errorf("--db with a cluster target: %v", err)
	}
	if got, err := externalAddrs("tcp://127.0.0.1:1883", true); err != nil || got != "tcp://127.0.0.1:1883" {
		t.Errorf("one address with --db: %q, %v", got, err)
	}
}
