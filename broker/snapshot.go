package broker

import (
	"os"
	"sort"
	"strings"
	"time"

	"github.com/mqbench/mqbench/broker/persist"
)

// sessionExpiryNever is what Mosquitto 2.0 saves as the session expiry interval
// of an MQTT 3.1/3.1.1 persistent session.
const sessionExpiryNever = 0xFFFFFFFF

// requestSave asks for a snapshot; reply (may be nil) gets the result of a save
// that started after the request. While a write runs, requests are coalesced
// into one more save after it.
func (st *state) requestSave(reply chan error) {
	if !st.cfg.Persistence {
		if reply != nil {
			reply <- nil
		}
		return
	}
	if reply != nil {
		st.waiters = append(st.waiters, reply)
	}
	if st.saving {
		st.savePending = true
		return
	}
	st.startSave()
}

// startSave takes the snapshot on the owner goroutine (cheap: no payload
// copies) and writes it on another, so the message flow goes on meanwhile.
func (st *state) startSave() {
	b := st.b
	db := st.snapshot(false)
	st.savesStarted++
	waiters := st.waiters
	st.waiters = nil
	st.saving = true
	st.savePending = false
	path := b.persistPath
	b.log.printf(logInfo, "Saving in-memory database to %s.", path)
	b.saveWG.Add(1)
	go func() {
		defer b.saveWG.Done()
		res := writeSnapshot(path, db.build())
		res.waiters = waiters
		b.saveDone <- res
	}()
}

func writeSnapshot(path string, db *persist.DB) saveResult {
	t0 := time.Now()
	err := persist.WriteFile(path, db)
	res := saveResult{err: err, dur: time.Since(t0)}
	if err == nil {
		if fi, serr := os.Stat(path); serr == nil {
			res.size = fi.Size()
		}
	}
	return res
}

func (st *state) saveFinished(res saveResult) {
	st.saving = false
	st.recordSave(res)
	for _, w := range res.waiters {
		w <- res.err
	}
	if st.savePending {
		st.startSave()
	}
}

// finishRunningSave waits for the snapshot being written, if any, and records
// it without starting the one requested meanwhile: the loop is stopping, and a
// shutdown writes its own final save while an abort must save nothing more.
func (st *state) finishRunningSave() {
	if st.saving {
		st.savePending = false
		st.saveFinished(<-st.b.saveDone)
	}
}

func (st *state) recordSave(res saveResult) {
	if res.err != nil {
		st.saveErrors++
		st.b.log.printf(logError, "Error saving in-memory database: %v", res.err)
		return
	}
	st.saves++
	st.lastSaveDur = res.dur
	st.lastSaveBytes = res.size
}

// shutdown is the clean exit: wills of connected clients, then the final save
// (CFG shutdown set), then every connection is told to close after flushing.
func (st *state) shutdown() error {
	st.sendAllWills()
	for _, s := range st.sortedSessions(false) {
		if s.conn != nil && s.will != nil {
			w := s.will
			s.will = nil
			st.publishWill(s, w)
		}
	}
	st.finishRunningSave()
	var err error
	if st.cfg.Persistence {
		st.b.log.printf(logInfo, "Saving in-memory database to %s.", st.b.persistPath)
		db := st.snapshot(true)
		st.savesStarted++
		res := writeSnapshot(st.b.persistPath, db.build())
		st.recordSave(res)
		err = res.err
	}
	for _, w := range st.waiters {
		w <- err
	}
	st.waiters = nil
	for _, s := range st.sessions {
		if s.conn != nil {
			s.conn.detached = true
			s.conn.finish()
		}
	}
	return err
}

// sortedSessions returns sessions in creation order (persistent ones only when
// persistentOnly), the order Mosquitto's client hash iterates in.
func (st *state) sortedSessions(persistentOnly bool) []*session {
	out := make([]*session, 0, len(st.sessions))
	for _, s := range st.sessions {
		if persistentOnly && s.clean {
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// snapCut is a consistent cut of the state, taken by the owner goroutine. Store
// entries are captured as pointers: everything a save reads from them (id,
// topic, payload, source) is immutable once created, so the cut costs one
// pointer per message on the loop, and the persist.DB is built by the writer.
type snapCut struct {
	db     *persist.DB
	stores []*storedMsg
}

// build turns the cut into the persist.DB to write; it runs off the loop.
func (c *snapCut) build() *persist.DB {
	db := c.db
	db.Stores = make([]persist.MsgStore, len(c.stores))
	for i, m := range c.stores {
		db.Stores[i] = persist.MsgStore{
			StoreID: m.id, SourceMid: m.sourceMid, SourceID: m.sourceID, SourceUsername: m.sourceUser,
			SourcePort: m.sourcePort, Topic: m.topic, QoS: m.qos, Retain: m.retain && !sysTopic(m), Payload: m.payload,
			ExpiryTime: m.expiry, Properties: m.rawProps,
		}
	}
	c.stores = nil
	return db
}

// snapshot is the consistent cut written by a save, in Mosquitto 2.0.11's
// order. Every store entry is written, including (as 2.0.11 does) messages held
// only for connected clean-session clients, whose deliveries are not saved:
// orphan MSG_STOREs that vanish from the next save once that client is gone.
// $SYS messages held only as retained are skipped, like Mosquitto.
func (st *state) snapshot(shutdown bool) *snapCut {
	db := &persist.DB{Version: persist.WriteVersion, LastDBID: st.lastID, Shutdown: shutdown, DBIDSize: 8}
	cut := &snapCut{db: db, stores: make([]*storedMsg, 0, st.storeCount)}
	for m := st.storeTail; m != nil; m = m.prev {
		if sysTopic(m) && m.retained && m.refs <= 1 {
			continue
		}
		cut.stores = append(cut.stores, m)
	}
	sessions := st.sortedSessions(true)
	n := 0
	for _, s := range sessions {
		n += s.incoming.n + s.inflight.n + s.queued.n
	}
	db.ClientMsgs = make([]persist.ClientMsg, 0, n)
	for _, s := range sessions {
		db.Clients = append(db.Clients, persist.Client{
			ClientID: s.id, Username: s.username, LastMid: s.lastMid,
			SessionExpiryInterval: savedExpiry(s), SessionExpiryTime: s.expireAt, ListenerPort: s.listenerPort,
		})
		add := func(cm *clientMsg, dir uint8) {
			db.ClientMsgs = append(db.ClientMsgs, persist.ClientMsg{
				ClientID: s.id, StoreID: cm.msg.id, Mid: cm.mid, QoS: cm.qos, State: cm.state,
				Retain: cm.retain, Dup: cm.dup, Direction: dir, Properties: subIDProps(cm.subIDs),
			})
		}
		for cm := s.incoming.head; cm != nil; cm = cm.next {
			add(cm, persist.DirIn)
		}
		for cm := s.inflight.head; cm != nil; cm = cm.next {
			add(cm, persist.DirOut)
		}
		for cm := s.queued.head; cm != nil; cm = cm.next {
			add(cm, persist.DirOut)
		}
	}
	for _, s := range sessions {
		for _, f := range s.subOrder {
			if _, _, shared := splitShare(f); shared {
				continue // Mosquitto 2.0.11 does not save shared subscriptions
			}
			db.Subs = append(db.Subs, persist.Sub{ClientID: s.id, Topic: f, QoS: s.subs[f] & 3,
				Options: s.subs[f] &^ 3, Identifier: s.subIDs[f]})
		}
	}
	topics := make([]string, 0, len(st.retained))
	for t, m := range st.retained {
		if !sysTopic(m) {
			topics = append(topics, t)
		}
	}
	sort.Strings(topics)
	for _, t := range topics {
		db.Retains = append(db.Retains, st.retained[t].id)
	}
	return cut
}

// sysTopic: Mosquitto 2.0.11's persist__message_store_save and
// persist__retain_save go by the topic, so a client's (a bridge's
// notification's) $SYS message is saved like the broker's own: never as
// retained, and not at all when only the retained copy holds it.
func sysTopic(m *storedMsg) bool { return m.sys || strings.HasPrefix(m.topic, "$SYS") }

// subIDProps is the property block (with its varint length) Mosquitto saves
// with a delivery carrying Subscription Identifiers, one property each.
func subIDProps(ids []uint32) []byte {
	if len(ids) == 0 {
		return nil
	}
	var body []byte
	for _, id := range ids {
		body = append(body, 0x0B)
		body = appendVarint(body, id)
	}
	return append(appendVarint(nil, uint32(len(body))), body...)
}

// appendVarint appends v as an MQTT variable byte integer.
func appendVarint(b []byte, v uint32) []byte {
	for {
		d := byte(v & 0x7f)
		v >>= 7
		if v > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if v == 0 {
			return b
		}
	}
}
