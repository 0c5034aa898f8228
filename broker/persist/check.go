package persist

import (
	"fmt"
	"os"
	"sort"
)

// Problem is one thing wrong with a persistence file that a loader works
// around rather than refuses: what Mosquitto 2.0.11 skips, drops or repairs
// when it restores the file, mostly without a word. Reporting each one with
// its offset is what lets a broker announce every byte it will not keep, and
// a user find the damage with a hex dump.
type Problem struct {
	Offset int64  `json:"offset"` // start of the chunk (or trailing bytes) concerned
	Chunk  string `json:"chunk"`  // chunk name as ChunkName gives it; "" for the file itself
	What   string `json:"what"`   // what is wrong and what loading does about it
	// Dropped is true when loading loses what the chunk held; false for
	// repairs (renumbering, merging, a session created) and for bytes that
	// held nothing the loader understands.
	Dropped bool `json:"dropped"`
}

// String reads "offset N, CHUNK chunk: what", the form logs and
// `mqbench inspect` print.
func (p Problem) String() string {
	if p.Chunk == "" {
		return fmt.Sprintf("offset %d: %s", p.Offset, p.What)
	}
	return fmt.Sprintf("offset %d, %s chunk: %s", p.Offset, p.Chunk, p.What)
}

// Checked is a persistence file as Mosquitto 2.0.11's loader restores it.
// DB holds exactly what that loader keeps: entries it drops are left out (and
// described in Problems), repairs are applied. The other fields let a loader
// with stricter rules of its own still name the offset of what it skips,
// and resolve references the way Mosquitto does without looking ids up again.
type Checked struct {
	DB       *DB
	Problems []Problem // in file order
	Offsets  Offsets
	// ClientMsgStore[i] is the index in DB.Stores of the message that
	// DB.ClientMsgs[i] delivers, RetainStore[i] that of DB.Retains[i]: the
	// latest MSG_STORE with that id before the reference, which is what
	// Mosquitto resolves to when a store id occurs twice.
	ClientMsgStore []int
	RetainStore    []int
}

// Offsets gives the chunk offset of every entry in a Checked DB, parallel to
// its slices.
type Offsets struct {
	Stores     []int64
	Clients    []int64 // a session created for a client without CLIENT: its first reference
	ClientMsgs []int64
	Subs       []int64
	Retains    []int64
}

// ReadChecked reads the file at path the way ParseChecked does. Errors name
// the path; a file it refuses wraps a *FormatError with the offset.
func ReadChecked(path string) (*Checked, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	c, err := ParseChecked(data)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return c, nil
}

// ParseChecked decodes data as Mosquitto 2.0.11 restores it, with the same
// parser as Parse, and returns an error exactly where that loader refuses the
// file (truncated or overlong fields, bad magic, unknown version, dbid_size
// other than 8, malformed MQTT 5 properties, a SUB with an empty client id
// or topic, on which it aborts, a format 2-4 CLIENT with an empty id). Where
// it goes on instead, ParseChecked follows it and records a Problem:
//
//   - an empty file loads as an empty database;
//   - trailing bytes too short for a chunk header end the file;
//   - unknown chunk types are skipped by their length, which may run past
//     the end of the file;
//   - CFG, RETAIN, SUB and CLIENT chunks of formats 5 and 6 are read field by
//     field whatever their length says, and reading goes on after the fields
//     (the same bytes as Parse only when the length is right);
//   - a CLIENT_MSG or RETAIN whose store id no earlier MSG_STORE defines, and
//     a CLIENT or CLIENT_MSG with an empty client id, are dropped;
//   - a MSG_STORE with store id 0 is given the next id, a store id defined
//     twice makes later references use the later definition, a second CLIENT
//     for a client is merged into the first, and a client that has deliveries
//     or subscriptions but no CLIENT chunk gets a session with expiry
//     interval 0 (appended to DB.Clients).
//
// Parse keeps its stricter contract (it refuses what it cannot account for
// and keeps every entry it read); ParseChecked is for loading and inspecting.
func ParseChecked(data []byte) (*Checked, error) {
	if len(data) == 0 {
		c := &Checked{DB: &DB{Version: WriteVersion, DBIDSize: 8}}
		c.Problems = []Problem{{What: "the file is empty; loaded as an empty database"}}
		return c, nil
	}
	chk := &checker{
		res:     &Checked{},
		stores:  make(map[uint64]int),
		clients: make(map[string]int),
		refs:    make(map[string]clientRef),
	}
	db, err := parse(data, chk)
	if err != nil {
		return nil, err
	}
	chk.finish(db)
	chk.res.DB = db
	return chk.res, nil
}

// checker carries the loader's view while the decoder walks the chunks:
// Mosquitto resolves every reference against what it has read so far.
type checker struct {
	res      *Checked
	lastID   uint64               // Mosquitto's store id counter: CFG, then renumbering
	stores   map[uint64]int       // store id -> index in db.Stores of its latest definition
	clients  map[string]int       // client id -> index in db.Clients
	refs     map[string]clientRef // client id -> first CLIENT_MSG or SUB naming it
	refOrder []string
}

func (c *checker) problem(off int, chunk string, dropped bool, format string, args ...any) {
	c.res.Problems = append(c.res.Problems, Problem{
		Offset: int64(off), Chunk: chunk, Dropped: dropped, What: fmt.Sprintf(format, args...),
	})
}

func (c *checker) cfg(last uint64) { c.lastID = last }

// store vets a MSG_STORE about to be appended to db.Stores.
func (c *checker) store(db *DB, off int, m *MsgStore) error {
	if len(m.Properties) > 0 {
		if err := checkPublishProps(m.Properties); err != nil {
			return formatErr(off, "MSG_STORE chunk: invalid properties: %v", err)
		}
	}
	if m.StoreID == 0 {
		c.lastID++
		m.StoreID = c.lastID
		c.problem(off, "MSG_STORE", false, "store id 0 (on topic %q) cannot be referenced; renumbered %d, as Mosquitto does", m.Topic, m.StoreID)
	}
	if prev, dup := c.stores[m.StoreID]; dup {
		c.problem(off, "MSG_STORE", false, "store id %d is defined again (first at offset %d); references after this chunk use this one", m.StoreID, c.res.Offsets.Stores[prev])
	}
	c.stores[m.StoreID] = len(db.Stores)
	c.res.Offsets.Stores = append(c.res.Offsets.Stores, int64(off))
	return nil
}

// clientMsg vets a CLIENT_MSG; keep is false when Mosquitto drops it.
func (c *checker) clientMsg(off int, m *ClientMsg) (keep bool, err error) {
	if len(m.Properties) > 0 {
		if err := checkPublishProps(m.Properties); err != nil {
			return false, formatErr(off, "CLIENT_MSG chunk: invalid properties: %v", err)
		}
	}
	idx, ok := c.stores[m.StoreID]
	if !ok {
		c.problem(off, "CLIENT_MSG", true, "delivery of store id %d to client %q (mid %d, %s) refers to no earlier MSG_STORE; dropped",
			m.StoreID, m.ClientID, m.Mid, direction(m.Direction))
		return false, nil
	}
	if m.ClientID == "" {
		c.problem(off, "CLIENT_MSG", true, "delivery of store id %d (mid %d) has an empty client id; dropped", m.StoreID, m.Mid)
		return false, nil
	}
	c.ref(off, "CLIENT_MSG", m.ClientID)
	c.res.ClientMsgStore = append(c.res.ClientMsgStore, idx)
	c.res.Offsets.ClientMsgs = append(c.res.Offsets.ClientMsgs, int64(off))
	return true, nil
}

func direction(d uint8) string {
	if d == DirIn {
		return "incoming"
	}
	return "outgoing"
}

// retain vets a RETAIN; keep is false when Mosquitto drops it.
func (c *checker) retain(off int, id uint64) bool {
	idx, ok := c.stores[id]
	if !ok {
		c.problem(off, "RETAIN", true, "retained message store id %d refers to no earlier MSG_STORE; dropped", id)
		return false
	}
	c.res.RetainStore = append(c.res.RetainStore, idx)
	c.res.Offsets.Retains = append(c.res.Offsets.Retains, int64(off))
	return true
}

// sub vets a SUB: Mosquitto 2.0.11 aborts on an empty client id or topic
// (an assertion), so such a file is refused rather than guessed at.
func (c *checker) sub(off int, s *Sub) error {
	if s.ClientID == "" {
		return formatErr(off, "SUB chunk with an empty client id (topic %q)", s.Topic)
	}
	if s.Topic == "" {
		return formatErr(off, "SUB chunk with an empty topic (client %q)", s.ClientID)
	}
	c.ref(off, "SUB", s.ClientID)
	c.res.Offsets.Subs = append(c.res.Offsets.Subs, int64(off))
	return nil
}

// client vets a CLIENT; keep is false when it is dropped or merged into an
// earlier CLIENT for the same id (as Mosquitto's context lookup merges).
func (c *checker) client(db *DB, off int, cl *Client) bool {
	if cl.ClientID == "" {
		c.problem(off, "CLIENT", true, "empty client id (username %q, last mid %d); dropped", cl.Username, cl.LastMid)
		return false
	}
	i, dup := c.clients[cl.ClientID]
	if !dup {
		c.clients[cl.ClientID] = len(db.Clients)
		c.res.Offsets.Clients = append(c.res.Offsets.Clients, int64(off))
		return true
	}
	first := &db.Clients[i]
	if cl.LastMid != 0 {
		first.LastMid = cl.LastMid
	}
	first.SessionExpiryTime = cl.SessionExpiryTime
	first.SessionExpiryInterval = cl.SessionExpiryInterval
	if first.Username == "" {
		first.Username = cl.Username
	}
	c.problem(off, "CLIENT", false, "client %q has an earlier CLIENT chunk; merged into it", cl.ClientID)
	return false
}

// clientRef is where a client id first occurred outside a CLIENT chunk.
type clientRef struct {
	off   int
	chunk string
}

func (c *checker) ref(off int, chunk, id string) {
	if _, ok := c.refs[id]; !ok {
		c.refs[id] = clientRef{off, chunk}
		c.refOrder = append(c.refOrder, id)
	}
}

// finish creates the sessions Mosquitto creates for clients known only from
// their deliveries or subscriptions, and sorts the problems into file order.
func (c *checker) finish(db *DB) {
	for _, id := range c.refOrder {
		if _, ok := c.clients[id]; ok {
			continue
		}
		r := c.refs[id]
		c.problem(r.off, r.chunk, false, "client %q has no CLIENT chunk; a session (expiry interval 0) is created for it, as Mosquitto does", id)
		c.clients[id] = len(db.Clients)
		c.res.Offsets.Clients = append(c.res.Offsets.Clients, int64(r.off))
		db.Clients = append(db.Clients, Client{ClientID: id})
	}
	sort.SliceStable(c.res.Problems, func(i, j int) bool { return c.res.Problems[i].Offset < c.res.Problems[j].Offset })
}
