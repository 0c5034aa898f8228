package broker_test

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/broker"
	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/broker/persist"
	"github.com/mqbench/mqbench/internal/testutil"
)

// countStates tallies a saved file's CLIENT_MSG records by state.
func countStates(db *persist.DB) map[uint8]int {
	m := map[uint8]int{}
	for _, cm := range db.ClientMsgs {
		m[cm.State]++
	}
	return m
}

// TestQueueLimits reproduces Mosquitto 2.0.11's measured numbers: 10,000 QoS 2
// messages to one subscriber with default limits.
func TestQueueLimits(t *testing.T) {
	cases := []struct {
		name            string
		connected       bool
		clean           bool
		maxQueued       int
		wantHeld        int64
		wantInflight    int64
		wantDropped     int64
		wantFileMsgs    int // CLIENT_MSG records in the saved file
		wantFileStores  int
		wantFileQueued  int
		wantFilePubrecs int
	}{
		{name: "offline persistent", clean: false, maxQueued: 1000, wantHeld: 1000, wantDropped: 9000,
			wantFileMsgs: 1000, wantFileStores: 1000, wantFileQueued: 1000},
		{name: "connected non-acking persistent", connected: true, clean: false, maxQueued: 1000, wantHeld: 1020, wantInflight: 20, wantDropped: 8980,
			wantFileMsgs: 1020, wantFileStores: 1020, wantFileQueued: 1000, wantFilePubrecs: 20},
		// The 2.0.11 gotcha: a clean-session client's deliveries are not saved,
		// but the messages they reference still are (orphan MSG_STOREs).
		{name: "connected non-acking clean", connected: true, clean: true, maxQueued: 1000, wantHeld: 1020, wantInflight: 20, wantDropped: 8980,
			wantFileMsgs: 0, wantFileStores: 1020},
		{name: "offline unlimited", clean: false, maxQueued: 0, wantHeld: 10000, wantDropped: 0,
			wantFileMsgs: 10000, wantFileStores: 10000, wantFileQueued: 10000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quietConfig(t)
			cfg.MaxQueuedMessages = tc.maxQueued
			b := startBroker(t, cfg)
			sub := connected(t, b.Addr(), "slowsub", tc.clean)
			sub.subscribe(1, "test", 2)
			if !tc.connected {
				sub.send(packets.NewControlPacket(packets.Disconnect))
				sub.expectClosed()
				testutil.WaitFor(t, "subscriber offline", func() bool { return b.Stats().ClientsConnected == 0 })
			}
			pub := connected(t, b.Addr(), "pub", true)
			pub.publishMany("test", 10000, 20, payload150) // Mosquitto's receive quota (max_inflight_messages 20)
			st := b.Stats()
			if st.Held != tc.wantHeld || st.Inflight != tc.wantInflight || st.Dropped != tc.wantDropped {
				t.Errorf("held %d inflight %d dropped %d, want %d %d %d", st.Held, st.Inflight, st.Dropped, tc.wantHeld, tc.wantInflight, tc.wantDropped)
			}
			if st.Queued != tc.wantHeld-tc.wantInflight {
				t.Errorf("queued %d, want %d", st.Queued, tc.wantHeld-tc.wantInflight)
			}
			if st.StoreCount != tc.wantHeld || st.StoreBytes != 150*tc.wantHeld {
				t.Errorf("store %d messages %d bytes, want %d and %d", st.StoreCount, st.StoreBytes, tc.wantHeld, 150*tc.wantHeld)
			}
			if err := b.Save(); err != nil {
				t.Fatal(err)
			}
			db, err := persist.ReadFile(dbPath(cfg))
			if err != nil {
				t.Fatal(err)
			}
			states := countStates(db)
			if len(db.ClientMsgs) != tc.wantFileMsgs || len(db.Stores) != tc.wantFileStores ||
				states[persist.StateQueued] != tc.wantFileQueued || states[persist.StateWaitForPubrec] != tc.wantFilePubrecs {
				t.Errorf("file: %d client msgs %v, %d stores; want %d (%d queued, %d wait-for-pubrec), %d stores",
					len(db.ClientMsgs), states, len(db.Stores), tc.wantFileMsgs, tc.wantFileQueued, tc.wantFilePubrecs, tc.wantFileStores)
			}
		})
	}
}

// TestFileSizeMatchesMosquitto checks the measured 2.0.11 file size: 10,000
// held 150-byte QoS 2 messages for one offline persistent subscriber.
func TestFileSizeMatchesMosquitto(t *testing.T) {
	cases := []struct {
		n    int
		want int64
	}{
		{n: 1000, want: 228117},
		{n: 10000, want: 2280117},
	}
	for _, tc := range cases {
		cfg := testConfig(t)
		cfg.MaxQueuedMessages = 0
		b := startBroker(t, cfg)
		offlineSubscriber(t, b.Addr(), "slowsub", "test", 2)
		pub := connected(t, b.Addr(), "pub", true)
		pub.publishMany("test", tc.n, 20, payload150)
		if err := b.Save(); err != nil {
			t.Fatal(err)
		}
		if got := fileSize(t, dbPath(cfg)); got != tc.want {
			t.Errorf("%d messages: file %d bytes, want %d", tc.n, got, tc.want)
		}
		db, err := persist.ReadFile(dbPath(cfg))
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(db.Stores); i++ {
			if db.Stores[i-1].StoreID <= db.Stores[i].StoreID {
				t.Fatalf("stores not newest first at %d: %d then %d", i, db.Stores[i-1].StoreID, db.Stores[i].StoreID)
			}
		}
		if len(db.Clients) != 1 || db.Clients[0].SessionExpiryInterval != 0xFFFFFFFF {
			t.Fatalf("clients %+v", db.Clients)
		}
		port := db.Clients[0].ListenerPort
		if !strings.HasSuffix(b.Addr(), ":"+strconv.Itoa(int(port))) {
			t.Errorf("client listener_port %d, broker at %s", port, b.Addr())
		}
		m := db.Stores[0]
		if m.SourceID != "pub" || m.SourcePort != port || m.SourceMid == 0 || m.Topic != "test" || m.QoS != 2 {
			t.Errorf("store record %+v", m)
		}
		if db.LastDBID < uint64(tc.n) {
			t.Errorf("last_db_id %d < %d", db.LastDBID, tc.n)
		}
	}
}

// TestRestore: what was held survives a clean Close and a restart, the
// subscriber gets it on reconnect, and store ids continue after last_db_id.
func TestRestore(t *testing.T) {
	cfg := quietConfig(t)
	b := startBroker(t, cfg)
	offlineSubscriber(t, b.Addr(), "slowsub", "test/#", 1)
	pub := connected(t, b.Addr(), "pub", true)
	for i := 1; i <= 5; i++ {
		pub.publish("test/a", 1, uint16(i), []byte{byte('0' + i)}, false)
	}
	pub.publish("test/r", 1, 9, []byte("kept"), true)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := persist.ReadFile(dbPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if !db.Shutdown || len(db.Retains) != 1 {
		t.Errorf("final save: shutdown %v, %d retains", db.Shutdown, len(db.Retains))
	}
	lastID := db.LastDBID

	b2 := startBroker(t, cfg)
	st := b2.Stats()
	if st.Held != 6 || st.Queued != 6 || st.Subscriptions != 1 || st.Retained != 1 || st.ClientsTotal != 1 {
		t.Fatalf("restored stats %+v", st)
	}
	sub2 := dial(t, b2.Addr())
	if ack := sub2.connect("slowsub", false); !ack.SessionPresent {
		t.Error("session present not set after restore")
	}
	var got []string
	for len(got) < 6 {
		p, ok := sub2.read().(*packets.PublishPacket)
		if !ok {
			continue
		}
		got = append(got, string(p.Payload))
		ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
		ack.MessageID = p.MessageID
		sub2.send(ack)
	}
	if strings.Join(got, ",") != "1,2,3,4,5,kept" {
		t.Errorf("delivered %v", got)
	}
	pub2 := connected(t, b2.Addr(), "pub", true)
	pub2.publish("test/a", 1, 1, []byte("new"), false)
	if p, ok := sub2.read().(*packets.PublishPacket); !ok || string(p.Payload) != "new" {
		t.Fatalf("after restore got %v", p)
	}
	if err := b2.Save(); err != nil {
		t.Fatal(err)
	}
	db2, err := persist.ReadFile(dbPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if db2.LastDBID <= lastID {
		t.Errorf("last_db_id %d did not continue after %d", db2.LastDBID, lastID)
	}
}

// TestAbortLosesUnsaved: after Abort, a restart has exactly what the last save
// had.
func TestAbortLosesUnsaved(t *testing.T) {
	cfg := quietConfig(t)
	b := startBroker(t, cfg)
	offlineSubscriber(t, b.Addr(), "slowsub", "test", 2)
	pub := connected(t, b.Addr(), "pub", true)
	pub.publishMany("test", 3, 3, payload150)
	if err := b.Save(); err != nil {
		t.Fatal(err)
	}
	pub.publishMany("test", 2, 2, payload150)
	if got := b.Stats().Held; got != 5 {
		t.Fatalf("held %d before abort, want 5", got)
	}
	b.Abort()
	b2 := startBroker(t, cfg)
	if got := b2.Stats().Held; got != 3 {
		t.Errorf("held %d after abort and restart, want 3 (the last save)", got)
	}
}

// TestCorruptDBRefused: a damaged file stops the broker with an error naming the
// file and offset, and is left byte for byte as it was.
func TestCorruptDBRefused(t *testing.T) {
	good := func(t *testing.T, cfg *conf.Config) []byte {
		b := startBroker(t, cfg)
		c := connected(t, b.Addr(), "slowsub", false)
		c.subscribe(1, "test", 1)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(dbPath(cfg))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	cases := []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"bad magic", func(d []byte) []byte { d[3] = 'X'; return d }},
		{"truncated chunk", func(d []byte) []byte { return d[:len(d)-3] }},
		{"garbage", func([]byte) []byte { return []byte("this is not a mosquitto db at all") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			data := tc.damage(good(t, cfg))
			if err := os.WriteFile(dbPath(cfg), data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := broker.New(broker.Options{Config: cfg})
			if err == nil {
				t.Fatal("corrupt file accepted")
			}
			if !strings.Contains(err.Error(), dbPath(cfg)) || !strings.Contains(err.Error(), "offset") {
				t.Errorf("error %q does not name the file and offset", err)
			}
			after, rerr := os.ReadFile(dbPath(cfg))
			if rerr != nil || !bytes.Equal(after, data) {
				t.Error("corrupt file was modified")
			}
		})
	}
}

// TestRestoreIncomingQoS2: a QoS 2 message received but not yet released is
// saved (direction in, state 7), survives a restart, and is delivered once when
// the publisher's PUBREL arrives at the new broker.
func TestRestoreIncomingQoS2(t *testing.T) {
	cfg := quietConfig(t)
	b := startBroker(t, cfg)
	pub := connected(t, b.Addr(), "pub", false)
	pub.send(publishPacket("t", 2, 42, []byte("pending"), false))
	if _, ok := pub.read().(*packets.PubrecPacket); !ok {
		t.Fatal("no PUBREC")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := persist.ReadFile(dbPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if len(db.ClientMsgs) != 1 || db.ClientMsgs[0].Direction != persist.DirIn || db.ClientMsgs[0].State != persist.StateWaitForPubrel || db.ClientMsgs[0].Mid != 42 {
		t.Fatalf("saved client msgs %+v", db.ClientMsgs)
	}
	b2 := startBroker(t, cfg)
	sub := connected(t, b2.Addr(), "sub", true)
	sub.subscribe(1, "t", 2)
	pub2 := connected(t, b2.Addr(), "pub", false)
	rel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
	rel.MessageID = 42
	pub2.send(rel)
	if _, ok := pub2.read().(*packets.PubcompPacket); !ok {
		t.Fatal("no PUBCOMP")
	}
	if p, ok := sub.read().(*packets.PublishPacket); !ok || string(p.Payload) != "pending" {
		t.Fatalf("subscriber got %v", p)
	}
	if st := b2.Stats(); st.StoreCount != 1 || st.Inflight != 1 {
		t.Errorf("store %d inflight %d, want 1 and 1", st.StoreCount, st.Inflight)
	}
}
