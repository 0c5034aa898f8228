package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/internal/testutil"
	"github.com/mqbench/mqbench/scenarios"
)

// v5Sets turn the secure scenario into MQTT 5: its lean publisher, its paho
// publisher (paho.golang's client) and its subscriber.
var v5Sets = []string{"protocol=5"}

// TestMosquittoV5Secure: over MQTT 5, credentials (a password file),
// mqtts:// with a client certificate, ws:// and wss:// work as over 3.1.1,
// on Mosquitto 2.0.11, and a wrong password is refused with its v5 code.
func TestMosquittoV5Secure(t *testing.T) {
	t.Run("password", func(t *testing.T) {
		dir := t.TempDir()
		pw := passwordFile(t, dir, "alice", "secret")
		m := testutil.StartMosquittoConf(t, dir, func(port int) string {
			return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nsys_interval 1\nlog_dest none\n%s", port, pw, rootUser())
		})
		addr := "tcp://" + m.Addr
		out := filepath.Join(t.TempDir(), "run")
		sc := loadSecure(t, scenarios.ConnectFlags{Username: "alice", Password: "secret"}, v5Sets...)
		if _, err := Execute(context.Background(), Options{Scenario: sc, Target: external(t, addr), OutDir: out}); err != nil {
			t.Fatal(err)
		}
		checkV5(t, checkSecureRun(t, out))
		grepRunDir(t, out, "secret")
		sc = loadSecure(t, scenarios.ConnectFlags{Username: "alice", Password: "wrong"}, append(v5Sets, "sample.sys=false")...)
		sc.Subscribers = nil
		_, err := Execute(context.Background(), Options{Scenario: sc, Target: external(t, addr), OutDir: t.TempDir()})
		// Mosquitto 2.0.11 answers a wrong password with 0x87 (not
		// authorized), not 0x86 (bad user name or password).
		if err == nil || !strings.Contains(err.Error(), "not authorized (CONNACK 0x87)") {
			t.Fatalf("wrong password: %v, want CONNACK 0x87", err)
		}
	})
	b := startTLSBroker(t)
	f := b.files
	cert := scenarios.ConnectFlags{CAFile: f.CA, Cert: f.ClientCert, Key: f.ClientKey}
	for _, tt := range []struct {
		name, addr string
		flags      scenarios.ConnectFlags
	}{
		{"mqtts", b.mqtts, cert},
		{"ws", b.ws, scenarios.ConnectFlags{}},
		{"wss", b.wss, cert},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			if _, err := Execute(context.Background(), Options{Scenario: loadSecure(t, tt.flags, v5Sets...), Target: external(t, tt.addr), OutDir: out}); err != nil {
				t.Fatal(err)
			}
			checkV5(t, checkSecureRun(t, out))
		})
	}
}

// checkV5 fails unless the run's clients spoke MQTT 5 (reason codes recorded).
func checkV5(t *testing.T, run *Run) {
	t.Helper()
	s := Summarize(run)
	if s.ReasonCodes["puback 0x00"] != 50 || s.ReasonCodes["pubcomp 0x00"] != 50 || s.ReasonCodes["suback 0x02"] != 1 || s.ReasonCodes["connack 0x00"] != 3 {
		t.Errorf("reason codes %v, want 50 PUBACK and 50 PUBCOMP successes, 3 connections and a QoS 2 SUBACK", s.ReasonCodes)
	}
}
