package persist

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqbench/mqbench/internal/testutil"
)

// startMosquitto runs a persistent Mosquitto on 127.0.0.1:port (0 = a free
// one) with its db in dir and saves only at shutdown (autosave_interval 3600),
// and waits until it accepts connections. Cleanup kills it by PID if the test
// did not stop it.
func startMosquitto(t *testing.T, dir string, port int) *testutil.Mosquitto {
	t.Helper()
	return testutil.StartMosquitto(t, testutil.MosquittoOptions{
		Dir: dir, Port: port, Persistence: true, LogDest: "stderr",
		Extra: []string{"autosave_interval 3600"},
	})
}

// stop sends SIGTERM (Mosquitto then writes its final save) and waits.
func stop(t *testing.T, m *testutil.Mosquitto) {
	t.Helper()
	if err := m.Stop(10 * time.Second); err != nil {
		t.Fatalf("stopping mosquitto: %v", err)
	}
}

func connect(t *testing.T, port int, id string, clean bool, onMsg mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().
		AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).
		SetClientID(id).
		SetCleanSession(clean).
		SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second)
	if onMsg != nil {
		opts.SetDefaultPublishHandler(onMsg)
	}
	c := mqtt.NewClient(opts)
	wait(t, "connecting "+id, c.Connect())
	return c
}

func wait(t *testing.T, what string, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestMosquittoWritesWhatWeRead lets real Mosquitto 2.0 hold n messages for
// an offline persistent subscriber, then reads its db: the counts, the
// payloads, the size formula, and Write reproducing the file byte for byte.
func TestMosquittoWritesWhatWeRead(t *testing.T) {
	const n = 200
	dir := t.TempDir()
	m := startMosquitto(t, dir, 0)

	sub := connect(t, m.Port, "slowsub", false, nil)
	wait(t, "subscribing", sub.Subscribe("test", 2, nil))
	sub.Disconnect(250)

	pub := connect(t, m.Port, "pub", true, nil)
	for i := 0; i < n; i++ {
		wait(t, fmt.Sprintf("publishing %d", i), pub.Publish("test", 2, false, payload150(i)))
	}
	pub.Disconnect(250)
	stop(t, m)

	raw, err := os.ReadFile(m.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	st := db.Stats()
	wantChunks := ChunkCounts{CFG: 1, MsgStore: n, ClientMsg: n, Sub: 1, Client: 1}
	if st.Version != 6 || st.Chunks != wantChunks || !db.Shutdown {
		t.Fatalf("version %d, chunks %+v, shutdown %v; want 6, %+v, true", st.Version, st.Chunks, db.Shutdown, wantChunks)
	}
	if st.Held != n || st.Queued != n || st.Inflight != 0 || st.Unreferenced != 0 || st.Duplicates != 0 || st.Dangling != 0 {
		t.Fatalf("stats %+v", st)
	}
	if want := 117 + 228*n; len(raw) != want {
		t.Fatalf("file is %d bytes, formula says %d", len(raw), want)
	}
	stores := map[uint64][]byte{}
	for _, s := range db.Stores {
		stores[s.StoreID] = s.Payload
	}
	for i, cm := range db.ClientMsgs {
		if cm.ClientID != "slowsub" || !bytes.Equal(stores[cm.StoreID], payload150(i)) {
			t.Fatalf("client message %d: %q -> %q, want slowsub -> %q", i, cm.ClientID, stores[cm.StoreID], payload150(i))
		}
	}
	var again bytes.Buffer
	if err := Write(&again, db); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), raw) {
		i := 0
		for i < len(raw) && i < again.Len() && raw[i] == again.Bytes()[i] {
			i++
		}
		t.Fatalf("Write differs from Mosquitto's file at byte %d (lengths %d vs %d)", i, again.Len(), len(raw))
	}
}

// TestMosquittoLoadsWhatWeWrite writes n held messages with WriteFile and
// checks that real Mosquitto restores them and delivers every one, in order,
// to the resumed session.
func TestMosquittoLoadsWhatWeWrite(t *testing.T) {
	const n = 200
	dir := t.TempDir()
	port := testutil.FreePort(t)
	db := seedDB(n, payload150)
	db.Clients[0].ListenerPort = uint16(port)
	if err := WriteFile(filepath.Join(dir, "mosquitto.db"), db); err != nil {
		t.Fatal(err)
	}
	m := startMosquitto(t, dir, port)

	var mu sync.Mutex
	var got [][]byte
	all := make(chan struct{})
	sub := connect(t, m.Port, "slowsub", false, func(_ mqtt.Client, msg mqtt.Message) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, append([]byte(nil), msg.Payload()...))
		if len(got) == n {
			close(all)
		}
	})
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		mu.Lock()
		k := len(got)
		mu.Unlock()
		t.Fatalf("received %d of %d messages within 20s\n%s", k, n, m.Stderr())
	}
	sub.Disconnect(250)
	stop(t, m)
	mu.Lock()
	defer mu.Unlock()
	for i, p := range got {
		if !bytes.Equal(p, payload150(i)) {
			t.Fatalf("message %d is %q, want %q", i, p, payload150(i))
		}
	}
}
