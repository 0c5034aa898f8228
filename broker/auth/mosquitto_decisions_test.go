package auth

import (
	"path/filepath"
	"testing"

	"github.com/mqbench/mqbench/broker/auth/authtest"
)

// TestDecisionsAgainstMosquitto runs every row of testdata/decisions.json
// against the real Mosquitto 2.0.11, started with the table's ACL and a
// password file made by the real mosquitto_passwd. The rows run concurrently
// (every client id is unique, payloads carry the row id). The runner is
// package authtest, so a broker-level test runs the same rows against the
// bundled broker:
//
//	tbl, _ := authtest.LoadTable(".../broker/auth/testdata/decisions.json")
//	// start the broker with allow_anonymous true,
//	// password_file tbl.Path(tbl.PasswordFile), acl_file tbl.Path(tbl.ACLFile)
//	authtest.RunRows(t, addr, tbl.Rows)
func TestDecisionsAgainstMosquitto(t *testing.T) {
	d, _, _ := loadDecisions(t)
	dir := t.TempDir()
	pwfile := filepath.Join(dir, "pwfile")
	first := true
	for _, u := range []string{"alice", "bob"} {
		args := []string{"-b", pwfile, u, d.Users[u]}
		if first {
			args = append([]string{"-c"}, args...)
			first = false
		}
		runPasswd(t, args...)
	}
	aclPath, err := filepath.Abs("testdata/" + d.ACLFile)
	if err != nil {
		t.Fatal(err)
	}
	m := startMosquitto(t, dir, "allow_anonymous true", "password_file "+pwfile, "acl_file "+aclPath)
	authtest.RunRows(t, m.Addr, d.Rows)
	if t.Failed() {
		t.Logf("mosquitto log tail: %s", tailString(m.Stderr(), 4000))
	}
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
