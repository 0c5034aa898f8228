package bench

import "slices"

// The autosave trade-off's two message-level numbers, accumulated while the
// messages are read instead of from every message's times at Close:
//
//   - exposure: the longest an acknowledged message was only in the broker's
//     memory, from its acknowledgement a to the first of the next save after
//     a, the kill (if a came before it), the end of the recording, and the
//     moment the last subscriber expecting it consumed it (never before a);
//   - the largest backlog: a running sum of +1 at each acknowledgement and -1
//     when the last subscriber expecting the message consumed it (never
//     before a), in time order.
//
// Only the messages open now are held (acknowledged, not yet consumed by
// every subscriber expecting them, and whose next save, kill or end has not
// passed): their ack time, to end their exposure when the last consumption
// comes. Once the exposure end of a message is backlogSlack behind the
// latest event, its exposure is known without its consumption and it is
// dropped. The steps of the running sum are sorted in a buffer and applied
// once they are backlogSlack behind the latest event. The recorder writes
// events in the order they were emitted, each stamped just before, so the
// file is in time order to within far less than backlogSlack; a step that
// still comes later than that is applied late and the summary says the
// largest backlog is approximate.

// backlogSlack is how far (ns) the events' times may run behind their order
// in the file before the backlog accounting could be off.
const backlogSlack = int64(10e9)

// backlogFlushLen is how many steps wait in the buffer before a sort, at
// least: the steps of the last backlogSlack stay in it after a flush, so it
// is next sorted when it has grown by as many again (amortised: each step is
// sorted a bounded number of times, not at every event).
const backlogFlushLen = 1 << 15

// backlogAcc accumulates exposure and the largest backlog.
type backlogAcc struct {
	in       *Instants
	firstAck int64 // -1 until an acknowledgement of a wanted message
	exposure int64
	steps    []int64 // not yet applied: time<<1, low bit 1 for +1 (consumptions first at the same instant)
	applied  int64   // the last step applied
	held     int64
	maxHeld  int64
	late     bool  // a step came after later ones were applied
	flushAt  int64 // buffer length at which the steps are next sorted and applied
	nextTrim int64 // latest event time at which the open messages are next trimmed
	pubs     []*pubMsgs
}

func newBacklogAcc(in *Instants) *backlogAcc {
	return &backlogAcc{in: in, firstAck: -1, applied: -1 << 62, flushAt: backlogFlushLen, nextTrim: backlogSlack}
}

// track registers a publisher whose messages someone expects.
func (b *backlogAcc) track(pm *pubMsgs) {
	pm.open, pm.early = map[int64]int64{}, map[int64]int64{}
	b.pubs = append(b.pubs, pm)
}

// ack takes the first acknowledgement of a wanted message at a; done says
// whether every subscriber expecting it had consumed it already.
func (b *backlogAcc) ack(pm *pubMsgs, seq, a int64, done bool) {
	if b.firstAck < 0 || a < b.firstAck {
		b.firstAck = a
	}
	if !done {
		pm.open[seq] = a
		b.step(a<<1 | 1)
		return
	}
	// Consumed before its ack was read: both steps, the consumption at a or
	// later; its consumption time is lost only if it came more than
	// backlogSlack before the ack (then it is a: no exposure, no backlog).
	last, ok := pm.early[seq]
	delete(pm.early, seq)
	end := a
	if ok {
		end = max(last, a)
	}
	b.exposure = max(b.exposure, min(b.in.exposureEnd(a), end)-a)
	b.step(a<<1 | 1)
	b.step(end << 1)
}

// done takes the consumption at t that completes a wanted message; acked says
// whether its acknowledgement was read already.
func (b *backlogAcc) done(pm *pubMsgs, seq, t int64, acked bool) {
	if !acked {
		pm.early[seq] = t
		return
	}
	a, open := pm.open[seq]
	if !open {
		// Its exposure ended (and was counted) more than backlogSlack ago.
		b.step(t << 1)
		return
	}
	delete(pm.open, seq)
	end := max(t, a)
	b.exposure = max(b.exposure, min(b.in.exposureEnd(a), end)-a)
	b.step(end << 1)
}

// step queues one step of the running sum.
func (b *backlogAcc) step(s int64) {
	if s < b.applied {
		b.late = true
	}
	b.steps = append(b.steps, s)
}

// advance is called with the latest event time: it applies the steps and
// drops the open messages that are backlogSlack behind it.
func (b *backlogAcc) advance(now int64) {
	if int64(len(b.steps)) >= b.flushAt {
		b.flush((now - backlogSlack) << 1)
		b.flushAt = max(backlogFlushLen, 2*int64(len(b.steps)))
	}
	if now < b.nextTrim {
		return
	}
	b.nextTrim = now + backlogSlack
	cut := now - backlogSlack
	for _, pm := range b.pubs {
		for seq, a := range pm.open {
			if end := b.in.exposureEnd(a); end < cut {
				b.exposure = max(b.exposure, end-a)
				delete(pm.open, seq)
			}
		}
		for seq, t := range pm.early {
			if t < cut {
				delete(pm.early, seq) // never acknowledged (or far later: see ack)
			}
		}
	}
}

// flush applies the queued steps below limit, in order.
func (b *backlogAcc) flush(limit int64) {
	slices.Sort(b.steps)
	n := 0
	for _, s := range b.steps {
		if s >= limit {
			break
		}
		b.held += 2*(s&1) - 1
		b.maxHeld = max(b.maxHeld, b.held)
		b.applied = s
		n++
	}
	b.steps = b.steps[:copy(b.steps, b.steps[n:])]
	if cap(b.steps) > 4*backlogFlushLen && len(b.steps) < backlogFlushLen {
		b.steps = append([]int64(nil), b.steps...) // a burst is over: give the memory back
	}
}

// close ends the accounting: the messages still open were exposed until
// their exposure end. It returns the exposure and the largest backlog.
func (b *backlogAcc) close() (exposure, maxHeld int64) {
	b.flush(1<<63 - 1)
	for _, pm := range b.pubs {
		for _, a := range pm.open {
			b.exposure = max(b.exposure, b.in.exposureEnd(a)-a)
		}
	}
	return b.exposure, b.maxHeld
}
