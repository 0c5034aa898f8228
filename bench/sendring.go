package bench

import (
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/mqbench/mqbench/scenarios"
)

// Send times without a table per message. A recv event carries its message's
// send time (PubT, the pub event's t_ns) so delivery latency needs no join;
// keeping it in a slot per message made mqbench grow by 8 bytes a message
// (soak: 25 -> 250 MB over 12 M messages). Random and template payloads now
// carry their send time themselves (payload.go); the experiment payload must
// stay the seed experiment's ~150-byte JSON, so its publisher keeps the send
// times of its most recent messages in a ring, sized from a fixed budget for
// the whole run; every ring holds at least twice the publisher's window, so
// ack events (which carry PubT too) are always exact. A delivery older than
// the ring gets no PubT: the analysis then takes its send time from the pub
// event (the same number), and the run notes how many deliveries that was
// (noteUnknownSendTimes).

// sendRingBudget is the number of ring slots (8 bytes each) shared by the
// publishers of experiment payloads in one run: 8 MB, so every shipped
// scenario (at most tens of thousands of messages) and any run of up to
// 1,048,576 such messages is exact from the recv events alone.
// A variable only so a test can make a ring overflow in a small run.
var sendRingBudget = 1 << 20

// sendRingMin is the least ring a publisher gets, so its acknowledgements and
// failed publishes (pubErrLevel), which are always among the last in flight,
// find their time even when thousands of publishers share the budget.
const sendRingMin = 64

// sendRing is one publisher's recent send times. The publishing goroutine
// puts seqs in increasing order; subscribers read concurrently.
type sendRing struct {
	claim atomic.Int64 // seq whose slot is being written (or was, last)
	hi    atomic.Int64 // highest seq whose slot is written: above it, not sent in this run (yet)
	mask  int64
	slots []atomic.Int64 // t_ns of seq at seq & mask
}

// newSendRing holds at least n slots (a power of two).
func newSendRing(n int) *sendRing {
	n = max(n, 1)
	size := 1 << bits.Len(uint(n-1))
	return &sendRing{mask: int64(size - 1), slots: make([]atomic.Int64, size)}
}

// put records seq's send time: claim, write, publish hi. A reader that finds
// hi at or past seq finds seq's slot written; one whose slot read saw a later
// seq's write finds claim past seq and discards it.
func (r *sendRing) put(seq, t int64) {
	r.claim.Store(seq)
	r.slots[seq&r.mask].Store(t)
	r.hi.Store(seq)
}

// sent reports whether seq was published in this run.
func (r *sendRing) sent(seq int64) bool { return seq >= 1 && seq <= r.hi.Load() }

// get is seq's send time while the ring still holds it, 0 otherwise.
func (r *sendRing) get(seq int64) int64 {
	if !r.sent(seq) {
		return 0
	}
	t := r.slots[seq&r.mask].Load()
	if r.claim.Load()-seq > r.mask {
		return 0 // overwritten, or being overwritten, by seq + len(slots) or later
	}
	return t
}

// sendRingSizes gives the ring size of each publisher group's publishers
// (those this run holds: a shard's share): its message count capped by twice
// its in-flight window (ack events and failed publishes look up only those)
// for payloads that carry their send time (random, template); for the
// experiment payload capped by an equal share of sendRingBudget, or that
// window if larger.
func sendRingSizes(sc *scenarios.Scenario) []int {
	experiment := 0
	for gi, pc := range sc.Publishers {
		if !carriesSendTime(pc.Payload) {
			experiment += len(sc.LocalPublisherIDs(gi))
		}
	}
	share := sendRingBudget
	if experiment > 0 {
		share = sendRingMin // more publishers than the budget has slots
		if q := sendRingBudget / experiment; q > sendRingMin {
			share = 1 << (bits.Len(uint(q)) - 1) // a power of two: newSendRing does not round it up past the share
		}
	}
	sizes := make([]int, len(sc.Publishers))
	for gi, pc := range sc.Publishers {
		// Acknowledgements and failed publishes come within the window:
		// every ring holds twice that, so their times stay exact.
		limit := max(sendRingMin, 2*pc.Inflight)
		if !carriesSendTime(pc.Payload) {
			limit = max(limit, share)
		}
		sizes[gi] = min(max(pc.Messages, 1), limit)
	}
	return sizes
}

// carriesSendTime says whether a payload kind carries its send time (payload.go).
func carriesSendTime(p scenarios.Payload) bool {
	return p.Kind == payloadRandom || p.Kind == payloadTemplate
}

// sendTime returns the recorded publish time of seq, 0 if unknown (not sent,
// or older than the ring).
func (p *publisher) sendTime(seq int64) int64 { return p.sends.get(seq) }

// deliveredSendTime is the PubT of a delivery of seq whose payload carried
// sendT (0 if none): the payload's time when this run sent seq and the time
// is not after the delivery (a payload left by an earlier run on the broker
// could carry anything), else the ring's; 0 when neither knows.
func (p *publisher) deliveredSendTime(seq, sendT, recvT int64) int64 {
	if !p.sends.sent(seq) {
		return 0
	}
	if sendT > 0 && sendT <= recvT {
		return sendT
	}
	return p.sends.get(seq)
}

// noteUnknownSendTimes notes, per subscriber, how many of its deliveries'
// recv events carry no send time: a run never hides what it did not record.
// Their latency is still exact, since the analysis takes the send time from
// the pub event of the same run.
func (e *engine) noteUnknownSendTimes() {
	for _, s := range e.subs {
		if n := s.noSendT.Load(); n > 0 {
			e.note(LevelInfo, fmt.Sprintf("subscriber %s: %d deliveries came after their publisher's ring of recent send times had moved past them and carry no pub_t_ns; the analysis takes their send time from the pub events", s.id, n))
		}
	}
}
