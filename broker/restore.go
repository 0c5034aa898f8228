package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"time"

	mp "github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqbench/mqbench/broker/persist"
)

// restore loads the persistence file into the (not yet running) state: stores,
// persistent sessions with their queued and in-flight deliveries (outgoing
// in-flight ones are re-sent when the client reconnects), subscriptions,
// retained messages and the store id counter. A missing file is a fresh start.
//
// The file is read as Mosquitto 2.0.11 restores it (persist.ParseChecked): what
// it refuses is an error naming the file and the offset, and the file is left
// as it is. What it would skip or drop is skipped too, but never silently:
// each item is logged as a warning with its offset, and the original bytes are
// kept beside the file (persist.KeepDamaged) here, while New runs, so no save
// can have replaced them yet. If that copy cannot be made the broker does not
// start.
func (st *state) restore(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restoring persistence: reading %s: %w", path, err)
	}
	chk, err := persist.ParseChecked(data)
	if err != nil {
		return fmt.Errorf("restoring persistence: reading %s: %w", path, err)
	}
	r := &restorer{st: st, chk: chk, now: time.Now()}
	r.load()
	return r.announce(path, data)
}

// restorer loads one checked file and collects what the bundled broker skips
// on top of what Mosquitto skips (persist reports those as problems).
type restorer struct {
	st  *state
	chk *persist.Checked
	now time.Time

	drops        []string         // one line per entry skipped by the bundled broker's own rules
	unresumable  map[string]bool  // clients whose session is dropped, expiry interval 0
	stripped     int              // drops that lose only MQTT 5 properties, not the entry
	expired      int              // stored messages past their expiry, with their deliveries
	unreferenced []int            // db.Stores indexes nothing refers to (Mosquitto drops them at its next save)
	expiryTimes  map[string]int64 // saved session expiry times (unix seconds, 0 = not counting)
}

func (r *restorer) drop(off int64, chunk, format string, args ...any) {
	r.drops = append(r.drops, fmt.Sprintf("offset %d, %s chunk: %s", off, chunk, fmt.Sprintf(format, args...)))
}

// expiredAt is Mosquitto's rule for a stored message on load: an expiry time
// in the past, or more than 2^32 seconds ahead, means it has expired.
func expiredAt(expiry, now int64) bool {
	if expiry <= 0 {
		return false
	}
	left := expiry - now
	return left < 0 || left > math.MaxUint32
}

func (r *restorer) load() {
	st, chk := r.st, r.chk
	db := chk.DB
	now := r.now.Unix()
	msgs := make([]*storedMsg, len(db.Stores))
	for i := range db.Stores {
		ms := &db.Stores[i]
		if expiredAt(ms.ExpiryTime, now) {
			r.expired++
			continue
		}
		msgs[i] = &storedMsg{
			id: ms.StoreID, topic: ms.Topic, payload: ms.Payload, qos: ms.QoS, retain: ms.Retain,
			sourceID: ms.SourceID, sourceUser: ms.SourceUsername, sourcePort: ms.SourcePort, sourceMid: ms.SourceMid,
			expiry: ms.ExpiryTime,
		}
		if len(ms.Properties) > 0 {
			var p mp.Properties
			if _, err := p.Decode(mp.Publish, bytes.NewBuffer(ms.Properties)); err != nil {
				r.stripped++
				r.drop(chk.Offsets.Stores[i], "MSG_STORE", "MQTT 5 properties (%d bytes) of store id %d dropped: %v",
					len(ms.Properties), ms.StoreID, err)
			} else {
				msgs[i].rawProps = ms.Properties
			}
		}
	}
	st.lastID = db.LastDBID
	r.unresumable = make(map[string]bool)
	for i, cl := range db.Clients { // persist leaves one CLIENT per id, none empty
		if _, dup := st.sessions[cl.ClientID]; dup {
			continue
		}
		if cl.SessionExpiryInterval == 0 && !st.b.isBridgeLocalID(cl.ClientID) { // a bridge resumes its own (bridge.go)
			// Mosquitto 2.0.11 resumes a session only when its expiry
			// interval is above 0 (src/handle_connect.c): it keeps this
			// one until the client connects, then discards it. The
			// bundled broker cannot hold a session it will not resume,
			// so it drops it now and says so.
			r.unresumable[cl.ClientID] = true
			r.drop(chk.Offsets.Clients[i], "CLIENT", "session of client %q has expiry interval 0 (as every session of a format 2-4 file has), which Mosquitto 2.0.11 never resumes; dropped with its deliveries and subscriptions",
				cl.ClientID)
			continue
		}
		st.seq++
		if r.expiryTimes == nil {
			r.expiryTimes = make(map[string]int64)
		}
		r.expiryTimes[cl.ClientID] = cl.SessionExpiryTime
		st.sessions[cl.ClientID] = &session{
			id: cl.ClientID, username: cl.Username, proto: 4, seq: st.seq, lastMid: cl.LastMid,
			expiry:       cl.SessionExpiryInterval,
			listenerPort: cl.ListenerPort, subs: make(map[string]byte),
			byMid: make(map[uint16]*clientMsg), inByMid: make(map[uint16]*clientMsg),
		}
	}
	for _, s := range st.sessions {
		if left := st.expiryFor(s); left > 0 {
			s.expireAt = r.expiryTimes[s.id]
			if s.expireAt == 0 {
				s.expireAt = now + left
			}
			st.expiring[s] = struct{}{}
		}
	}
	// References are counted here and the store list is built afterwards in
	// file order, so a restored broker saves its messages in the same order.
	for i := range db.ClientMsgs {
		r.clientMsg(i, msgs[chk.ClientMsgStore[i]])
	}
	for i, sub := range db.Subs {
		s := st.sessions[sub.ClientID]
		if s == nil {
			if r.unresumable[sub.ClientID] {
				r.drop(chk.Offsets.Subs[i], "SUB", "subscription of client %q to %q dropped with its session", sub.ClientID, sub.Topic)
			}
			continue
		}
		if !validFilter(sub.Topic) {
			r.drop(chk.Offsets.Subs[i], "SUB", "subscription of client %q to %q (QoS %d) dropped: not a valid topic filter for the bundled broker",
				sub.ClientID, sub.Topic, sub.QoS)
			continue
		}
		if _, ok := s.subs[sub.Topic]; !ok {
			st.nsubs++
			s.subOrder = append(s.subOrder, sub.Topic)
		}
		opts := sub.Options & (subNoLocal | subRetainAsPublished)
		s.subs[sub.Topic] = sub.QoS | opts
		st.subs.add(sub.Topic, s, sub.QoS|opts)
		if sub.Identifier != 0 {
			if s.subIDs == nil {
				s.subIDs = make(map[string]uint32)
			}
			s.subIDs[sub.Topic] = sub.Identifier
		}
	}
	for i := range db.Retains {
		m := msgs[chk.RetainStore[i]]
		if m == nil {
			continue // expired
		}
		if len(m.payload) == 0 {
			r.drop(chk.Offsets.Retains[i], "RETAIN", "retained message on %q has an empty payload, which deletes it rather than retains it; dropped", m.topic)
			continue
		}
		if old := st.retained[m.topic]; old != nil {
			old.retained = false
			old.refs--
		}
		st.retained[m.topic] = m
		m.retained = true
		m.refs++
	}
	for i := len(db.Stores) - 1; i >= 0; i-- {
		m := msgs[i]
		if m == nil || m.inStore {
			continue
		}
		if m.refs == 0 {
			r.unreferenced = append(r.unreferenced, i)
			continue
		}
		refs := m.refs
		m.refs = 0
		st.ref(m)
		m.refs = refs
	}
	for _, m := range msgs {
		if m != nil && m.id > st.lastID {
			st.lastID = m.id
		}
	}
}

// clientMsg restores delivery i of the checked db, whose message is m (nil
// when it expired).
func (r *restorer) clientMsg(i int, m *storedMsg) {
	st, db := r.st, r.chk.DB
	cmr := &db.ClientMsgs[i]
	off := r.chk.Offsets.ClientMsgs[i]
	s := st.sessions[cmr.ClientID]
	if s == nil || m == nil {
		// m nil: expired, counted with its store; persist names no
		// client without a session, so s is nil only when dropped.
		if s == nil && m != nil && r.unresumable[cmr.ClientID] {
			r.drop(off, "CLIENT_MSG", "delivery of store id %d to client %q (mid %d) dropped with its session", cmr.StoreID, cmr.ClientID, cmr.Mid)
		}
		return
	}
	cm := &clientMsg{msg: m, mid: cmr.Mid, qos: cmr.QoS, state: cmr.State, retain: cmr.Retain, dup: cmr.Dup}
	if len(cmr.Properties) > 0 {
		// Mosquitto keeps a delivery's Subscription Identifiers here.
		var p mp.Properties
		_, err := p.Decode(mp.Publish, bytes.NewBuffer(cmr.Properties))
		if err == nil {
			for _, id := range p.SubscriptionIdentifier {
				cm.subIDs = append(cm.subIDs, uint32(id))
			}
		}
		if err != nil || len(cm.subIDs) == 0 {
			r.stripped++
			r.drop(off, "CLIENT_MSG", "MQTT 5 properties (%d bytes) of the delivery to %q (mid %d) dropped: only subscription identifiers are kept",
				len(cmr.Properties), cmr.ClientID, cmr.Mid)
		}
	}
	switch {
	case cmr.Direction == persist.DirIn:
		if s.inByMid[cm.mid] != nil {
			r.drop(off, "CLIENT_MSG", "incoming message of client %q with mid %d, store id %d, dropped: the client has another one with that mid",
				cmr.ClientID, cmr.Mid, cmr.StoreID)
			return
		}
		s.incoming.push(cm)
		s.inByMid[cm.mid] = cm
		s.inBytes12 += int64(len(m.payload))
	case cmr.State == persist.StateQueued:
		s.queued.push(cm)
		st.held++
		st.queued++
		if cm.qos > 0 {
			s.held12++
			s.heldBytes += int64(len(m.payload))
		}
	default:
		if cm.qos == 0 {
			r.drop(off, "CLIENT_MSG", "QoS 0 delivery of store id %d to client %q in flight (state %d) dropped: the bundled broker never holds QoS 0 messages in flight",
				cmr.StoreID, cmr.ClientID, cmr.State)
			return
		}
		if s.byMid[cm.mid] != nil {
			r.drop(off, "CLIENT_MSG", "delivery in flight of store id %d to client %q with mid %d dropped: another one in flight has that mid",
				cmr.StoreID, cmr.ClientID, cmr.Mid)
			return
		}
		s.inflight.push(cm)
		s.byMid[cm.mid] = cm
		st.held++
		st.inflight++
		s.held12++
		s.heldBytes += int64(len(m.payload))
	}
	m.refs++
}

// announce logs what loading skipped and, when anything that was in the file
// will not be saved back, keeps a copy of the original bytes first.
func (r *restorer) announce(path string, data []byte) error {
	log := r.st.b.log
	if r.expired > 0 {
		log.printf(logInfo, "Persistence file %s: %d expired messages not restored.", path, r.expired)
	}
	problems := r.chk.Problems
	if len(problems) == 0 && len(r.drops) == 0 {
		// Normal in a Mosquitto file: messages held for connected
		// clean-session clients, whose deliveries are not saved.
		if n := len(r.unreferenced); n > 0 {
			log.printf(logInfo, "Persistence file %s: not restoring %d stored message(s) that no session or retained topic refers to (Mosquitto drops them at its next save).", path, n)
		}
		return nil
	}
	// In a damaged file an unreferenced message may be the one a damaged
	// reference pointed at: name each.
	for i := len(r.unreferenced) - 1; i >= 0; i-- {
		k := r.unreferenced[i]
		ms := &r.chk.DB.Stores[k]
		r.drop(r.chk.Offsets.Stores[k], "MSG_STORE", "store id %d on %q (%d payload bytes) is referred to by nothing that was loaded; not restored",
			ms.StoreID, ms.Topic, len(ms.Payload))
	}
	dropped := len(r.drops) - r.stripped
	for _, p := range problems {
		log.printf(logWarning, "Warning: Persistence file %s: %s.", path, p)
		if p.Dropped {
			dropped++
		}
	}
	for _, d := range r.drops {
		log.printf(logWarning, "Warning: Persistence file %s: %s.", path, d)
	}
	kept := "nothing to keep, it is empty"
	if len(data) > 0 {
		name, err := persist.KeepDamaged(path, data, r.now)
		if err != nil {
			return fmt.Errorf("restoring persistence: %s is damaged and a copy could not be kept, so it is not loaded: %w", path, err)
		}
		kept = "the original is kept as " + name
	}
	summary := fmt.Sprintf("%s is damaged: %d problems, %d entries dropped; loaded the rest, %s",
		path, len(problems)+len(r.drops), dropped, kept)
	log.printf(logWarning, "Warning: Persistence file %s.", summary)
	// Also a start-up notice, which `mqbench broker` prints whatever the
	// log settings: a user must not miss that data was left behind.
	r.st.b.notices = append(r.st.b.notices, "persistence file "+summary)
	return nil
}
