package persist

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// seedCorpus is the committed seed corpus of FuzzRead: a valid file of each
// version, plus cuts in the middle of a chunk, so the fuzzer starts from both
// sides of the valid/invalid line.
func seedCorpus() map[string][]byte {
	out := map[string][]byte{}
	for _, v := range versionFiles {
		f, _ := v.build()
		out[v.name+"-valid"] = f.b
		mid := (f.bounds[1] + f.bounds[2]) / 2 // inside the second chunk
		out[v.name+"-cut-chunk"] = f.b[:mid]
		out[v.name+"-cut-header"] = f.b[:f.bounds[1]+3]
	}
	var seed bytes.Buffer
	if err := Write(&seed, seedDB(3, payload150)); err != nil {
		panic(err)
	}
	out["v6-seed3"] = seed.Bytes()
	return out
}

func corpusFile(data []byte) string {
	return "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
}

// TestFuzzSeedCorpus keeps testdata/fuzz/FuzzRead in step with the builders
// (regenerate with -update).
func TestFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRead")
	for name, data := range seedCorpus() {
		path := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(corpusFile(data)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("seed corpus: %v (run go test -update)", err)
		}
		if string(got) != corpusFile(data) {
			t.Errorf("%s is stale (run go test -update)", path)
		}
		_, perr := Parse(data)
		if wantErr := strings.Contains(name, "-cut-"); (perr != nil) != wantErr {
			t.Errorf("%s: Parse error %v, want error %v", name, perr, wantErr)
		}
	}
}

// canonical is what a db must look like after Write and Read: format 6 has
// no disconnect time, one CFG, no unknown chunks, and client messages grouped
// per client the way Write orders them.
func canonical(db *DB) *DB {
	c := *db
	c.Version, c.DBIDSize, c.CFGChunks, c.UnknownChunks = 6, 8, 1, 0
	c.Clients = append([]Client(nil), db.Clients...)
	for i := range c.Clients {
		c.Clients[i].DisconnectTime = 0
	}
	order, _ := groupClientMsgs(db)
	c.ClientMsgs = make([]ClientMsg, len(order))
	for i, o := range order {
		c.ClientMsgs[i] = db.ClientMsgs[o.idx]
	}
	return &c
}

// FuzzRead: any input either decodes or fails with a *FormatError inside the
// input (never a panic), and whatever decodes survives Write and Read. The
// same holds for ParseChecked, whose problems must lie inside the input and
// whose references must resolve to a store with the id they name.
func FuzzRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkChecked(t, data)
		db, err := Parse(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(data)) {
				t.Fatalf("offset %d outside input of %d bytes", fe.Offset, len(data))
			}
			return
		}
		_ = db.Stats()
		var buf bytes.Buffer
		if err := Write(&buf, db); err != nil {
			t.Fatalf("writing a decoded db: %v", err)
		}
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("reading what Write wrote: %v", err)
		}
		want := canonical(db)
		if !reflect.DeepEqual(dbString(want), dbString(again)) {
			t.Fatalf("round trip differs\ngot  %s\nwant %s", dbString(again), dbString(want))
		}
	})
}

// dbString renders a db so that nil and empty slices compare equal.
func dbString(db *DB) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "v%d last=%d shut=%v size=%d cfg=%d unk=%d\n", db.Version, db.LastDBID, db.Shutdown, db.DBIDSize, db.CFGChunks, db.UnknownChunks)
	for _, s := range db.Stores {
		fmt.Fprintf(&sb, "S %d %d %d %q %q %d %q %d %v %x %x\n", s.StoreID, s.ExpiryTime, s.SourceMid, s.SourceID, s.SourceUsername, s.SourcePort, s.Topic, s.QoS, s.Retain, s.Payload, s.Properties)
	}
	for _, c := range db.Clients {
		fmt.Fprintf(&sb, "C %+v\n", c)
	}
	for _, m := range db.ClientMsgs {
		fmt.Fprintf(&sb, "M %q %d %d %d %d %v %v %d %x\n", m.ClientID, m.StoreID, m.Mid, m.QoS, m.State, m.Retain, m.Dup, m.Direction, m.Properties)
	}
	for _, s := range db.Subs {
		fmt.Fprintf(&sb, "U %+v\n", s)
	}
	fmt.Fprintf(&sb, "R %v\n", db.Retains)
	return sb.String()
}

// checkChecked is FuzzRead's part for ParseChecked.
func checkChecked(t *testing.T, data []byte) {
	t.Helper()
	c, err := ParseChecked(data)
	if err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("ParseChecked error %v is not a *FormatError", err)
		}
		if fe.Offset < 0 || fe.Offset > int64(len(data)) {
			t.Fatalf("ParseChecked error offset %d outside input of %d bytes", fe.Offset, len(data))
		}
		return
	}
	for _, p := range c.Problems {
		if p.Offset < 0 || (p.Offset >= int64(len(data)) && len(data) > 0) || p.What == "" {
			t.Fatalf("problem %q: offset outside input of %d bytes", p, len(data))
		}
	}
	db := c.DB
	if len(c.ClientMsgStore) != len(db.ClientMsgs) || len(c.RetainStore) != len(db.Retains) ||
		len(c.Offsets.Stores) != len(db.Stores) || len(c.Offsets.ClientMsgs) != len(db.ClientMsgs) || len(c.Offsets.Clients) != len(db.Clients) ||
		len(c.Offsets.Subs) != len(db.Subs) || len(c.Offsets.Retains) != len(db.Retains) {
		t.Fatal("ParseChecked's index does not match its db")
	}
	for i, s := range c.ClientMsgStore {
		if db.Stores[s].StoreID != db.ClientMsgs[i].StoreID || db.ClientMsgs[i].ClientID == "" {
			t.Fatalf("delivery %d resolves to store %d with id %d", i, s, db.Stores[s].StoreID)
		}
	}
	for i, s := range c.RetainStore {
		if db.Stores[s].StoreID != db.Retains[i] {
			t.Fatalf("retain %d resolves to store %d with id %d", i, s, db.Stores[s].StoreID)
		}
	}
	ids := map[string]bool{}
	for _, cl := range db.Clients {
		if cl.ClientID == "" || ids[cl.ClientID] {
			t.Fatalf("client %q is empty or repeated", cl.ClientID)
		}
		ids[cl.ClientID] = true
	}
	for _, m := range db.ClientMsgs {
		if !ids[m.ClientID] {
			t.Fatalf("delivery for %q, which has no session", m.ClientID)
		}
	}
	_ = db.Stats()
	var buf bytes.Buffer
	if err := Write(&buf, db); err != nil {
		t.Fatalf("writing a checked db: %v", err)
	}
}
