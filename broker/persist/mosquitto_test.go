package persist

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mosquittoBinary finds the real broker, skipping the test when it is absent
// unless MQBENCH_REQUIRE_MOSQUITTO=1 (CI), where absence is a failure.
func mosquittoBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("MQBENCH_REQUIRE_MOSQUITTO") == "1" {
		t.Fatal("mosquitto not found and MQBENCH_REQUIRE_MOSQUITTO=1")
	}
	t.Skip("mosquitto not installed")
	return ""
}

// freePort asks the kernel for a free loopback port; Mosquitto cannot bind
// port 0 and report it, so we bind, read and close.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type mosquitto struct {
	cmd    *exec.Cmd
	port   int
	dbPath string
	done   chan error
	log    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startMosquitto runs a persistent Mosquitto on 127.0.0.1:port with its db in
// dir, and waits until it accepts connections. Cleanup kills it by PID if the
// test did not stop it.
func startMosquitto(t *testing.T, dir string, port int) *mosquitto {
	t.Helper()
	bin := mosquittoBinary(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"+
		"persistence_location %s/\nautosave_interval 3600\nuser root\nlog_dest stderr\n", port, dir)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &mosquitto{port: port, dbPath: filepath.Join(dir, "mosquitto.db"), done: make(chan error, 1), log: &syncBuffer{}}
	m.cmd = exec.Command(bin, "-c", conf)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.done <- m.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-m.done:
		default:
			_ = m.cmd.Process.Kill()
			<-m.done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return m
		}
		select {
		case err := <-m.done:
			m.done <- err
			t.Fatalf("mosquitto exited at start: %v\n%s", err, m.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %d within 10s\n%s", port, m.log.String())
		}
	}
}

// stop sends SIGTERM (Mosquitto then writes its final save) and waits.
func (m *mosquitto) stop(t *testing.T) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-m.done:
		m.done <- err
		if err != nil {
			t.Fatalf("mosquitto exit: %v\n%s", err, m.log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("mosquitto did not exit within 10s of SIGTERM\n%s", m.log.String())
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
	m := startMosquitto(t, dir, freePort(t))

	sub := connect(t, m.port, "slowsub", false, nil)
	wait(t, "subscribing", sub.Subscribe("test", 2, nil))
	sub.Disconnect(250)

	pub := connect(t, m.port, "pub", true, nil)
	for i := 0; i < n; i++ {
		wait(t, fmt.Sprintf("publishing %d", i), pub.Publish("test", 2, false, payload150(i)))
	}
	pub.Disconnect(250)
	m.stop(t)

	raw, err := os.ReadFile(m.dbPath)
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
	port := freePort(t)
	db := seedDB(n, payload150)
	db.Clients[0].ListenerPort = uint16(port)
	if err := WriteFile(filepath.Join(dir, "mosquitto.db"), db); err != nil {
		t.Fatal(err)
	}
	m := startMosquitto(t, dir, port)

	var mu sync.Mutex
	var got [][]byte
	all := make(chan struct{})
	sub := connect(t, m.port, "slowsub", false, func(_ mqtt.Client, msg mqtt.Message) {
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
		t.Fatalf("received %d of %d messages within 20s\n%s", k, n, m.log.String())
	}
	sub.Disconnect(250)
	m.stop(t)
	mu.Lock()
	defer mu.Unlock()
	for i, p := range got {
		if !bytes.Equal(p, payload150(i)) {
			t.Fatalf("message %d is %q, want %q", i, p, payload150(i))
		}
	}
}
