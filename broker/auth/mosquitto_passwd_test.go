package auth

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker/auth/authtest"
	"github.com/mqbench/mqbench/internal/testutil"
)

// TestRealPasswdFiles checks files written by the real mosquitto_passwd 2.0.11:
// -c -b, appended -b, -H sha512, -I, and -U on a plaintext file.
func TestRealPasswdFiles(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	runPasswd(t, "-c", "-b", f, "alice", "secret-a")
	runPasswd(t, "-b", f, "bob", "secret-b")
	runPasswd(t, "-H", "sha512", "-b", f, "carol", "secret-c")
	runPasswd(t, "-I", "1000", "-b", f, "dave", "secret d with spaces")
	runPasswd(t, "-b", f, "alice", "secret-a2") // replaces alice
	plain := writeFile(t, dir, "plain", "erin:secret-e\nfrank:  padded  \n")
	runPasswd(t, "-U", plain)

	p, err := LoadPasswordFile(f)
	if err != nil {
		t.Fatal(err)
	}
	q, err := LoadPasswordFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	if w := append(p.Warnings(), q.Warnings()...); len(w) != 0 {
		t.Fatalf("warnings on real files: %v", w)
	}
	for _, c := range []struct {
		p          *Passwords
		user, pass string
		want       Result
	}{
		{p, "alice", "secret-a2", OK},
		{p, "alice", "secret-a", BadPassword},
		{p, "bob", "secret-b", OK},
		{p, "bob", "secret-B", BadPassword},
		{p, "carol", "secret-c", OK},
		{p, "carol", "secret-", BadPassword},
		{p, "dave", "secret d with spaces", OK},
		{p, "dave", "", NoPassword},
		{p, "eve", "x", UnknownUser},
		{q, "erin", "secret-e", OK},
		{q, "frank", "padded", OK}, // -U trims the plaintext
		{q, "frank", "  padded  ", BadPassword},
	} {
		if got := c.p.Check(c.user, c.pass); got != c.want {
			t.Errorf("Check(%q, %q) = %v, want %v", c.user, c.pass, got, c.want)
		}
	}
	text := p.Format()
	if !strings.Contains(text, "carol:$6$") || !strings.Contains(text, "dave:$7$1000$") || !strings.Contains(text, "bob:$7$101$") {
		t.Errorf("formats: %s", text)
	}
}

// TestHashAcceptedByMosquitto writes a password file with HashPassword and
// PasswordLine and logs in to the real broker with it.
func TestHashAcceptedByMosquitto(t *testing.T) {
	dir := t.TempDir()
	a, err := PasswordLine("alice", "secret-a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPasswordOpts("secret-b", HashOptions{Type: SHA512})
	if err != nil {
		t.Fatal(err)
	}
	c, err := HashPasswordOpts("secret-c", HashOptions{Iterations: 5000})
	if err != nil {
		t.Fatal(err)
	}
	pw := writeFile(t, dir, "pw", a+"bob:"+b+"\ncarol:"+c+"\n")
	m := startMosquitto(t, dir, "allow_anonymous false", "password_file "+pw)
	// The real client too: mosquitto_pub -u/-P.
	for _, tc := range []struct {
		user, pass string
		ok         bool
	}{{"alice", "secret-a", true}, {"alice", "nope", false}, {"bob", "secret-b", true}} {
		_, stderr, err := testutil.Run(10*time.Second, nil, testutil.LookPath(testutil.MosquittoPubPath),
			"-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-u", tc.user, "-P", tc.pass, "-t", "t", "-m", "m")
		if (err == nil) != tc.ok || (!tc.ok && !strings.Contains(stderr, "not authori")) {
			t.Errorf("mosquitto_pub -u %s -P %s: %v (%s)", tc.user, tc.pass, err, stderr)
		}
	}
	for _, tc := range []struct {
		user, pass string
		want       byte
	}{
		{"alice", "secret-a", 0}, {"alice", "secret-b", 5},
		{"bob", "secret-b", 0}, {"bob", "secret-a", 5},
		{"carol", "secret-c", 0}, {"carol", "", 5},
		{"nobody", "secret-a", 5}, {"", "", 5},
	} {
		got, err := authtest.ConnectCode(m.Addr, "hash-test", tc.user, tc.pass)
		if err != nil {
			t.Fatalf("%s: %v", tc.user, err)
		}
		if got != tc.want {
			t.Errorf("connect %q/%q: CONNACK %d, want %d", tc.user, tc.pass, got, tc.want)
		}
	}
}

// TestPasswordCasesAgainstMosquitto replays every pwLineCases file against the
// real broker: each probe's CONNACK must be the one Check predicts, and the
// broker must log as many dropped entries as Warnings has (it starts anyway).
func TestPasswordCasesAgainstMosquitto(t *testing.T) {
	for i, c := range pwLineCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			p, err := ParsePasswords(strings.NewReader(c.text), "pw")
			if err != nil {
				t.Fatal(err)
			}
			path := writeFile(t, dir, "pw", c.text)
			m := startMosquitto(t, dir, "allow_anonymous false", "password_file "+path)
			users := map[string]bool{"a": true, "b": true, "c": true, "#a": true, "a b": true}
			for _, u := range append(p.Users(), c.want...) {
				if u != "" && len(u) < 65536 {
					users[u] = true
				}
			}
			for u := range users {
				for _, pass := range []string{"pw", "other"} {
					want := p.Check(u, pass).ConnackCode(false)
					got, err := authtest.ConnectCode(m.Addr, fmt.Sprintf("pwcase-%d", i), u, pass)
					if err != nil {
						t.Fatalf("%q: %v", u, err)
					}
					if got != want {
						t.Errorf("user %.20q password %q: Mosquitto CONNACK %d, Check says %d (%v)", u, pass, got, want, p.Check(u, pass))
					}
				}
			}
			logged := droppedLogged(m, len(p.Warnings()))
			if logged != len(p.Warnings()) {
				t.Errorf("Mosquitto logged %d dropped entries, Warnings has %d: %v\n%s", logged, len(p.Warnings()), p.Warnings(), m.Stderr())
			}
		})
	}
}
