package persist

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
)

// FormatError says where and why a persistence file could not be decoded.
// The byte offset lets a user look at the damage with a hex dump instead of
// guessing; Offset is the start of the chunk (or header field) that failed.
type FormatError struct {
	Offset int64
	Msg    string
}

// Error reads "<what went wrong> at offset N", the form `mqbench inspect`
// and the broker print after "reading FILE: ".
func (e *FormatError) Error() string {
	return fmt.Sprintf("%s at offset %d", e.Msg, e.Offset)
}

func formatErr(off int, format string, args ...any) *FormatError {
	return &FormatError{Offset: int64(off), Msg: fmt.Sprintf(format, args...)}
}

// ChunkName is the name Mosquitto's sources use for a chunk type, for error
// messages and reports that a reader can match against mosquitto_db_dump.
func ChunkName(typ uint32) string {
	switch typ {
	case ChunkCFG:
		return "CFG"
	case ChunkMsgStore:
		return "MSG_STORE"
	case ChunkClientMsg:
		return "CLIENT_MSG"
	case ChunkRetain:
		return "RETAIN"
	case ChunkSub:
		return "SUB"
	case ChunkClient:
		return "CLIENT"
	}
	return fmt.Sprintf("unknown type %d", typ)
}

// Read decodes a whole persistence file of format 2 to 6 from r. It reads r
// to the end first, so no length field in the file can make it allocate more
// than the input holds. Decoding errors are *FormatError.
func Read(r io.Reader) (*DB, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading db: %w", err)
	}
	return Parse(data)
}

// ReadFile decodes the persistence file at path; errors name the path, and
// decoding errors wrap a *FormatError with the offset.
func ReadFile(path string) (*DB, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	db, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return db, nil
}

// Parse decodes a persistence file held in memory (formats 2 to 6). The
// returned DB's payloads and properties alias data (capacity-limited, so an
// append never overwrites the rest of data); copy them before reusing data.
//
// Formats 5 and 6 honour each chunk's length: a known chunk whose fields do not
// fit is an error, bytes after the known fields of a chunk without properties
// are skipped. Formats 2 to 4 parse known chunks field by field and ignore their
// length, as Mosquitto does. Unknown chunk types are skipped by length in all
// versions and counted in UnknownChunks. Store references are not resolved
// here (Stats reports dangling ones): the codec keeps everything it read.
// ParseChecked reads the same bytes as Mosquitto's loader does instead.
func Parse(data []byte) (*DB, error) {
	return parse(data, nil)
}

// parse is the one decoder behind Parse and ParseChecked; chk is nil for
// Parse and otherwise switches the walk to Mosquitto's where the two differ.
func parse(data []byte, chk *checker) (*DB, error) {
	if len(data) < len(Magic) {
		if bytes.HasPrefix(Magic[:], data) {
			return nil, formatErr(0, "truncated header (%d of %d bytes)", len(data), HeaderSize)
		}
		return nil, formatErr(0, "bad magic: not a mosquitto persistence file")
	}
	if !bytes.Equal(data[:len(Magic)], Magic[:]) {
		return nil, formatErr(0, "bad magic: not a mosquitto persistence file")
	}
	if len(data) < HeaderSize {
		return nil, formatErr(0, "truncated header (%d of %d bytes)", len(data), HeaderSize)
	}
	d := decoder{
		data:   data,
		db:     &DB{Version: binary.BigEndian.Uint32(data[19:])},
		intern: make(map[string]string),
		chk:    chk,
	}
	var err error
	switch d.db.Version {
	case 5, 6:
		err = d.v56()
	case 2, 3, 4:
		err = d.v234()
	default:
		return nil, formatErr(19, "unsupported version %d", d.db.Version)
	}
	if err != nil {
		return nil, err
	}
	return d.db, nil
}

// decoder holds the input and the DB being filled.
type decoder struct {
	data   []byte
	db     *DB
	intern map[string]string
	chk    *checker
}

// fixedLayout reports the format 5/6 chunk types Mosquitto reads field by
// field without looking at their length.
func fixedLayout(typ uint32) bool {
	return typ == ChunkCFG || typ == ChunkRetain || typ == ChunkSub || typ == ChunkClient
}

// maxPayload is MQTT's largest payload; Mosquitto refuses a stored one above.
const maxPayload = 268435455

// endOfChunks handles bytes at off too short for a chunk header: Parse
// refuses them, Mosquitto's loader stops reading there.
func (d *decoder) endOfChunks(off, header int) error {
	if d.chk == nil {
		return formatErr(off, "truncated chunk header (%d of %d bytes)", len(d.data)-off, header)
	}
	d.chk.problem(off, "", true, "%d trailing bytes are too short for a chunk header; ignored", len(d.data)-off)
	return nil
}

// unknownPastEnd handles an unknown chunk whose length runs past the end of
// the file: Parse refuses it, Mosquitto seeks past the end and stops.
func (d *decoder) unknownPastEnd(start int, typ, length uint32, left int) error {
	if d.chk == nil {
		return formatErr(start, "truncated %s chunk (length %d, %d bytes left)", ChunkName(typ), length, left)
	}
	d.db.UnknownChunks++
	d.chk.problem(start, ChunkName(typ), true, "unknown chunk of length %d with only %d bytes left in the file; skipped to the end", length, left)
	return nil
}

// Interning bounds: client ids, source ids and topics repeat on every
// message, so sharing one string per value saves most of the allocations
// without letting a hostile file grow the table without bound.
const (
	internMaxLen     = 64
	internMaxEntries = 4096
)

func (d *decoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > internMaxLen {
		return string(b)
	}
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.intern) < internMaxEntries {
		d.intern[s] = s
	}
	return s
}

// bytesAt returns data[a:b] with its capacity limited to its length, or nil
// when empty.
func (d *decoder) bytesAt(a, b int) []byte {
	if a == b {
		return nil
	}
	return d.data[a:b:b]
}

// minChunkLen is the fixed part of each format 5/6 chunk type (CLIENT as in
// format 5, the shorter one).
var minChunkLen = [ChunkClient + 1]uint32{
	ChunkCFG: CFGSize, ChunkMsgStore: MsgStoreFixed, ChunkClientMsg: ClientMsgFixed,
	ChunkRetain: RetainSize, ChunkSub: SubFixed, ChunkClient: ClientFixedV5,
}

// prescan counts the chunks of a 5/6 file so the slices are allocated once.
// The counts are bounded by the input size (every chunk has an 8-byte header);
// it stops silently at the first bad header, which the real pass reports.
func (d *decoder) prescan() {
	var n [ChunkClient + 1]int
	for off := HeaderSize; len(d.data)-off >= ChunkHeaderSize; {
		typ := binary.BigEndian.Uint32(d.data[off:])
		length := binary.BigEndian.Uint32(d.data[off+4:])
		off += ChunkHeaderSize
		if uint64(length) > uint64(len(d.data)-off) {
			break
		}
		off += int(length)
		// Count only chunks long enough to decode, so a file of empty
		// chunk headers cannot make us reserve many times its size.
		if typ <= ChunkClient && length >= minChunkLen[typ] {
			n[typ]++
		}
	}
	db := d.db
	db.Stores = make([]MsgStore, 0, n[ChunkMsgStore])
	db.ClientMsgs = make([]ClientMsg, 0, n[ChunkClientMsg])
	db.Clients = make([]Client, 0, n[ChunkClient])
	db.Subs = make([]Sub, 0, n[ChunkSub])
	db.Retains = make([]uint64, 0, n[ChunkRetain])
}

func (d *decoder) v56() error {
	d.prescan()
	data := d.data
	le, be := binary.LittleEndian, binary.BigEndian
	for off := HeaderSize; off < len(data); {
		start := off
		if len(data)-off < ChunkHeaderSize {
			return d.endOfChunks(start, ChunkHeaderSize)
		}
		typ := be.Uint32(data[off:])
		length := be.Uint32(data[off+4:])
		body := off + ChunkHeaderSize
		// Mosquitto reads fixed-layout chunks up to where their fields
		// end, whatever the length says: let them run to the end of the
		// file and move on after the fields (fieldsAt, below).
		loose := d.chk != nil && fixedLayout(typ)
		declared := length
		if loose {
			length = uint32(min(len(data)-body, math.MaxUint32))
		}
		if uint64(length) > uint64(len(data)-body) {
			if typ == 0 || typ > ChunkClient {
				return d.unknownPastEnd(start, typ, length, len(data)-body)
			}
			return formatErr(start, "truncated %s chunk (length %d, %d bytes left)", ChunkName(typ), length, len(data)-body)
		}
		end := body + int(length)
		off = end
		// fieldsAt moves a loose chunk's successor to the end of its fields
		// and notes a length that disagrees with them.
		fieldsAt := func(fieldsEnd int) {
			if !loose {
				return
			}
			off = fieldsEnd
			if n := uint32(fieldsEnd - body); n != declared {
				d.chk.problem(start, ChunkName(typ), false,
					"length %d but its fields take %d bytes; reading goes on after the fields, as Mosquitto does", declared, n)
			}
		}
		// need checks that the fixed part plus the variable lengths fit the
		// chunk; the lengths are at most 2^32+4*2^16, no overflow on int64.
		need := func(fixed int, vars ...uint32) (int, error) {
			n := int64(fixed)
			for _, v := range vars {
				n += int64(v)
			}
			if n > int64(length) {
				if loose {
					return 0, formatErr(start, "truncated %s chunk (fields need %d bytes, %d left in the file)", ChunkName(typ), n, length)
				}
				if int64(length) < int64(fixed) {
					return 0, formatErr(start, "%s chunk too short (length %d, fixed part is %d bytes)", ChunkName(typ), length, fixed)
				}
				return 0, formatErr(start, "%s chunk fields need %d bytes but its length is %d", ChunkName(typ), n, length)
			}
			return body + int(n), nil
		}
		f := data[body:end]
		switch typ {
		case ChunkCFG:
			if _, err := need(CFGSize); err != nil {
				return err
			}
			if f[9] != 8 {
				return formatErr(body+9, "CFG chunk: dbid_size %d, expected 8", f[9])
			}
			d.db.CFGChunks++
			d.db.LastDBID = le.Uint64(f[0:])
			d.db.Shutdown = f[8] != 0
			d.db.DBIDSize = f[9]
			if d.chk != nil {
				d.chk.cfg(d.db.LastDBID)
				fieldsAt(body + CFGSize)
			}
		case ChunkMsgStore:
			if _, err := need(MsgStoreFixed); err != nil {
				return err
			}
			payloadLen := be.Uint32(f[16:])
			if d.chk != nil && payloadLen > maxPayload {
				return formatErr(start, "MSG_STORE chunk: payload length %d is more than MQTT allows", payloadLen)
			}
			idLen, userLen, topicLen := be.Uint16(f[22:]), be.Uint16(f[24:]), be.Uint16(f[26:])
			fieldsEnd, err := need(MsgStoreFixed, uint32(idLen), uint32(userLen), uint32(topicLen), payloadLen)
			if err != nil {
				return err
			}
			p := body + MsgStoreFixed
			m := MsgStore{
				StoreID:    le.Uint64(f[0:]),
				ExpiryTime: int64(le.Uint64(f[8:])),
				SourceMid:  be.Uint16(f[20:]),
				SourcePort: be.Uint16(f[28:]),
				QoS:        f[30],
				Retain:     f[31] != 0,
			}
			m.SourceID = d.str(data[p : p+int(idLen)])
			p += int(idLen)
			m.SourceUsername = d.str(data[p : p+int(userLen)])
			p += int(userLen)
			m.Topic = d.str(data[p : p+int(topicLen)])
			p += int(topicLen)
			m.Payload = d.bytesAt(p, fieldsEnd)
			m.Properties = d.bytesAt(fieldsEnd, end)
			if d.chk != nil {
				if err := d.chk.store(d.db, start, &m); err != nil {
					return err
				}
			}
			d.db.Stores = append(d.db.Stores, m)
		case ChunkClientMsg:
			if _, err := need(ClientMsgFixed); err != nil {
				return err
			}
			idLen := be.Uint16(f[10:])
			fieldsEnd, err := need(ClientMsgFixed, uint32(idLen))
			if err != nil {
				return err
			}
			p := body + ClientMsgFixed
			m := ClientMsg{
				StoreID:    le.Uint64(f[0:]),
				Mid:        be.Uint16(f[8:]),
				QoS:        f[12],
				State:      f[13],
				Retain:     f[14]&0xF0 != 0,
				Dup:        f[14]&0x0F != 0,
				Direction:  f[15],
				ClientID:   d.str(data[p:fieldsEnd]),
				Properties: d.bytesAt(fieldsEnd, end),
			}
			if d.chk != nil {
				if keep, err := d.chk.clientMsg(start, &m); !keep {
					if err != nil {
						return err
					}
					continue
				}
			}
			d.db.ClientMsgs = append(d.db.ClientMsgs, m)
		case ChunkRetain:
			if _, err := need(RetainSize); err != nil {
				return err
			}
			id := le.Uint64(f[0:])
			if d.chk != nil {
				fieldsAt(body + RetainSize)
				if !d.chk.retain(start, id) {
					continue
				}
			}
			d.db.Retains = append(d.db.Retains, id)
		case ChunkSub:
			if _, err := need(SubFixed); err != nil {
				return err
			}
			idLen, topicLen := be.Uint16(f[4:]), be.Uint16(f[6:])
			fieldsEnd, err := need(SubFixed, uint32(idLen), uint32(topicLen))
			if err != nil {
				return err
			}
			p := body + SubFixed
			s := Sub{
				Identifier: be.Uint32(f[0:]),
				QoS:        f[8],
				Options:    f[9],
				ClientID:   d.str(data[p : p+int(idLen)]),
				Topic:      d.str(data[p+int(idLen) : p+int(idLen)+int(topicLen)]),
			}
			if d.chk != nil {
				if err := d.chk.sub(start, &s); err != nil {
					return err
				}
				fieldsAt(fieldsEnd)
			}
			d.db.Subs = append(d.db.Subs, s)
		case ChunkClient:
			fixed := ClientFixed
			if d.db.Version == 5 {
				fixed = ClientFixedV5
			}
			if _, err := need(fixed); err != nil {
				return err
			}
			idLen := be.Uint16(f[14:])
			var userLen uint16
			c := Client{
				SessionExpiryTime:     int64(le.Uint64(f[0:])),
				SessionExpiryInterval: be.Uint32(f[8:]),
				LastMid:               be.Uint16(f[12:]),
			}
			if d.db.Version == 6 {
				c.ListenerPort = be.Uint16(f[16:])
				userLen = be.Uint16(f[18:])
			}
			if d.chk != nil && idLen == 0 {
				// Mosquitto gives up on the entry before reading its
				// username, and reads on from there.
				userLen = 0
			}
			fieldsEnd, err := need(fixed, uint32(idLen), uint32(userLen))
			if err != nil {
				return err
			}
			p := body + fixed
			c.ClientID = d.str(data[p : p+int(idLen)])
			c.Username = d.str(data[p+int(idLen) : p+int(idLen)+int(userLen)])
			if d.chk != nil {
				fieldsAt(fieldsEnd)
				if !d.chk.client(d.db, start, &c) {
					continue
				}
			}
			d.db.Clients = append(d.db.Clients, c)
		default:
			d.db.UnknownChunks++
			if d.chk != nil {
				d.chk.problem(start, ChunkName(typ), true, "unknown chunk (%d bytes); skipped", length)
			}
		}
	}
	return nil
}
