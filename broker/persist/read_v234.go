package persist

import "encoding/binary"

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
			return d.endOfChunks(start, 6)
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
				if d.chk != nil {
					d.chk.cfg(last)
				}
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
			if r.err == nil && d.chk != nil {
				_ = d.chk.store(d.db, start, &m) // no properties before format 5
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
			keep := r.err == nil
			if keep && d.chk != nil {
				keep, _ = d.chk.clientMsg(start, &m) // no properties before format 5
			}
			if keep {
				d.db.ClientMsgs = append(d.db.ClientMsgs, m)
			}
		case ChunkRetain:
			id := r.u64("store_id")
			if r.err == nil && (d.chk == nil || d.chk.retain(start, id)) {
				d.db.Retains = append(d.db.Retains, id)
			}
		case ChunkSub:
			var s Sub
			s.ClientID = r.str16("client_id")
			s.Topic = r.str16("topic")
			s.QoS = r.u8("qos")
			if r.err == nil && d.chk != nil {
				if err := d.chk.sub(start, &s); err != nil {
					return err
				}
			}
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
			if r.err == nil && d.chk != nil {
				// Unlike formats 5 and 6, Mosquitto fails the whole
				// restore on a nameless client here.
				if c.ClientID == "" {
					return formatErr(start, "CLIENT chunk with an empty client id")
				}
				if !d.chk.client(d.db, start, &c) {
					off = r.off
					continue
				}
			}
			if r.err == nil {
				d.db.Clients = append(d.db.Clients, c)
			}
		default:
			if uint64(length) > uint64(len(data)-r.off) {
				return d.unknownPastEnd(start, typ, length, len(data)-r.off)
			}
			r.off += int(length)
			d.db.UnknownChunks++
			if d.chk != nil {
				d.chk.problem(start, ChunkName(typ), true, "unknown chunk (%d bytes); skipped", length)
			}
		}
		if r.err != nil {
			return r.err
		}
		off = r.off
	}
	return nil
}
