package persist

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// Magic is the 15-byte signature that opens every mosquitto.db, whatever its
// version; a reader checks it first so a wrong file fails fast and clearly.
var Magic = [15]byte{0x00, 0xB5, 0x00, 'm', 'o', 's', 'q', 'u', 'i', 't', 't', 'o', ' ', 'd', 'b'}

// WriteVersion is the only format Write produces: the one Mosquitto 2.0.x
// (and 1.6.11+) writes and reads, so a file from the bundled broker loads in a
// real Mosquitto.
const WriteVersion = 6

// Sizes of the fixed parts of format 5/6 chunks (the C structs as laid out on
// x86-64, padding included). Exported because file-size formulas in tests and
// reports are built from them rather than from measured output.
const (
	HeaderSize       = 15 + 4 + 4 // magic, CRC, version
	ChunkHeaderSize  = 8          // type u32, length u32
	CFGSize          = 16
	MsgStoreFixed    = 32
	ClientMsgFixed   = 16
	RetainSize       = 8
	SubFixed         = 12
	ClientFixed      = 24
	ClientFixedV5    = 16
	maxStr           = math.MaxUint16
	writeBufferBytes = 64 << 10
)

// Write encodes db in format 6 exactly as Mosquitto 2.0.11 does: header, CFG,
// every MSG_STORE in slice order (the broker keeps them newest first), then for
// each Client its CLIENT chunk followed by the ClientMsgs with that ClientID
// in slice order, then every SUB, then every RETAIN.
//
// ClientMsgs whose ClientID has no Client record are written after all
// clients, in slice order: Mosquitto never produces them, but dropping them
// silently would lose data, and a reader that does not know the client still
// sees them. If two Clients share an id, the messages follow the first.
//
// db.Version, CFGChunks and UnknownChunks are ignored; DBIDSize is always 8.
// Write buffers internally and flushes before returning.
func Write(w io.Writer, db *DB) error {
	if db == nil {
		return errors.New("writing db: nil db")
	}
	cw := chunkWriter{w: bufio.NewWriterSize(w, writeBufferBytes)}
	cw.header()
	cw.cfg(db)
	for i := range db.Stores {
		if err := cw.msgStore(&db.Stores[i]); err != nil {
			return fmt.Errorf("writing message store %d (id %d): %w", i, db.Stores[i].StoreID, err)
		}
	}
	order, orphanStart := groupClientMsgs(db)
	next := 0
	for ci := range db.Clients {
		if err := cw.client(&db.Clients[ci]); err != nil {
			return fmt.Errorf("writing client %d (%q): %w", ci, db.Clients[ci].ClientID, err)
		}
		for ; next < len(order) && order[next].bucket == int32(ci); next++ {
			if err := cw.clientMsg(&db.ClientMsgs[order[next].idx]); err != nil {
				return fmt.Errorf("writing client message %d: %w", order[next].idx, err)
			}
		}
	}
	for _, o := range order[orphanStart:] {
		if err := cw.clientMsg(&db.ClientMsgs[o.idx]); err != nil {
			return fmt.Errorf("writing client message %d: %w", o.idx, err)
		}
	}
	for i := range db.Subs {
		if err := cw.sub(&db.Subs[i]); err != nil {
			return fmt.Errorf("writing subscription %d (%q %q): %w", i, db.Subs[i].ClientID, db.Subs[i].Topic, err)
		}
	}
	for _, id := range db.Retains {
		cw.retain(id)
	}
	if cw.err != nil {
		return fmt.Errorf("writing db: %w", cw.err)
	}
	if err := cw.w.Flush(); err != nil {
		return fmt.Errorf("writing db: %w", err)
	}
	return nil
}

// msgRef places one ClientMsg in the write order: bucket is the index of its
// Client (len(db.Clients) for messages without one).
type msgRef struct {
	bucket int32
	idx    int32
}

// groupClientMsgs orders ClientMsgs by owning client with a stable counting
// sort (two passes, one allocation), so Write stays linear for 100,000
// messages and any number of clients. It returns the order and the index in
// it where messages without a Client record start.
func groupClientMsgs(db *DB) ([]msgRef, int) {
	nc := len(db.Clients)
	counts := make([]int, nc+2)
	refs := make([]msgRef, len(db.ClientMsgs))
	// Fast path: the common case is one client or messages already grouped
	// for the previous client, so remember the last lookup.
	var index map[string]int32
	if nc > 1 {
		index = make(map[string]int32, nc)
		for i := nc - 1; i >= 0; i-- {
			index[db.Clients[i].ClientID] = int32(i)
		}
	}
	lastID, lastBucket := "", int32(-1)
	for i := range db.ClientMsgs {
		id := db.ClientMsgs[i].ClientID
		b := int32(nc)
		switch {
		case lastBucket >= 0 && id == lastID:
			b = lastBucket
		case nc == 1:
			if id == db.Clients[0].ClientID {
				b = 0
			}
		case nc > 1:
			if ci, ok := index[id]; ok {
				b = ci
			}
		}
		lastID, lastBucket = id, b
		refs[i] = msgRef{bucket: b, idx: int32(i)}
		counts[b+1]++
	}
	for i := 1; i < len(counts); i++ {
		counts[i] += counts[i-1]
	}
	// counts[b] is now where bucket b starts; bucket nc holds the orphans.
	orphanStart := counts[nc]
	out := make([]msgRef, len(refs))
	for _, r := range refs {
		out[counts[r.bucket]] = r
		counts[r.bucket]++
	}
	return out, orphanStart
}

// chunkWriter writes chunks through a bufio.Writer, remembering the first
// error so the hot loop needs no per-call checks (bufio keeps failing once it
// has failed, so nothing is written after an error anyway).
type chunkWriter struct {
	w   *bufio.Writer
	err error
	buf [ChunkHeaderSize + MsgStoreFixed]byte
}

func (c *chunkWriter) raw(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

func (c *chunkWriter) str(s string) {
	if c.err == nil && s != "" {
		_, c.err = c.w.WriteString(s)
	}
}

func (c *chunkWriter) header() {
	var h [HeaderSize]byte
	copy(h[:], Magic[:])
	binary.BigEndian.PutUint32(h[19:], WriteVersion)
	c.raw(h[:])
}

// begin fills the chunk header into c.buf, zeroes the fixed part, and returns
// the fixed part to fill in.
func (c *chunkWriter) begin(typ uint32, fixed int, length uint64) []byte {
	b := c.buf[:ChunkHeaderSize+fixed]
	clear(b)
	binary.BigEndian.PutUint32(b[0:], typ)
	binary.BigEndian.PutUint32(b[4:], uint32(length))
	return b[ChunkHeaderSize:]
}

func (c *chunkWriter) cfg(db *DB) {
	f := c.begin(ChunkCFG, CFGSize, CFGSize)
	binary.LittleEndian.PutUint64(f[0:], db.LastDBID)
	if db.Shutdown {
		f[8] = 1
	}
	f[9] = 8 // dbid_size: sizeof(dbid_t)
	c.raw(c.buf[:ChunkHeaderSize+CFGSize])
}

// strLen checks that a string fits its uint16 length field.
func strLen(field, s string) (uint16, error) {
	if len(s) > maxStr {
		return 0, fmt.Errorf("%s is %d bytes, longer than %d", field, len(s), maxStr)
	}
	return uint16(len(s)), nil
}

func (c *chunkWriter) msgStore(m *MsgStore) error {
	idLen, err := strLen("source id", m.SourceID)
	if err != nil {
		return err
	}
	userLen, err := strLen("source username", m.SourceUsername)
	if err != nil {
		return err
	}
	topicLen, err := strLen("topic", m.Topic)
	if err != nil {
		return err
	}
	if uint64(len(m.Payload)) > math.MaxUint32 {
		return fmt.Errorf("payload is %d bytes, longer than %d", len(m.Payload), uint32(math.MaxUint32))
	}
	length := uint64(MsgStoreFixed) + uint64(idLen) + uint64(userLen) + uint64(topicLen) +
		uint64(len(m.Payload)) + uint64(len(m.Properties))
	if length > math.MaxUint32 {
		return fmt.Errorf("chunk is %d bytes, longer than %d", length, uint32(math.MaxUint32))
	}
	f := c.begin(ChunkMsgStore, MsgStoreFixed, length)
	binary.LittleEndian.PutUint64(f[0:], m.StoreID)
	binary.LittleEndian.PutUint64(f[8:], uint64(m.ExpiryTime))
	binary.BigEndian.PutUint32(f[16:], uint32(len(m.Payload)))
	binary.BigEndian.PutUint16(f[20:], m.SourceMid)
	binary.BigEndian.PutUint16(f[22:], idLen)
	binary.BigEndian.PutUint16(f[24:], userLen)
	binary.BigEndian.PutUint16(f[26:], topicLen)
	binary.BigEndian.PutUint16(f[28:], m.SourcePort)
	f[30] = m.QoS
	if m.Retain {
		f[31] = 1
	}
	c.raw(c.buf[:ChunkHeaderSize+MsgStoreFixed])
	c.str(m.SourceID)
	c.str(m.SourceUsername)
	c.str(m.Topic)
	c.raw(m.Payload)
	c.raw(m.Properties)
	return nil
}

func (c *chunkWriter) clientMsg(m *ClientMsg) error {
	idLen, err := strLen("client id", m.ClientID)
	if err != nil {
		return err
	}
	length := uint64(ClientMsgFixed) + uint64(idLen) + uint64(len(m.Properties))
	if length > math.MaxUint32 {
		return fmt.Errorf("chunk is %d bytes, longer than %d", length, uint32(math.MaxUint32))
	}
	f := c.begin(ChunkClientMsg, ClientMsgFixed, length)
	binary.LittleEndian.PutUint64(f[0:], m.StoreID)
	binary.BigEndian.PutUint16(f[8:], m.Mid)
	binary.BigEndian.PutUint16(f[10:], idLen)
	f[12] = m.QoS
	f[13] = m.State
	var rd uint8
	if m.Retain {
		rd |= 0x10
	}
	if m.Dup {
		rd |= 0x01
	}
	f[14] = rd
	f[15] = m.Direction
	c.raw(c.buf[:ChunkHeaderSize+ClientMsgFixed])
	c.str(m.ClientID)
	c.raw(m.Properties)
	return nil
}

func (c *chunkWriter) client(cl *Client) error {
	idLen, err := strLen("client id", cl.ClientID)
	if err != nil {
		return err
	}
	userLen, err := strLen("username", cl.Username)
	if err != nil {
		return err
	}
	f := c.begin(ChunkClient, ClientFixed, uint64(ClientFixed)+uint64(idLen)+uint64(userLen))
	binary.LittleEndian.PutUint64(f[0:], uint64(cl.SessionExpiryTime))
	binary.BigEndian.PutUint32(f[8:], cl.SessionExpiryInterval)
	binary.BigEndian.PutUint16(f[12:], cl.LastMid)
	binary.BigEndian.PutUint16(f[14:], idLen)
	binary.BigEndian.PutUint16(f[16:], cl.ListenerPort)
	binary.BigEndian.PutUint16(f[18:], userLen)
	c.raw(c.buf[:ChunkHeaderSize+ClientFixed])
	c.str(cl.ClientID)
	c.str(cl.Username)
	return nil
}

func (c *chunkWriter) sub(s *Sub) error {
	idLen, err := strLen("client id", s.ClientID)
	if err != nil {
		return err
	}
	topicLen, err := strLen("topic filter", s.Topic)
	if err != nil {
		return err
	}
	f := c.begin(ChunkSub, SubFixed, uint64(SubFixed)+uint64(idLen)+uint64(topicLen))
	binary.BigEndian.PutUint32(f[0:], s.Identifier)
	binary.BigEndian.PutUint16(f[4:], idLen)
	binary.BigEndian.PutUint16(f[6:], topicLen)
	f[8] = s.QoS
	f[9] = s.Options
	c.raw(c.buf[:ChunkHeaderSize+SubFixed])
	c.str(s.ClientID)
	c.str(s.Topic)
	return nil
}

func (c *chunkWriter) retain(id uint64) {
	f := c.begin(ChunkRetain, RetainSize, RetainSize)
	binary.LittleEndian.PutUint64(f[0:], id)
	c.raw(c.buf[:ChunkHeaderSize+RetainSize])
}

// WriteFile saves db to path the way Mosquitto does, so a crash mid-save never
// leaves a half-written file behind: remove a stale <path>.new, write
// <path>.new with mode 0600, flush and fsync it, rename it over path, then
// fsync the directory (Mosquitto skips that step; without it the rename may
// not survive a power loss). On any error before the rename the old file is
// untouched and <path>.new is removed.
func WriteFile(path string, db *DB) (err error) {
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale %s: %w", tmp, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := Write(f, db); err != nil {
		return fmt.Errorf("saving %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp, path, err)
	}
	renamed = true
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("saved %s but syncing its directory: %w", path, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
