package auth

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/broker/auth/authtest"
)

// HASH_JEN values printed by a C program built on Mosquitto's deps/uthash.h.
func TestJenkinsHash(t *testing.T) {
	for k, v := range map[string]uint32{"a": 4215855299, "alice": 4064702390, "bob": 2072392925, "": 249677994,
		"abcdefghijkl": 1721601608, "abcdefghijklmnopqrstuvw": 2848850066, "dup": 957073991, "u123456789012345678": 2076728200} {
		if got := jenkinsHash(k); got != v {
			t.Errorf("jenkinsHash(%q) = %d, want %d", k, got, v)
		}
	}
}

// dupCase is a password file in which "dup" appears several times, each with
// its own password dup-K; bad lists the K whose entry is undecodable.
type dupCase struct {
	name   string
	before int // distinct users before the duplicates
	dups   int
	bad    map[int]bool
	spread int // distinct users between consecutive duplicates
}

func (c dupCase) file() string {
	var b strings.Builder
	cheap := func(pw string) string {
		h, err := HashPasswordOpts(pw, HashOptions{Iterations: 1, Salt: fixedSalt})
		if err != nil {
			panic(err)
		}
		return h
	}
	n := 0
	other := func(k int) {
		for i := 0; i < k; i++ {
			fmt.Fprintf(&b, "user%d:%s\n", n, cheap("x"))
			n++
		}
	}
	other(c.before)
	for k := 0; k < c.dups; k++ {
		if c.bad[k] {
			b.WriteString("dup:plaintext\n")
		} else {
			fmt.Fprintf(&b, "dup:%s\n", cheap(fmt.Sprintf("dup-%d", k)))
		}
		other(c.spread)
	}
	return b.String()
}

func dupCases() []dupCase {
	return []dupCase{
		{name: "2 in a row", dups: 2},
		{name: "9 in a row", dups: 9},
		{name: "10 in a row", dups: 10},
		{name: "11 in a row", dups: 11},
		{name: "20 in a row", dups: 20},
		{name: "21 in a row", dups: 21},
		{name: "40 in a row", dups: 40},
		{name: "10, last ones undecodable", dups: 10, bad: map[int]bool{7: true, 8: true, 9: true}},
		{name: "11, last undecodable", dups: 11, bad: map[int]bool{10: true}},
		{name: "after 300 users", before: 300, dups: 12},
		{name: "spread over 400 users", dups: 5, spread: 80},
		{name: "spread, first undecodable", dups: 6, spread: 40, bad: map[int]bool{0: true, 5: true}},
	}
}

// winner is the K of the dup-K password Check accepts, -1 for none.
func (c dupCase) winner(p *Passwords) int {
	for k := 0; k < c.dups; k++ {
		if p.Check("dup", fmt.Sprintf("dup-%d", k)) == OK {
			return k
		}
	}
	return -1
}

func TestDuplicatesModel(t *testing.T) {
	// Measured on Mosquitto 2.0.11 (see TestDuplicatesAgainstMosquitto).
	want := map[string]int{"2 in a row": 1, "9 in a row": 8, "10 in a row": 0, "11 in a row": 10,
		"20 in a row": 19, "21 in a row": 20, "10, last ones undecodable": 0, "11, last undecodable": 0}
	for _, c := range dupCases() {
		w, ok := want[c.name]
		if !ok {
			continue
		}
		if got := c.winner(parsePW(t, c.file())); got != w {
			t.Errorf("%s: dup-%d logs in, want dup-%d", c.name, got, w)
		}
	}
}

// TestDuplicatesAgainstMosquitto: the duplicate Mosquitto lets in is the one
// Check lets in.
func TestDuplicatesAgainstMosquitto(t *testing.T) {
	for _, c := range dupCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			text := c.file()
			p := parsePW(t, text)
			dir := t.TempDir()
			m := startMosquitto(t, dir, "allow_anonymous false", "password_file "+writeFile(t, dir, "pw", text))
			real := -1
			for k := 0; k < c.dups; k++ {
				code, err := authtest.ConnectCode(m.Addr, "dup-test", "dup", fmt.Sprintf("dup-%d", k))
				if err != nil {
					t.Fatal(err)
				}
				if code == 0 {
					if real >= 0 {
						t.Fatalf("two passwords work: dup-%d and dup-%d", real, k)
					}
					real = k
				}
			}
			if got := c.winner(p); got != real {
				t.Errorf("Check accepts dup-%d, Mosquitto dup-%d", got, real)
			}
		})
	}
}
