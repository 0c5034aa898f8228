package persist

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// normalized is what Read returns for a db written by Write: version 6,
// dbid_size 8, one CFG chunk.
func normalized(db *DB) *DB {
	c := *db
	c.Version, c.DBIDSize, c.CFGChunks, c.UnknownChunks = 6, 8, 1, 0
	return &c
}

// assertDBEqual compares two dbs treating nil and empty slices alike.
func assertDBEqual(t *testing.T, want, got *DB) {
	t.Helper()
	w, g := *want, *got
	for _, d := range []*DB{&w, &g} {
		if len(d.Stores) == 0 {
			d.Stores = nil
		}
		if len(d.Clients) == 0 {
			d.Clients = nil
		}
		if len(d.ClientMsgs) == 0 {
			d.ClientMsgs = nil
		}
		if len(d.Subs) == 0 {
			d.Subs = nil
		}
		if len(d.Retains) == 0 {
			d.Retains = nil
		}
	}
	if !reflect.DeepEqual(w, g) {
		t.Fatalf("db differs\ngot  %+v\nwant %+v", g, w)
	}
}

func TestRoundTrip(t *testing.T) {
	rich := smallDB()
	rich.Stores = append(rich.Stores, MsgStore{
		StoreID: 1 << 40, ExpiryTime: -5, SourceMid: 65535, SourceID: "a/b", SourceUsername: "user",
		Topic: "x/y/z", QoS: 1, Payload: bytes.Repeat([]byte{0, 0xFF}, 300),
		Properties: []byte{0x03, 0x01, 0x01, 0x00}, // varint length 3, payload format indicator
	})
	rich.Clients = append(rich.Clients, Client{ClientID: "v5", SessionExpiryTime: 1700000100, SessionExpiryInterval: 60})
	rich.ClientMsgs = append(rich.ClientMsgs,
		ClientMsg{ClientID: "v5", StoreID: 1 << 40, Mid: 9, QoS: 1, State: StateWaitForPuback, Retain: true, Direction: DirOut, Properties: []byte{0x00}},
		ClientMsg{ClientID: "v5", StoreID: 2, Mid: 10, QoS: 2, State: StateWaitForPubrel, Direction: DirIn},
		ClientMsg{ClientID: "gone", StoreID: 2, State: StateQueued, Direction: DirOut},
	)
	rich.Subs = append(rich.Subs, Sub{ClientID: "v5", Topic: "x/#", QoS: 1, Identifier: 268435455, Options: 0x0C})
	rich.Retains = append(rich.Retains, 1<<40)

	tests := []struct {
		name string
		db   *DB
	}{
		{"empty", &DB{}},
		{"small", smallDB()},
		{"rich", rich},
		{"seed 500", seedDB(500, payload150)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, tt.db); err != nil {
				t.Fatal(err)
			}
			got, err := Read(&buf)
			if err != nil {
				t.Fatal(err)
			}
			assertDBEqual(t, normalized(tt.db), got)
		})
	}
}

// Hand-assembled files of every version, with the db each must decode to.
func v3File() (*fileBuilder, *DB) {
	f := newFile(3)
	f.chunk(ChunkCFG, func() { f.u8(1).u8(8).u64le(120) })
	f.chunk(ChunkMsgStore, func() {
		f.u64le(7).str16("pub").u16(42).u16(0).str16("test").u8(2).u8(0).u32(5).str("hello")
	})
	f.chunk(ChunkClient, func() { f.str16("slowsub").u16(3).u64le(1500000000) })
	f.chunk(ChunkClientMsg, func() {
		f.str16("slowsub").u64le(7).u16(3).u8(2).u8(1).u8(DirOut).u8(StateQueued).u8(1)
	})
	f.chunk(ChunkSub, func() { f.str16("slowsub").str16("test").u8(2) })
	f.chunk(ChunkRetain, func() { f.u64le(7) })
	return f, &DB{
		Version: 3, LastDBID: 120, Shutdown: true, DBIDSize: 8, CFGChunks: 1,
		Stores:     []MsgStore{{StoreID: 7, SourceID: "pub", SourceMid: 42, Topic: "test", QoS: 2, Payload: []byte("hello")}},
		Clients:    []Client{{ClientID: "slowsub", LastMid: 3, DisconnectTime: 1500000000}},
		ClientMsgs: []ClientMsg{{ClientID: "slowsub", StoreID: 7, Mid: 3, QoS: 2, Retain: true, Direction: DirOut, State: StateQueued, Dup: true}},
		Subs:       []Sub{{ClientID: "slowsub", Topic: "test", QoS: 2}},
		Retains:    []uint64{7},
	}
}

func v2File() (*fileBuilder, *DB) {
	f := newFile(2)
	f.chunk(ChunkCFG, func() { f.u8(0).u8(8).u64le(3) })
	f.chunk(ChunkMsgStore, func() {
		f.u64le(3).str16("").u16(0).u16(0).str16("a").u8(0).u8(1).u32(0)
	})
	f.chunk(ChunkClient, func() { f.str16("c").u16(1) }) // no disconnect time in v2
	f.chunk(ChunkSub, func() { f.str16("c").str16("#").u8(1) })
	return f, &DB{
		Version: 2, LastDBID: 3, DBIDSize: 8, CFGChunks: 1,
		Stores:  []MsgStore{{StoreID: 3, Topic: "a", Retain: true}},
		Clients: []Client{{ClientID: "c", LastMid: 1}},
		Subs:    []Sub{{ClientID: "c", Topic: "#", QoS: 1}},
	}
}

func v4File() (*fileBuilder, *DB) {
	f := newFile(4)
	f.chunk(ChunkCFG, func() { f.u8(0).u8(8).u64le(1 << 33) })
	f.chunk(ChunkMsgStore, func() {
		f.u64le(1 << 33).str16("pub").str16("alice").u16(8883).u16(1).u16(0).str16("t/1").u8(1).u8(0).u32(3).str("abc")
	})
	f.chunk(77, func() { f.str("from the future") }) // unknown: skipped by length
	f.chunk(ChunkClientMsg, func() {
		f.str16("s").u64le(1 << 33).u16(5).u8(1).u8(0).u8(DirOut).u8(StateWaitForPuback).u8(0)
	})
	return f, &DB{
		Version: 4, LastDBID: 1 << 33, DBIDSize: 8, CFGChunks: 1, UnknownChunks: 1,
		Stores: []MsgStore{{
			StoreID: 1 << 33, SourceID: "pub", SourceUsername: "alice", SourcePort: 8883,
			SourceMid: 1, Topic: "t/1", QoS: 1, Payload: []byte("abc"),
		}},
		ClientMsgs: []ClientMsg{{ClientID: "s", StoreID: 1 << 33, Mid: 5, QoS: 1, Direction: DirOut, State: StateWaitForPuback}},
	}
}

func v5File() (*fileBuilder, *DB) {
	f := newFile(5)
	f.chunk(ChunkCFG, func() { f.u64le(11).u8(0).u8(8).zero(6) })
	f.chunk(ChunkMsgStore, func() {
		f.u64le(11).u64le(0).u32(2).u16(4).u16(3).u16(0).u16(4).u16(0).u8(2).u8(0)
		f.str("pub").str("test").str("ok").raw([]byte{0x02, 0x01, 0x01})
	})
	f.chunk(ChunkClient, func() { // v5 CLIENT: 16-byte struct, no listener port or username
		f.u64le(0).u32(0xFFFFFFFF).u16(4).u16(7).str("slowsub")
	})
	f.chunk(ChunkClientMsg, func() {
		f.u64le(11).u16(4).u16(7).u8(2).u8(StateWaitForPubrec).u8(0x10).u8(DirOut).str("slowsub")
	})
	f.chunk(ChunkSub, func() { f.u32(0).u16(7).u16(4).u8(2).u8(0).zero(2).str("slowsub").str("test") })
	f.chunk(99, func() { f.zero(5) })
	return f, &DB{
		Version: 5, LastDBID: 11, DBIDSize: 8, CFGChunks: 1, UnknownChunks: 1,
		Stores: []MsgStore{{
			StoreID: 11, SourceMid: 4, SourceID: "pub", Topic: "test", QoS: 2, Payload: []byte("ok"),
			Properties: []byte{0x02, 0x01, 0x01},
		}},
		Clients:    []Client{{ClientID: "slowsub", LastMid: 4, SessionExpiryInterval: 0xFFFFFFFF}},
		ClientMsgs: []ClientMsg{{ClientID: "slowsub", StoreID: 11, Mid: 4, QoS: 2, State: StateWaitForPubrec, Retain: true, Direction: DirOut}},
		Subs:       []Sub{{ClientID: "slowsub", Topic: "test", QoS: 2}},
	}
}

func v6File() (*fileBuilder, *DB) {
	f := newFile(6)
	f.chunk(ChunkCFG, func() { f.u64le(2).u8(1).u8(8).zero(6) })
	f.chunk(ChunkMsgStore, func() {
		f.u64le(2).u64le(1700000000).u32(2).u16(7).u16(3).u16(0).u16(1).u16(1883).u8(2).u8(1)
		f.str("pub").str("t").str("hi")
	})
	f.chunk(ChunkClient, func() {
		f.u64le(0).u32(0xFFFFFFFF).u16(3).u16(3).u16(1883).u16(2).zero(4).str("sub").str("u1")
	})
	f.chunk(ChunkClientMsg, func() {
		f.u64le(2).u16(3).u16(3).u8(2).u8(StateQueued).u8(0x01).u8(DirOut).str("sub")
	})
	f.chunk(ChunkSub, func() { f.u32(0).u16(3).u16(1).u8(2).u8(0).zero(2).str("sub").str("t") })
	f.chunk(ChunkRetain, func() { f.u64le(2) })
	return f, normalized(smallDB())
}

var versionFiles = []struct {
	name  string
	build func() (*fileBuilder, *DB)
}{
	{"v2", v2File}, {"v3", v3File}, {"v4", v4File}, {"v5", v5File}, {"v6", v6File},
}

func TestReadVersions(t *testing.T) {
	for _, tt := range versionFiles {
		t.Run(tt.name, func(t *testing.T) {
			f, want := tt.build()
			got, err := Parse(f.b)
			if err != nil {
				t.Fatal(err)
			}
			assertDBEqual(t, want, got)
		})
	}
}

// TestV6BuilderMatchesWrite ties the hand-assembled v6 file to Write.
func TestV6BuilderMatchesWrite(t *testing.T) {
	f, _ := v6File()
	var buf bytes.Buffer
	if err := Write(&buf, smallDB()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), f.b) {
		t.Fatalf("Write\n%x\nhand-assembled\n%x", buf.Bytes(), f.b)
	}
}

// TestV3Sizes checks the builder's v3 layout against the measured 1.4.15
// sizes (215 bytes per message, 86 fixed), and that Read copes with them.
func TestV3Sizes(t *testing.T) {
	for _, n := range []int{0, 100, 120} {
		f := newFile(3)
		f.chunk(ChunkCFG, func() { f.u8(1).u8(8).u64le(uint64(n)) })
		for i := n; i > 0; i-- {
			f.chunk(ChunkMsgStore, func() {
				f.u64le(uint64(i)).str16("pub").u16(uint16(i)).u16(0).str16("test").u8(2).u8(0).u32(150).raw(payload150(i))
			})
		}
		f.chunk(ChunkClient, func() { f.str16("slowsub").u16(uint16(n)).u64le(0) })
		for i := 1; i <= n; i++ {
			f.chunk(ChunkClientMsg, func() {
				f.str16("slowsub").u64le(uint64(i)).u16(uint16(i)).u8(2).u8(0).u8(DirOut).u8(StateQueued).u8(0)
			})
		}
		f.chunk(ChunkSub, func() { f.str16("slowsub").str16("test").u8(2) })
		if want := 86 + 215*n; len(f.b) != want {
			t.Fatalf("%d messages: %d bytes, doc says %d", n, len(f.b), want)
		}
		db, err := Parse(f.b)
		if err != nil {
			t.Fatal(err)
		}
		if st := db.Stats(); st.Queued != int64(n) || st.Chunks.MsgStore != n || st.Unreferenced != 0 || st.Dangling != 0 {
			t.Fatalf("%d messages: stats %+v", n, st)
		}
	}
}

func TestReadErrors(t *testing.T) {
	v6 := func(build func(f *fileBuilder)) []byte {
		f := newFile(6)
		build(f)
		return f.b
	}
	v3 := func(build func(f *fileBuilder)) []byte {
		f := newFile(3)
		build(f)
		return f.b
	}
	good, _ := v6File()
	tests := []struct {
		name    string
		data    []byte
		wantOff int64
		wantMsg string
	}{
		{"empty", nil, 0, "truncated header"},
		{"not a db", []byte("hello world, this is text"), 0, "bad magic"},
		{"short non-magic", []byte{1, 2}, 0, "bad magic"},
		{"magic only", good.b[:15], 0, "truncated header"},
		{"version 7", append(append([]byte{}, good.b[:19]...), 0, 0, 0, 7), 19, "unsupported version 7"},
		{"version 1", append(append([]byte{}, good.b[:19]...), 0, 0, 0, 1), 19, "unsupported version 1"},
		{"truncated chunk header", v6(func(f *fileBuilder) { f.u32(1).u8(0) }), 23, "truncated chunk header"},
		{"chunk longer than file", v6(func(f *fileBuilder) { f.u32(ChunkMsgStore).u32(0xFFFFFFFF).zero(40) }), 23, "truncated MSG_STORE chunk (length 4294967295, 40 bytes left)"},
		{"CFG too short", v6(func(f *fileBuilder) { f.chunk(ChunkCFG, func() { f.zero(8) }) }), 23, "CFG chunk too short"},
		{"dbid_size 4", v6(func(f *fileBuilder) { f.chunk(ChunkCFG, func() { f.u64le(1).u8(0).u8(4).zero(6) }) }), 23 + 8 + 9, "dbid_size 4"},
		{"payloadlen beyond chunk", v6(func(f *fileBuilder) {
			f.chunk(ChunkCFG, func() { f.u64le(1).u8(0).u8(8).zero(6) })
			f.chunk(ChunkMsgStore, func() {
				f.u64le(1).u64le(0).u32(0xFFFFFFFF).u16(0).u16(0).u16(0).u16(1).u16(0).u8(0).u8(0).str("t")
			})
		}), 47, "MSG_STORE chunk fields need 4294967328 bytes but its length is 33"},
		{"client id beyond chunk", v6(func(f *fileBuilder) {
			f.chunk(ChunkClientMsg, func() { f.u64le(1).u16(1).u16(500).u8(0).u8(0).u8(0).u8(1).str("abc") })
		}), 23, "CLIENT_MSG chunk fields need 516 bytes but its length is 19"},
		{"sub strings beyond chunk", v6(func(f *fileBuilder) {
			f.chunk(ChunkSub, func() { f.u32(0).u16(3).u16(9).u8(0).u8(0).zero(2).str("abc") })
		}), 23, "SUB chunk fields need 24 bytes"},
		{"client too short", v6(func(f *fileBuilder) { f.chunk(ChunkClient, func() { f.zero(16) }) }), 23, "CLIENT chunk too short (length 16, fixed part is 24 bytes)"},
		{"retain too short", v6(func(f *fileBuilder) { f.chunk(ChunkRetain, func() { f.zero(4) }) }), 23, "RETAIN chunk too short"},
		{"unknown chunk truncated", v6(func(f *fileBuilder) { f.u32(42).u32(10).zero(3) }), 23, "truncated unknown type 42 chunk"},
		{"v3 str16 beyond file", v3(func(f *fileBuilder) { f.u16(ChunkSub).u32(0).u16(0xFFFF).str("abc") }), 23, "truncated SUB chunk (client_id at offset 31 needs 65535 bytes, 3 left)"},
		{"v3 payload beyond file", v3(func(f *fileBuilder) {
			f.u16(ChunkMsgStore).u32(0).u64le(1).str16("").u16(0).u16(0).str16("t").u8(0).u8(0).u32(0xFFFFFFF0).str("xy")
		}), 23, "truncated MSG_STORE chunk (payload at offset"},
		{"v3 dbid_size 4", v3(func(f *fileBuilder) { f.chunk(ChunkCFG, func() { f.u8(0).u8(4).u64le(0) }) }), 30, "dbid_size 4"},
		{"v3 unknown chunk beyond file", v3(func(f *fileBuilder) { f.u16(9).u32(100).zero(10) }), 23, "truncated unknown type 9 chunk (length 100, 10 bytes left)"},
		{"v3 truncated chunk header", v3(func(f *fileBuilder) { f.u16(1).u8(0) }), 23, "truncated chunk header (3 of 6 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Parse(tt.data)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got db %+v, error %v; want a *FormatError", db, err)
			}
			if fe.Offset != tt.wantOff || !strings.Contains(fe.Msg, tt.wantMsg) {
				t.Fatalf("got %q at offset %d, want %q at offset %d", fe.Msg, fe.Offset, tt.wantMsg, tt.wantOff)
			}
		})
	}
}

// TestTruncatedEverywhere cuts a valid file of each version at every byte:
// a cut on a chunk boundary is a valid shorter file, any other cut must be a
// *FormatError (and never a panic).
func TestTruncatedEverywhere(t *testing.T) {
	for _, tt := range versionFiles {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := tt.build()
			valid := map[int]int{} // boundary -> chunks before it
			for i, b := range f.bounds {
				valid[b] = i
			}
			for n := 0; n < len(f.b); n++ {
				db, err := Parse(f.b[:n])
				if chunks, ok := valid[n]; ok {
					if err != nil {
						t.Fatalf("cut at chunk boundary %d: %v", n, err)
					}
					st := db.Stats()
					c := st.Chunks
					if got := c.CFG + c.MsgStore + c.ClientMsg + c.Retain + c.Sub + c.Client + c.Unknown; got != chunks {
						t.Fatalf("cut at %d: %d chunks, want %d", n, got, chunks)
					}
					continue
				}
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("cut at %d: error %v, want *FormatError", n, err)
				}
				if fe.Offset < 0 || fe.Offset > int64(n) {
					t.Fatalf("cut at %d: offset %d outside the input", n, fe.Offset)
				}
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	if err := WriteFile(good, smallDB()); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.db")
	f, _ := v6File()
	if err := os.WriteFile(corrupt, f.b[:60], 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		wantErr string
	}{
		{good, ""},
		{corrupt, "reading " + corrupt + ": truncated MSG_STORE chunk (length 38, 5 bytes left) at offset 47"},
		{filepath.Join(dir, "missing.db"), "reading " + filepath.Join(dir, "missing.db")},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			before, _ := os.ReadFile(tt.path)
			db, err := ReadFile(tt.path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				assertDBEqual(t, normalized(smallDB()), db)
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want prefix %q", err, tt.wantErr)
			}
			after, _ := os.ReadFile(tt.path)
			if !bytes.Equal(before, after) {
				t.Fatal("reading changed the file")
			}
		})
	}
}

// TestParseAliasesSafely: payloads alias the input but with capped
// capacity, so appending to one never overwrites the next chunk.
func TestParseAliasesSafely(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, seedDB(2, payload150)); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	db, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	before := append([]byte(nil), data...)
	_ = append(db.Stores[0].Payload, "overwrite?"...)
	if !bytes.Equal(before, data) {
		t.Fatal("append to a payload changed the input")
	}
}

func BenchmarkRead100k(b *testing.B) {
	var buf bytes.Buffer
	if err := Write(&buf, seedDB(100000, payload150)); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHostileInputAllocations: allocation stays within a small multiple of
// the input, whatever the lengths in it claim.
func TestHostileInputAllocations(t *testing.T) {
	emptyChunks := func(typ uint32, n int) []byte {
		f := newFile(6)
		for i := 0; i < n; i++ {
			f.u32(typ).u32(0)
		}
		return f.b
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"100k empty MSG_STORE headers", emptyChunks(ChunkMsgStore, 100000)},
		{"100k empty CLIENT_MSG headers", emptyChunks(ChunkClientMsg, 100000)},
		{"4 GB chunk length", newFile(6).u32(ChunkMsgStore).u32(0xFFFFFFFF).zero(1000).b},
		{"4 GB payloadlen v3", newFile(3).u16(ChunkMsgStore).u32(0).u64le(1).str16("").u16(0).u16(0).str16("t").u8(0).u8(0).u32(0xFFFFFFFF).zero(1000).b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Parse(tt.data)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("hostile input decoded")
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(4*len(tt.data)+1<<16) {
				t.Fatalf("allocated %d bytes for %d bytes of input", alloc, len(tt.data))
			}
		})
	}
}
