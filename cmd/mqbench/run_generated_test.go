package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/internal/testutil"
)

// generatedScenario secures the broker with everything generated: TLS with a
// required client certificate, a password file and an ACL. Every client kind
// (lean and paho publishers, a subscriber, the $SYS monitor) must get in with
// nothing but the scenario.
const generatedScenario = `name: generated
security:
  tls: true
  require_certificate: true
  users:
    - name: alice
      password: ` + leakCanary + `
  acl: |
    user alice
    topic readwrite sec/#
    topic read $SYS/#
connect:
  username: alice
publishers:
  - client_id: lean
    messages: 30
    qos: 2
    topic: sec/lean
    inflight: 10
  - client_id: paho
    client: paho
    messages: 30
    qos: 1
    topic: sec/paho
subscribers:
  - client_id: sub
    filter: sec/#
    qos: 1
duration: 1s
drain_timeout: 10s
`

func TestRunGeneratedSecurity(t *testing.T) {
	for _, kind := range []string{"bundled", "mosquitto"} {
		t.Run(kind, func(t *testing.T) {
			if kind == "mosquitto" {
				testutil.RequireMosquittoBroker(t)
			}
			sc := filepath.Join(t.TempDir(), "generated.yaml")
			if err := os.WriteFile(sc, []byte(generatedScenario), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "run")
			res := runCLI(t, cliOpts{}, "run", sc, "--broker", kind, "--no-progress", "--out", dir)
			if res.code != 0 {
				t.Fatalf("secured run failed:\n%s", res)
			}
			s := readSummary(t, dir)
			if s.Published != 60 || s.Delivered != 60 || s.Lost != 0 {
				t.Errorf("published %d delivered %d lost %d, want 60/60/0", s.Published, s.Delivered, s.Lost)
			}
			conf, err := os.ReadFile(filepath.Join(dir, "broker", "mosquitto.conf"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"certfile ", "require_certificate true", "password_file ", "acl_file ", "allow_anonymous false"} {
				if !strings.Contains(string(conf), want) {
					t.Errorf("broker config lacks %q:\n%s", want, conf)
				}
			}
			if hits := grepDir(t, dir, leakCanary); len(hits) > 0 {
				t.Errorf("the password is written in %v", hits)
			}
		})
	}
}

// TestGeneratedSecurityRefusedForExternal: mqbench cannot configure a broker
// it did not start.
func TestGeneratedSecurityRefusedForExternal(t *testing.T) {
	sc := filepath.Join(t.TempDir(), "generated.yaml")
	if err := os.WriteFile(sc, []byte(generatedScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, cliOpts{}, "run", sc, "--broker", "tcp://127.0.0.1:1", "--no-progress", "--out", filepath.Join(t.TempDir(), "r"))
	if res.code == 0 || !strings.Contains(res.stderr, "security section") {
		t.Errorf("want a refusal naming the security section:\n%s", res)
	}
}
