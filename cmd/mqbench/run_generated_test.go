package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestAuthACLScenario: the shipped auth-acl run on both brokers reconciles
// with nothing lost, and what each subscriber got is what the ACL allows.
func TestAuthACLScenario(t *testing.T) {
	want := map[string][2]int64{"alice-sub": {300, 100}, "bob-sub": {0, 400}, "anon-sub": {100, 300}} // delivered, denied
	for _, kind := range []string{"bundled", "mosquitto"} {
		t.Run(kind, func(t *testing.T) {
			if kind == "mosquitto" {
				testutil.RequireMosquittoBroker(t)
			}
			dir := filepath.Join(t.TempDir(), "run")
			res := runCLI(t, cliOpts{timeout: 90 * time.Second}, "run", "auth-acl", "--broker", kind, "--no-progress", "--out", dir)
			if res.code != 0 {
				t.Fatalf("auth-acl failed:\n%s", res)
			}
			s := readSummary(t, dir)
			if s.Lost != 0 || s.Tainted {
				t.Errorf("lost %d tainted %v (%v)", s.Lost, s.Tainted, s.TaintReasons)
			}
			for _, sub := range s.Subscribers {
				w := want[sub.Client]
				if sub.Delivered != w[0] || sub.DeniedByACL != w[1] {
					t.Errorf("%s: delivered %d, denied by ACL %d; want %d and %d", sub.Client, sub.Delivered, sub.DeniedByACL, w[0], w[1])
				}
			}
			report, err := os.ReadFile(filepath.Join(dir, "report.md"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(report), "denied: publisher may not write") || !strings.Contains(string(report), "800 messages were held back") {
				t.Errorf("report does not show the ACL's decisions:\n%s", report)
			}
		})
	}
}
