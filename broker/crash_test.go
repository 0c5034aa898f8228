package broker_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker/persist"
	"github.com/mqbench/mqbench/internal/testutil"
)

// TestCrashTorture kills `mqbench broker` with SIGKILL at random moments while a
// backlog of about 20,000 messages is held for an offline subscriber, new ones
// are being published and autosave runs every 0.2 s, and checks after each kill
// that what is on disk is a complete snapshot: readable, consistent, a prefix of
// the publish order that extends the previous one, and that the broker restarts
// on it. This is the property the seed experiment asks about (what survives a
// crash), for the bundled broker's off-loop snapshot writer.
func TestCrashTorture(t *testing.T) {
	bin := testutil.BuildMqbench(t)
	seed := uint64(20250611)
	if s := os.Getenv("MQBENCH_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MQBENCH_CRASH_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (set MQBENCH_CRASH_SEED to repeat another)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "mosquitto.db")
	confPath := testutil.WriteFile(t, dir, "mqbench.conf", testutil.BundledConf(dir,
		"autosave_interval 0.2", "max_queued_messages 0", "log_dest none"))

	const (
		iterations  = 15
		backlog     = 20000
		perIter     = 2000 // publishes per later iteration at most
		idStride    = 100000
		totalBudget = 50 * time.Second
	)
	start := time.Now()
	var prev []int // payload ids held for slowsub in the last file, in queue order
	var killsWithNew, itersWithSave int
	for iter := 0; iter < iterations && time.Since(start) < totalBudget; iter++ {
		switch {
		case iter%4 == 3:
			// A stale, garbage <file>.new from an earlier crash must neither be
			// loaded nor block the next save.
			testutil.WriteFile(t, dir, "mosquitto.db.new", "garbage from a crashed save")
		case iter%4 == 1 && len(prev) > 100:
			// A valid <file>.new with different content (the last 100 held
			// messages missing): if the broker loaded it instead of the db, the
			// next save would not extend the previous file and the checks fail.
			plantShorterNew(t, dbPath, 100)
		}
		br := testutil.StartBundled(t, bin, confPath)
		if iter == 0 {
			sub, err := testutil.Dial(br.Addr, testutil.ClientOptions{ClientID: compatSub})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sub.Subscribe(compatTopic, 2); err != nil {
				t.Fatal(err)
			}
			if err := sub.Disconnect(); err != nil {
				t.Fatal(err)
			}
		}
		base := iter * idStride
		n := perIter
		if iter == 0 {
			n = backlog
		}
		pubDone := make(chan error, 1)
		var sent int
		var mu sync.Mutex
		go func() {
			pubDone <- publishPaced(br.Addr, base, n, iter == 0, func(k int) { mu.Lock(); sent = k; mu.Unlock() })
		}()
		if iter == 0 {
			// Build the backlog first and make sure a save holds all of it
			// (SIGUSR1, like `kill -USR1`), so every later kill starts from a
			// saved backlog; the kill comes shortly after.
			if err := <-pubDone; err != nil {
				t.Fatalf("iteration 0: building the backlog: %v", err)
			}
			pubDone <- nil
			if err := br.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			waitHeld(t, dbPath, backlog, 30*time.Second)
		}
		time.Sleep(time.Duration(20+rng.IntN(700)) * time.Millisecond)
		if err := br.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("iteration %d: broker died before the kill: %v (stderr: %s)", iter, err, br.Stderr())
		}
		_ = br.Wait(10 * time.Second)
		pubErr := <-pubDone
		mu.Lock()
		published := sent
		mu.Unlock()
		if _, err := os.Stat(dbPath + ".new"); err == nil {
			killsWithNew++
		}

		cur, err := heldIDs(dbPath)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && len(prev) == 0 {
				t.Logf("iteration %d: no save yet", iter)
				continue
			}
			t.Fatalf("iteration %d (kill after %d publishes): %v", iter, published, err)
		}
		if len(cur) < len(prev) {
			t.Fatalf("iteration %d: held count went down from %d to %d", iter, len(prev), len(cur))
		}
		for i := range prev {
			if cur[i] != prev[i] {
				t.Fatalf("iteration %d: held message %d is id %d, the previous file had %d there", iter, i, cur[i], prev[i])
			}
		}
		for j, id := range cur[len(prev):] {
			if id != base+j {
				t.Fatalf("iteration %d: new held message %d is id %d, want %d: not a prefix of the publish order (a torn save)", iter, j, id, base+j)
			}
		}
		if added := len(cur) - len(prev); added > 0 {
			itersWithSave++
		}
		t.Logf("iteration %d: %d published (publisher: %v), file holds %d (+%d)", iter, published, pubErr, len(cur), len(cur)-len(prev))
		prev = cur
	}
	if len(prev) < backlog {
		t.Fatalf("the backlog of %d was never saved (file holds %d)", backlog, len(prev))
	}
	t.Logf("%d kills left a <file>.new behind; %d iterations added to the file; %v", killsWithNew, itersWithSave, time.Since(start).Round(time.Millisecond))

	// Last restart: the broker serves exactly what the file holds, in order.
	br := testutil.StartBundled(t, bin, confPath)
	sub, err := testutil.Dial(br.Addr, testutil.ClientOptions{ClientID: compatSub})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	msgs, err := sub.Collect(len(prev), 60*time.Second)
	if err != nil {
		t.Fatalf("draining the restored backlog: %v", err)
	}
	for i, m := range msgs {
		id, err := testutil.PayloadID(m.Payload)
		if err != nil || id != prev[i] || !bytes.Equal(m.Payload, testutil.Payload(id, testutil.PayloadSize)) {
			t.Fatalf("restored message %d: id %d (%v), want %d", i, id, err, prev[i])
		}
	}
	if err := sub.Settle(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if err := br.Stop(20 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	db, err := persist.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if held, _, _ := persist.Held(db); held != 0 || !db.Shutdown {
		t.Errorf("after draining and SIGTERM the file holds %d (shutdown flag %v), want 0 and set", held, db.Shutdown)
	}
}

// waitHeld polls the persistence file until it holds n messages for slowsub.
func waitHeld(t *testing.T, path string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ids, err := heldIDs(path)
		if err == nil && len(ids) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hold %d messages within %v after SIGUSR1 (held %d, %v)", path, n, timeout, len(ids), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// plantShorterNew writes path+".new" as a valid db holding path's content
// minus its last drop held messages.
func plantShorterNew(t *testing.T, path string, drop int) {
	t.Helper()
	db, err := persist.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db.ClientMsgs = db.ClientMsgs[:len(db.ClientMsgs)-drop]
	keep := map[uint64]bool{}
	for _, cm := range db.ClientMsgs {
		keep[cm.StoreID] = true
	}
	stores := db.Stores[:0]
	for _, s := range db.Stores {
		if keep[s.StoreID] {
			stores = append(stores, s)
		}
	}
	db.Stores = stores
	if err := persist.WriteFile(path+".new", db); err != nil {
		t.Fatal(err)
	}
}

// publishPaced publishes n QoS 1 messages with ids base..base+n-1 in chunks of
// 50 (window 20); paced at about 5,000 msgs/s unless fast, so kills land while
// publishing. It reports progress after each chunk and returns when done or
// when the connection dies (the kill).
func publishPaced(addr string, base, n int, fast bool, progress func(int)) error {
	pub, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: compatPub, CleanSession: true})
	if err != nil {
		return err
	}
	defer pub.Close()
	const chunk = 50
	for done := 0; done < n; done += chunk {
		k := min(chunk, n-done)
		off := base + done
		if err := pub.PublishN(k, 20, 1, compatTopic, func(i int) []byte { return testutil.Payload(off+i, testutil.PayloadSize) }, 20*time.Second); err != nil {
			return fmt.Errorf("after %d: %w", done, err)
		}
		progress(done + k)
		if !fast {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// heldIDs reads the persistence file, checks its consistency, and returns the
// payload ids of the messages held for slowsub in queue order.
func heldIDs(path string) ([]int, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	db, err := persist.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s after a kill: %w", path, err)
	}
	st := db.Stats()
	if st.Dangling != 0 || st.Unreferenced != 0 || st.Duplicates != 0 {
		return nil, fmt.Errorf("%s: dangling %d, unreferenced %d, duplicates %d; want none", path, st.Dangling, st.Unreferenced, st.Duplicates)
	}
	if db.Shutdown {
		return nil, fmt.Errorf("%s has the shutdown flag, but no clean shutdown happened", path)
	}
	byID := make(map[uint64]*persist.MsgStore, len(db.Stores))
	for i := range db.Stores {
		byID[db.Stores[i].StoreID] = &db.Stores[i]
	}
	var ids []int
	for _, cm := range db.ClientMsgs {
		if cm.ClientID != compatSub || cm.Direction != persist.DirOut {
			return nil, fmt.Errorf("%s: unexpected client message for %q direction %d", path, cm.ClientID, cm.Direction)
		}
		s := byID[cm.StoreID]
		if s == nil {
			return nil, fmt.Errorf("%s: client message references missing store %d", path, cm.StoreID)
		}
		id, err := testutil.PayloadID(s.Payload)
		if err != nil {
			return nil, fmt.Errorf("%s: store %d: %w", path, cm.StoreID, err)
		}
		if len(ids) > 0 && id <= ids[len(ids)-1] {
			return nil, fmt.Errorf("%s: held ids out of order: %d after %d", path, id, ids[len(ids)-1])
		}
		ids = append(ids, id)
	}
	if len(db.Stores) != len(ids) {
		return nil, fmt.Errorf("%s: %d stores for %d held messages", path, len(db.Stores), len(ids))
	}
	return ids, nil
}

// TestHeldIDsRejects shows the torture test's file check can fail: each broken
// file below must be refused.
func TestHeldIDsRejects(t *testing.T) {
	store := func(id uint64, payloadID int) persist.MsgStore {
		return persist.MsgStore{StoreID: id, SourceID: compatPub, Topic: compatTopic, QoS: 1, Payload: testutil.Payload(payloadID, testutil.PayloadSize)}
	}
	held := func(id uint64) persist.ClientMsg {
		return persist.ClientMsg{ClientID: compatSub, StoreID: id, QoS: 1, State: persist.StateQueued, Direction: persist.DirOut}
	}
	good := func() *persist.DB {
		return &persist.DB{LastDBID: 3, DBIDSize: 8,
			Stores:     []persist.MsgStore{store(3, 12), store(2, 11), store(1, 10)},
			Clients:    []persist.Client{{ClientID: compatSub, SessionExpiryInterval: 0xFFFFFFFF}},
			ClientMsgs: []persist.ClientMsg{held(1), held(2), held(3)},
			Subs:       []persist.Sub{{ClientID: compatSub, Topic: compatTopic, QoS: 2}},
		}
	}
	for _, tc := range []struct {
		name    string
		mutate  func(db *persist.DB)
		wantErr bool
	}{
		{"consistent", func(*persist.DB) {}, false},
		{"dangling", func(db *persist.DB) { db.ClientMsgs[2].StoreID = 9 }, true},
		{"unreferenced", func(db *persist.DB) { db.ClientMsgs = db.ClientMsgs[:2] }, true},
		{"out of order", func(db *persist.DB) { db.ClientMsgs[0], db.ClientMsgs[1] = db.ClientMsgs[1], db.ClientMsgs[0] }, true},
		{"shutdown flag", func(db *persist.DB) { db.Shutdown = true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := good()
			tc.mutate(db)
			path := filepath.Join(t.TempDir(), "mosquitto.db")
			if err := persist.WriteFile(path, db); err != nil {
				t.Fatal(err)
			}
			ids, err := heldIDs(path)
			if (err != nil) != tc.wantErr {
				t.Fatalf("heldIDs: %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && fmt.Sprint(ids) != "[10 11 12]" {
				t.Errorf("ids %v, want [10 11 12]", ids)
			}
		})
	}
}
