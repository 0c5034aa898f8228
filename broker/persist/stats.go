package persist

import (
	"bytes"
	"hash/maphash"
)

// Stats answers the experiment's questions about one persistence file: how
// many messages are held for whom (queued or in flight), how many payload
// bytes that is, and whether anything is stored twice, unreferenced or
// referenced but missing. JSON names are stable: `mqbench inspect --json`
// prints this and run events embed it.
type Stats struct {
	Version  uint32      `json:"version"`
	Chunks   ChunkCounts `json:"chunks"`
	LastDBID uint64      `json:"last_db_id"`
	Shutdown bool        `json:"shutdown"`

	// Clients lists every client that has a CLIENT record or a CLIENT_MSG:
	// clients with records first in file order, then the others in order of
	// first appearance.
	Clients []ClientStats `json:"clients"`

	// Held, Queued and Inflight total the outgoing deliveries (direction 1)
	// of all clients: what a slow subscriber has waiting.
	Held     int64 `json:"held"`
	Queued   int64 `json:"queued"`
	Inflight int64 `json:"inflight"`
	// Incoming counts incoming QoS 2 messages not yet released (direction 0).
	Incoming int64 `json:"incoming"`

	// PayloadBytes sums the payloads of all MSG_STORE chunks.
	PayloadBytes int64 `json:"payload_bytes"`
	// Unreferenced counts MSG_STOREs no CLIENT_MSG or RETAIN points at
	// (Mosquitto writes those for connected clean-session clients).
	Unreferenced int64 `json:"unreferenced"`
	// Duplicates is DuplicateIDs + DuplicateContent: "a message stored twice".
	Duplicates int64 `json:"duplicates"`
	// DuplicateIDs counts MSG_STOREs whose store id was already defined.
	DuplicateIDs int64 `json:"duplicate_ids"`
	// DuplicateContent counts MSG_STOREs with a new store id but the same
	// topic, payload, source id and source mid as an earlier one.
	DuplicateContent int64 `json:"duplicate_content"`
	// Dangling counts CLIENT_MSGs and RETAINs whose store id no MSG_STORE
	// defines; Mosquitto skips them on load, so those messages are lost.
	Dangling int64 `json:"dangling"`

	// MQTT5 is the MQTT 5 state the file holds (all zero for a 3.1.1 one).
	MQTT5 MQTT5Stats `json:"mqtt5"`
}

// MQTT5Stats counts what only MQTT 5 clients leave in a file, so `inspect`
// shows whether expiry can shrink it and which sessions will end by themselves.
type MQTT5Stats struct {
	MessagesWithProperties int64 `json:"messages_with_properties"`
	MessagesWithExpiry     int64 `json:"messages_with_expiry"`
	// EarliestExpiry is the first message expiry time (unix seconds), 0 = none.
	EarliestExpiry           int64 `json:"earliest_expiry"`
	DeliveriesWithProperties int64 `json:"deliveries_with_properties"` // CLIENT_MSG properties (subscription identifiers)
	// SessionsExpiring counts sessions with an expiry interval that ends:
	// neither never (0xFFFFFFFF, a 3.1.1 persistent session) nor 0 (no
	// interval recorded, or a session that ends with its connection).
	SessionsExpiring int64 `json:"sessions_expiring"`
	SubsWithID       int64 `json:"subs_with_identifier"`
	SubsWithOptions  int64 `json:"subs_with_options"` // no local or retain as published
}

// mqtt5Stats counts the MQTT 5 state of db.
func mqtt5Stats(db *DB) MQTT5Stats {
	var m MQTT5Stats
	for i := range db.Stores {
		st := &db.Stores[i]
		if len(st.Properties) > 1 {
			m.MessagesWithProperties++
		}
		if st.ExpiryTime != 0 {
			m.MessagesWithExpiry++
			if m.EarliestExpiry == 0 || st.ExpiryTime < m.EarliestExpiry {
				m.EarliestExpiry = st.ExpiryTime
			}
		}
	}
	for i := range db.ClientMsgs {
		if len(db.ClientMsgs[i].Properties) > 1 {
			m.DeliveriesWithProperties++
		}
	}
	for i := range db.Clients {
		if iv := db.Clients[i].SessionExpiryInterval; iv != 0 && iv != 0xFFFFFFFF {
			m.SessionsExpiring++
		}
	}
	for i := range db.Subs {
		if db.Subs[i].Identifier != 0 {
			m.SubsWithID++
		}
		if db.Subs[i].Options&0x0c != 0 {
			m.SubsWithOptions++
		}
	}
	return m
}

// ChunkCounts counts chunks one per chunk read, like
// `mosquitto_db_dump --stats`, so the two can be compared directly.
type ChunkCounts struct {
	CFG       int `json:"cfg"`
	MsgStore  int `json:"msg_store"`
	ClientMsg int `json:"client_msg"`
	Retain    int `json:"retain"`
	Sub       int `json:"sub"`
	Client    int `json:"client"`
	Unknown   int `json:"unknown"`
}

// ClientStats is what one client has held in the file, split the way the
// queueing model splits it: queued (state 11) versus in flight (any other
// state), outgoing versus incoming.
type ClientStats struct {
	ClientID    string `json:"client_id"`
	HasRecord   bool   `json:"has_record"` // a CLIENT chunk exists (a persistent session)
	Subs        int    `json:"subs"`
	OutQueued   int64  `json:"out_queued"`
	OutInflight int64  `json:"out_inflight"`
	InQueued    int64  `json:"in_queued"`
	InInflight  int64  `json:"in_inflight"`
}

// Held counts outgoing deliveries (direction 1) without building Stats, for
// the broker and the sampler that need the numbers on every save.
func Held(db *DB) (held, queued, inflight int64) {
	for i := range db.ClientMsgs {
		m := &db.ClientMsgs[i]
		if m.Direction != DirOut {
			continue
		}
		held++
		if m.State == StateQueued {
			queued++
		} else {
			inflight++
		}
	}
	return held, queued, inflight
}

// Stats computes the numbers above in a few linear passes. For a DB that was
// not read from a file (Version 0), the CFG count is 1, the chunk Write emits.
func (db *DB) Stats() Stats {
	s := Stats{
		MQTT5:    mqtt5Stats(db),
		Version:  db.Version,
		LastDBID: db.LastDBID,
		Shutdown: db.Shutdown,
		Chunks: ChunkCounts{
			CFG:       db.CFGChunks,
			MsgStore:  len(db.Stores),
			ClientMsg: len(db.ClientMsgs),
			Retain:    len(db.Retains),
			Sub:       len(db.Subs),
			Client:    len(db.Clients),
			Unknown:   db.UnknownChunks,
		},
	}
	if db.Version == 0 {
		s.Chunks.CFG = 1
	}

	// Per client.
	byID := make(map[string]int, len(db.Clients)+1)
	clientAt := func(id string) *ClientStats {
		i, ok := byID[id]
		if !ok {
			i = len(s.Clients)
			byID[id] = i
			s.Clients = append(s.Clients, ClientStats{ClientID: id})
		}
		return &s.Clients[i]
	}
	for i := range db.Clients {
		clientAt(db.Clients[i].ClientID).HasRecord = true
	}
	lastIdx, lastID := -1, ""
	for i := range db.ClientMsgs {
		m := &db.ClientMsgs[i]
		if lastIdx < 0 || m.ClientID != lastID {
			clientAt(m.ClientID)
			lastIdx, lastID = byID[m.ClientID], m.ClientID
		}
		last := &s.Clients[lastIdx]
		queued := m.State == StateQueued
		switch {
		case m.Direction == DirOut && queued:
			last.OutQueued++
		case m.Direction == DirOut:
			last.OutInflight++
		case queued:
			last.InQueued++
		default:
			last.InInflight++
		}
		if m.Direction == DirOut {
			s.Held++
			if queued {
				s.Queued++
			} else {
				s.Inflight++
			}
		} else {
			s.Incoming++
		}
	}
	for i := range db.Subs {
		clientAt(db.Subs[i].ClientID).Subs++
	}

	// Stores: payload bytes, duplicates.
	defined := make(map[uint64]struct{}, len(db.Stores))
	seed := maphash.MakeSeed()
	firstByHash := make(map[uint64]int, len(db.Stores))
	var collided map[string]struct{} // exact keys, only after a hash collision
	for i := range db.Stores {
		m := &db.Stores[i]
		s.PayloadBytes += int64(len(m.Payload))
		if _, dup := defined[m.StoreID]; dup {
			s.DuplicateIDs++
			continue
		}
		defined[m.StoreID] = struct{}{}
		h := contentHash(seed, m)
		j, seen := firstByHash[h]
		switch {
		case !seen:
			firstByHash[h] = i
		case sameContent(m, &db.Stores[j]):
			s.DuplicateContent++
		default:
			if collided == nil {
				collided = make(map[string]struct{})
			}
			k := contentKey(m)
			if _, dup := collided[k]; dup {
				s.DuplicateContent++
			} else {
				collided[k] = struct{}{}
			}
		}
	}
	s.Duplicates = s.DuplicateIDs + s.DuplicateContent

	// References.
	referenced := make(map[uint64]struct{}, len(db.ClientMsgs)+len(db.Retains))
	ref := func(id uint64) {
		referenced[id] = struct{}{}
		if _, ok := defined[id]; !ok {
			s.Dangling++
		}
	}
	for i := range db.ClientMsgs {
		ref(db.ClientMsgs[i].StoreID)
	}
	for _, id := range db.Retains {
		ref(id)
	}
	for i := range db.Stores {
		if _, ok := referenced[db.Stores[i].StoreID]; !ok {
			s.Unreferenced++
		}
	}
	return s
}

func contentHash(seed maphash.Seed, m *MsgStore) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var n [8]byte
	n[0], n[1] = byte(m.SourceMid>>8), byte(m.SourceMid)
	n[2], n[3] = byte(len(m.Topic)>>8), byte(len(m.Topic))
	n[4], n[5] = byte(len(m.SourceID)>>8), byte(len(m.SourceID))
	_, _ = h.Write(n[:6])
	_, _ = h.WriteString(m.Topic)
	_, _ = h.WriteString(m.SourceID)
	_, _ = h.Write(m.Payload)
	return h.Sum64()
}

func sameContent(a, b *MsgStore) bool {
	return a.SourceMid == b.SourceMid && a.Topic == b.Topic && a.SourceID == b.SourceID &&
		bytes.Equal(a.Payload, b.Payload)
}

func contentKey(m *MsgStore) string {
	b := make([]byte, 0, 6+len(m.Topic)+len(m.SourceID)+len(m.Payload))
	b = append(b, byte(m.SourceMid>>8), byte(m.SourceMid),
		byte(len(m.Topic)>>8), byte(len(m.Topic)), byte(len(m.SourceID)>>8), byte(len(m.SourceID)))
	b = append(b, m.Topic...)
	b = append(b, m.SourceID...)
	b = append(b, m.Payload...)
	return string(b)
}

// MessageBytes is how many bytes of a format 6 file the messages take: every
// MSG_STORE and CLIENT_MSG chunk with its header. The rest of the file (header,
// CFG, clients, subscriptions, retained markers) is the fixed part, so
// (file size - MessageBytes) / held gives the true cost of one held message
// even when every save holds the same backlog and no line can be fitted.
func MessageBytes(db *DB) int64 {
	var n int64
	for i := range db.Stores {
		s := &db.Stores[i]
		n += ChunkHeaderSize + MsgStoreFixed + int64(len(s.SourceID)+len(s.SourceUsername)+len(s.Topic)+len(s.Payload)+len(s.Properties))
	}
	for i := range db.ClientMsgs {
		m := &db.ClientMsgs[i]
		n += ChunkHeaderSize + ClientMsgFixed + int64(len(m.ClientID)+len(m.Properties))
	}
	return n
}
