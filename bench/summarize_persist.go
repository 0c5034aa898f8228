package bench

import (
	"math"
	"time"
)

// persistInput is what persistSummary needs from Summarize's passes.
type persistInput struct {
	persist       Persist // Path and AutosaveInterval already set
	sampled       bool    // a persistence file was sampled
	sizes         []gaugePoint
	saves         []SavePoint // sorted by time
	maxDupStores  int64
	phases        map[string]int64
	lastT, endT   int64
	drained       bool
	drainT        int64
	stops, starts []int64 // successful stop and start actions
	killT         int64   // first kill, -1 if none
	firstPub      int64
	lastAck       int64
	backlog       *backlogAcc // exposure and the largest backlog, accumulated by Add
	rate          float64     // acknowledged messages per second
	dropped       int64       // messages the broker dropped (never held)
}

// persistSummary describes the persistence file: its sizes, saves, what a
// held message costs, and the autosave trade-off (disk written against the
// time acknowledged messages were only in memory).
func persistSummary(in persistInput) Persist {
	p := in.persist
	for _, g := range in.sizes {
		p.MaxBytes = max(p.MaxBytes, int64(g.v))
	}
	for _, sp := range in.saves {
		p.MaxBytes = max(p.MaxBytes, sp.SizeBytes)
		if sp.Decoded {
			p.MaxStoredMessages = max(p.MaxStoredMessages, sp.Stored)
			p.MaxHeldDeliveries = max(p.MaxHeldDeliveries, sp.Held)
		}
	}
	if _, v, ok := lastSize(in.sizes, in.saves, math.MaxInt64); ok {
		p.EndBytes = v
	}
	p.FinalBytes, p.FinalSource = finalSize(in)
	p.Saves = len(in.saves)
	p.SavePoints = in.saves
	if n := len(in.saves); n >= 2 {
		p.MeanSavePeriodNS = (in.saves[n-1].T - in.saves[0].T) / int64(n-1)
	}
	p.BytesPerHeldMessage, p.FixedBytes = fitSizePerHeld(in.saves)
	p.FirstMinuteGrowthBytes = firstMinuteGrowth(in.sizes, in.phases, in.lastT)
	p.DuplicateStoresSeen = in.maxDupStores
	p.Sampled = in.sampled
	if in.sampled {
		tradeoff(&p, in)
	}
	return p
}

// lastSize is the latest observation of the file at or before t: a sampled
// size or a detected save, whichever is later.
func lastSize(sizes []gaugePoint, saves []SavePoint, t int64) (int64, int64, bool) {
	var at, v int64 = -1, 0
	for _, g := range sizes {
		if g.t <= t && g.t >= at {
			at, v = g.t, int64(g.v)
		}
	}
	for _, sp := range saves {
		if sp.T <= t && sp.T >= at {
			at, v = sp.T, sp.SizeBytes
		}
	}
	return at, v, at >= 0
}

// finalSize is persist.final_bytes, defined so that repeating a run gives the
// same number: the broker's final save after a clean stop when the scenario
// stopped it (the last save detected between the last stop and the next
// start); otherwise the file as the observation window left it (the last
// observation before the drain, which empties the broker: whether a timer
// save falls inside the drain is chance); without a drain, the last one.
func finalSize(in persistInput) (int64, string) {
	if n := len(in.stops); n > 0 {
		stopT := in.stops[n-1]
		until := int64(math.MaxInt64)
		for _, st := range in.starts {
			if st > stopT && st < until {
				until = st
			}
		}
		for i := len(in.saves) - 1; i >= 0; i-- {
			if sp := in.saves[i]; sp.T >= stopT && sp.T < until {
				return sp.SizeBytes, FinalStop
			}
		}
	}
	limit, src := int64(math.MaxInt64), FinalLastSample
	if in.drained {
		limit, src = in.drainT-1, FinalWindowEnd
	}
	if _, v, ok := lastSize(in.sizes, in.saves, limit); ok {
		return v, src
	}
	return 0, ""
}

// tradeoff fills the autosave trade-off: bytes written by saves, the longest
// gap between saves while publishing, the longest time an acknowledged
// message was only in memory, and the crash loss those predict.
func tradeoff(p *Persist, in persistInput) {
	var written int64
	saveTimes := make([]int64, 0, len(in.saves))
	for _, sp := range in.saves {
		written += sp.SizeBytes
		saveTimes = append(saveTimes, sp.T)
	}
	p.BytesWritten = &written
	start, ok := in.phases["run"]
	if !ok {
		start = in.firstPub
	}
	if span := in.endT - start; start >= 0 && span > 0 {
		perMin := float64(written) / (float64(span) / float64(time.Minute))
		p.BytesWrittenPerMin = &perMin
	}

	// Exposure, and the largest backlog (see backlogAcc). Without one (a
	// broker of several, whose file the messages only pass through) they
	// stay unknown.
	if in.backlog == nil {
		return
	}
	firstAck := in.backlog.firstAck
	exposure, maxHeld := in.backlog.close()
	if firstAck < 0 {
		zero := int64(0)
		p.ExposureMaxNS, p.MaxSaveGapNS, p.PredictedCrashLoss = &zero, &zero, &zero
		return
	}
	p.ExposureMaxNS = &exposure
	// A dropped message is acknowledged and never consumed, but was never
	// held either: queue limits drop once the queue is full, so by the
	// largest backlog every drop has happened.
	maxHeld = max(0, maxHeld-in.dropped)

	// Gaps between saves, clipped to the stretch with acknowledgements.
	gap, prev := int64(0), firstAck
	for _, t := range saveTimes {
		if t <= firstAck {
			continue
		}
		if t >= in.lastAck {
			break
		}
		gap = max(gap, t-prev)
		prev = t
	}
	gap = max(gap, in.lastAck-prev)
	p.MaxSaveGapNS = &gap
	loss := min(int64(math.Round(in.rate*float64(gap)/1e9)), maxHeld)
	p.PredictedCrashLoss = &loss
}

// fitSizePerHeld says what one held message costs in the file and what the
// fixed part is. With decoded saves that carry their message bytes (every run
// recorded by this version), it is exact: the largest backlog's message bytes
// over its held count, the rest of that file being the fixed part. Older runs
// fall back to a least-squares line of size against held over the decoded
// saves; when the held counts spread over less than fitMinSpread of the
// largest, or the slope comes out non-positive, to total size / total held
// (the fixed part counted into the messages) with fixed 0.
func fitSizePerHeld(saves []SavePoint) (perHeld, fixed float64) {
	// Decoded saves that carry their message bytes give the exact answer: the
	// save holding the largest backlog, its message bytes over its held
	// count. A fitted line would be pulled off by saves taken mid-publish,
	// whose stores for messages not yet queued have no held delivery.
	var best *SavePoint
	for i := range saves {
		sp := &saves[i]
		if sp.Decoded && sp.Held > 0 && sp.MsgBytes > 0 && (best == nil || sp.Held > best.Held) {
			best = sp
		}
	}
	if best != nil {
		return float64(best.MsgBytes) / float64(best.Held), float64(best.SizeBytes - best.MsgBytes)
	}

	var xs, ys []float64
	var sumX, sumY, minX, maxX float64
	for _, sp := range saves {
		if !sp.Decoded || sp.Held <= 0 {
			continue
		}
		x, y := float64(sp.Held), float64(sp.SizeBytes)
		if len(xs) == 0 || x < minX {
			minX = x
		}
		maxX = max(maxX, x)
		xs = append(xs, x)
		ys = append(ys, y)
		sumX += x
		sumY += y
	}
	if len(xs) == 0 {
		return 0, 0
	}
	ratio := sumY / sumX
	if maxX-minX < fitMinSpread*maxX {
		return ratio, 0
	}
	n := float64(len(xs))
	mx, my := sumX/n, sumY/n
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	perHeld = sxy / sxx
	if perHeld <= 0 {
		return ratio, 0
	}
	return perHeld, my - perHeld*mx
}

// fitMinSpread is the smallest spread of held counts, relative to the
// largest, over which a size-per-message line is fitted: a few messages of
// difference between two big backlogs make the slope noise.
const fitMinSpread = 0.1

// firstMinuteGrowth is the file size 60 s after publishing started minus its
// size when publishing started (0 if it did not exist yet), from the sampled
// sizes: the number the seed experiment reported. It is -1 when the recording
// ends before that minute is over or has no "run" phase.
func firstMinuteGrowth(sizes []gaugePoint, phases map[string]int64, lastT int64) int64 {
	runT, ok := phases["run"]
	if !ok || lastT < runT+int64(time.Minute) {
		return -1
	}
	at := func(t int64) float64 {
		v := 0.0
		for _, p := range sizes {
			if p.t > t {
				break
			}
			v = p.v
		}
		return v
	}
	return int64(at(runT+int64(time.Minute)) - at(runT))
}
