package persist

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
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
func Parse(data []byte) (*DB, error) {
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
			return formatErr(start, "truncated chunk header (%d of %d bytes)", len(data)-off, ChunkHeaderSize)
		}
		typ := be.Uint32(data[off:])
		length := be.Uint32(data[off+4:])
		body := off + ChunkHeaderSize
		if uint64(length) > uint64(len(data)-body) {
			return formatErr(start, "truncated %s chunk (length %d, %d bytes left)", ChunkName(typ), length, len(data)-body)
		}
		end := body + int(length)
		off = end
		// need checks that the fixed part plus the variable lengths fit the
		// chunk; the lengths are at most 2^32+4*2^16, no overflow on int64.
		need := func(fixed int, vars ...uint32) (int, error) {
			n := int64(fixed)
			for _, v := range vars {
				n += int64(v)
			}
			if n > int64(length) {
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
		case ChunkMsgStore:
			if _, err := need(MsgStoreFixed); err != nil {
				return err
			}
			payloadLen := be.Uint32(f[16:])
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
			d.db.ClientMsgs = append(d.db.ClientMsgs, ClientMsg{
				StoreID:    le.Uint64(f[0:]),
				Mid:        be.Uint16(f[8:]),
				QoS:        f[12],
				State:      f[13],
				Retain:     f[14]&0xF0 != 0,
				Dup:        f[14]&0x0F != 0,
				Direction:  f[15],
				ClientID:   d.str(data[p:fieldsEnd]),
				Properties: d.bytesAt(fieldsEnd, end),
			})
		case ChunkRetain:
			if _, err := need(RetainSize); err != nil {
				return err
			}
			d.db.Retains = append(d.db.Retains, le.Uint64(f[0:]))
		case ChunkSub:
			if _, err := need(SubFixed); err != nil {
				return err
			}
			idLen, topicLen := be.Uint16(f[4:]), be.Uint16(f[6:])
			if _, err := need(SubFixed, uint32(idLen), uint32(topicLen)); err != nil {
				return err
			}
			p := body + SubFixed
			d.db.Subs = append(d.db.Subs, Sub{
				Identifier: be.Uint32(f[0:]),
				QoS:        f[8],
				Options:    f[9],
				ClientID:   d.str(data[p : p+int(idLen)]),
				Topic:      d.str(data[p+int(idLen) : p+int(idLen)+int(topicLen)]),
			})
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
			if _, err := need(fixed, uint32(idLen), uint32(userLen)); err != nil {
				return err
			}
			p := body + fixed
			c.ClientID = d.str(data[p : p+int(idLen)])
			c.Username = d.str(data[p+int(idLen) : p+int(idLen)+int(userLen)])
			d.db.Clients = append(d.db.Clients, c)
		default:
			d.db.UnknownChunks++
		}
	}
	return nil
}

// fieldReader reads the field-by-field chunks of formats 2 to 4. Any read
// past the end of the input fails with the chunk's offset and name.
type fieldReader struct {
	d     *decoder
	off   int
	start int
	name  string
	err   error
}

func (r *fieldReader) take(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.d.data)-r.off {
		r.err = formatErr(r.start, "truncated %s chunk (%s at offset %d needs %d bytes, %d left)",
			r.name, field, r.off, n, len(r.d.data)-r.off)
		return nil
	}
	b := r.d.data[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

func (r *fieldReader) u8(field string) uint8 {
	if b := r.take(1, field); b != nil {
		return b[0]
	}
	return 0
}

func (r *fieldReader) u16(field string) uint16 {
	if b := r.take(2, field); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *fieldReader) u32(field string) uint32 {
	if b := r.take(4, field); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// u64 reads a 64-bit field in the writer's host order (little-endian on
// every platform Mosquitto is deployed on that matters here).
func (r *fieldReader) u64(field string) uint64 {
	if b := r.take(8, field); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *fieldReader) str16(field string) string {
	n := r.u16(field + " length")
	if b := r.take(int(n), field); len(b) > 0 {
		return r.d.str(b)
	}
	return ""
}

func (d *decoder) v234() error {
	data := d.data
	version := d.db.Version
	for off := HeaderSize; off < len(data); {
		start := off
		if len(data)-off < 6 {
			return formatErr(start, "truncated chunk header (%d of 6 bytes)", len(data)-off)
		}
		typ := uint32(binary.BigEndian.Uint16(data[off:]))
		length := binary.BigEndian.Uint32(data[off+2:])
		r := fieldReader{d: d, off: off + 6, start: start, name: ChunkName(typ)}
		switch typ {
		case ChunkCFG:
			shutdown := r.u8("shutdown")
			size := r.u8("dbid_size")
			if r.err == nil && size != 8 {
				return formatErr(start+7, "CFG chunk: dbid_size %d, expected 8", size)
			}
			last := r.u64("last_db_id")
			if r.err == nil {
				d.db.CFGChunks++
				d.db.Shutdown = shutdown != 0
				d.db.DBIDSize = size
				d.db.LastDBID = last
			}
		case ChunkMsgStore:
			var m MsgStore
			m.StoreID = r.u64("store_id")
			m.SourceID = r.str16("source_id")
			if version == 4 {
				m.SourceUsername = r.str16("source_username")
				m.SourcePort = r.u16("source_port")
			}
			m.SourceMid = r.u16("source_mid")
			r.u16("mid")
			m.Topic = r.str16("topic")
			m.QoS = r.u8("qos")
			m.Retain = r.u8("retain") != 0
			n := r.u32("payloadlen")
			if r.err == nil && uint64(n) > uint64(len(data)-r.off) {
				return formatErr(start, "truncated MSG_STORE chunk (payload at offset %d needs %d bytes, %d left)", r.off, n, len(data)-r.off)
			}
			if p := r.take(int(n), "payload"); len(p) > 0 {
				m.Payload = p
			}
			if r.err == nil {
				d.db.Stores = append(d.db.Stores, m)
			}
		case ChunkClientMsg:
			var m ClientMsg
			m.ClientID = r.str16("client_id")
			m.StoreID = r.u64("store_id")
			m.Mid = r.u16("mid")
			m.QoS = r.u8("qos")
			m.Retain = r.u8("retain") != 0
			m.Direction = r.u8("direction")
			m.State = r.u8("state")
			m.Dup = r.u8("dup") != 0
			if r.err == nil {
				d.db.ClientMsgs = append(d.db.ClientMsgs, m)
			}
		case ChunkRetain:
			id := r.u64("store_id")
			if r.err == nil {
				d.db.Retains = append(d.db.Retains, id)
			}
		case ChunkSub:
			var s Sub
			s.ClientID = r.str16("client_id")
			s.Topic = r.str16("topic")
			s.QoS = r.u8("qos")
			if r.err == nil {
				d.db.Subs = append(d.db.Subs, s)
			}
		case ChunkClient:
			var c Client
			c.ClientID = r.str16("client_id")
			c.LastMid = r.u16("last_mid")
			if version != 2 {
				c.DisconnectTime = int64(r.u64("disconnect_t"))
			}
			if r.err == nil {
				d.db.Clients = append(d.db.Clients, c)
			}
		default:
			if uint64(length) > uint64(len(data)-r.off) {
				return formatErr(start, "truncated %s chunk (length %d, %d bytes left)", ChunkName(typ), length, len(data)-r.off)
			}
			r.off += int(length)
			d.db.UnknownChunks++
		}
		if r.err != nil {
			return r.err
		}
		off = r.off
	}
	return nil
}
