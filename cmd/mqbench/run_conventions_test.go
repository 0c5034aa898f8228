package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/bench"
)

// TestRunJSON: --json puts the summary JSON alone on stdout, tables on stderr.
func TestRunJSON(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	res := runCLI(t, cliOpts{}, "run", "persist-quick", "--time-scale", "0.2", "--no-progress", "--json", "--out", dir)
	if res.code != 0 {
		t.Fatalf("run failed:\n%s", res)
	}
	var s bench.Summary
	if err := json.Unmarshal([]byte(res.stdout), &s); err != nil {
		t.Fatalf("stdout is not the summary JSON: %v\n%s", err, res.stdout)
	}
	if s.Scenario != "persist-quick" || s.Published == 0 {
		t.Errorf("summary scenario %q published %d", s.Scenario, s.Published)
	}
	if !strings.Contains(res.stderr, "publish rate") {
		t.Errorf("the table should be on stderr:\n%s", res.stderr)
	}
}

// TestRunReportsEveryFileError: all scenarios are loaded first and every
// error of every file is reported in one go.
func TestRunReportsEveryFileError(t *testing.T) {
	d := t.TempDir()
	a := filepath.Join(d, "a.yaml")
	b := filepath.Join(d, "b.yaml")
	if err := os.WriteFile(a, []byte("name: a\npublishers:\n  - messages: 0\n    qos: 5\n    topic: t\nduration: 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("name: b\npublishers:\n  - messages: 1\n    qos: 1\n    topic: \"a/#\"\nduration: 0s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, cliOpts{}, "run", a, b, "--no-progress")
	if res.code == 0 {
		t.Fatalf("bad scenarios ran:\n%s", res)
	}
	for _, want := range []string{"a.yaml:3: publishers[0].messages", "a.yaml:4: publishers[0].qos", "b.yaml:5: publishers[0].topic", "b.yaml:6: duration"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
}

// TestCompletion: the shell completion knows the shipped scenarios and the
// broker kinds.
func TestCompletion(t *testing.T) {
	res := runCLI(t, cliOpts{}, "__complete", "run", "pers")
	if !strings.Contains(res.stdout, "persist-quick") {
		t.Errorf("scenario completion:\n%s", res)
	}
	res = runCLI(t, cliOpts{}, "__complete", "run", "persist-quick", "--broker", "")
	for _, want := range []string{"bundled", "mosquitto", "mqtts://"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("--broker completion lacks %s:\n%s", want, res)
		}
	}
}
