package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// secured is good with a run-wide connect section and a publisher overriding
// part of it; line numbers matter to the error tests.
const secured = `name: t
connect:
  username: alice
  password: hunter2-canary
  keepalive: 30s
  tls:
    ca: certs/ca.pem
    server_name: broker.test
publishers:
  - messages: 10
    qos: 2
    topic: test
    connect:
      username: bob
      password_env: MQB_TEST_PW
      tls:
        cert: certs/bob.pem
        key: /abs/bob.key
      will: {topic: gone, payload: bye, qos: 1, retain: true}
subscribers:
  - filter: test
    qos: 1
duration: 5s
`

func TestConnectMerge(t *testing.T) {
	p := writeScenario(t, secured)
	dir := filepath.Dir(p)
	sc, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MQB_TEST_PW", "from-env")
	pub, err := sc.PublisherConn(0)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Username != "bob" || pub.Password != "from-env" || !pub.HasPass {
		t.Errorf("publisher credentials %q %q %v", pub.Username, pub.Password, pub.HasPass)
	}
	want := TLS{CA: filepath.Join(dir, "certs/ca.pem"), Cert: filepath.Join(dir, "certs/bob.pem"), Key: "/abs/bob.key", ServerName: "broker.test"}
	if pub.TLS == nil || *pub.TLS != want {
		t.Errorf("publisher tls %+v, want %+v", pub.TLS, want)
	}
	if pub.KeepAlive != 30*time.Second {
		t.Errorf("keepalive %s", pub.KeepAlive)
	}
	if pub.Will == nil || *pub.Will != (Will{Topic: "gone", Payload: "bye", QoS: 1, Retain: true}) {
		t.Errorf("will %+v", pub.Will)
	}
	if got := pub.Where("tls.cert"); got != "f.yaml:17: publishers[0].connect.tls.cert" && !strings.HasSuffix(got, "f.yaml:17: publishers[0].connect.tls.cert") {
		t.Errorf("where tls.cert = %q", got)
	}
	if got := pub.Where("tls.ca"); !strings.HasSuffix(got, "f.yaml:7: connect.tls.ca") {
		t.Errorf("where tls.ca = %q", got)
	}
	sub, err := sc.SubscriberConn(0)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Username != "alice" || sub.Password != "hunter2-canary" || sub.Will != nil || sub.TLS.Cert != "" {
		t.Errorf("subscriber %+v", sub)
	}
	run, err := sc.RunConn()
	if err != nil || run.Username != "alice" {
		t.Errorf("run-wide %+v %v", run, err)
	}
	// Defaults: no connect section at all.
	plain, err := Load(writeScenario(t, good), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := plain.PublisherConn(0)
	if err != nil || c.KeepAlive != DefaultKeepAlive || c.TLS != nil || c.HasPass || c.Username != "" {
		t.Errorf("no connect section: %+v %v", c, err)
	}
}

func TestConnectPasswordEnvUnset(t *testing.T) {
	sc, err := Load(writeScenario(t, secured), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MQB_TEST_PW", "")
	for _, tt := range []struct {
		set  bool
		want string
	}{{true, "environment variable MQB_TEST_PW is empty"}, {false, "environment variable MQB_TEST_PW is not set"}} {
		if !tt.set {
			unsetenv(t, "MQB_TEST_PW")
		}
		_, err := sc.PublisherConn(0)
		if err == nil || !strings.Contains(err.Error(), "f.yaml:15: publishers[0].connect.password_env: "+tt.want) {
			t.Errorf("err %v, want file:line:field and %q", err, tt.want)
		}
	}
}

func TestConnectErrors(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"both passwords", "  password: hunter2-canary\n", "  password: hunter2-canary\n  password_env: X\n", "f.yaml:5: connect.password_env: give password or password_env, not both"},
		{"password without user", "  username: alice\n", "", "f.yaml:3: connect.password: a password needs a username"},
		{"cert without key", "        key: /abs/bob.key\n", "", "f.yaml:17: publishers[0].connect.tls.cert: a client certificate needs its key"},
		{"fractional keepalive", "keepalive: 30s", "keepalive: 1500ms", "f.yaml:5: connect.keepalive: must be whole seconds"},
		{"huge keepalive", "keepalive: 30s", "keepalive: 24h", "f.yaml:5: connect.keepalive: must be whole seconds"},
		{"will wildcard", "topic: gone", "topic: gone/#", "f.yaml:19: publishers[0].connect.will.topic: a will topic cannot contain wildcards"},
		{"will qos", "qos: 1, retain", "qos: 3, retain", "f.yaml:19: publishers[0].connect.will.qos: must be 0, 1 or 2"},
		{"unknown tls field", "    server_name: broker.test\n", "    server_name: broker.test\n    capath: /etc\n", "f.yaml:9: connect.tls.capath: unknown field (known: ca, cert, key, insecure, server_name)"},
		{"unknown connect field", "  keepalive: 30s\n", "  keepalive: 30s\n  user: x\n", "f.yaml:6: connect.user: unknown field"},
		{"insecure not a bool", "    server_name: broker.test\n", "    server_name: broker.test\n    insecure: maybe\n", "f.yaml:9: connect.tls.insecure: expected true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(secured, tt.old, tt.new, 1)
			if text == secured {
				t.Fatalf("replacement %q not found", tt.old)
			}
			_, err := Load(writeScenario(t, text), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v\nwant %q", err, tt.want)
			}
			if strings.Count(err.Error(), tt.want) > 1 {
				t.Errorf("reported more than once: %v", err)
			}
		})
	}
}

// TestConnectRedacted: the password never appears in the scenario's JSON (the
// run header), YAML or formatted output; password_env is kept by name.
func TestConnectRedacted(t *testing.T) {
	sc, err := Load(writeScenario(t, secured), []string{"subscribers.0.connect.password=sub-canary", "subscribers.0.connect.username=carol"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.ApplyConnectFlags(ConnectFlags{Password: "flag-canary"}); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	all := string(j) + string(y) + fmt.Sprintf("%v %+v %#v %v %v", sc, *sc.Connect, *sc.Connect, sc.Publishers, sc.Subscribers)
	for _, secret := range []string{"hunter2-canary", "sub-canary", "flag-canary"} {
		if strings.Contains(all, secret) {
			t.Errorf("%s leaked:\n%s", secret, all)
		}
	}
	if !strings.Contains(string(j), `"password":"(set)"`) || !strings.Contains(string(j), `"password_env":"MQB_TEST_PW"`) {
		t.Errorf("JSON lacks the redacted password or the variable name: %s", j)
	}
	// --set takes a password verbatim (it is a string field: "[" is no YAML
	// here), and it is redacted like any other.
	sc2, err := Load(writeScenario(t, secured), []string{"connect.password=[odd-canary"})
	if err != nil {
		t.Fatalf("--set password: %v", err)
	}
	if sc2.Connect.Password.Reveal() != "[odd-canary" {
		t.Errorf("--set password = %q", sc2.Connect.Password.Reveal())
	}
	if j2, _ := json.Marshal(sc2); strings.Contains(string(j2), "odd-canary") {
		t.Errorf("--set password leaked: %s", j2)
	}
	// A bad value for a non-string field names the field, not the value's secret.
	if _, err := Load(writeScenario(t, secured), []string{"connect.keepalive=[bad"}); err == nil {
		t.Error("bad --set keepalive accepted")
	}
}

func TestApplyConnectFlags(t *testing.T) {
	sc, err := Load(writeScenario(t, secured), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = sc.ApplyConnectFlags(ConnectFlags{Username: "dave", Password: "pw", CAFile: "ca2.pem", Insecure: true, ServerName: "other"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := sc.RunConn()
	if err != nil {
		t.Fatal(err)
	}
	if run.Username != "dave" || run.Password != "pw" || run.TLS.CA != "ca2.pem" || !run.Insecure() || run.TLS.ServerName != "other" {
		t.Errorf("run-wide after flags %+v %+v", run, run.TLS)
	}
	if got := run.Where("tls.ca"); got != "--cafile: connect.tls.ca" {
		t.Errorf("where %q", got)
	}
	if ins := sc.InsecureTLS(); len(ins) != 1 || !strings.Contains(ins[0], "--insecure") {
		t.Errorf("InsecureTLS %v", ins)
	}
	// The group's own values still win over the flags.
	t.Setenv("MQB_TEST_PW", "x")
	pub, err := sc.PublisherConn(0)
	if err != nil || pub.Username != "bob" || pub.Password != "x" {
		t.Errorf("publisher after flags %+v %v", pub, err)
	}
	// A flag mistake is reported naming the flag.
	plain, err := Load(writeScenario(t, good), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = plain.ApplyConnectFlags(ConnectFlags{Cert: "c.pem"})
	if err == nil || !strings.Contains(err.Error(), "--cert: connect.tls.cert: a client certificate needs its key") {
		t.Errorf("--cert alone: %v", err)
	}
	plain, _ = Load(writeScenario(t, good), nil)
	err = plain.ApplyConnectFlags(ConnectFlags{Password: "p"})
	if err == nil || !strings.Contains(err.Error(), "--password: connect.password: a password needs a username") {
		t.Errorf("-P alone: %v", err)
	}
}

func TestConnectCloneIsDeep(t *testing.T) {
	sc, err := Load(writeScenario(t, secured), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := sc.Clone()
	c.Connect.TLS.CA = "changed"
	c.Publishers[0].Connect.Will.Topic = "changed"
	*c.Connect.TLS = TLS{}
	if sc.Connect.TLS.CA == "changed" || sc.Connect.TLS.ServerName == "" || sc.Publishers[0].Connect.Will.Topic == "changed" {
		t.Error("Clone shares connect sections")
	}
}

// unsetenv removes a variable for the rest of the test (t.Setenv first, so it
// is restored afterwards).
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}
