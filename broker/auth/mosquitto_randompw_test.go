package auth

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mqbench/mqbench/broker/auth/authtest"
)

// randomPasswordFile builds a password file from mutated lines: whitespace,
// CRs, comments, missing or extra colons, damaged hashes, repeated names,
// NUL bytes and lines around the reader's buffer sizes. It returns the file
// and the (user, password) probes to try.
func randomPasswordFile(seed int64) (string, [][2]string) {
	rng := rand.New(rand.NewSource(seed))
	pick := func(xs ...string) string { return xs[rng.Intn(len(xs))] }
	names := []string{"a", "b", "c", "d e", "#f", "g"}
	var probes [][2]string
	var b strings.Builder
	for l := 2 + rng.Intn(8); l > 0; l-- {
		name := pick(names...)
		pw := fmt.Sprintf("pw%d", l)
		probes = append(probes, [2]string{trimBlanks(name), pw})
		h, err := HashPasswordOpts(pw, HashOptions{Iterations: 1 + rng.Intn(3), Type: HashType(pick("6", "7", "7")[0] - '0'), Salt: fixedSalt})
		if err != nil {
			panic(err)
		}
		switch rng.Intn(12) {
		case 0:
			h = h[1:]
		case 1:
			h = strings.Replace(h, "$1$", "$"+pick("0", "-1", "1x", " 1", "4294967297")+"$", 1)
		case 2:
			h = strings.TrimRight(h, "=")
		case 3:
			h += pick("x", "xyz", "$junk", ":junk", "====")
		case 4:
			h = pw // plaintext
		case 5:
			h = strings.Replace(h, "$", "$$", -1)
		}
		line := name + ":" + h
		switch rng.Intn(10) {
		case 0:
			line = pick(" ", "\t", "::", "#", "  #") + line
		case 1:
			line = name + pick(" : ", "\t:\t", "::") + h
		case 2:
			line += pick(" ", "\r", "\t \r")
		case 3:
			line = strings.Replace(line, ":", "", 1)
		case 4:
			if rng.Intn(3) == 0 {
				line += "\x00" + pick("", "x", "\n")
			}
		case 5:
			// Pad to end near a buffer boundary (255 or 1255 bytes).
			target := pick("254", "255", "256", "1254", "1255")
			n, _ := strconv.Atoi(target)
			if pad := n - len(line); pad > 0 && strings.HasPrefix(h, "$") {
				line = name + strings.Repeat(" ", pad) + ":" + h
			}
		}
		b.WriteString(line)
		if l > 1 || rng.Intn(2) == 0 {
			b.WriteString(pick("\n", "\n", "\r\n", "\n\n"))
		}
	}
	for _, n := range names {
		probes = append(probes, [2]string{trimBlanks(n), "wrong"})
	}
	return b.String(), probes
}

// TestRandomPasswordFilesAgainstMosquitto: for every probe of every random
// file, the real broker's CONNACK is the one Check predicts.
func TestRandomPasswordFilesAgainstMosquitto(t *testing.T) {
	n := 25
	if s := os.Getenv("MQBENCH_AUTH_RANDOM_FILES"); s != "" {
		n, _ = strconv.Atoi(s) // a longer campaign on demand
	}
	var mu sync.Mutex
	ok := 0
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for seed := int64(1); seed <= int64(n); seed++ {
		text, probes := randomPasswordFile(seed)
		p, err := ParsePasswords(strings.NewReader(text), "pw")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		m := startMosquitto(t, dir, "allow_anonymous false", "password_file "+writeFile(t, dir, "pw", text))
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer m.Kill()
			for _, pr := range probes {
				want := p.Check(pr[0], pr[1]).ConnackCode(false)
				got, err := authtest.ConnectCode(m.Addr, "random-pw", pr[0], pr[1])
				mu.Lock()
				switch {
				case err != nil:
					t.Errorf("seed %d %q: %v", seed, pr[0], err)
				case got != want:
					t.Errorf("seed %d file %q: user %q password %q: Mosquitto %d, Check %d", seed, text, pr[0], pr[1], got, want)
				case got == 0:
					ok++
				}
				mu.Unlock()
			}
			if logged := droppedLogged(m, len(p.Warnings())); logged != len(p.Warnings()) {
				mu.Lock()
				t.Errorf("seed %d file %q: Mosquitto logged %d dropped entries, Warnings %v", seed, text, logged, p.Warnings())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d files, %d successful logins among the probes", n, ok)
}
