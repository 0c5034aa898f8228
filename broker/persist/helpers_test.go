package persist

import (
	"encoding/binary"
	"flag"
	"fmt"
)

// update regenerates testdata (golden hex, fuzz seed corpus) from the code.
var update = flag.Bool("update", false, "rewrite testdata golden files and the fuzz seed corpus")

// fileBuilder assembles persistence files by hand, field by field, following
// mosquitto-model.md rather than the codec, so tests compare the codec with
// the documented layout and not with itself.
type fileBuilder struct {
	b       []byte
	version uint32
	// bounds are the offsets where a file may validly end: after the header
	// and after every chunk.
	bounds []int
}

func newFile(version uint32) *fileBuilder {
	f := &fileBuilder{version: version}
	f.raw([]byte{0x00, 0xB5, 0x00})
	f.raw([]byte("mosquitto db"))
	f.u32(0) // CRC
	f.u32(version)
	f.bounds = append(f.bounds, len(f.b))
	return f
}

func (f *fileBuilder) raw(b []byte) *fileBuilder { f.b = append(f.b, b...); return f }
func (f *fileBuilder) str(s string) *fileBuilder { f.b = append(f.b, s...); return f }
func (f *fileBuilder) u8(v uint8) *fileBuilder   { f.b = append(f.b, v); return f }
func (f *fileBuilder) u16(v uint16) *fileBuilder {
	f.b = binary.BigEndian.AppendUint16(f.b, v)
	return f
}
func (f *fileBuilder) u32(v uint32) *fileBuilder {
	f.b = binary.BigEndian.AppendUint32(f.b, v)
	return f
}
func (f *fileBuilder) u64le(v uint64) *fileBuilder {
	f.b = binary.LittleEndian.AppendUint64(f.b, v)
	return f
}
func (f *fileBuilder) zero(n int) *fileBuilder { f.b = append(f.b, make([]byte, n)...); return f }
func (f *fileBuilder) str16(s string) *fileBuilder {
	f.u16(uint16(len(s)))
	return f.str(s)
}

// chunk writes a chunk header of the file's version (8 bytes for 5/6, 6 for
// 2-4) with the body's real length, then the body.
func (f *fileBuilder) chunk(typ uint32, body func()) *fileBuilder {
	if f.version >= 5 {
		f.u32(typ).u32(0)
	} else {
		f.u16(uint16(typ)).u32(0)
	}
	hdr := len(f.b)
	body()
	binary.BigEndian.PutUint32(f.b[hdr-4:], uint32(len(f.b)-hdr))
	f.bounds = append(f.bounds, len(f.b))
	return f
}

// seedDB is the setup the size facts were measured with: one persistent
// subscriber `slowsub` on `test` (QoS 2), publisher `pub`, no username, n
// queued QoS 2 messages with payload(i). Stores are newest first, client
// messages oldest first, as Mosquitto keeps them.
func seedDB(n int, payload func(i int) []byte) *DB {
	db := &DB{
		LastDBID: uint64(n),
		Clients: []Client{{
			ClientID:              "slowsub",
			SessionExpiryInterval: 0xFFFFFFFF,
			LastMid:               uint16(n),
		}},
		Subs: []Sub{{ClientID: "slowsub", Topic: "test", QoS: 2}},
	}
	for i := n - 1; i >= 0; i-- {
		db.Stores = append(db.Stores, MsgStore{
			StoreID:   uint64(i + 1),
			SourceMid: uint16(i + 1),
			SourceID:  "pub",
			Topic:     "test",
			QoS:       2,
			Payload:   payload(i),
		})
	}
	for i := 0; i < n; i++ {
		db.ClientMsgs = append(db.ClientMsgs, ClientMsg{
			ClientID:  "slowsub",
			StoreID:   uint64(i + 1),
			Mid:       uint16(i + 1),
			QoS:       2,
			State:     StateQueued,
			Direction: DirOut,
		})
	}
	return db
}

// payload150 is a 150-byte JSON-ish payload unique to i, like the seed
// experiment's messages.
func payload150(i int) []byte {
	p := []byte(fmt.Sprintf(`{"id":%d,"Timestamp":1700000000000,"str1":"`, i))
	for len(p) < 149 {
		p = append(p, 'a'+byte((len(p)+i)%26))
	}
	return append(p, '}')
}
