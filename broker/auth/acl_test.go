package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parseACL(t *testing.T, text string) *ACL {
	t.Helper()
	a, err := ParseACL(strings.NewReader(text), "acl")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// aclLineCase is an ACL file and either the rules it holds (as Format renders
// them) or the error it gives (a substring and the line).
type aclLineCase struct {
	name, text string
	rules      string
	err        string
	errLine    int
}

// aclLineCases cover aclfile__parse; TestACLCasesAgainstMosquitto replays them
// against the real broker.
func aclLineCases() []aclLineCase {
	return []aclLineCase{
		{"empty file", "", "", "", 0},
		{"comments and blanks", "# x\n\n   \n\t\n#topic read a\n", "", "", 0},
		{"anonymous then user", "topic read a\nuser u\ntopic write b\n", "topic read a\nuser u\ntopic write b\n", "", 0},
		{"one word is the topic", "topic read\n", "topic readwrite read\n", "", 0},
		{"default readwrite", "topic a/b\n", "topic readwrite a/b\n", "", 0},
		{"one-word topic is not trimmed", "topic \v0\n", "topic \v0\n", "", 0},
		{"topic with spaces", "topic read  a b  \n", "topic read a b\n", "", 0},
		{"extra spaces between words", "   topic    deny    x\r\n", "topic deny x\n", "", 0},
		{"user with spaces", "user  a b \ntopic x\n", "user a b\ntopic readwrite x\n", "", 0},
		{"user section repeated", "user a\ntopic x\nuser b\ntopic y\nuser a\ntopic z\n",
			"user a\ntopic readwrite x\ntopic readwrite z\nuser b\ntopic readwrite y\n", "", 0},
		{"patterns anywhere", "pattern read p/%c\nuser a\npattern write q/%u\n", "pattern read p/%c\npattern write q/%u\n", "", 0},
		{"wildcards", "topic read +/a/#\ntopic read #\ntopic read +\n", "topic read +/a/#\ntopic read #\ntopic read +\n", "", 0},
		{"$SYS", "topic read $SYS/#\n", "topic read $SYS/#\n", "", 0},
		{"empty topic", "# c\ntopic\n", "", "empty topic", 2},
		{"empty pattern", "pattern\n", "", "empty topic", 1},
		{"bad access", "topic reed a\n", "", `invalid topic access type "reed"`, 1},
		{"access case matters", "topic READ a\n", "", `invalid topic access type "READ"`, 1},
		{"bad wildcard", "topic read a/b#\n", "", `invalid ACL topic "a/b#"`, 1},
		{"hash not last", "topic read a/#/b\n", "", "invalid ACL topic", 1},
		{"plus inside a level", "pattern read a+/b\n", "", "invalid ACL topic", 1},
		{"too many levels", "topic read " + strings.Repeat("/", 201) + "\n", "", "invalid ACL topic", 1},
		{"200 levels ok", "topic read " + strings.Repeat("/", 200) + "\n", "topic read " + strings.Repeat("/", 200) + "\n", "", 0},
		{"user alone", "topic a\nuser\n", "", "missing username", 2},
		{"user and blanks", "user   \n", "", "missing username", 1},
		{"unknown keyword", "topic a\nfoo bar\n", "", "invalid line in acl_file: foo", 2},
		{"indented comment", "  # c\n", "", "invalid line in acl_file: #", 1},
		{"tab after keyword", "topic\tread a\n", "", "invalid line", 1},
		{"keyword case", "Topic read a\n", "", "invalid line", 1},
		{"line after error not read", "bad\ntopic\n", "", "invalid line", 1},
	}
}

func TestParseACLLines(t *testing.T) {
	cases := aclLineCases()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := ParseACL(strings.NewReader(c.text), "acl")
			if c.err != "" {
				var fe *FileError
				if !errors.As(err, &fe) || !strings.Contains(fe.Msg, c.err) || fe.Line != c.errLine || fe.File != "acl" {
					t.Fatalf("error %v, want %q at line %d", err, c.err, c.errLine)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Format(); got != c.rules {
				t.Errorf("rules:\n%s\nwant:\n%s", got, c.rules)
			}
		})
	}
}

func TestPatternWarning(t *testing.T) {
	a := parseACL(t, "pattern read a/b\npattern read %c\n")
	if w := a.Warnings(); len(w) != 1 || w[0].Line != 1 {
		t.Errorf("warnings %v", w)
	}
}

func TestLoadACLFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadACLFile(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing: %v", err)
	}
	path := filepath.Join(dir, "acl")
	if err := os.WriteFile(path, []byte("topic read a\nbad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadACLFile(path)
	if err == nil || err.Error() != path+":2: invalid line in acl_file: bad" {
		t.Errorf("error %v", err)
	}
}

type aclCase struct {
	id, user string
	hasUser  bool
	topic    string
	access   Access
	want     bool
}

func runACLCases(t *testing.T, a *ACL, cases []aclCase) {
	t.Helper()
	for _, c := range cases {
		if got := a.Check(c.id, c.user, c.hasUser, c.topic, c.access); got != c.want {
			t.Errorf("Check(id %q, user %q/%v, %q, %v) = %v, want %v", c.id, c.user, c.hasUser, c.topic, c.access, got, c.want)
		}
	}
}

func TestCheckSemantics(t *testing.T) {
	a := parseACL(t, `topic read pub/#
topic deny pub/secret
user u
topic readwrite x/#
topic deny x/no
topic write w
topic $SYS/#
user v
topic read #
pattern readwrite users/%u/#
pattern read clients/%c/#
pattern deny x/denied
pattern read both/%c/%u
pattern read lit/%x/%%c
`)
	runACLCases(t, a, []aclCase{
		// Anonymous section.
		{"c", "", false, "pub/a", Read, true},
		{"c", "", false, "pub", Read, true},
		{"c", "", false, "pub/a", Write, false},
		{"c", "", false, "pub/secret", Read, false},
		{"c", "", true, "pub/a", Read, true}, // empty username = anonymous
		{"c", "u", true, "pub/a", Read, false},
		// User section: deny first, then grants.
		{"c", "u", true, "x/a", Write, true},
		{"c", "u", true, "x/no", Read, false},
		{"c", "u", true, "w", Read, false},
		{"c", "u", true, "w", Write, true},
		// A user grant wins over a deny pattern.
		{"c", "u", true, "x/denied", Read, true},
		{"c", "zed", true, "x/denied", Read, false},
		{"c", "v", true, "x/denied", Read, true}, // v reads "#"
		// '#' does not grant $ topics; an explicit $SYS rule does (reads).
		{"c", "v", true, "$SYS/broker/uptime", Read, false},
		{"c", "u", true, "$SYS/broker/uptime", Read, true},
		{"c", "u", true, "$SYS/broker/uptime", Write, false},
		{"c", "v", true, "anything/at/all", Read, true},
		// Patterns.
		{"c", "v", true, "users/v/a", Write, true},
		{"c", "v", true, "users/u/a", Write, false},
		{"c", "", false, "users//a", Read, false}, // %u skipped for anonymous
		{"me", "", false, "clients/me/x", Read, true},
		{"me", "", false, "clients/you/x", Read, false},
		{"me", "v", true, "clients/me", Read, true},
		{"me", "v", true, "both/me/v", Read, true},
		{"me", "", false, "both/me/%u", Read, false},
		{"me", "v", true, "lit/%x/%me", Read, true},
		// A '/' in the id or username adds levels.
		{"a/b", "", false, "clients/a/b/c", Read, true},
		{"c", "p/q", true, "users/p/q/r", Read, true},
		// '+' or '#' in the id or username: denied once patterns are reached.
		{"a+", "", false, "clients/a+/x", Read, false},
		{"c", "v+", true, "users/v+/x", Read, false},
		{"a#", "u", true, "x/a", Read, true}, // the user's own rules come first
		// Unknown user: patterns only.
		{"c", "zed", true, "users/zed/x", Read, true},
		{"c", "zed", true, "pub/a", Read, false},
		// Subscribe and unsubscribe are never checked.
		{"c", "zed", true, "nothing/#", Subscribe, true},
		{"c", "", false, "$SYS/#", Subscribe, true},
		{"c", "", false, "$share/g/x", Subscribe, true},
		{"c", "", false, "x", Unsubscribe, true},
		// $share topics cannot be read or written.
		{"c", "v", true, "$share/g/x", Read, false},
	})
}

func TestCheckNoACL(t *testing.T) {
	var none *ACL
	runACLCases(t, none, []aclCase{
		{"c", "", false, "a/b", Read, true},
		{"c", "", false, "a/b", Write, true},
		{"c", "", false, "$SYS/x", Read, true},
		{"c", "", false, "$SYS/x", Write, false},
		{"c", "", false, "$SYS/broker/connection/br/state", Write, true},
		{"c", "", false, "$share/g/x", Write, false},
		{"c", "", false, "$other", Write, true},
	})
	empty := parseACL(t, "# nothing\n")
	runACLCases(t, empty, []aclCase{
		{"c", "", false, "a", Read, false},
		{"c", "u", true, "a", Write, false},
		{"c", "u", true, "a/#", Subscribe, true},
	})
	patternsOnly := parseACL(t, "pattern read %u/#\n")
	runACLCases(t, patternsOnly, []aclCase{
		{"c", "u", true, "u/1", Read, true},
		{"c", "", false, "u/1", Read, false},
	})
}
