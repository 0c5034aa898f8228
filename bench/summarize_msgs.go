package bench

// The analysis's per-message memory. Summarize is fed one event at a time and
// keeps no event; what it must remember of each message to join events that
// arrive far apart (the acknowledgement with the first consumptions, both with
// a kill or the next save) lives here, densely: messages are numbered 1, 2, 3...
// per publisher, so a message is a slot in a page of pageLen slots, not a map
// entry. Whether a subscriber has consumed a message is one bit.

// pageShift sets the page size: 4096 messages a page.
const pageShift = 12

const pageLen = 1 << pageShift

// msgState is what the analysis keeps of one message (publisher, seq).
type msgState struct {
	pubT  int64 // first pub event
	ackT  int64 // first ack event
	first int64 // earliest first consumption by any subscriber
	last  int64 // latest first consumption by any subscriber
	subs  int32 // subscribers that consumed it
	flags uint8 // msgPublished, msgAcked
}

const (
	msgPublished uint8 = 1 << iota
	msgAcked
)

// addRecv records one subscriber's first consumption at t.
func (m *msgState) addRecv(t int64) {
	if m.subs == 0 || t < m.first {
		m.first = t
	}
	m.last = max(m.last, t)
	m.subs++
}

// msgTable holds one publisher's messages by seq, in pages allocated on
// first use, so any seq (even 0, negative or far apart) works and a dense
// run costs sizeof(msgState) per message.
type msgTable struct {
	pages map[int64]*[pageLen]msgState
	acked int64 // messages with msgAcked
}

// get returns the slot of seq, creating its page when create is set; nil when
// the page does not exist and create is false.
func (t *msgTable) get(seq int64, create bool) *msgState {
	p := t.pages[seq>>pageShift]
	if p == nil {
		if !create {
			return nil
		}
		if t.pages == nil {
			t.pages = map[int64]*[pageLen]msgState{}
		}
		p = new([pageLen]msgState)
		t.pages[seq>>pageShift] = p
	}
	return &p[seq&(pageLen-1)]
}

// each calls f for every message with any of the flags set.
func (t *msgTable) each(flags uint8, f func(seq int64, m *msgState)) {
	for base, p := range t.pages {
		for i := range p {
			if p[i].flags&flags != 0 {
				f(base<<pageShift|int64(i), &p[i])
			}
		}
	}
}

// SeqSet is a set of message numbers (seqs), one bit each, in pages allocated
// on first use: how the analysis and the plots tell a first consumption from
// a duplicate without a map entry per message.
type SeqSet struct {
	pages map[int64]*[pageLen / 64]uint64
}

// Add puts seq in the set and reports whether it was already there.
func (b *SeqSet) Add(seq int64) (had bool) {
	p := b.pages[seq>>pageShift]
	if p == nil {
		if b.pages == nil {
			b.pages = map[int64]*[pageLen / 64]uint64{}
		}
		p = new([pageLen / 64]uint64)
		b.pages[seq>>pageShift] = p
	}
	i := seq & (pageLen - 1)
	w, bit := &p[i>>6], uint64(1)<<(i&63)
	had = *w&bit != 0
	*w |= bit
	return had
}

// Has reports whether seq is in the set.
func (b *SeqSet) Has(seq int64) bool {
	p := b.pages[seq>>pageShift]
	if p == nil {
		return false
	}
	i := seq & (pageLen - 1)
	return p[i>>6]&(uint64(1)<<(i&63)) != 0
}

// seqTimes is the first time of each seq (8 bytes and a bit per message).
type seqTimes struct {
	set   SeqSet
	pages map[int64]*[pageLen]int64
}

// put records t for seq unless seq already has a time; it reports whether it had.
func (s *seqTimes) put(seq, t int64) (had bool) {
	if s.set.Add(seq) {
		return true
	}
	p := s.pages[seq>>pageShift]
	if p == nil {
		if s.pages == nil {
			s.pages = map[int64]*[pageLen]int64{}
		}
		p = new([pageLen]int64)
		s.pages[seq>>pageShift] = p
	}
	p[seq&(pageLen-1)] = t
	return false
}

// get is the time of seq, if it has one.
func (s *seqTimes) get(seq int64) (int64, bool) {
	if !s.set.Has(seq) {
		return 0, false
	}
	return s.pages[seq>>pageShift][seq&(pageLen-1)], true
}

// each calls f for every seq with a time.
func (s *seqTimes) each(f func(seq, t int64)) {
	for base, p := range s.pages {
		for i := range p {
			if seq := base<<pageShift | int64(i); s.set.Has(seq) {
				f(seq, p[i])
			}
		}
	}
}
