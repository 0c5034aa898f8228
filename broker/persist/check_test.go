package persist

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// damage builds the small format 6 files the damage tests share: stores 3, 2,
// 1 with payloads p3, p2, p1 on topic t (newest first, as Mosquitto writes).
type damage struct{ *fileBuilder }

func newDamage() damage {
	f := damage{newFile(6)}
	f.chunk(ChunkCFG, func() { f.u64le(3).u8(1).u8(8).zero(6) })
	for _, id := range []uint64{3, 2, 1} {
		f.store(id, fmt.Sprintf("p%d", id))
	}
	return f
}

func (f damage) store(id uint64, payload string) damage { return f.storeProps(id, payload, nil) }

// storeProps is store with raw property bytes after the payload.
func (f damage) storeProps(id uint64, payload string, props []byte) damage {
	f.chunk(ChunkMsgStore, func() {
		f.u64le(id).u64le(0).u32(uint32(len(payload))).u16(7).u16(3).u16(0).u16(1).u16(0).u8(1).u8(0)
		f.str("pub").str("t").str(payload).raw(props)
	})
	return f
}

func (f damage) client(id string) damage {
	f.chunk(ChunkClient, func() {
		f.u64le(0).u32(0xFFFFFFFF).u16(3).u16(uint16(len(id))).u16(0).u16(0).zero(4).str(id)
	})
	return f
}

// cmsg is a queued outgoing QoS 1 delivery of store to client id.
func (f damage) cmsg(id string, store uint64, mid uint16) damage {
	f.chunk(ChunkClientMsg, func() {
		f.u64le(store).u16(mid).u16(uint16(len(id))).u8(1).u8(StateQueued).u8(0).u8(DirOut).str(id)
	})
	return f
}

func (f damage) sub(id, topic string) damage {
	f.chunk(ChunkSub, func() {
		f.u32(0).u16(uint16(len(id))).u16(uint16(len(topic))).u8(1).u8(0).zero(2).str(id).str(topic)
	})
	return f
}

func (f damage) retain(id uint64) damage {
	f.chunk(ChunkRetain, func() { f.u64le(id) })
	return f
}

// wantProblem is a Problem a case expects: offset, chunk and part of What.
type wantProblem struct {
	off   int64
	chunk string
	what  string
}

// damageCase is one damaged file with what Mosquitto 2.0.11 was measured to
// do with it (TestMosquittoAgreesOnDamage checks every case against it):
// refuse it (wantErr, at errOff) or load it with these problems and this
// content (loaded, as rendered by loadedView).
type damageCase struct {
	name     string
	data     []byte
	wantErr  string
	errOff   int64
	problems []wantProblem
	loaded   string
	// ambiguous: the file defines a store id twice, so a file Mosquitto
	// saves from it cannot say which payload each delivery had.
	ambiguous bool
}

func damageCases() []damageCase {
	hdr := int64(HeaderSize)
	storesEnd := hdr + 24 + 3*(8+MsgStoreFixed+3+1+2) // CFG + three stores
	client := func(id string) int64 { return 8 + ClientFixed + int64(len(id)) }
	cmsg := func(id string) int64 { return 8 + ClientMsgFixed + int64(len(id)) }
	var cs []damageCase
	add := func(c damageCase) { cs = append(cs, c) }

	f := newDamage().client("s").cmsg("s", 1, 1).cmsg("s", 9, 2).cmsg("s", 3, 3).sub("s", "t")
	f.u32(42).u32(3).str("xyz")
	add(damageCase{name: "dangling delivery and unknown chunk", data: f.b,
		problems: []wantProblem{
			{storesEnd + client("s") + cmsg("s"), "CLIENT_MSG", `store id 9 to client "s" (mid 2, outgoing) refers to no earlier MSG_STORE; dropped`},
			{int64(len(f.b)) - 11, "unknown type 42", "unknown chunk (3 bytes); skipped"},
		},
		loaded: "clients s\ns 1 p1\ns 3 p3\nsub s t 1\n"})

	f = newDamage().client("s").cmsg("s", 1, 1)
	f.raw([]byte{0, 0, 0})
	add(damageCase{name: "trailing partial chunk header", data: f.b,
		problems: []wantProblem{{int64(len(f.b)) - 3, "", "3 trailing bytes are too short for a chunk header; ignored"}},
		loaded:   "clients s\ns 1 p1\n"})

	f = newDamage().client("s").cmsg("s", 1, 1)
	f.u32(42).u32(1000).str("xyz")
	add(damageCase{name: "unknown chunk past the end", data: f.b,
		problems: []wantProblem{{int64(len(f.b)) - 11, "unknown type 42", "length 1000 with only 3 bytes left"}},
		loaded:   "clients s\ns 1 p1\n"})

	f = newDamage().cmsg("orphan", 1, 1).sub("orphan2", "t")
	add(damageCase{name: "no CLIENT chunk", data: f.b,
		problems: []wantProblem{
			{storesEnd, "CLIENT_MSG", `client "orphan" has no CLIENT chunk; a session (expiry interval 0) is created`},
			{storesEnd + cmsg("orphan"), "SUB", `client "orphan2" has no CLIENT chunk`},
		},
		loaded: "clients orphan orphan2\norphan 1 p1\nsub orphan2 t 1\n"})

	f = newDamage().client("").cmsg("", 1, 1)
	add(damageCase{name: "empty client ids", data: f.b,
		problems: []wantProblem{
			{storesEnd, "CLIENT", "empty client id"},
			{storesEnd + client(""), "CLIENT_MSG", "delivery of store id 1 (mid 1) has an empty client id; dropped"},
		},
		loaded: "clients\n"})

	f = newDamage().client("s").cmsg("s", 1, 1)
	subAt := int64(len(f.b))
	f.chunk(ChunkSub, func() { f.u32(0).u16(1).u16(1).u8(1).u8(0).zero(2).str("s").str("t").zero(8) })
	f.client("x")
	add(damageCase{name: "SUB longer than its fields", data: f.b,
		problems: []wantProblem{
			{subAt, "SUB", "length 22 but its fields take 14 bytes; reading goes on after the fields"},
			{subAt + 8 + 14, "unknown type 0", "unknown chunk (0 bytes); skipped"},
		},
		loaded: "clients s x\ns 1 p1\nsub s t 1\n"})

	f = newDamage().client("s")
	subAt = int64(len(f.b))
	f.u32(ChunkSub).u32(0).u32(0).u16(1).u16(1).u8(1).u8(0).zero(2).str("s").str("t")
	f.client("x")
	add(damageCase{name: "SUB of length 0", data: f.b,
		problems: []wantProblem{{subAt, "SUB", "length 0 but its fields take 14 bytes"}},
		loaded:   "clients s x\nsub s t 1\n"})

	f = newDamage().client("s").cmsg("s", 1, 1).store(1, "dd").cmsg("s", 1, 2)
	add(damageCase{name: "store id defined twice", data: f.b, ambiguous: true,
		problems: []wantProblem{{storesEnd + client("s") + cmsg("s"), "MSG_STORE", "store id 1 is defined again (first at offset 139)"}},
		loaded:   "clients s\ns 1 p1\ns 2 dd\n"})

	f = newDamage().client("s").cmsg("s", 7, 1).store(7, "p7")
	add(damageCase{name: "delivery before its store", data: f.b,
		problems: []wantProblem{{storesEnd + client("s"), "CLIENT_MSG", "store id 7 to client \"s\" (mid 1, outgoing) refers to no earlier MSG_STORE; dropped"}},
		loaded:   "clients s\n"})

	f = newDamage().store(0, "p0").client("s").cmsg("s", 0, 1).cmsg("s", 4, 2)
	add(damageCase{name: "store id 0", data: f.b,
		problems: []wantProblem{
			{storesEnd, "MSG_STORE", "store id 0 (on topic \"t\") cannot be referenced; renumbered 4"},
			{storesEnd + 8 + MsgStoreFixed + 6 + client("s"), "CLIENT_MSG", "store id 0 to client \"s\" (mid 1, outgoing) refers to no earlier MSG_STORE"},
		},
		loaded: "clients s\ns 2 p0\n"})

	f = newDamage().client("s").client("s").retain(2).retain(99)
	add(damageCase{name: "CLIENT twice and a dangling RETAIN", data: f.b,
		problems: []wantProblem{
			{storesEnd + client("s"), "CLIENT", `client "s" has an earlier CLIENT chunk; merged into it`},
			{storesEnd + 2*client("s") + 16, "RETAIN", "retained message store id 99 refers to no earlier MSG_STORE; dropped"},
		},
		loaded: "clients s\nretain p2\n"})

	add(damageCase{name: "empty file", data: nil,
		problems: []wantProblem{{0, "", "the file is empty"}}, loaded: "clients\n"})

	f = newDamage().client("s").cmsg("s", 1, 1).storeProps(8, "p8", []byte{0x00, 0xff, 0xff}) // no properties, then junk
	f.cmsg("s", 8, 2)
	add(damageCase{name: "bytes after the properties", data: f.b, loaded: "clients s\ns 1 p1\ns 2 p8\n"})

	// Refused.
	f = newDamage().client("s").cmsg("s", 1, 1)
	add(damageCase{name: "truncated CLIENT_MSG", data: f.b[:len(f.b)-2], errOff: storesEnd + client("s"),
		wantErr: "truncated CLIENT_MSG chunk (length 17, 15 bytes left)"})
	f = newDamage().client("s").sub("", "t")
	add(damageCase{name: "SUB with an empty client id", data: f.b, errOff: storesEnd + client("s"),
		wantErr: "SUB chunk with an empty client id"})
	f = newDamage().client("s").sub("s", "")
	add(damageCase{name: "SUB with an empty topic", data: f.b, errOff: storesEnd + client("s"),
		wantErr: "SUB chunk with an empty topic"})
	f = newDamage().client("s").cmsg("s", 1, 1).storeProps(8, "p8", []byte{0x05, 0xff})
	add(damageCase{name: "malformed properties", data: f.b, errOff: storesEnd + client("s") + cmsg("s"),
		wantErr: "MSG_STORE chunk: invalid properties: property identifier at byte 1: runs past the end"})
	add(damageCase{name: "header cut short", data: newDamage().b[:20], wantErr: "truncated header (20 of 23 bytes)"})
	f = newDamage()
	f.b[22] = 9
	add(damageCase{name: "unknown version", data: f.b, errOff: 19, wantErr: "unsupported version 9"})
	return cs
}

// loadedView renders what a loaded db holds in a form that does not depend
// on file order or on how ids were assigned: client ids, then per client its
// deliveries (mid and payload), subscriptions, retained payloads. resolve
// gives the payload of a delivery or retained message by index.
func loadedView(db *DB, cmStore, retStore func(i int) *MsgStore, payloads bool) string {
	ids := make([]string, 0, len(db.Clients))
	for _, c := range db.Clients {
		ids = append(ids, c.ClientID)
	}
	sort.Strings(ids)
	var lines []string
	for i, m := range db.ClientMsgs {
		p := "?"
		if s := cmStore(i); s != nil && payloads {
			p = string(s.Payload)
		}
		lines = append(lines, fmt.Sprintf("%s %d %s", m.ClientID, m.Mid, p))
	}
	for _, s := range db.Subs {
		lines = append(lines, fmt.Sprintf("sub %s %s %d", s.ClientID, s.Topic, s.QoS))
	}
	for i := range db.Retains {
		if s := retStore(i); s != nil {
			lines = append(lines, "retain "+string(s.Payload))
		}
	}
	sort.Strings(lines)
	out := strings.TrimSpace("clients "+strings.Join(ids, " ")) + "\n"
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}

// checkedView is loadedView of a Checked, resolving as Mosquitto does.
func checkedView(c *Checked, payloads bool) string {
	return loadedView(c.DB,
		func(i int) *MsgStore { return &c.DB.Stores[c.ClientMsgStore[i]] },
		func(i int) *MsgStore { return &c.DB.Stores[c.RetainStore[i]] }, payloads)
}

func TestParseCheckedDamage(t *testing.T) {
	for _, tt := range damageCases() {
		t.Run(tt.name, func(t *testing.T) {
			before := bytes.Clone(tt.data)
			c, err := ParseChecked(tt.data)
			if !bytes.Equal(before, tt.data) {
				t.Fatal("ParseChecked changed its input")
			}
			if tt.wantErr != "" {
				var fe *FormatError
				if !errors.As(err, &fe) || fe.Offset != tt.errOff || !strings.Contains(fe.Msg, tt.wantErr) {
					t.Fatalf("error %v, want %q at offset %d", err, tt.wantErr, tt.errOff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Problems) != len(tt.problems) {
				t.Fatalf("problems %v, want %d: %v", c.Problems, len(tt.problems), tt.problems)
			}
			for i, w := range tt.problems {
				p := c.Problems[i]
				if p.Offset != w.off || p.Chunk != w.chunk || !strings.Contains(p.What, w.what) {
					t.Errorf("problem %d is %q, want %q at offset %d (%s)", i, p, w.what, w.off, w.chunk)
				}
				if p.Offset < 0 || p.Offset >= int64(max(len(tt.data), 1)) {
					t.Errorf("problem %q: offset outside the file", p)
				}
			}
			if got := checkedView(c, true); got != tt.loaded {
				t.Fatalf("loaded\n%s\nwant\n%s", got, tt.loaded)
			}
			if len(c.Offsets.Stores) != len(c.DB.Stores) || len(c.Offsets.ClientMsgs) != len(c.DB.ClientMsgs) || len(c.Offsets.Clients) != len(c.DB.Clients) ||
				len(c.Offsets.Subs) != len(c.DB.Subs) || len(c.Offsets.Retains) != len(c.DB.Retains) {
				t.Fatalf("offsets %+v do not match the db", c.Offsets)
			}
		})
	}
}

// TestParseCheckedMatchesParse cuts a file of each version at every byte:
// what Parse loads ParseChecked loads too, and where Parse refuses a cut
// ParseChecked either refuses it at the same offset or loads it with a last
// problem there that says what it dropped (a cut inside a chunk header, or
// in an unknown chunk's body).
func TestParseCheckedMatchesParse(t *testing.T) {
	for _, tt := range versionFiles {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := tt.build()
			for n := 1; n <= len(f.b); n++ {
				_, perr := Parse(f.b[:n])
				c, cerr := ParseChecked(f.b[:n])
				if perr == nil {
					if cerr != nil {
						t.Fatalf("cut at %d: Parse loads it, ParseChecked: %v", n, cerr)
					}
					continue
				}
				var pe, ce *FormatError
				errors.As(perr, &pe)
				if cerr == nil {
					last := c.Problems[len(c.Problems)-1]
					if last.Offset != pe.Offset || !last.Dropped {
						t.Fatalf("cut at %d: Parse: %v; ParseChecked loads it with %v", n, perr, c.Problems)
					}
					continue
				}
				if !errors.As(cerr, &ce) || ce.Offset != pe.Offset {
					t.Fatalf("cut at %d: Parse: %v; ParseChecked: %v", n, perr, cerr)
				}
			}
		})
	}
}

func TestParseCheckedV3(t *testing.T) {
	f := newFile(3)
	f.chunk(ChunkCFG, func() { f.u8(1).u8(8).u64le(1) })
	f.chunk(ChunkClient, func() { f.str16("").u16(0).u64le(0) })
	if _, err := ParseChecked(f.b); err == nil || !strings.Contains(err.Error(), "CLIENT chunk with an empty client id at offset 39") {
		t.Fatalf("error %v", err)
	}
	f = newFile(3)
	f.chunk(ChunkClientMsg, func() { f.str16("s").u64le(5).u16(1).u8(1).u8(0).u8(1).u8(StateQueued).u8(0) })
	f.u16(77).u32(2).raw([]byte{1, 2})
	c, err := ParseChecked(f.b)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Problems) != 2 || c.Problems[0].Offset != 23 || c.Problems[1].Offset != 47 || c.Problems[1].Chunk != "unknown type 77" {
		t.Fatalf("problems %v", c.Problems)
	}
}

func TestCheckPublishProps(t *testing.T) {
	tests := []struct {
		name  string
		props []byte
		ok    bool
	}{
		{"empty list", []byte{0}, true},
		{"empty list, junk after", []byte{0, 0xff}, true},
		{"payload format", []byte{2, 1, 1}, true},
		{"message expiry", []byte{5, 2, 0, 0, 0, 60}, true},
		{"user property", []byte{10, 38, 0, 1, 'k', 0, 1, 'v', 38, 0, 0, 0, 0}[:11], false},
		{"two user properties", []byte{12, 38, 0, 1, 'k', 0, 1, 'v', 38, 0, 0, 0, 0}, true},
		{"correlation data binary", []byte{5, 9, 0, 2, 0, 0xff}, true},
		{"content type bad utf-8", []byte{5, 3, 0, 2, 0xc3, 0x28}, false},
		{"content type control char", []byte{4, 3, 0, 1, 0x01}, false},
		{"subscription id", []byte{3, 11, 0x81, 0x01}, true},
		{"overlong varint", []byte{3, 11, 0x81, 0x00}, false},
		{"length runs short", []byte{1, 2, 0, 0, 0, 60}, false},
		{"length past the end", []byte{9, 1, 1}, false},
		{"unknown identifier", []byte{2, 99, 0}, false},
		{"not on a publish", []byte{5, 17, 0, 0, 0, 1}, false},
		{"repeated", []byte{4, 1, 1, 1, 0}, false},
		{"topic alias 0", []byte{3, 35, 0, 0}, false},
		{"the round-trip test's list", []byte{0x03, 0x01, 0x01, 0x00}, false},
	}
	for _, tt := range tests {
		if err := checkPublishProps(tt.props); (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
