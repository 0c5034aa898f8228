package bench

import "math/bits"

// The analysis's per-message memory. Summarize is fed one event at a time and
// keeps no event; what it must remember of each message to join events that
// arrive far apart (the acknowledgement with the first consumptions, both with
// a kill or the end of the run) is a bit per message and question, in dense
// pages: messages are numbered 1, 2, 3... per publisher, so a message is a bit
// in a page of pageLen, not a map entry. The instants the questions are asked
// against come from the first pass (Instants), so each bit is settled at the
// event that decides it.

// pageShift sets the page size: 4096 messages a page.
const pageShift = 12

const pageLen = 1 << pageShift

// pubMsgs is what the analysis keeps of one publisher's messages.
type pubMsgs struct {
	published, acked SeqSet // by a pub event; by an ack event (the first counts)
	nAcked           int64
	consumed         SeqSet // first consumed by some subscriber
	// With a kill: acknowledged (first ack) or first consumed by anyone at or
	// before the last save before the kill, and at or before the kill.
	ackedBySave, ackedByKill       SeqSet
	consumedBySave, consumedByKill SeqSet
	// expiring: acknowledged at least the publisher's message expiry before
	// the end, so the broker may have discarded it unconsumed.
	expiring SeqSet
	expiry   int64 // the publisher's message expiry, 0 if none
	// pubT holds the publish times of the messages in needPubT alone: those
	// with an ack or consumption lacking pub_t_ns (Instants.NoPubT); nil
	// when there are none.
	pubT     *seqTimes
	needPubT *SeqSet
	// wanted are the subscribers expecting its messages (see Summarizer.expects).
	wanted []*subState
	// The backlog pass's open messages (see backlogAcc): acknowledged and
	// not yet consumed by every wanted subscriber, by seq -> ack time; and
	// consumed by all of them before their ack was read, by seq -> the last
	// first consumption.
	open, early map[int64]int64
}

// pubTime is the publish time of seq, kept only for the messages whose events
// lack pub_t_ns (see Instants.NoPubT).
func (pm *pubMsgs) pubTime(seq int64) (int64, bool) {
	if pm.pubT == nil {
		return 0, false
	}
	return pm.pubT.get(seq)
}

// complete reports whether every subscriber expecting pm's messages has
// consumed seq (false when none expects them).
func (pm *pubMsgs) complete(pub string, seq int64) bool {
	if len(pm.wanted) == 0 {
		return false
	}
	for _, st := range pm.wanted {
		if s := st.seen[pub]; s == nil || !s.Has(seq) {
			return false
		}
	}
	return true
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

// seqTimes is the first time of each seq (8 bytes and a bit per message):
// publish times, for older files only (see pubMsgs.pubT).
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

// bitsOf is the set m[key], made on first use.
func bitsOf(m map[string]*SeqSet, key string) *SeqSet {
	s := m[key]
	if s == nil {
		s = &SeqSet{}
		m[key] = s
	}
	return s
}

// zeroPage stands for a page of a SeqSet that has none: no seq of it is in.
var zeroPage [pageLen / 64]uint64

// page is the page of seqs from base<<pageShift, zeroPage if the set has none.
func (b *SeqSet) page(base int64) *[pageLen / 64]uint64 {
	if p := b.pages[base]; p != nil {
		return p
	}
	return &zeroPage
}

// setIf adds seq when cond holds: a question's bit, settled at its event.
func (b *SeqSet) setIf(cond bool, seq int64) {
	if cond {
		b.Add(seq)
	}
}

// countAndNot counts the seqs in b and not in not (nil: none), a word at a time.
func (b *SeqSet) countAndNot(not *SeqSet) int64 {
	var n int
	for base, p := range b.pages {
		q := &zeroPage
		if not != nil {
			q = not.page(base)
		}
		for i := range p {
			n += bits.OnesCount64(p[i] &^ q[i])
		}
	}
	return int64(n)
}

// countAnd counts the seqs in both b and o, a word at a time.
func (b *SeqSet) countAnd(o *SeqSet) int64 {
	var n int
	for base, p := range b.pages {
		q := o.page(base)
		for i := range p {
			n += bits.OnesCount64(p[i] & q[i])
		}
	}
	return int64(n)
}
