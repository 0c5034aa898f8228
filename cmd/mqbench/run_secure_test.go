package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/pki"
	"github.com/mqbench/mqbench/internal/testutil"
)

// secureCLIScenario runs every client kind: lean and paho publishers, a
// subscriber and the $SYS monitor.
const secureCLIScenario = `name: secure
publishers:
  - client_id: lean
    messages: 40
    qos: 2
    topic: sec/lean
    inflight: 10
  - client_id: paho
    client: paho
    messages: 40
    qos: 1
    topic: sec/paho
subscribers:
  - client_id: sub
    filter: sec/#
    qos: 1
duration: 1s
drain_timeout: 10s
`

// leakCanary is a password no file could contain by accident.
const leakCanary = "Zq7-leak-canary-9x"

func writeSecureScenario(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secure.yaml")
	if err := os.WriteFile(p, []byte(secureCLIScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mosquittoWithPasswords starts Mosquitto (allow_anonymous false) with a
// password file made by the real mosquitto_passwd.
func mosquittoWithPasswords(t *testing.T, users ...string) string {
	t.Helper()
	testutil.RequireMosquittoBroker(t)
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		if os.Getenv(testutil.RequireEnv) == "1" {
			t.Fatalf("mosquitto_passwd not installed, and %s=1", testutil.RequireEnv)
		}
		t.Skip("mosquitto_passwd not installed")
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	for i := 0; i+1 < len(users); i += 2 {
		args := []string{"-b", pw, users[i], users[i+1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if _, stderr, err := testutil.Run(30*time.Second, nil, bin, args...); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, stderr)
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root\n"
	}
	m := testutil.StartMosquittoConf(t, dir, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nsys_interval 1\nlog_dest none\n%s", port, pw, user)
	})
	return "tcp://" + m.Addr
}

// grepDir reports the files under dir (gzip ones decompressed) that contain s.
func grepDir(t *testing.T, dir, s string) []string {
	t.Helper()
	return testutil.FilesContaining(t, dir, s)
}

// TestRunPasswordFlags: `mqbench run -u -P` against Mosquitto with a
// password file: refused without them, through with them, and the password
// is in no file of the run directory.
func TestRunPasswordFlags(t *testing.T) {
	addr := mosquittoWithPasswords(t, "alice", "secret", "bob", leakCanary)
	sc := writeSecureScenario(t)

	res := runCLI(t, cliOpts{}, "run", sc, "--broker", addr, "--out", filepath.Join(t.TempDir(), "run"), "--no-progress")
	if res.code == 0 || !strings.Contains(strings.ToLower(res.stderr), "not authori") {
		t.Fatalf("without credentials: want a refusal\n%s", res)
	}

	dir := filepath.Join(t.TempDir(), "run")
	res = runCLI(t, cliOpts{}, "run", sc, "--broker", addr, "--out", dir, "--no-progress", "-u", "bob", "-P", leakCanary)
	if res.code != 0 {
		t.Fatalf("with -u bob -P: %s", res)
	}
	s := readSummary(t, dir)
	if s.Published != 80 || s.Acked != 80 || s.Lost != 0 || s.Tainted {
		t.Errorf("summary published %d acked %d lost %d tainted %v %v", s.Published, s.Acked, s.Lost, s.Tainted, s.TaintReasons)
	}
	run := readRun(t, dir)
	if !bytes.Contains(run.Header.Scenario, []byte(`"username":"bob","password":"(set)"`)) {
		t.Errorf("header scenario: %s", run.Header.Scenario)
	}
	if hits := grepDir(t, dir, leakCanary); len(hits) > 0 {
		t.Errorf("the password is recorded in %v", hits)
	}
	if strings.Contains(res.stdout+res.stderr, leakCanary) {
		t.Errorf("the password is printed:\n%s", res)
	}

	// password_env: the variable by name in the run, an unset one refused
	// naming the scenario line.
	envDir := filepath.Join(t.TempDir(), "run")
	res = runCLI(t, cliOpts{env: []string{"MQB_PW=" + leakCanary}}, "run", sc, "--broker", addr, "--out", envDir, "--no-progress",
		"--set", "connect.username=bob", "--set", "connect.password_env=MQB_PW")
	if res.code != 0 {
		t.Fatalf("password_env: %s", res)
	}
	if hits := grepDir(t, envDir, leakCanary); len(hits) > 0 {
		t.Errorf("the password is recorded in %v", hits)
	}
	if !bytes.Contains(readRun(t, envDir).Header.Scenario, []byte(`"password_env":"MQB_PW"`)) {
		t.Error("header does not name the password variable")
	}
	res = runCLI(t, cliOpts{env: []string{"MQB_PW_UNSET="}}, "run", sc, "--broker", addr, "--out", filepath.Join(t.TempDir(), "run"), "--no-progress",
		"--set", "connect.username=bob", "--set", "connect.password_env=MQB_PW_UNSET_REALLY")
	if res.code == 0 || !strings.Contains(res.stderr, "--set connect.password_env: connect.password_env: environment variable MQB_PW_UNSET_REALLY is not set") {
		t.Errorf("unset password_env: %s", res)
	}
}

// TestRunTLSFlags: --broker mqtts:// with --cafile/--cert/--key against
// Mosquitto requiring client certificates; --insecure warns.
func TestRunTLSFlags(t *testing.T) {
	testutil.RequireMosquittoBroker(t)
	dir := t.TempDir()
	f, err := pki.WriteSet(filepath.Join(dir, "pki"), []string{"127.0.0.1"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root\n"
	}
	m := testutil.StartMosquittoConf(t, dir, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nallow_anonymous true\nsys_interval 1\nlog_dest none\n%s",
			port, f.CA, f.ServerCert, f.ServerKey, user)
	})
	addr := "mqtts://" + m.Addr
	sc := writeSecureScenario(t)

	out := filepath.Join(t.TempDir(), "run")
	res := runCLI(t, cliOpts{}, "run", sc, "--broker", addr, "--out", out, "--no-progress", "--cafile", f.CA, "--cert", f.ClientCert, "--key", f.ClientKey)
	if res.code != 0 {
		t.Fatalf("mqtts with a client certificate: %s", res)
	}
	if s := readSummary(t, out); s.Acked != 80 || s.Lost != 0 || s.Tainted {
		t.Errorf("summary acked %d lost %d tainted %v %v", s.Acked, s.Lost, s.Tainted, s.TaintReasons)
	}

	res = runCLI(t, cliOpts{}, "run", sc, "--broker", addr, "--out", filepath.Join(t.TempDir(), "run"), "--no-progress", "--cafile", f.CA)
	if res.code == 0 {
		t.Errorf("mqtts without the client certificate succeeded: %s", res)
	}
	res = runCLI(t, cliOpts{}, "run", sc, "--broker", addr, "--out", filepath.Join(t.TempDir(), "run"), "--no-progress")
	if res.code == 0 || !strings.Contains(res.stderr, "--cafile") {
		t.Errorf("mqtts without any TLS flag: %s", res)
	}
	res = runCLI(t, cliOpts{}, "run", sc, "--broker", addr, "--out", filepath.Join(t.TempDir(), "run"), "--no-progress", "--insecure", "--cert", f.ClientCert, "--key", f.ClientKey)
	if res.code != 0 || !strings.Contains(res.stderr, "WARNING: --insecure: connect.tls.insecure: the broker's TLS certificate is NOT verified") {
		t.Errorf("--insecure: %s", res)
	}
	res = runCLI(t, cliOpts{}, "run", sc, "--broker", "mqtts://alice:pw@127.0.0.1:1", "--no-progress")
	if res.code == 0 || !strings.Contains(res.stderr, "credentials in the address are not supported") || strings.Contains(res.stderr, "alice:pw") {
		t.Errorf("credentials in the address: %s", res)
	}
}
