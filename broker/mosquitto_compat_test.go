package broker_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker/persist"
	"github.com/mqbench/mqbench/internal/testutil"
)

// These tests move a backlog between the bundled broker and the real Mosquitto
// 2.0.11 through the persistence file, both ways: the promise of format
// compatibility is only worth something if a real Mosquitto delivers what the
// bundled broker saved, and the other way round.

const (
	compatPub   = "pub"
	compatSub   = "slowsub"
	compatTopic = "test"
)

// holdMessages makes slowsub a persistent QoS 2 subscriber of `test`, takes it
// offline, and publishes n QoS 2 messages from `pub` (window 20, below
// Mosquitto's incoming in-flight limit).
func holdMessages(t *testing.T, addr string, n int) {
	t.Helper()
	sub, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: compatSub})
	if err != nil {
		t.Fatalf("connecting %s: %v", compatSub, err)
	}
	if g, err := sub.Subscribe(compatTopic, 2); err != nil || g != 2 {
		t.Fatalf("%s subscribing: granted %d, %v", compatSub, g, err)
	}
	if err := sub.Disconnect(); err != nil {
		t.Fatalf("%s disconnecting: %v", compatSub, err)
	}
	pub, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: compatPub, CleanSession: true})
	if err != nil {
		t.Fatalf("connecting %s: %v", compatPub, err)
	}
	defer pub.Close()
	if err := pub.PublishN(n, 20, 2, compatTopic, func(i int) []byte { return testutil.Payload(i, testutil.PayloadSize) }, 60*time.Second); err != nil {
		t.Fatalf("%s: %v", compatPub, err)
	}
	if err := pub.Disconnect(); err != nil {
		t.Fatalf("%s disconnecting: %v", compatPub, err)
	}
}

// drainHeld reconnects slowsub (clean session false) and checks it receives
// exactly the n held messages: every payload byte for byte, in publish order.
func drainHeld(t *testing.T, addr string, n int) {
	t.Helper()
	sub, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: compatSub})
	if err != nil {
		t.Fatalf("reconnecting %s: %v", compatSub, err)
	}
	defer sub.Close()
	if !sub.SessionPresent() {
		t.Errorf("%s reconnected without session present", compatSub)
	}
	msgs, err := sub.Collect(n, 60*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", compatSub, err)
	}
	for i, m := range msgs {
		if m.Topic != compatTopic || m.QoS != 2 || !bytes.Equal(m.Payload, testutil.Payload(i, testutil.PayloadSize)) {
			id, _ := testutil.PayloadID(m.Payload)
			t.Fatalf("held message %d: topic %q qos %d payload id %d (%q), want message %d on %q at QoS 2",
				i, m.Topic, m.QoS, id, m.Payload, i, compatTopic)
		}
	}
	if err := sub.Settle(); err != nil {
		t.Fatalf("%s: %v", compatSub, err)
	}
	select {
	case m, ok := <-sub.Messages():
		if ok {
			id, _ := testutil.PayloadID(m.Payload)
			t.Errorf("%s got a message beyond the %d held: id %d dup %v", compatSub, n, id, m.Dup)
		}
	default:
	}
	if err := sub.Disconnect(); err != nil {
		t.Fatalf("%s disconnecting: %v", compatSub, err)
	}
}

// modelDBSize is the size mosquitto-model.md gives for a version 6 file holding
// held 150-byte messages from `pub` on `test` for the persistent `slowsub`
// subscribed to `test`: header 23 + CFG 24 + CLIENT (32 + |id|) + SUB (20 +
// |id| + |filter|) + per message MSG_STORE (8 + 32 + |source id| + |topic| +
// |payload|) and CLIENT_MSG (8 + 16 + |client id|).
func modelDBSize(held int) int64 {
	fixed := 23 + 24 + (32 + len(compatSub)) + (20 + len(compatSub) + len(compatTopic))
	perMsg := (8 + 32 + len(compatPub) + len(compatTopic) + testutil.PayloadSize) + (8 + 16 + len(compatSub))
	return int64(fixed + held*perMsg)
}

func TestModelDBSizeFormula(t *testing.T) {
	// The documented measurements pin the formula itself.
	for _, tc := range []struct {
		held int
		want int64
	}{{10000, 2280117}, {1000, 228117}, {0, 117}} {
		if got := modelDBSize(tc.held); got != tc.want {
			t.Errorf("modelDBSize(%d) = %d, want %d (mosquitto-model.md)", tc.held, got, tc.want)
		}
	}
}

// checkHeldDB reads a persistence file and checks it holds exactly n messages
// for slowsub, all referenced, nothing dangling, at the model's size.
func checkHeldDB(t *testing.T, path string, n int) *persist.DB {
	t.Helper()
	db, err := persist.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	st := db.Stats()
	if st.Held != int64(n) || st.Chunks.MsgStore != n || st.Chunks.ClientMsg != n || st.Chunks.Client != 1 || st.Chunks.Sub != 1 {
		t.Errorf("%s: held %d, chunks %+v; want %d held, %d MSG_STORE and CLIENT_MSG, 1 CLIENT, 1 SUB", path, st.Held, st.Chunks, n, n)
	}
	if st.Unreferenced != 0 || st.Dangling != 0 || st.Duplicates != 0 {
		t.Errorf("%s: unreferenced %d, dangling %d, duplicates %d; want none", path, st.Unreferenced, st.Dangling, st.Duplicates)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := modelDBSize(n); fi.Size() != want {
		t.Errorf("%s is %d bytes, want %d (model formula for %d held)", path, fi.Size(), want, n)
	}
	return db
}

// TestCrossLoadBundledToMosquitto: the bundled broker saves a backlog, the real
// Mosquitto loads the file and delivers every message.
func TestCrossLoadBundledToMosquitto(t *testing.T) {
	testutil.RequireMosquitto(t)
	const n = 1000
	dir := t.TempDir()
	b := inprocBroker(t, testutil.BundledConf(dir, "max_queued_messages 0"))
	holdMessages(t, b.Addr(), n)
	if st := b.Stats(); st.Held != n || st.Dropped != 0 {
		t.Errorf("bundled broker stats: held %d dropped %d, want %d held, none dropped", st.Held, st.Dropped, n)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("closing the bundled broker: %v", err)
	}
	path := dir + "/mosquitto.db"
	checkHeldDB(t, path, n)

	m := testutil.StartMosquitto(t, testutil.MosquittoOptions{Dir: dir, Persistence: true, Extra: []string{"max_queued_messages 0"}})
	drainHeld(t, m.Addr, n)
	if err := m.Stop(20 * time.Second); err != nil {
		t.Fatalf("stopping mosquitto: %v", err)
	}
	// Mosquitto's own final save: the session and subscription remain, nothing held.
	checkHeldDB(t, path, 0)
}

// TestCrossLoadMosquittoToBundled: the real Mosquitto saves a backlog, the
// bundled broker restores it and delivers every message, and new store ids
// continue after the restored counter.
func TestCrossLoadMosquittoToBundled(t *testing.T) {
	testutil.RequireMosquitto(t)
	const n = 1000
	dir := t.TempDir()
	m := testutil.StartMosquitto(t, testutil.MosquittoOptions{Dir: dir, Persistence: true, Extra: []string{"max_queued_messages 0"}})
	holdMessages(t, m.Addr, n)
	if err := m.Stop(20 * time.Second); err != nil {
		t.Fatalf("stopping mosquitto: %v", err)
	}
	path := dir + "/mosquitto.db"
	mdb := checkHeldDB(t, path, n)

	b := inprocBroker(t, testutil.BundledConf(dir, "max_queued_messages 0"))
	if st := b.Stats(); st.Held != n {
		t.Errorf("bundled broker restored %d held messages, want %d", st.Held, n)
	}
	drainHeld(t, b.Addr(), n)
	if st := b.Stats(); st.Held != 0 {
		t.Errorf("after draining, bundled broker holds %d", st.Held)
	}
	// One more message held, then a clean close: its store id must come after
	// Mosquitto's counter, or a later load could confuse two messages.
	pub, err := testutil.Dial(b.Addr(), testutil.ClientOptions{ClientID: compatPub, CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(compatTopic, testutil.Payload(n, testutil.PayloadSize), 2, false); err != nil {
		t.Fatal(err)
	}
	pub.Disconnect()
	if err := b.Close(); err != nil {
		t.Fatalf("closing the bundled broker: %v", err)
	}
	db := checkHeldDB(t, path, 1)
	if len(db.Stores) == 1 && db.Stores[0].StoreID <= mdb.LastDBID {
		t.Errorf("new store id %d does not continue after restored last_db_id %d", db.Stores[0].StoreID, mdb.LastDBID)
	}
	if db.LastDBID <= mdb.LastDBID {
		t.Errorf("last_db_id %d after restore+publish, want > %d", db.LastDBID, mdb.LastDBID)
	}
	if !db.Shutdown {
		t.Error("CFG shutdown flag not set by a clean close")
	}
}

// TestDBSizeMatchesModel: 10,000 held QoS 2 messages give a 2,280,117-byte file
// in both brokers, as the model measured for Mosquitto 2.0.11.
func TestDBSizeMatchesModel(t *testing.T) {
	testutil.RequireMosquitto(t)
	const n = 10000
	want := modelDBSize(n)
	for _, kind := range []string{"bundled", "mosquitto"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			if kind == "bundled" {
				b := inprocBroker(t, testutil.BundledConf(dir, "max_queued_messages 0"))
				holdMessages(t, b.Addr(), n)
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				m := testutil.StartMosquitto(t, testutil.MosquittoOptions{Dir: dir, Persistence: true, Extra: []string{"max_queued_messages 0"}})
				holdMessages(t, m.Addr, n)
				if err := m.Stop(30 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
			fi, err := os.Stat(dir + "/mosquitto.db")
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != want || want != 2280117 {
				t.Errorf("%s db is %d bytes, want %d (model: 2,280,117)", kind, fi.Size(), want)
			}
			checkHeldDB(t, dir+"/mosquitto.db", n)
		})
	}
}

// startKind starts the bundled broker (in process) or the real Mosquitto with
// persistence in dir and returns its address and a clean stop (final save).
func startKind(t *testing.T, kind, dir string, extra ...string) (addr string, stop func()) {
	t.Helper()
	if kind == "bundled" {
		b := inprocBroker(t, testutil.BundledConf(dir, extra...))
		return b.Addr(), func() {
			t.Helper()
			if err := b.Close(); err != nil {
				t.Fatalf("closing the bundled broker: %v", err)
			}
		}
	}
	m := testutil.StartMosquitto(t, testutil.MosquittoOptions{Dir: dir, Persistence: true, Extra: extra})
	return m.Addr, func() {
		t.Helper()
		if err := m.Stop(20 * time.Second); err != nil {
			t.Fatalf("stopping mosquitto: %v", err)
		}
	}
}

// TestCrossLoadInflightAndRetained moves deliveries that were in flight (sent
// to a connected subscriber that never acknowledged them, state 5) and retained
// messages between the brokers, both ways: the in-flight ones must be resent
// first and in order on reconnect, the rest follow, and retained messages reach
// a new subscriber.
func TestCrossLoadInflightAndRetained(t *testing.T) {
	testutil.RequireMosquitto(t)
	const n = 100
	const window = 20 // max_inflight_messages default
	for _, tc := range []struct{ from, to string }{{"bundled", "mosquitto"}, {"mosquitto", "bundled"}} {
		t.Run(tc.from+"_to_"+tc.to, func(t *testing.T) {
			dir := t.TempDir()
			addr, stop := startKind(t, tc.from, dir, "max_queued_messages 0")
			stuck, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: compatSub, NoAck: true})
			if err != nil {
				t.Fatal(err)
			}
			defer stuck.Close()
			if _, err := stuck.Subscribe(compatTopic, 2); err != nil {
				t.Fatal(err)
			}
			pub, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: compatPub, CleanSession: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish("keep/1", []byte("r1"), 1, true); err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish("keep/2", []byte("r2"), 2, true); err != nil {
				t.Fatal(err)
			}
			if err := pub.PublishN(n, 20, 2, compatTopic, func(i int) []byte { return testutil.Payload(i, testutil.PayloadSize) }, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			pub.Disconnect()
			if _, err := stuck.Collect(window, 10*time.Second); err != nil {
				t.Fatalf("stuck subscriber: %v", err)
			}
			if err := stuck.Sync(); err != nil {
				t.Fatal(err)
			}
			if got := stuck.Received(); got != window {
				t.Fatalf("non-acking subscriber received %d, want the in-flight window of %d", got, window)
			}
			stop() // final save with the subscriber still connected
			stuck.Close()

			path := dir + "/mosquitto.db"
			db, err := persist.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			st := db.Stats()
			if st.Held != n || st.Inflight != window || st.Queued != n-window || st.Chunks.Retain != 2 || st.Dangling != 0 {
				t.Errorf("%s saved held %d (in flight %d, queued %d), %d retained, %d dangling; want %d (%d, %d), 2, 0",
					tc.from, st.Held, st.Inflight, st.Queued, st.Chunks.Retain, st.Dangling, n, window, n-window)
			}
			badState, badDup := 0, 0
			for i, cm := range db.ClientMsgs {
				if i < window && cm.State != persist.StateWaitForPubrec {
					badState++
				}
				// Mosquitto 2.0.11 sets dup once it has sent a delivery and saves
				// it (retain_dup low nibble); a loader resends with that flag.
				if wantDup := i < window; cm.Dup != wantDup {
					badDup++
				}
			}
			if badState > 0 {
				t.Errorf("%s saved %d of the first %d deliveries in a state other than %d (wait for PUBREC)", tc.from, badState, window, persist.StateWaitForPubrec)
			}
			if badDup > 0 {
				t.Errorf("%s saved %d deliveries with the wrong dup flag: Mosquitto 2.0.11 writes dup 1 for the %d sent (state 5) and 0 for the queued", tc.from, badDup, window)
			}

			addr, stop = startKind(t, tc.to, dir, "max_queued_messages 0")
			sub, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: compatSub})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			msgs, err := sub.Collect(n, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			dups := 0
			for i, m := range msgs {
				if !bytes.Equal(m.Payload, testutil.Payload(i, testutil.PayloadSize)) {
					id, _ := testutil.PayloadID(m.Payload)
					t.Fatalf("%s delivered message %d with id %d, want %d", tc.to, i, id, i)
				}
				if m.Dup {
					dups++
					if i >= window {
						t.Errorf("%s: message %d (never sent before) has DUP", tc.to, i)
					}
				}
			}
			if dups != window {
				t.Errorf("%s resent %d of the %d in-flight deliveries with DUP, want all", tc.to, dups, window)
			}
			if err := sub.Settle(); err != nil {
				t.Fatal(err)
			}
			if got := sub.Received(); got != n {
				t.Errorf("%s delivered %d messages, want exactly %d", tc.to, got, n)
			}
			late, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: "late", CleanSession: true})
			if err != nil {
				t.Fatal(err)
			}
			defer late.Close()
			if _, err := late.Subscribe("keep/#", 2); err != nil {
				t.Fatal(err)
			}
			ret, err := late.Collect(2, 10*time.Second)
			if err != nil {
				t.Fatalf("retained after load: %v", err)
			}
			got := map[string]string{}
			for _, m := range ret {
				if !m.Retain {
					t.Errorf("%s delivered %s without the retain flag", tc.to, m.Topic)
				}
				got[m.Topic] = string(m.Payload)
			}
			if got["keep/1"] != "r1" || got["keep/2"] != "r2" {
				t.Errorf("retained after load: %v, want keep/1=r1 keep/2=r2", got)
			}
			sub.Disconnect()
			late.Disconnect()
			stop()
		})
	}
}
