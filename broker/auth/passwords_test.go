package auth

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixedSalt makes the test hashes reproducible.
var fixedSalt = []byte("0123456789ab")

func mustHash(t *testing.T, pw string, o HashOptions) string {
	t.Helper()
	if o.Salt == nil {
		o.Salt = fixedSalt
	}
	h, err := HashPasswordOpts(pw, o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func parsePW(t *testing.T, text string) *Passwords {
	t.Helper()
	p, err := ParsePasswords(strings.NewReader(text), "pw")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The $6$ entries of Mosquitto's own broker tests
// (test/broker/01-connect-uname-or-anon.pwfile, ...password-denied.pwfile):
// user "user", password "password".
func TestSHA512FromMosquittoTests(t *testing.T) {
	for _, h := range []string{
		"$6$Ut1cUS9PG8+gC3vn$tOjCfSJJDe1Alu9HktxxyyzwN4+6mAMSWGRAF9gmMN8pzcGTPVEYYMAZpCEp96Oz2ZRRz5YKM6lPMf1tUbb6zA==",
		"$6$vZY4TS+/HBxHw38S$vvjVFECzb8dyuu/mruD2QKTfdFn0WmKxbc+1TsdB0L8EdHk3v9JRmfjHd56+VaTnUcSZOZ/hzkdvWCtxlX7AUQ==",
	} {
		p := parsePW(t, "user:"+h+"\n")
		if r := p.Check("user", "password"); r != OK {
			t.Errorf("%s: right password: %v", h, r)
		}
		if r := p.Check("user", "password9"); r != BadPassword {
			t.Errorf("%s: wrong password: %v", h, r)
		}
	}
}

func TestHashFormats(t *testing.T) {
	h7 := mustHash(t, "pw", HashOptions{})
	if !strings.HasPrefix(h7, "$7$101$MDEyMzQ1Njc4OWFi$") || len(h7) != len("$7$101$")+16+1+88 {
		t.Errorf("$7$ layout: %q", h7)
	}
	h6 := mustHash(t, "pw", HashOptions{Type: SHA512})
	if !strings.HasPrefix(h6, "$6$MDEyMzQ1Njc4OWFi$") || len(h6) != len("$6$")+16+1+88 {
		t.Errorf("$6$ layout: %q", h6)
	}
	h1000 := mustHash(t, "pw", HashOptions{Iterations: 1000})
	p := parsePW(t, "a:"+h7+"\nb:"+h6+"\nc:"+h1000+"\n")
	for _, u := range []string{"a", "b", "c"} {
		if r := p.Check(u, "pw"); r != OK {
			t.Errorf("%s: %v", u, r)
		}
		if r := p.Check(u, "pW"); r != BadPassword {
			t.Errorf("%s wrong: %v", u, r)
		}
	}
	random1, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	random2, _ := HashPassword("pw")
	if random1 == random2 {
		t.Error("two hashes share a salt")
	}
	for _, o := range []HashOptions{{Type: 5}, {Iterations: -1}, {Salt: []byte("short")}} {
		if _, err := HashPasswordOpts("pw", o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if _, err := HashPassword("a\x00b"); err == nil {
		t.Error("NUL password hashed")
	}
}

func TestCheckResults(t *testing.T) {
	p := parsePW(t, "alice:"+mustHash(t, "secret-a", HashOptions{})+"\n")
	cases := []struct {
		user, pass string
		want       Result
		code       byte // with allow_anonymous true
		codeNoAnon byte
	}{
		{"alice", "secret-a", OK, 0, 0},
		{"alice", "wrong", BadPassword, 5, 5},
		{"alice", "", NoPassword, 5, 5},
		{"alice", "secret-a\x00junk", OK, 0, 0}, // C string: ends at the NUL
		{"alice", "\x00", BadPassword, 5, 5},    // non-empty field, empty C string
		{"mallory", "secret-a", UnknownUser, 5, 5},
		{"mallory", "", UnknownUser, 5, 5},
		{"", "", Anonymous, 0, 5},
		{"", "secret-a", Anonymous, 0, 5},
		{"Alice", "secret-a", UnknownUser, 5, 5},
		{" alice", "secret-a", UnknownUser, 5, 5},
	}
	for _, c := range cases {
		r := p.Check(c.user, c.pass)
		if r != c.want || r.ConnackCode(true) != c.code || r.ConnackCode(false) != c.codeNoAnon {
			t.Errorf("Check(%q, %q) = %v (codes %d/%d), want %v (%d/%d)", c.user, c.pass, r,
				r.ConnackCode(true), r.ConnackCode(false), c.want, c.code, c.codeNoAnon)
		}
	}
	var none *Passwords
	if r := none.Check("alice", "x"); r != NoPasswordFile || r.ConnackCode(true) != 0 || r.ConnackCode(false) != 5 {
		t.Errorf("no file: %v", r)
	}
}

// fixedHash is a hash of pw with the fixed salt.
func fixedHash(pw string, kind HashType) string {
	h, err := HashPasswordOpts(pw, HashOptions{Type: kind, Salt: fixedSalt})
	if err != nil {
		panic(err)
	}
	return h
}

// pwLineCase is a password file and the users that can log in with the
// password "pw"; warnings counts the entries Mosquitto logs and drops.
type pwLineCase struct {
	name, text string
	want       []string
	warnings   int
}

// pwLineCases cover the line handling of pwfile__parse and the hash decoding
// of unpwd__decode_passwords; TestPasswordCasesAgainstMosquitto replays them
// against the real broker.
func pwLineCases() []pwLineCase {
	h := fixedHash("pw", PBKDF2SHA512)
	h6 := fixedHash("pw", SHA512)
	other := fixedHash("other", PBKDF2SHA512)
	salt := "MDEyMzQ1Njc4OWFi"
	hash := h[strings.LastIndexByte(h, '$')+1:]
	boundaryUser := strings.Repeat("u", 255-1-len(h))
	return []pwLineCase{
		{"plain", "a:" + h + "\n", []string{"a"}, 0},
		{"no final newline", "a:" + h, []string{"a"}, 0},
		{"CRLF", "a:" + h + "\r\n", []string{"a"}, 0},
		{"comment", "#a:" + h + "\n", nil, 0},
		{"indented comment is a line", " #a:" + h + "\n", []string{"#a"}, 0},
		{"blank and no colon", "\n   \njunk\na:" + h + "\n", []string{"a"}, 0},
		{"whitespace around", " \ta \t: " + h + " \t\n", []string{"a"}, 0},
		{"space inside user", "a b:" + h + "\n", []string{"a b"}, 0},
		{"leading colons skipped", "::a:" + h + "\n", []string{"a"}, 0},
		{"double colon", "a::" + h + "\n", []string{"a"}, 0},
		{"extra field ignored", "a:" + h + ":junk\n", []string{"a"}, 0},
		{"user only at EOF", "a:", nil, 1},
		{"empty password", "a:\n", nil, 1},
		{"blank password", "a: \t \n", nil, 1},
		{"plaintext password", "a:pw\n", nil, 1},
		{"empty username never logs in", " :" + h + "\n", nil, 0},
		{"sha512", "a:" + h6 + "\n", []string{"a"}, 0},
		{"no leading dollar", "a:" + h[1:] + "\n", []string{"a"}, 0},
		{"doubled dollars", "a:$$7$$101$$" + salt + "$$" + hash + "$$x\n", []string{"a"}, 0},
		{"type 5", "a:$5$101$" + salt + "$" + hash + "\n", nil, 1},
		{"type 7 without iterations", "a:$7$" + salt + "$" + hash + "\n", nil, 1},
		{"iterations 0", "a:$7$0$" + salt + "$" + hash + "\n", nil, 1},
		{"iterations junk", "a:$7$x$" + salt + "$" + hash + "\n", nil, 1},
		{"iterations 101abc", "a:$7$101abc$" + salt + "$" + hash + "\n", []string{"a"}, 0},
		{"iterations wrap to 101", "a:$7$4294967397$" + salt + "$" + hash + "\n", []string{"a"}, 0},
		{"iterations 0101", "a:$7$0101$" + salt + "$" + hash + "\n", []string{"a"}, 0},
		{"short salt", "a:$7$101$" + salt[:12] + "$" + hash + "\n", nil, 1},
		{"salt with trailing junk", "a:$7$101$" + salt + "xyz$" + hash + "\n", []string{"a"}, 0},
		{"bad salt char", "a:$7$101$!" + salt[1:] + "$" + hash + "\n", nil, 1},
		{"no hash", "a:$7$101$" + salt + "\n", nil, 1},
		{"unpadded hash", "a:$7$101$" + salt + "$" + strings.TrimRight(hash, "=") + "\n", nil, 1},
		{"hash one byte short", "a:$7$101$" + salt + "$" + hash[:84] + "\n", nil, 1},
		{"two bad, one good", "a:x\nb:" + h + "\nc:$7$\n", []string{"b"}, 2},
		{"duplicate: last wins", "a:" + other + "\na:" + h + "\n", []string{"a"}, 0},
		{"duplicate: last valid wins", "a:" + h + "\na:garbage\n", []string{"a"}, 1},
		// A NUL makes the reader append the rest of the file to the line; when
		// the file ends with a newline the last read finds EOF and the whole
		// line is lost, otherwise it is kept up to the NUL.
		{"NUL, final newline: all lost", "a:" + h + "\x00\nb:" + h + "\n", nil, 0},
		{"NUL, no final newline", "a:" + h + "\x00\nb:" + h, []string{"a"}, 0},
		{"NUL in a later line", "a:" + h + "\nb:" + h + "\x00x\nc:" + h, []string{"a", "b"}, 0},
		{"long line", "a:" + h + strings.Repeat(" ", 5000) + "\n", []string{"a"}, 0},
		{"username too long", strings.Repeat("u", 65536) + ":" + h + "\nb:" + h + "\n", []string{"b"}, 1},
		// A last line without a newline of exactly the buffer size minus one
		// (255 bytes while the buffer is still 256) is lost by fgets_extending.
		{"line at buffer boundary lost", boundaryUser + ":" + h, nil, 0},
		{"line at buffer boundary with newline", boundaryUser + ":" + h + "\n", []string{boundaryUser}, 0},
		{"line one past the boundary", boundaryUser + "x:" + h, []string{boundaryUser + "x"}, 0},
		{"line one short of the boundary", boundaryUser[1:] + ":" + h, []string{boundaryUser[1:]}, 0},
	}
}

func TestParseLines(t *testing.T) {
	cases := pwLineCases()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := parsePW(t, c.text)
			var ok []string
			for _, u := range p.Users() {
				if p.Check(u, "pw") == OK {
					ok = append(ok, u)
				}
			}
			if strings.Join(ok, ",") != strings.Join(c.want, ",") || len(ok) != len(c.want) {
				t.Errorf("users logging in: %q, want %q", ok, c.want)
			}
			if w := p.Warnings(); len(w) != c.warnings {
				t.Errorf("warnings %v, want %d", w, c.warnings)
			}
		})
	}
}

func TestWarningsHaveLines(t *testing.T) {
	p := parsePW(t, "# c\n\na:plain\nb:\n")
	w := p.Warnings()
	if len(w) != 2 || w[0].Line != 3 || w[1].Line != 4 || !strings.HasPrefix(w[0].Error(), "pw:3: ") {
		t.Fatalf("warnings %v", w)
	}
}

func TestLoadPasswordFile(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadPasswordFile(filepath.Join(dir, "missing"))
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadPasswordFile(dir); err == nil {
		t.Error("a directory loaded") // Mosquitto loops forever on one
	}
	line, err := PasswordLine("alice", "secret-a")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pw")
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPasswordFile(path)
	if err != nil || p.Check("alice", "secret-a") != OK {
		t.Fatalf("%v %v", p, err)
	}
	for _, u := range []string{"", "a:b", "a\tb", " a", strings.Repeat("x", 65536)} {
		if _, err := PasswordLine(u, "x"); err == nil {
			t.Errorf("PasswordLine(%q) accepted", u)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	h := mustHash(t, "pw", HashOptions{})
	p := parsePW(t, "b:"+h[1:]+"$junk\n a : "+mustHash(t, "pw", HashOptions{Type: SHA512})+"\nc:bad\n")
	out := p.Format()
	q := parsePW(t, out)
	if q.Format() != out || len(q.Users()) != 2 || q.Check("a", "pw") != OK || q.Check("b", "pw") != OK {
		t.Errorf("round trip: %q -> %q", out, q.Format())
	}
	if !bytes.Contains([]byte(out), []byte("b:$7$101$")) {
		t.Errorf("not canonical: %q", out)
	}
}

// TestOpenSSLBase64Measured replays what libcrypto's base64 BIO (as Mosquitto
// drives it) returned for random salt/hash-like fields.
func TestOpenSSLBase64Measured(t *testing.T) {
	b, err := os.ReadFile("testdata/base64_openssl.tsv")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		in, want, ok := strings.Cut(line, "\t")
		raw, err := hex.DecodeString(in)
		if !ok || err != nil {
			t.Fatalf("bad line %q", line)
		}
		n++
		got, decoded := opensslB64Decode(string(raw))
		if want == "-" {
			if decoded {
				t.Errorf("%q decoded to %x, OpenSSL fails", raw, got)
			}
			continue
		}
		if !decoded || hex.EncodeToString(got) != want {
			t.Errorf("%q: got %x (%v), OpenSSL %s", raw, got, decoded, want)
		}
	}
	if n < 500 {
		t.Fatalf("only %d cases", n)
	}
}
