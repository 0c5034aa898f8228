package auth

import (
	"bytes"
	mqtopic "github.com/mqbench/mqbench/mqtt/topic"
	"reflect"
	"testing"
	"testing/iotest"
)

// FuzzParsePasswords: parsing never fails on a reader that works, is the same
// whatever the read sizes, and the canonical form re-parses to itself with the
// same users and the same answers.
func FuzzParsePasswords(f *testing.F) {
	h := fixedHash("pw", PBKDF2SHA512)
	for _, s := range []string{
		"", "a:" + h + "\n", "#c\n\nb:" + fixedHash("pw", SHA512) + "\r\n", "a:\nb:x\n::c:" + h[1:] + ":z",
		"a:" + h + "\x00\nb:" + h, "a:$7$0$x$y\n", "a:$7$4294967397$MDEyMzQ1Njc4OWFi$" + h[len(h)-88:],
	} {
		f.Add([]byte(s), "a", "pw")
	}
	f.Fuzz(func(t *testing.T, data []byte, user, pass string) {
		p, err := ParsePasswords(bytes.NewReader(data), "f")
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		q, err := ParsePasswords(iotest.OneByteReader(bytes.NewReader(data)), "f")
		if err != nil || !reflect.DeepEqual(p.users, q.users) || len(p.warnings) != len(q.warnings) {
			t.Fatalf("one-byte reads differ: %v", err)
		}
		out := p.Format()
		r, err := ParsePasswords(bytes.NewReader([]byte(out)), "f")
		if err != nil || r.Format() != out || len(r.Warnings()) != 0 {
			t.Fatalf("round trip: %v, %q -> %q, warnings %v", err, out, r.Format(), r.Warnings())
		}
		if !reflect.DeepEqual(p.Users(), r.Users()) {
			t.Fatalf("users %q -> %q", p.Users(), r.Users())
		}
		// Check runs the hash: keep it to cheap entries.
		if e := p.users[user]; e == nil || e.iterations <= 200 {
			if a, b := p.Check(user, pass), r.Check(user, pass); a != b {
				t.Fatalf("Check(%q, %q): %v, after round trip %v", user, pass, a, b)
			}
		}
	})
}

// FuzzParseACL: parsing never panics, is the same whatever the read sizes, and
// a parsed file's canonical form re-parses to the same rules, which answer
// every question the same way.
func FuzzParseACL(f *testing.F) {
	for _, s := range []string{
		"", "topic read public/#\n\nuser alice\ntopic readwrite secret/#\npattern readwrite users/%u/#\n",
		"topic deny a\ntopic read #\nuser b c\ntopic $SYS/#\npattern read clients/%c/#\n",
		"# c\n  topic   write  a b \r\n", "topic\n", "user\n", "foo\n", "topic read a/#/b\n",
		"topic read x\x00\ntopic read y\n", "pattern deny %c/%u/%%c\n",
	} {
		f.Add([]byte(s), "cid", "alice", "public/a")
	}
	f.Fuzz(func(t *testing.T, data []byte, clientID, username, topic string) {
		a, err := ParseACL(bytes.NewReader(data), "f")
		b, err2 := ParseACL(iotest.OneByteReader(bytes.NewReader(data)), "f")
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("one-byte reads differ: %v / %v", err, err2)
		}
		if err != nil {
			if _, ok := err.(*FileError); !ok {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		if !reflect.DeepEqual(a.Rules(), b.Rules()) {
			t.Fatal("one-byte reads give other rules")
		}
		out := a.Format()
		c, err := ParseACL(bytes.NewReader([]byte(out)), "f")
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", out, err)
		}
		if c.Format() != out || !sameRules(a.Rules(), c.Rules()) {
			t.Fatalf("round trip %q -> %q", out, c.Format())
		}
		for _, acc := range []Access{Read, Write, Subscribe} {
			for _, hasUser := range []bool{false, true} {
				if x, y := a.Check(clientID, username, hasUser, topic, acc), c.Check(clientID, username, hasUser, topic, acc); x != y {
					t.Fatalf("Check(%q, %q, %v, %q, %v) = %v, after round trip %v", clientID, username, hasUser, topic, acc, x, y)
				}
			}
		}
		_ = mqtopic.Match(topic, clientID)
	})
}

// sameRules compares rule lists ignoring line numbers and file order between
// sections (Format groups them).
func sameRules(x, y []Rule) bool {
	if len(x) != len(y) {
		return false
	}
	key := func(r Rule) Rule { r.Line = 0; return r }
	count := map[Rule]int{}
	for _, r := range x {
		count[key(r)]++
	}
	for _, r := range y {
		count[key(r)]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}
