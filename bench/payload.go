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

// idHeader starts random and template payloads: "mqb:<pub>:<seq>:". The
// experiment payload carries its id in JSON instead, exactly as the seed
// experiment did, so its size stays comparable (about 150 bytes).
const idHeader = "mqb:"

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
	case "", "experiment":
		g.kind = "experiment"
	case "random":
		if g.size < scenarios.MinRandomPayload {
			g.size = scenarios.MinRandomPayload
		}
	case "template":
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

// make returns a new payload for message seq (1-based). Each call allocates:
// the client keeps the slice until the message is acknowledged.
func (g *payloadGen) make(seq int64, now time.Time) ([]byte, error) {
	switch g.kind {
	case "random":
		b := make([]byte, 0, g.size)
		b = append(b, idHeader...)
		b = append(b, g.pub...)
		b = append(b, ':')
		b = strconv.AppendInt(b, seq, 10)
		b = append(b, ':')
		if len(b) > g.size {
			return b, nil
		}
		return g.appendRandom(b, g.size-len(b)), nil
	case "template":
		g.buf.Reset()
		g.buf.WriteString(idHeader)
		g.buf.WriteString(g.pub)
		g.buf.WriteByte(':')
		g.buf.WriteString(strconv.FormatInt(seq, 10))
		g.buf.WriteByte(':')
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

// parsePayload finds the publisher id and sequence number in a payload built by
// payloadGen. pub is "" when the payload does not name its publisher (a single
// publisher's experiment JSON); ok is false for foreign payloads.
func parsePayload(b []byte) (pub string, seq int64, ok bool) {
	if bytes.HasPrefix(b, []byte(idHeader)) {
		rest := b[len(idHeader):]
		// The publisher id may itself contain ':'; the seq is the last field before the payload body,
		// so split on the first ':' after which digits and ':' follow.
		for i := 0; i < len(rest); i++ {
			if rest[i] != ':' {
				continue
			}
			j := i + 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			if j > i+1 && j < len(rest) && rest[j] == ':' {
				n, err := strconv.ParseInt(string(rest[i+1:j]), 10, 64)
				if err == nil {
					return string(rest[:i]), n, true
				}
			}
		}
		return "", 0, false
	}
	j := jsonValue(b, `"id":`)
	if j < 0 {
		return "", 0, false
	}
	k := j
	for k < len(b) && b[k] >= '0' && b[k] <= '9' {
		k++
	}
	if k == j {
		return "", 0, false
	}
	n, err := strconv.ParseInt(string(b[j:k]), 10, 64)
	if err != nil {
		return "", 0, false
	}
	if p := jsonValue(b[k:], `"pub":`); p >= 0 && k+p < len(b) && b[k+p] == '"' {
		s := b[k+p+1:]
		if e := bytes.IndexByte(s, '"'); e >= 0 {
			return string(s[:e]), n, true
		}
	}
	return "", n, true
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
