package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

// idHeader starts random and template payloads: "mqb:<pub>:<seq>:<t_ns>:",
// t_ns being the message's send time (its pub event's t_ns), so a delivery's
// latency needs no table of send times (sendring.go). A random payload too
// small for the time leaves it out ("mqb:<pub>:<seq>:", as every payload did
// before), and so do payloads of older mqbench versions: both still parse. The
// experiment payload carries its id in JSON instead, exactly as the seed
// experiment did, so its size stays comparable (about 150 bytes).
const idHeader = "mqb:"

// Payload kinds (scenarios.Payload.Kind).
const (
	payloadExperiment = "experiment"
	payloadRandom     = "random"
	payloadTemplate   = "template"
)

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// payloadGen builds the payload of each message of one publisher. Every payload
// embeds the sequence number (and the publisher id when there are several), so
// a delivery can be matched to its publish without a lookup table.
type payloadGen struct {
	kind     string
	pub      string
	withPub  bool
	size     int
	tmpl     *template.Template
	rnd      *rand.Rand
	tmplData tmplData
	buf      bytes.Buffer
}

// tmplData is what a payload template can use.
type tmplData struct {
	g         *payloadGen
	Seq       int64
	Pub       string
	Timestamp int64 // ms since the epoch, like the seed experiment's field
}

// Random returns n random letters and digits, for {{.Random 50}} in templates.
func (d *tmplData) Random(n int) string {
	b := make([]byte, n)
	d.g.fill(b)
	return string(b)
}

func newPayloadGen(p scenarios.Payload, pub string, withPub bool, seed uint64) (*payloadGen, error) {
	g := &payloadGen{
		kind:    p.Kind,
		pub:     pub,
		withPub: withPub,
		size:    p.Size,
		rnd:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	switch p.Kind {
	case "", payloadExperiment:
		g.kind = payloadExperiment
	case payloadRandom:
		if g.size < scenarios.MinRandomPayload {
			g.size = scenarios.MinRandomPayload
		}
	case payloadTemplate:
		t, err := template.New(pub).Parse(p.Template)
		if err != nil {
			return nil, fmt.Errorf("payload template of %s: %w", pub, err)
		}
		g.tmpl = t
	default:
		return nil, fmt.Errorf("payload kind %q of %s: want experiment, random or template", p.Kind, pub)
	}
	return g, nil
}

// fill writes random letters and digits into b.
func (g *payloadGen) fill(b []byte) {
	for i := 0; i < len(b); {
		r := g.rnd.Uint64()
		// 10 characters from each 64-bit draw (62^10 < 2^60, negligible bias).
		for j := 0; j < 10 && i < len(b); j++ {
			b[i] = alnum[r%62]
			r /= 62
			i++
		}
	}
}

// appendRandom appends n random letters and digits.
func (g *payloadGen) appendRandom(b []byte, n int) []byte {
	b = slices.Grow(b, n)
	m := len(b)
	b = b[:m+n]
	g.fill(b[m:])
	return b
}

// make returns a new payload for message seq (1-based) sent at sendT (ns
// since the run's start; 0 leaves it out) and now (the wall clock, for the
// Timestamp field). Each call allocates: the client keeps the slice until the
// message is acknowledged.
func (g *payloadGen) make(seq, sendT int64, now time.Time) ([]byte, error) {
	switch g.kind {
	case payloadRandom:
		b := make([]byte, 0, g.size)
		b = append(b, idHeader...)
		b = append(b, g.pub...)
		b = append(b, ':')
		b = strconv.AppendInt(b, seq, 10)
		b = append(b, ':')
		if sendT > 0 {
			// Only when it fits: the size is the scenario's, and the
			// publisher's ring (sendring.go) covers a message without it.
			if n := len(b); n+digits(sendT)+1 <= g.size {
				b = strconv.AppendInt(b, sendT, 10)
				b = append(b, ':')
			}
		}
		if len(b) > g.size {
			return b, nil
		}
		return g.appendRandom(b, g.size-len(b)), nil
	case payloadTemplate:
		g.buf.Reset()
		g.buf.WriteString(idHeader)
		g.buf.WriteString(g.pub)
		g.buf.WriteByte(':')
		g.buf.WriteString(strconv.FormatInt(seq, 10))
		g.buf.WriteByte(':')
		if sendT > 0 {
			g.buf.WriteString(strconv.FormatInt(sendT, 10))
			g.buf.WriteByte(':')
		}
		g.tmplData = tmplData{g: g, Seq: seq, Pub: g.pub, Timestamp: now.UnixMilli()}
		if err := g.tmpl.Execute(&g.buf, &g.tmplData); err != nil {
			return nil, fmt.Errorf("payload template of %s: %w", g.pub, err)
		}
		return bytes.Clone(g.buf.Bytes()), nil
	}
	// The seed experiment's object in compact JSON (no spaces after ',' and
	// ':'), which keeps it at the "about 150 bytes" of the original: 153 to
	// 157 bytes for ids up to 10,000.
	b := make([]byte, 0, 160+len(g.pub))
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, seq, 10)
	if g.withPub {
		b = append(b, `,"pub":"`...)
		b = append(b, g.pub...)
		b = append(b, '"')
	}
	b = append(b, `,"Timestamp":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	b = append(b, `,"str1":"`...)
	b = g.appendRandom(b, 50)
	b = append(b, `","str2":"`...)
	b = g.appendRandom(b, 50)
	b = append(b, `"}`...)
	return b, nil
}

// parsePayload finds the publisher id, sequence number and send time (ns
// since the run's start, 0 when the payload does not carry it: experiment
// JSON, older payloads) in a payload built by payloadGen. pub is "" when the
// payload does not name its publisher (a single publisher's experiment JSON);
// ok is false for foreign payloads.
func parsePayload(b []byte) (pub string, seq, sendT int64, ok bool) {
	if bytes.HasPrefix(b, []byte(idHeader)) {
		rest := b[len(idHeader):]
		// Publisher ids of older runs may contain ':'; the seq is the first
		// field of digits ended by ':' after one, and a second such field
		// is the send time. A random body (letters and digits) holds no ':',
		// so an older random payload never passes for one with a time.
		for i := 0; i < len(rest); i++ {
			if rest[i] != ':' {
				continue
			}
			n, j, ok := digitsField(rest, i+1)
			if !ok {
				continue
			}
			t, _, _ := digitsField(rest, j+1)
			return string(rest[:i]), n, t, true
		}
		return "", 0, 0, false
	}
	j := jsonValue(b, `"id":`)
	if j < 0 {
		return "", 0, 0, false
	}
	k := j
	for k < len(b) && b[k] >= '0' && b[k] <= '9' {
		k++
	}
	if k == j {
		return "", 0, 0, false
	}
	n, err := strconv.ParseInt(string(b[j:k]), 10, 64)
	if err != nil {
		return "", 0, 0, false
	}
	if p := jsonValue(b[k:], `"pub":`); p >= 0 && k+p < len(b) && b[k+p] == '"' {
		s := b[k+p+1:]
		if e := bytes.IndexByte(s, '"'); e >= 0 {
			return string(s[:e]), n, 0, true
		}
	}
	return "", n, 0, true
}

// digitsField reads the decimal number at b[i:] ended by ':' at end; ok is
// false when there is none (no digit, no ':', too big).
func digitsField(b []byte, i int) (n int64, end int, ok bool) {
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == i || j >= len(b) || b[j] != ':' {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(string(b[i:j]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return n, j, true
}

// digits is the length of n (> 0) in decimal.
func digits(n int64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// jsonValue returns the offset of the value after key (which includes the
// colon), skipping spaces, or -1; both compact and spaced JSON are read.
func jsonValue(b []byte, key string) int {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return -1
	}
	j := i + len(key)
	for j < len(b) && b[j] == ' ' {
		j++
	}
	return j
}

// checkPubID rejects publisher ids that a payload cannot carry unambiguously.
func checkPubID(id string) error {
	if strings.ContainsAny(id, "\"\\:") {
		return fmt.Errorf("publisher id %q: quotes, backslashes and ':' cannot be carried in the payload", id)
	}
	return nil
}
