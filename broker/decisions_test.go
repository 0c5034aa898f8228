package broker_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker/auth/authtest"
	"github.com/mqbench/mqbench/internal/testutil"
)

// TestDecisionTableBothBrokers runs every row of broker/auth's decision table
// (users, anonymous, wrong passwords, patterns, wildcards, $SYS, retained
// messages, wills, QoS 0/1/2) against the bundled broker and against
// Mosquitto 2.0.11, both started with the same ACL file and the same password
// file made by the real mosquitto_passwd. The rows must come out the same on
// both: the table was verified on Mosquitto, so a row only the bundled broker
// fails is a bundled-broker bug, and one both fail is a wrong row.
func TestDecisionTableBothBrokers(t *testing.T) {
	tbl, err := authtest.LoadTable(filepath.Join("auth", "testdata", "decisions.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl.Rows) < 40 {
		t.Fatalf("decision table has %d rows, want at least 40", len(tbl.Rows))
	}
	testutil.RequireMosquitto(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pwfile")
	passwd := testutil.LookPath("mosquitto_passwd")
	first := true
	for _, u := range []string{"alice", "bob"} {
		args := []string{"-b", pw, u, tbl.Users[u]}
		if first {
			args = append([]string{"-c"}, args...)
			first = false
		}
		if _, stderr, err := testutil.Run(10*time.Second, nil, passwd, args...); err != nil {
			t.Fatalf("mosquitto_passwd: %v (%s)", err, stderr)
		}
	}
	acl, err := filepath.Abs(tbl.Path(tbl.ACLFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range startSecured(t, "allow_anonymous true", "password_file "+pw, "acl_file "+acl) {
		t.Run(b.name, func(t *testing.T) { authtest.RunRows(t, b.addr, tbl.Rows) })
	}
}
