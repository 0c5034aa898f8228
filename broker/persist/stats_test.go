package persist

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestStats(t *testing.T) {
	store := func(id uint64, topic, payload, src string, mid uint16) MsgStore {
		return MsgStore{StoreID: id, Topic: topic, Payload: []byte(payload), SourceID: src, SourceMid: mid}
	}
	out := func(client string, id uint64, state uint8) ClientMsg {
		return ClientMsg{ClientID: client, StoreID: id, State: state, Direction: DirOut}
	}
	in := func(client string, id uint64, state uint8) ClientMsg {
		return ClientMsg{ClientID: client, StoreID: id, State: state, Direction: DirIn}
	}
	tests := []struct {
		name string
		db   *DB
		want Stats
	}{
		{
			name: "empty db built in memory counts the CFG Write emits",
			db:   &DB{},
			want: Stats{Chunks: ChunkCounts{CFG: 1}},
		},
		{
			name: "read file without CFG",
			db:   &DB{Version: 6},
			want: Stats{Version: 6},
		},
		{
			name: "queued, inflight, incoming per client",
			db: &DB{
				Version: 6, CFGChunks: 1, LastDBID: 9,
				Stores:  []MsgStore{store(3, "t", "ccc", "p", 3), store(2, "t", "bb", "p", 2), store(1, "t", "a", "p", 1)},
				Clients: []Client{{ClientID: "s1"}, {ClientID: "s2"}},
				ClientMsgs: []ClientMsg{
					out("s1", 1, StateWaitForPubrec), out("s1", 2, StateQueued), out("s1", 3, StateQueued),
					out("s2", 3, StateWaitForPubcomp), in("s2", 1, StateWaitForPubrel),
					out("nosession", 2, StateQueued),
				},
				Subs: []Sub{{ClientID: "s1"}, {ClientID: "s1"}, {ClientID: "s3"}},
			},
			want: Stats{
				Version: 6, LastDBID: 9,
				Chunks: ChunkCounts{CFG: 1, MsgStore: 3, ClientMsg: 6, Sub: 3, Client: 2},
				Clients: []ClientStats{
					{ClientID: "s1", HasRecord: true, Subs: 2, OutQueued: 2, OutInflight: 1},
					{ClientID: "s2", HasRecord: true, OutInflight: 1, InInflight: 1},
					{ClientID: "nosession", OutQueued: 1},
					{ClientID: "s3", Subs: 1},
				},
				Held: 5, Queued: 3, Inflight: 2, Incoming: 1,
				PayloadBytes: 6,
			},
		},
		{
			name: "duplicates, unreferenced, dangling",
			db: &DB{
				Version: 3, CFGChunks: 2, UnknownChunks: 1,
				Stores: []MsgStore{
					store(1, "t", "x", "p", 1),
					store(1, "t", "other", "p", 5), // store id defined twice
					store(2, "t", "x", "p", 1),     // same content as 1: stored twice
					store(3, "t", "x", "p", 2),     // different source mid: not a duplicate
					store(4, "u", "x", "p", 1),     // different topic
					store(5, "t", "x", "q", 1),     // different source id
					store(6, "t", "x", "p", 1),     // third copy
				},
				ClientMsgs: []ClientMsg{out("c", 1, StateQueued), out("c", 99, StateQueued)},
				Retains:    []uint64{3, 100},
			},
			want: Stats{
				Version: 3,
				Chunks:  ChunkCounts{CFG: 2, MsgStore: 7, ClientMsg: 2, Retain: 2, Unknown: 1},
				Clients: []ClientStats{{ClientID: "c", OutQueued: 2}},
				Held:    2, Queued: 2,
				PayloadBytes: 1 + 5 + 5,
				Unreferenced: 4, // 2, 4, 5, 6
				Duplicates:   3, DuplicateIDs: 1, DuplicateContent: 2,
				Dangling: 2, // 99, 100
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.db.Stats()
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("stats\ngot  %+v\nwant %+v", got, tt.want)
			}
			held, queued, inflight := Held(tt.db)
			if held != tt.want.Held || queued != tt.want.Queued || inflight != tt.want.Inflight {
				t.Fatalf("Held = %d, %d, %d; want %d, %d, %d", held, queued, inflight, tt.want.Held, tt.want.Queued, tt.want.Inflight)
			}
		})
	}
}

func TestStatsJSONNames(t *testing.T) {
	st := seedDB(2, payload150).Stats()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"version":0`, `"chunks":{"cfg":1,"msg_store":2,"client_msg":2,"retain":0,"sub":1,"client":1,`,
		`"payload_bytes":300`, `"unreferenced":0`, `"duplicates":0`, `"held":2`, `"queued":2`, `"inflight":0`,
		`"clients":[{"client_id":"slowsub","has_record":true,"subs":1,"out_queued":2,`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
}

func BenchmarkStats100k(b *testing.B) {
	db := seedDB(100000, payload150)
	b.ReportAllocs()
	for b.Loop() {
		_ = db.Stats()
	}
}

func BenchmarkHeld100k(b *testing.B) {
	db := seedDB(100000, payload150)
	for b.Loop() {
		Held(db)
	}
}

func TestMessageBytes(t *testing.T) {
	tests := []struct {
		name string
		db   *DB
		want int64 // the doc's 228 bytes per held message for the seed setup
	}{
		{"empty", &DB{}, 0},
		{"seed 0 held", seedDB(0, payload150), 0},
		{"seed 1000 held", seedDB(1000, payload150), 228 * 1000},
		{"seed 10000 held", seedDB(10000, payload150), 228 * 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MessageBytes(tt.db); got != tt.want {
				t.Fatalf("MessageBytes = %d, want %d", got, tt.want)
			}
		})
	}
}
