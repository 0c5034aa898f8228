package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Mosquitto reads both files with its fgets_extending helper (lib/misc_mosq.c)
// into a buffer that starts at 256 bytes and grows by 1000 whenever a read ends
// without a newline, and then treats the buffer as a C string. Reading the same
// way is what makes the odd inputs come out as they do in Mosquitto rather than
// as a Go line scanner would have them:
//
//   - there is no line length limit;
//   - a NUL byte ends the line's text, and because the "did we get a newline"
//     test looks at the end of that C string, the reader keeps appending the
//     following lines until the end of the file, all hidden behind the NUL;
//   - a last line without a newline whose length is exactly the buffer size
//     minus one is lost: fgets fills the buffer without seeing the end of the
//     file, and the next fgets then returns nothing.
const (
	initialBufLen = 256
	bufGrowth     = 1000
)

// cLineReader is that reader. It also counts the newlines it consumed, so a
// logical line can be reported with the physical line it started on.
type cLineReader struct {
	r        *bufio.Reader
	buf      []byte // len(buf) is Mosquitto's buflen
	eof      bool
	err      error
	newlines int
}

func newCLineReader(r io.Reader, bufLen int) *cLineReader {
	return &cLineReader{r: bufio.NewReader(r), buf: make([]byte, bufLen)}
}

// fgets reads like C fgets into buf[off:]: at most len(buf)-off-1 bytes,
// stopping after a newline, then a NUL terminator. It reports false when it
// hit the end of the file before reading anything (buf left unchanged).
func (c *cLineReader) fgets(off int) bool {
	limit := len(c.buf) - off - 1
	n := 0
	for n < limit {
		b, err := c.r.ReadByte()
		if err != nil {
			c.eof = true
			if !errors.Is(err, io.EOF) {
				c.err = err
			}
			break
		}
		c.buf[off+n] = b
		n++
		if b == '\n' {
			c.newlines++
			break
		}
	}
	if n == 0 && c.eof {
		return false
	}
	c.buf[off+n] = 0
	return true
}

// next returns the next logical line as the C string Mosquitto sees (without
// anything after a NUL, the newline kept), the physical line it started on,
// and false at the end of the file.
func (c *cLineReader) next() (string, int, bool) {
	start := c.newlines + 1
	off := 0
	for {
		got := c.fgets(off)
		if c.eof {
			if !got {
				return "", 0, false
			}
			return cString(c.buf), start, true
		}
		s := cString(c.buf)
		// An empty C string makes Mosquitto look at the byte before its buffer
		// (undefined behaviour); it is in practice not a newline.
		if len(s) > 0 && s[len(s)-1] == '\n' {
			return s, start, true
		}
		off = len(c.buf) - 1
		grown := make([]byte, len(c.buf)+bufGrowth)
		copy(grown, c.buf)
		c.buf = grown
	}
}

// cString is b up to its first NUL.
func cString(b []byte) string {
	for i, x := range b {
		if x == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// cTrunc is s up to its first NUL: what a C string made from s would hold.
func cTrunc(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// isSpace is C isspace in the "C" locale, which Mosquitto's trimming uses.
func isSpace(b byte) bool {
	return b == ' ' || (b >= '\t' && b <= '\r')
}

// trimBlanks is Mosquitto's misc__trimblanks: C whitespace off both ends.
func trimBlanks(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// trimRightSpace strips trailing C whitespace, as the ACL reader does to
// every line before looking at it.
func trimRightSpace(s string) string {
	j := len(s)
	for j > 0 && isSpace(s[j-1]) {
		j--
	}
	return s[:j]
}

// tokenizer is C strtok_r over one string: each call skips leading
// delimiters, returns the run up to the next delimiter and consumes that
// delimiter. With no delimiters it returns the rest of the string. Mosquitto
// parses both files with it, which is why "a::b" has the password "b" and a
// leading ':' is skipped.
type tokenizer struct {
	s   string
	pos int
	end int // where the last token ended
}

func (t *tokenizer) next(delims string) (string, bool) {
	for t.pos < len(t.s) && strings.IndexByte(delims, t.s[t.pos]) >= 0 {
		t.pos++
	}
	if t.pos >= len(t.s) {
		return "", false
	}
	start := t.pos
	for t.pos < len(t.s) && strings.IndexByte(delims, t.s[t.pos]) < 0 {
		t.pos++
	}
	tok := t.s[start:t.pos]
	t.end = t.pos
	if t.pos < len(t.s) {
		t.pos++ // the delimiter strtok overwrites with NUL
	}
	return tok, true
}

// atoi is glibc atoi, (int)strtol(s, NULL, 10): leading whitespace, a sign,
// digits up to the first non-digit, clamped to 64 bits, then truncated to a
// 32-bit int ("101abc" is 101, "abc" is 0, 4294967397 is 101).
func atoi(s string) int32 {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	const limit = uint64(1) << 63 // saturate here: strtol clamps
	var v uint64
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		switch {
		case v > limit/10:
			v = limit
		case v < limit:
			v = min(v*10+uint64(s[i]-'0'), limit)
		}
	}
	var l int64
	switch {
	case neg && v >= limit:
		l = -1 << 63
	case neg:
		l = -int64(v)
	case v >= limit:
		l = 1<<63 - 1
	default:
		l = int64(v)
	}
	return int32(l)
}

// FileError is a problem in a password or ACL file at a line. For the ACL file
// it is fatal (Mosquitto refuses to start); for the password file it is a
// warning for a skipped entry (Mosquitto logs it and starts without it).
type FileError struct {
	File string
	Line int
	Msg  string
}

func (e *FileError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}
