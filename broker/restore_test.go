package broker_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker"
	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/broker/persist"
	"github.com/mqbench/mqbench/internal/testutil"
)

// syncBuffer is a log writer tests can read while the broker writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// heldDB is an offline persistent session "slowsub" (on "test", QoS 1)
// holding three queued messages m1, m2, m3.
func heldDB() *persist.DB {
	db := &persist.DB{
		LastDBID: 3,
		Clients:  []persist.Client{{ClientID: "slowsub", SessionExpiryInterval: 0xFFFFFFFF, LastMid: 3}},
		Subs:     []persist.Sub{{ClientID: "slowsub", Topic: "test", QoS: 1}},
	}
	for i := 3; i >= 1; i-- {
		db.Stores = append(db.Stores, persist.MsgStore{StoreID: uint64(i), SourceID: "pub", SourceMid: uint16(i),
			Topic: "test", QoS: 1, Payload: []byte(fmt.Sprintf("m%d", i))})
	}
	for i := 1; i <= 3; i++ {
		db.ClientMsgs = append(db.ClientMsgs, persist.ClientMsg{ClientID: "slowsub", StoreID: uint64(i), Mid: uint16(i),
			QoS: 1, State: persist.StateQueued, Direction: persist.DirOut})
	}
	return db
}

// encodeDB is the format 6 file of heldDB after edit.
func encodeDB(t *testing.T, edit func(db *persist.DB)) []byte {
	t.Helper()
	db := heldDB()
	edit(db)
	var buf bytes.Buffer
	if err := persist.Write(&buf, db); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// damagedDB is the file of heldDB damaged two ways: one flipped bit makes the
// store id of m2's delivery point at nothing, and a chunk of unknown type 42
// is appended. It returns the file and the offsets of the two damaged chunks.
func damagedDB(t *testing.T) (data []byte, danglingAt, unknownAt int64) {
	t.Helper()
	data = encodeDB(t, func(*persist.DB) {})
	clean, err := persist.ParseChecked(data)
	if err != nil || len(clean.Problems) != 0 {
		t.Fatalf("the undamaged file: %v %v", err, clean.Problems)
	}
	danglingAt = clean.Offsets.ClientMsgs[1]
	data[danglingAt+persist.ChunkHeaderSize+7] ^= 0x80 // top bit of the little-endian store id
	unknownAt = int64(len(data))
	data = append(data, 0, 0, 0, 42, 0, 0, 0, 4, 'j', 'u', 'n', 'k')
	return data, danglingAt, unknownAt
}

// writeDB puts data where cfg's broker looks for its persistence file.
func writeDB(t *testing.T, cfg *conf.Config, data []byte) string {
	t.Helper()
	path := dbPath(cfg)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// drainPayloads resumes the session id at addr and returns the payloads it is
// given, sorted.
func drainPayloads(t *testing.T, addr, id string, n int) []string {
	t.Helper()
	c, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: id})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs, err := c.Collect(n, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Payload))
	}
	sort.Strings(got)
	// Nothing more than n may come.
	if more, err := c.Collect(1, 300*time.Millisecond); err == nil {
		t.Fatalf("an extra message after %v: %q", got, more[0].Payload)
	}
	return got
}

// TestDamagedDBLoadedAndKept: a file Mosquitto would load while dropping a
// dangling delivery and skipping an unknown chunk is loaded by the bundled
// broker too, each dropped item is logged as a warning with its offset, and
// the original bytes are kept as <file>.damaged-<time> before any save can
// replace them.
func TestDamagedDBLoadedAndKept(t *testing.T) {
	data, danglingAt, unknownAt := damagedDB(t)
	clean, err := persist.ParseChecked(encodeDB(t, func(*persist.DB) {}))
	if err != nil {
		t.Fatal(err)
	}
	storeAt := clean.Offsets.Stores[1] // stores are newest first: m3, m2, m1
	cfg := quietConfig(t)
	path := writeDB(t, cfg, data)
	var log syncBuffer
	b, err := broker.New(broker.Options{Config: cfg, Version: "test", Log: &log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(b.Abort)

	backups, _ := filepath.Glob(path + persist.DamagedSuffix + "*")
	if len(backups) != 1 {
		t.Fatalf("backups %v, want one", backups)
	}
	if kept, err := os.ReadFile(backups[0]); err != nil || !bytes.Equal(kept, data) {
		t.Fatalf("backup differs from the damaged file (%v)", err)
	}
	if fi, err := os.Stat(backups[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup mode %v (%v), want 0600", fi.Mode(), err)
	}
	var warnings []string
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		if strings.Contains(l, "Warning: ") {
			warnings = append(warnings, l)
		}
	}
	want := []string{
		fmt.Sprintf("offset %d, CLIENT_MSG chunk: delivery of store id %d to client \"slowsub\" (mid 2, outgoing) refers to no earlier MSG_STORE; dropped",
			danglingAt, uint64(2)|1<<63),
		fmt.Sprintf("offset %d, unknown type 42 chunk: unknown chunk (4 bytes); skipped", unknownAt),
		// m2 is lost with its delivery: named too.
		fmt.Sprintf("offset %d, MSG_STORE chunk: store id 2 on \"test\" (2 payload bytes) is referred to by nothing that was loaded; not restored", storeAt),
		"is damaged: 3 problems, 3 entries dropped; loaded the rest, the original is kept as " + backups[0],
	}
	if len(warnings) != len(want) {
		t.Fatalf("warnings:\n%s\nwant %d", strings.Join(warnings, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.Contains(warnings[i], path) || !strings.Contains(warnings[i], w) {
			t.Errorf("warning %q, want it to name %s and say %q", warnings[i], path, w)
		}
	}

	if n := b.Notices(); len(n) != 1 || !strings.Contains(n[0], "is damaged: 3 problems") || !strings.Contains(n[0], backups[0]) {
		t.Errorf("notices %q, want the damage summary", n)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Held != 2 {
		t.Fatalf("held %d after the load, want 2", st.Held)
	}
	if err := b.Save(); err != nil {
		t.Fatal(err)
	}
	if saved, _ := os.ReadFile(path); bytes.Equal(saved, data) {
		t.Fatal("the save did not replace the damaged file")
	}
	if kept, _ := os.ReadFile(backups[0]); !bytes.Equal(kept, data) {
		t.Fatal("the save changed the backup")
	}
	if got := drainPayloads(t, b.Addr(), "slowsub", 2); strings.Join(got, ",") != "m1,m3" {
		t.Fatalf("delivered %v, want m1, m3", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// The file the broker saved is sound: no warning, no second backup.
	log2 := &syncBuffer{}
	b2, err := broker.New(broker.Options{Config: cfg, Version: "test", Log: log2})
	if err != nil {
		t.Fatal(err)
	}
	b2.Abort()
	if strings.Contains(log2.String(), "Warning") {
		t.Errorf("reloading the saved file warns:\n%s", log2)
	}
	if again, _ := filepath.Glob(path + persist.DamagedSuffix + "*"); len(again) != 1 {
		t.Errorf("backups after a clean reload: %v", again)
	}
}

// TestDamagedDBMosquittoAgrees gives the same damaged file to the real
// Mosquitto 2.0.11: it loads it and delivers the same two messages to the
// resumed session, so the bundled broker drops what Mosquitto drops.
func TestDamagedDBMosquittoAgrees(t *testing.T) {
	testutil.RequireMosquitto(t)
	data, _, _ := damagedDB(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mosquitto.db"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	m := testutil.StartMosquitto(t, testutil.MosquittoOptions{Dir: dir, Persistence: true, LogDest: "stderr"})
	if got := drainPayloads(t, m.Addr, "slowsub", 2); strings.Join(got, ",") != "m1,m3" {
		t.Fatalf("mosquitto delivered %v, want m1, m3", got)
	}
	if _, err := m.WaitStderrLine(`Unsupported chunk "42"`, 5*time.Second); err != nil {
		t.Errorf("mosquitto did not mention the unknown chunk: %v\n%s", err, m.Stderr())
	}
}

// TestRefusedDBBothBrokers: a file cut inside a chunk, one whose CLIENT_MSG
// length is shorter than its fields, one with malformed MQTT 5 properties and
// one with a nameless subscription are refused by the bundled broker with an
// error naming the file and the chunk's offset, and by the real Mosquitto
// (which aborts on the last); neither changes the file.
func TestRefusedDBBothBrokers(t *testing.T) {
	good := encodeDB(t, func(*persist.DB) {})
	clean, err := persist.ParseChecked(good)
	if err != nil {
		t.Fatal(err)
	}
	storeAt, cmAt := clean.Offsets.Stores[1], clean.Offsets.ClientMsgs[0]
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"cut inside a MSG_STORE", bytes.Clone(good[:storeAt+20]),
			fmt.Sprintf("truncated MSG_STORE chunk (length 41, 12 bytes left) at offset %d", storeAt)},
		{"CLIENT_MSG length too short", func() []byte {
			d := bytes.Clone(good)
			d[cmAt+7] = 10 // 16 fixed bytes plus the client id do not fit
			return d
		}(), fmt.Sprintf("CLIENT_MSG chunk too short (length 10, fixed part is 16 bytes) at offset %d", cmAt)},
		// Today's gaps: both loaded before, Mosquitto 2.0.11 refuses them.
		{"malformed MQTT 5 properties", encodeDB(t, func(db *persist.DB) { db.Stores[0].Properties = []byte{0x05, 0xff} }),
			fmt.Sprintf("MSG_STORE chunk: invalid properties: property identifier at byte 1: runs past the end of the properties at offset %d", clean.Offsets.Stores[0])},
		{"SUB with an empty client id", encodeDB(t, func(db *persist.DB) { db.Subs = append(db.Subs, persist.Sub{Topic: "test"}) }),
			"SUB chunk with an empty client id (topic \"test\") at offset"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quietConfig(t)
			path := writeDB(t, cfg, tc.data)
			_, err := broker.New(broker.Options{Config: cfg, Version: "test"})
			if err == nil || !strings.Contains(err.Error(), "reading "+path+": "+tc.want) {
				t.Fatalf("error %v, want it to say reading %s: %s", err, path, tc.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tc.data) {
				t.Fatal("the bundled broker changed the refused file")
			}
			if backups, _ := filepath.Glob(path + persist.DamagedSuffix + "*"); len(backups) != 0 {
				t.Fatalf("a refused file was copied: %v", backups)
			}

			bin := testutil.RequireMosquittoBroker(t)
			dir := t.TempDir()
			mpath := filepath.Join(dir, "mosquitto.db")
			if err := os.WriteFile(mpath, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			conf := testutil.WriteFile(t, dir, "mosquitto.conf", testutil.MosquittoConf(testutil.FreePort(t),
				testutil.MosquittoOptions{Dir: dir, Persistence: true, LogDest: "stderr"}))
			_, stderr, err := testutil.Run(10*time.Second, nil, bin, "-c", conf)
			if err == nil || strings.Contains(err.Error(), "timed out") ||
				!strings.Contains(stderr, "Couldn't open database") && !strings.Contains(stderr, "Assertion") {
				t.Fatalf("mosquitto did not refuse the file: %v\n%s", err, stderr)
			}
			if after, _ := os.ReadFile(mpath); !bytes.Equal(after, tc.data) {
				t.Fatal("mosquitto changed the refused file")
			}
		})
	}
}

// TestSessionWithoutClientChunk: Mosquitto creates a session for a client
// that has a delivery and a subscription but no CLIENT chunk, with expiry
// interval 0, and never resumes such a session: the client connects to find
// no session and gets nothing. The bundled broker ends the same way, but drops
// the session at load time, announcing each dropped item and keeping a copy.
func TestSessionWithoutClientChunk(t *testing.T) {
	data := encodeDB(t, func(db *persist.DB) {
		db.ClientMsgs = append(db.ClientMsgs, persist.ClientMsg{ClientID: "ghost", StoreID: 2, Mid: 7,
			QoS: 1, State: persist.StateQueued, Direction: persist.DirOut})
		db.Subs = append(db.Subs, persist.Sub{ClientID: "ghost", Topic: "test", QoS: 1})
	})
	// resume connects as ghost and wants no session and no message.
	resume := func(addr string) {
		t.Helper()
		c, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: "ghost"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.SessionPresent() {
			t.Error("session present for ghost")
		}
		if msgs, err := c.Collect(1, 500*time.Millisecond); err == nil {
			t.Errorf("ghost got %q", msgs[0].Payload)
		}
	}

	cfg := quietConfig(t)
	path := writeDB(t, cfg, data)
	var log syncBuffer
	b, err := broker.New(broker.Options{Config: cfg, Version: "test", Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Abort)
	for _, w := range []string{
		`client "ghost" has no CLIENT chunk; a session (expiry interval 0) is created for it`,
		`session of client "ghost" has expiry interval 0`,
		`delivery of store id 2 to client "ghost" (mid 7) dropped with its session`,
		`subscription of client "ghost" to "test" dropped with its session`,
	} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, log.String())
		}
	}
	if backups, _ := filepath.Glob(path + persist.DamagedSuffix + "*"); len(backups) != 1 {
		t.Errorf("backups %v, want one", backups)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	resume(b.Addr())
	if got := drainPayloads(t, b.Addr(), "slowsub", 3); strings.Join(got, ",") != "m1,m2,m3" {
		t.Errorf("slowsub got %v from the bundled broker", got)
	}

	testutil.RequireMosquitto(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mosquitto.db"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	m := testutil.StartMosquitto(t, testutil.MosquittoOptions{Dir: dir, Persistence: true, LogDest: "stderr"})
	resume(m.Addr)
	if got := drainPayloads(t, m.Addr, "slowsub", 3); strings.Join(got, ",") != "m1,m2,m3" {
		t.Errorf("slowsub got %v from mosquitto", got)
	}
}

// TestBundledOnlyDrops: what Mosquitto keeps but the bundled broker cannot
// (a second in-flight delivery with the same mid, a QoS 0 delivery in
// flight, an invalid filter) is dropped with one warning each,
// naming its offset, and the file is kept.
func TestBundledOnlyDrops(t *testing.T) {
	data := encodeDB(t, func(db *persist.DB) {
		db.ClientMsgs[0].State = persist.StateWaitForPuback
		db.ClientMsgs[1].State, db.ClientMsgs[1].Mid = persist.StateWaitForPuback, db.ClientMsgs[0].Mid
		db.ClientMsgs[2].State, db.ClientMsgs[2].QoS = persist.StatePublishQoS0, 0
		db.Subs = append(db.Subs, persist.Sub{ClientID: "slowsub", Topic: "a/#/b", QoS: 1})
	})
	c, err := persist.ParseChecked(data)
	if err != nil || len(c.Problems) != 0 {
		t.Fatalf("%v %v", err, c.Problems)
	}
	cfg := quietConfig(t)
	path := writeDB(t, cfg, data)
	var log syncBuffer
	b, err := broker.New(broker.Options{Config: cfg, Version: "test", Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Abort()
	for _, w := range []string{
		fmt.Sprintf("offset %d, CLIENT_MSG chunk: delivery in flight of store id 2 to client \"slowsub\" with mid 1 dropped", c.Offsets.ClientMsgs[1]),
		fmt.Sprintf("offset %d, CLIENT_MSG chunk: QoS 0 delivery of store id 3 to client \"slowsub\" in flight (state 1) dropped", c.Offsets.ClientMsgs[2]),
		fmt.Sprintf("offset %d, SUB chunk: subscription of client \"slowsub\" to \"a/#/b\" (QoS 1) dropped", c.Offsets.Subs[1]),
		fmt.Sprintf("offset %d, MSG_STORE chunk: store id 2 on \"test\" (2 payload bytes) is referred to by nothing", c.Offsets.Stores[1]),
		"is damaged: 5 problems, 5 entries dropped", // store 3 too: its only delivery was the QoS 0 one
	} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, log.String())
		}
	}
	if backups, _ := filepath.Glob(path + persist.DamagedSuffix + "*"); len(backups) != 1 {
		t.Errorf("backups %v, want one", backups)
	}
}
