package auth

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Access is what a client asks to do with a topic; the values are Mosquitto's
// MOSQ_ACL_* bits. In a Rule, Deny (no bits) is a "deny" line and Read|Write
// a "readwrite" one.
type Access int

const (
	Deny        Access = 0
	Read        Access = 1 // receive a message (delivery, retained, will)
	Write       Access = 2 // publish a message (PUBLISH, will at send time)
	ReadWrite          = Read | Write
	Subscribe   Access = 4 // SUBSCRIBE a filter
	Unsubscribe Access = 8 // UNSUBSCRIBE a filter
)

func (a Access) String() string {
	switch a {
	case Deny:
		return "deny"
	case Read:
		return "read"
	case Write:
		return "write"
	case ReadWrite:
		return "readwrite"
	case Subscribe:
		return "subscribe"
	case Unsubscribe:
		return "unsubscribe"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// Rule is one "topic" or "pattern" line of an ACL file.
type Rule struct {
	// Pattern is true for a "pattern" line (applies to every client, with
	// %c and %u substituted), false for a "topic" line.
	Pattern bool
	// User is the "user" section a topic line is in; HasUser false is the
	// anonymous section before the first "user" line. Unused for patterns.
	User    string
	HasUser bool
	Access  Access
	Topic   string
	Line    int

	// counts of "%c" and "%u" in Topic, as add__acl_pattern counts them.
	ccount, ucount int
}

// ACL is a loaded acl_file. A nil *ACL is "no acl_file configured". It is not
// modified after parsing, so it is safe for concurrent use.
type ACL struct {
	file     string
	anon     []*Rule            // topic lines before any "user" line
	users    map[string][]*Rule // topic lines per user section
	patterns []*Rule
	all      []*Rule // file order, for Rules and Format
	warnings []*FileError
}

// maxTopicLevels is TOPIC_HIERARCHY_LIMIT: an ACL topic with more '/' is
// refused (mosquitto_sub_topic_check in lib/util_topic.c, broker build).
const maxTopicLevels = 200

// LoadACLFile reads a Mosquitto acl_file. A file that does not open is an
// error naming the path (Mosquitto: "Unable to open acl_file"); a bad line is
// a *FileError: Mosquitto refuses to start on either.
func LoadACLFile(path string) (*ACL, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("unable to open acl_file %q: %w", path, err)
	}
	defer f.Close()
	return ParseACL(f, path)
}

// ParseACL reads an ACL file from r; name is the file name used in errors. It
// follows aclfile__parse of src/security_default.c:
//
//   - trailing C whitespace is stripped from each line; a line that is then
//     empty is skipped, as is one starting with '#' in the first column (an
//     indented "#" is an unknown keyword, an error);
//   - words are separated by spaces only: a tab after the keyword makes the
//     keyword unknown;
//   - "topic [read|write|readwrite|deny] TOPIC" and the same for "pattern":
//     TOPIC is the rest of the line, trimmed, and may contain spaces. With
//     only one word after the keyword, that word is the topic and the access
//     is readwrite ("topic read" is readwrite on the topic "read"). No word at
//     all is the error "empty topic"; an access word other than the four is
//     an error; so is a TOPIC that is not a valid subscription filter (a
//     misplaced '+' or '#', over 65535 bytes or over 200 '/');
//   - "user NAME": NAME is the rest of the line, trimmed (spaces allowed);
//     "user" alone is an error. Topic lines before the first "user" line
//     belong to anonymous clients only; a repeated "user NAME" continues that
//     user's section;
//   - any other first word is an error ("invalid line");
//   - a pattern with neither %c nor %u is accepted with a warning.
//
// Every error is a *FileError with the line; parsing stops at the first.
func ParseACL(r io.Reader, name string) (*ACL, error) {
	a := &ACL{file: name, users: map[string][]*Rule{}}
	lr := newCLineReader(r, initialBufLen)
	user, hasUser := "", false
	for {
		buf, line, ok := lr.next()
		if !ok {
			break
		}
		buf = trimRightSpace(buf)
		if strings.HasPrefix(buf, "#") {
			continue
		}
		tk := tokenizer{s: buf}
		word, ok := tk.next(" ")
		if !ok {
			continue
		}
		fail := func(format string, args ...any) (*ACL, error) {
			return nil, &FileError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}
		}
		switch word {
		case "topic", "pattern":
			accessWord, ok := tk.next(" ")
			if !ok {
				return fail("empty topic in acl_file")
			}
			access := ReadWrite
			topic := accessWord
			if rest, ok := tk.next(""); ok {
				topic = trimBlanks(rest)
				switch accessWord {
				case "read":
					access = Read
				case "write":
					access = Write
				case "readwrite":
					access = ReadWrite
				case "deny":
					access = Deny
				default:
					return fail("invalid topic access type %q in acl_file", accessWord)
				}
			}
			if !validACLTopic(topic) {
				return fail("invalid ACL topic %q in acl_file", topic)
			}
			rule := &Rule{Pattern: word == "pattern", Access: access, Topic: topic, Line: line}
			if rule.Pattern {
				rule.ccount = strings.Count(topic, "%c")
				rule.ucount = strings.Count(topic, "%u")
				if rule.ccount == 0 && rule.ucount == 0 {
					a.warnings = append(a.warnings, &FileError{File: name, Line: line,
						Msg: fmt.Sprintf("ACL pattern %q does not contain '%%c' or '%%u'", topic)})
				}
				a.patterns = addRule(a.patterns, rule)
			} else {
				rule.User, rule.HasUser = user, hasUser
				if hasUser {
					a.users[user] = addRule(a.users[user], rule)
				} else {
					a.anon = addRule(a.anon, rule)
				}
			}
			a.all = append(a.all, rule)
		case "user":
			rest, ok := tk.next("")
			if !ok {
				return fail("missing username in acl_file")
			}
			user, hasUser = trimBlanks(rest), true
		default:
			// Mosquitto prints the buffer, which strtok cut after the word.
			return fail("invalid line in acl_file: %s", word)
		}
	}
	if lr.err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, lr.err)
	}
	return a, nil
}

// addRule appends r, except that a deny rule goes to the front: add__acl and
// add__acl_pattern keep denials first so they are tested before any grant.
func addRule(list []*Rule, r *Rule) []*Rule {
	if r.Access == Deny {
		return append([]*Rule{r}, list...)
	}
	return append(list, r)
}

// validACLTopic is mosquitto_sub_topic_check as built into the broker.
func validACLTopic(s string) bool {
	if len(s) > 65535 || strings.Count(s, "/") > maxTopicLevels {
		return false
	}
	for i := 0; i < len(s); i++ {
		var prev, next byte
		if i > 0 {
			prev = s[i-1]
		}
		if i+1 < len(s) {
			next = s[i+1]
		}
		switch s[i] {
		case '+':
			if (prev != 0 && prev != '/') || (next != 0 && next != '/') {
				return false
			}
		case '#':
			if (prev != 0 && prev != '/') || next != 0 {
				return false
			}
		}
	}
	return true
}

// Rules are the topic and pattern lines in file order.
func (a *ACL) Rules() []Rule {
	if a == nil {
		return nil
	}
	out := make([]Rule, len(a.all))
	for i, r := range a.all {
		out[i] = *r
	}
	return out
}

// Warnings are the patterns without %c or %u, which Mosquitto logs.
func (a *ACL) Warnings() []*FileError {
	if a == nil {
		return nil
	}
	return append([]*FileError(nil), a.warnings...)
}

// Format renders the rules as an ACL file that parses back to the same rules
// (line numbers aside): anonymous topics first, then each user section in
// order of first appearance, then the patterns.
func (a *ACL) Format() string {
	if a == nil {
		return ""
	}
	var b strings.Builder
	line := func(kind string, r *Rule) {
		if r.Topic != trimBlanks(r.Topic) {
			// Only the one-word form ("topic TOPIC", readwrite) keeps
			// surrounding whitespace: a topic after an access word is trimmed.
			fmt.Fprintf(&b, "%s %s\n", kind, r.Topic)
			return
		}
		fmt.Fprintf(&b, "%s %s %s\n", kind, r.Access, r.Topic)
	}
	for _, r := range a.all {
		if !r.Pattern && !r.HasUser {
			line("topic", r)
		}
	}
	seen := map[string]bool{}
	for _, r := range a.all {
		if r.Pattern || !r.HasUser || seen[r.User] {
			continue
		}
		seen[r.User] = true
		fmt.Fprintf(&b, "user %s\n", r.User)
		for _, s := range a.all {
			if !s.Pattern && s.HasUser && s.User == r.User {
				line("topic", s)
			}
		}
	}
	for _, r := range a.all {
		if r.Pattern {
			line("pattern", r)
		}
	}
	return b.String()
}
