package scenarios

import (
	"encoding/json"
	"strings"
	"testing"
)

const securedYAML = `name: sec
security:
  tls: [false, true]
  users:
    - name: alice
      password: secret-a
  acl: |
    user alice
    topic readwrite #
connect:
  username: alice
publishers:
  - messages: 1
    qos: 1
    topic: t
subscribers:
  - filter: t
    qos: 1
duration: 1s
`

func TestSecuritySweepAndPasswords(t *testing.T) {
	s, err := Parse([]byte(securedYAML), "sec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runs := Expand(s)
	if len(runs) != 2 || runs[0].Name != "sec-plain" || runs[1].Name != "sec-tls" {
		t.Fatalf("expanded to %d runs %v, want sec-plain and sec-tls", len(runs), names(runs))
	}
	if runs[0].Security.TLS.On() || !runs[1].Security.TLS.On() {
		t.Errorf("tls values: %v / %v", runs[0].Security.TLS, runs[1].Security.TLS)
	}
	c, err := runs[1].PublisherConn(0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "alice" || c.Password != "secret-a" || !c.HasPass {
		t.Errorf("alice logs in with %q/%q (%v), want her generated password", c.Username, c.Password, c.HasPass)
	}
	runs[1].UseGenerated("/d/ca.crt", "/d/client.crt", "/d/client.key")
	if c, _ := runs[1].SubscriberConn(0); c.TLS == nil || c.TLS.CA != "/d/ca.crt" || c.TLS.Cert != "/d/client.crt" {
		t.Errorf("generated files not used: %+v", c.TLS)
	}
	b, _ := json.Marshal(runs[1])
	if strings.Contains(string(b), "secret-a") {
		t.Errorf("the recorded scenario carries a password: %s", b)
	}
}

func TestSecurityErrors(t *testing.T) {
	bad := []struct{ yaml, want string }{
		{strings.Replace(securedYAML, "name: alice", "name: \"al:ice\"", 1), "security.users[0].name"},
		{strings.Replace(securedYAML, "password: secret-a", "password: \"\"", 1), "security.users[0].password"},
		{strings.Replace(securedYAML, "tls: [false, true]", "tls: maybe", 1), "sec.yaml:3: security.tls"},
		{strings.Replace(securedYAML, "tls: [false, true]", "tls: false\n  require_certificate: true", 1), "security.require_certificate"},
		{strings.Replace(securedYAML, "  users:", "  user:", 1), "security.user"},
	}
	for _, tc := range bad {
		s, err := Parse([]byte(tc.yaml), "sec.yaml")
		if err == nil {
			s.ApplyDefaults()
			err = s.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want one naming %q", err, tc.want)
		}
	}
}

func names(ss []*Scenario) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}
