package auth

import (
	"crypto/subtle"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// maxField is the longest username or password field Mosquitto keeps; a longer
// one makes it skip the line with a warning (pwfile__parse).
const maxField = 65535

// Passwords is a loaded password_file: for each username the entry Mosquitto
// 2.0.11 would check a CONNECT against. A nil *Passwords is "no password_file
// configured". It is not modified after parsing, so it is safe for concurrent
// use; a reload builds a new one.
type Passwords struct {
	file     string
	users    map[string]*pwEntry
	warnings []*FileError
}

// pwEntry is one decoded line of the file.
type pwEntry struct {
	username   string
	raw        string // the password field as read (trimmed)
	kind       HashType
	iterations int
	salt       []byte
	hash       []byte
	line       int
}

// LoadPasswordFile reads a Mosquitto password_file. The only errors are the
// file not opening or not reading (Mosquitto then logs "Unable to open pwfile"
// and refuses to start); problems in lines are not errors but warnings for
// entries Mosquitto drops while starting anyway, see ParsePasswords.
func LoadPasswordFile(path string) (*Passwords, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("unable to open pwfile %q: %w", path, err)
	}
	defer f.Close()
	return ParsePasswords(f, path)
}

// ParsePasswords reads a password file from r; name is the file name used in
// warnings. It follows pwfile__parse and unpwd__decode_passwords of
// src/security_default.c:
//
//   - a line starting with '#' (in the first column only) and a line without
//     ':' are skipped silently, blank lines included;
//   - the username is the text before the first run of ':' (leading colons are
//     skipped, C strtok), the password field the text up to the next ':' (the
//     rest of the line is ignored); both are trimmed of C whitespace, which
//     also removes the newline and a CR;
//   - no password field ("alice:" at the end of the file), or a field longer
//     than 65535 bytes: the line is skipped with a warning;
//   - a password field that is not a decodable $6$ or $7$ hash (a plaintext
//     password, an empty field, a bad iteration count, a salt that does not
//     decode to 12 bytes, a hash that does not decode to 64 bytes): the entry
//     is removed with an error logged, and Mosquitto starts without it. It
//     does not refuse to start: 2.0.11 has no "Unable to decode line" error;
//   - an empty username ("  :hash") is kept but can never match: a CONNECT
//     with a zero-length username is a CONNECT without one;
//   - a username given more than once: the entry Mosquitto's uthash table
//     finds first, usually the last one that decoded, but not always (see
//     uthash.go);
//   - there is no line length limit, and NUL bytes behave as in C (see
//     lines.go).
//
// The error is non-nil only when r fails.
func ParsePasswords(r io.Reader, name string) (*Passwords, error) {
	p := &Passwords{file: name, users: map[string]*pwEntry{}}
	lr := newCLineReader(r, initialBufLen)
	var entries []*pwEntry
	for {
		buf, line, ok := lr.next()
		if !ok {
			break
		}
		if strings.HasPrefix(buf, "#") || !strings.Contains(buf, ":") {
			continue
		}
		tk := tokenizer{s: buf}
		user, ok := tk.next(":")
		if !ok {
			continue
		}
		userEnd := tk.end
		user = trimBlanks(user)
		if len(user) > maxField {
			p.warn(line, "invalid line in password file, username too long")
			continue
		}
		pass, ok := tk.next(":")
		if !ok {
			p.warn(line, fmt.Sprintf("invalid line in password file: %s", trimRightSpace(buf[:userEnd])))
			continue
		}
		pass = trimBlanks(pass)
		if len(pass) > maxField {
			p.warn(line, "invalid line in password file, password too long")
			continue
		}
		entries = append(entries, &pwEntry{username: user, raw: pass, line: line})
	}
	if lr.err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, lr.err)
	}
	// Every line goes into the table, then the undecodable ones come out, in
	// file order, and each username resolves as Mosquitto's lookup would.
	var table uhash
	items := make([]*uhItem, len(entries))
	for i, e := range entries {
		items[i] = table.add(e)
	}
	for i, e := range entries {
		if msg := e.decode(); msg != "" {
			p.warn(e.line, fmt.Sprintf(msg, e.username))
			table.del(items[i])
		}
	}
	for _, e := range entries {
		if _, done := p.users[e.username]; !done {
			if found := table.find(e.username); found != nil {
				p.users[e.username] = found
			}
		}
	}
	return p, nil
}

func (p *Passwords) warn(line int, msg string) {
	p.warnings = append(p.warnings, &FileError{File: p.file, Line: line, Msg: msg})
}

// decode splits the password field like unpwd__decode_passwords and returns
// Mosquitto's complaint (with %s for the username), or "" when the entry is
// usable. The field is split with strtok on '$', so "7$101$S$H" and
// "$$7$101$S$H$more" are as good as "$7$101$S$H".
func (e *pwEntry) decode() string {
	tk := tokenizer{s: e.raw}
	t, ok := tk.next("$")
	if !ok {
		return "invalid password hash for user %s, removing entry"
	}
	switch t {
	case "6":
		e.kind = SHA512
	case "7":
		e.kind = PBKDF2SHA512
	default:
		return "invalid password hash type for user %s, removing entry"
	}
	if e.kind == PBKDF2SHA512 {
		t, ok = tk.next("$")
		if !ok {
			return "invalid password hash for user %s, removing entry"
		}
		e.iterations = int(atoi(t))
		if e.iterations < 1 {
			return "invalid hash iterations for user %s, removing entry"
		}
	}
	t, ok = tk.next("$")
	if !ok {
		return "invalid password hash for user %s, removing entry"
	}
	salt, ok := opensslB64Decode(t)
	if !ok || len(salt) != saltLen {
		return "unable to decode password salt for user %s, removing entry"
	}
	t, ok = tk.next("$")
	if !ok {
		return "invalid password hash for user %s, removing entry"
	}
	hash, ok := opensslB64Decode(t)
	if !ok || len(hash) != hashLen {
		return "unable to decode password for user %s, removing entry"
	}
	e.salt, e.hash = salt, hash
	return ""
}

// Warnings are the entries Mosquitto would log and drop while loading the
// file, in file order (line problems first, then undecodable hashes, as
// Mosquitto logs them). A broker reproducing Mosquitto logs them and starts.
func (p *Passwords) Warnings() []*FileError {
	if p == nil {
		return nil
	}
	return append([]*FileError(nil), p.warnings...)
}

// Users are the usernames that can log in, sorted.
func (p *Passwords) Users() []string {
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(p.users))
	for u := range p.users {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// Format renders the usable entries as a password file ("user:hash" lines
// sorted by user, hashes in the canonical $6$/$7$ form): the file Mosquitto
// would read into the same Passwords (warnings aside).
func (p *Passwords) Format() string {
	var b strings.Builder
	for _, u := range p.Users() {
		e := p.users[u]
		if u == "" || u[0] == '#' {
			// A leading blank (trimmed when read) keeps an empty name from
			// being skipped as leading colons and "#name" from being a comment.
			b.WriteByte(' ')
		}
		b.WriteString(u)
		b.WriteByte(':')
		b.WriteString(formatHash(e.kind, e.iterations, e.salt, e.hash))
		b.WriteByte('\n')
	}
	return b.String()
}

// Result is the outcome of checking a CONNECT's username and password against
// the password file, as mosquitto_unpwd_check_default (src/security_default.c)
// and mosquitto_unpwd_check (src/security.c) decide it.
type Result int

const (
	// OK: the user is in the file and the password matches.
	OK Result = iota
	// Anonymous: the CONNECT had no username (or a zero-length one, which
	// Mosquitto reads as none). Allowed only with allow_anonymous true.
	Anonymous
	// UnknownUser: a username that is not in the file (or whose entry was
	// dropped at load).
	UnknownUser
	// NoPassword: a known user sent no password (or a zero-length one).
	NoPassword
	// BadPassword: a known user sent a password that does not match.
	BadPassword
	// NoPasswordFile: no password_file is configured (nil *Passwords). With
	// no other authentication, Mosquitto then admits every client, with or
	// without a username, only when allow_anonymous is true.
	NoPasswordFile
)

func (r Result) String() string {
	switch r {
	case OK:
		return "ok"
	case Anonymous:
		return "anonymous"
	case UnknownUser:
		return "unknown user"
	case NoPassword:
		return "no password"
	case BadPassword:
		return "bad password"
	case NoPasswordFile:
		return "no password file"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// MQTT 3.1.1 CONNACK return codes of authentication. Mosquitto 2.0.11 sends
// ConnackNotAuthorized for every password-file refusal; ConnackBadUserOrPass
// is listed because one would expect it there, and it is not what Mosquitto
// sends (only TLS identity failures get it).
const (
	ConnackAccepted      byte = 0
	ConnackBadUserOrPass byte = 4
	ConnackNotAuthorized byte = 5
)

// Allowed reports whether Mosquitto 2.0.11 admits the client with this result
// under the listener's allow_anonymous setting.
func (r Result) Allowed(allowAnonymous bool) bool {
	switch r {
	case OK:
		return true
	case Anonymous, NoPasswordFile:
		return allowAnonymous
	}
	return false
}

// ConnackCode is the MQTT 3.1.1 CONNACK return code Mosquitto 2.0.11 sends
// for the result: 0 when Allowed, otherwise 5 (not authorized) in every case,
// unknown user and wrong password included. handle__connect
// (src/handle_connect.c) maps the MOSQ_ERR_AUTH of mosquitto_unpwd_check to
// CONNACK_REFUSED_NOT_AUTHORIZED; code 4 (bad username or password) is only
// sent on TLS listeners with use_identity_as_username/use_subject_as_username
// when the certificate is missing or unusable, never for a password file.
func (r Result) ConnackCode(allowAnonymous bool) byte {
	if r.Allowed(allowAnonymous) {
		return ConnackAccepted
	}
	return ConnackNotAuthorized
}

// Check checks a CONNECT's credentials. username "" is a CONNECT without a
// username and password "" one without a password: Mosquitto's
// packet__read_binary turns zero-length fields into NULL, so the two cannot be
// told apart. Mosquitto hashes the password as a C string: a NUL byte ends it.
// The order of the tests is Mosquitto's: username present, user known,
// password present, password matches.
func (p *Passwords) Check(username, password string) Result {
	if p == nil {
		return NoPasswordFile
	}
	if username == "" {
		return Anonymous
	}
	e := p.users[username]
	if e == nil {
		return UnknownUser
	}
	if password == "" {
		return NoPassword
	}
	got := digest(e.kind, cTrunc(password), e.salt, e.iterations)
	if subtle.ConstantTimeCompare(got, e.hash) == 1 {
		return OK
	}
	return BadPassword
}
