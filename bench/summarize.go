package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

// SummarySchema is the version of the summary.json layout, so baselines
// written by older code can be recognised by `check`.
const SummarySchema = 1

// maxReasons caps the taint reasons kept in a summary: a run with thousands of
// disconnect notes needs the first few and a count, not all of them.
const maxReasons = 20

// CrashSummary accounts for a broker kill (SIGKILL action): what the last save
// before it could have kept, against what was really lost. Loss in a crash is
// the reason to tune autosave, so the prediction and the outcome sit side by side.
type CrashSummary struct {
	KillT int64 `json:"kill_t_ns"`
	// LastSaveT is the last save detected before the kill; SavedBeforeKill is
	// false when there was none (everything acked before the kill was at risk).
	LastSaveT       int64 `json:"last_save_t_ns"`
	SavedBeforeKill bool  `json:"saved_before_kill"`
	RestartT        int64 `json:"restart_t_ns,omitempty"` // first start action after the kill, 0 if none
	// AckedBeforeKill counts acknowledged publishes that some subscriber's
	// filter matched, acknowledged up to the kill.
	AckedBeforeKill int64 `json:"acked_before_kill"`
	// AckedSinceSave counts those acknowledged after the last save: data only
	// in the broker's memory when it died.
	AckedSinceSave int64 `json:"acked_since_save"`
	// PredictedLost is AckedSinceSave minus what a subscriber had already
	// consumed before the kill: what autosave could not have saved.
	PredictedLost int64 `json:"predicted_lost"`
	// ActualLost counts messages acknowledged before the kill that no
	// subscriber ever received. It also contains messages the broker dropped by
	// its queue limits before the kill, which the events cannot tell apart.
	ActualLost int64 `json:"actual_lost"`
}

// msgKey names one message: publisher id and sequence number.
type msgKey struct {
	pub string
	seq int64
}

// subState is the per-subscriber bookkeeping of Summarize.
type subState struct {
	sum     SubscriberSummary
	filter  string
	known   bool                // subscriber is in the scenario (has a filter)
	seen    map[msgKey]struct{} // unique deliveries
	maxSeq  map[string]int64    // highest seq consumed per publisher
	gap     int64               // expected - delivered - held (before drops), >= 0
	lastRcv int64
}

// gaugePoint is one gauge sample.
type gaugePoint struct {
	t int64
	v float64
}

// Summarize derives the summary from a recorded run, and from nothing else:
// re-running it on an old run with newer code gives the newer analysis. The
// rules, where the events leave room for interpretation:
//
//   - A message is (publisher, seq). Published and acked count distinct ones.
//     A subscriber's first consumption of a message is a delivery (before the
//     "drain" phase) or held_at_end (during it); any later one is a duplicate;
//     a first consumption with a seq below the highest already consumed from
//     that publisher is also counted as reordered.
//   - expected: acknowledged publishes whose topic the subscriber's filter
//     matches (scenario in the header). lost = expected - delivered -
//     held_at_end - dropped, never below zero (a note says when it would be).
//   - Latency pairs pub and ack by (client, seq); delivery latency uses the
//     recv's pub_t_ns, else the pub event, over first consumptions including
//     the drain (so it shows how long held messages waited).
//   - Throughput: acked / (last ack - first pub); delivered / (last delivery
//     before the drain - first pub).
func Summarize(run *Run) Summary {
	var s Summary
	if run == nil {
		s.Status = "incomplete"
		return s
	}
	h := run.Header
	s.Schema = SummarySchema
	s.RunID = h.RunID
	s.Scenario = h.ScenarioName
	s.BrokerKind = h.BrokerKind
	s.BrokerVersion = h.BrokerVersion
	s.Persist.Path = h.PersistPath

	note := func(format string, a ...any) { s.Notes = append(s.Notes, fmt.Sprintf(format, a...)) }
	var reasons []string
	taint := func(r string) { reasons = append(reasons, r) }

	sc := decodeScenario(h, note)
	s.Persist.AutosaveInterval = autosaveSetting(sc, h.BrokerConfig)

	// Pass 1: phases and broker lifecycle actions, which classify everything else.
	s.Phases = map[string]int64{}
	var killT, restartT int64 = -1, 0
	kills := 0
	var lastT int64
	var nPub, nAck, nRecv int // map size hints for pass 2
	for i := range run.Events {
		e := &run.Events[i]
		if e.T > lastT {
			lastT = e.T
		}
		switch e.Type {
		case EvPub:
			nPub++
		case EvAck:
			nAck++
		case EvRecv:
			nRecv++
		case EvPhase:
			if _, ok := s.Phases[e.Msg]; !ok && e.Msg != "" {
				s.Phases[e.Msg] = e.T
			}
		case EvAction:
			if e.Err != "" {
				taint(fmt.Sprintf("action %s %s failed at %s: %s", e.Action, e.Target, fmtNS(e.T), e.Err))
				continue
			}
			if e.Action == "kill" {
				kills++
				if killT < 0 {
					killT = e.T
				}
			}
		}
	}
	if killT >= 0 {
		for i := range run.Events {
			e := &run.Events[i]
			if e.Type == EvAction && e.Action == "start" && e.Err == "" && e.T >= killT && (restartT == 0 || e.T < restartT) {
				restartT = e.T
			}
		}
	}
	if kills > 1 {
		note("%d kill actions: crash accounting covers the first one", kills)
	}
	drainT, drained := s.Phases["drain"]

	// Publishers and subscribers of the scenario: ids, topics and filters.
	pubTopic := map[string]string{}
	singleTopic, topicGroups := "", 0
	subs := map[string]*subState{}
	var subOrder []string
	addSub := func(id, filter string, known bool) *subState {
		st := &subState{
			sum:    SubscriberSummary{Client: id},
			filter: filter,
			known:  known,
			seen:   map[msgKey]struct{}{},
			maxSeq: map[string]int64{},
		}
		subs[id] = st
		subOrder = append(subOrder, id)
		return st
	}
	if sc != nil {
		for _, p := range sc.Publishers {
			topicGroups++
			singleTopic = p.Topic
			for _, id := range p.IDs() {
				pubTopic[id] = p.Topic
			}
		}
		for _, g := range sc.Subscribers {
			for _, id := range g.IDs() {
				if _, dup := subs[id]; !dup {
					addSub(id, g.Filter, true)
				}
			}
		}
	}
	unknownPubs := map[string]bool{}
	topicOf := func(pub string) (string, bool) {
		if t, ok := pubTopic[pub]; ok {
			return t, true
		}
		if topicGroups == 1 {
			return singleTopic, true // one publisher group: its id template was expanded differently
		}
		unknownPubs[pub] = true
		return "", false
	}

	// Pass 2: everything else.
	pubT := make(map[msgKey]int64, nPub)
	ackT := make(map[msgKey]int64, nAck)
	anyRecv := make(map[msgKey]int64, min(nRecv, nPub)) // earliest consumption by any subscriber
	ackLat := make([]int64, 0, nAck)
	dlvLat := make([]int64, 0, nRecv)
	var firstPub int64 = -1
	var lastAck int64
	var lastDelivered int64
	gauges := map[string][]gaugePoint{} // by gauge name
	var saves []SavePoint
	var maxDupStores int64
	for i := range run.Events {
		e := &run.Events[i]
		switch e.Type {
		case EvPub:
			k := msgKey{e.Client, e.Seq}
			if _, ok := pubT[k]; !ok {
				pubT[k] = e.T
				if firstPub < 0 || e.T < firstPub {
					firstPub = e.T
				}
			}
		case EvAck:
			k := msgKey{e.Client, e.Seq}
			if _, ok := ackT[k]; ok {
				continue
			}
			ackT[k] = e.T
			if e.T > lastAck {
				lastAck = e.T
			}
			if pt, ok := pubT[k]; ok {
				ackLat = append(ackLat, e.T-pt)
			}
		case EvRecv:
			st := subs[e.Client]
			if st == nil {
				st = addSub(e.Client, "", false)
			}
			k := msgKey{e.Pub, e.Seq}
			if _, dup := st.seen[k]; dup {
				st.sum.Duplicates++
				continue
			}
			st.seen[k] = struct{}{}
			if e.Seq < st.maxSeq[e.Pub] {
				st.sum.Reordered++
			} else {
				st.maxSeq[e.Pub] = e.Seq
			}
			if drained && e.T >= drainT {
				st.sum.HeldAtEnd++
			} else {
				st.sum.Delivered++
				if e.T > lastDelivered {
					lastDelivered = e.T
				}
			}
			if t, ok := anyRecv[k]; !ok || e.T < t {
				anyRecv[k] = e.T
			}
			sent := e.PubT
			if sent == 0 {
				if pt, ok := pubT[k]; ok {
					sent = pt
				} else {
					sent = -1
				}
			}
			if sent >= 0 {
				dlvLat = append(dlvLat, e.T-sent)
			}
		case EvGauge:
			gauges[e.Name] = append(gauges[e.Name], gaugePoint{e.T, e.Value})
		case EvSave:
			saves = append(saves, SavePoint{
				T: e.T, SizeBytes: e.SizeBytes, Held: e.Held, Queued: e.Queued,
				Inflight: e.Inflight, Stored: e.Stored, Decoded: e.Decoded, MsgBytes: e.MsgBytes,
			})
			if e.DupStores > maxDupStores {
				maxDupStores = e.DupStores
			}
		case EvNote:
			if e.Level == "warn" {
				taint(e.Msg)
			}
		}
	}
	// Gauges and saves come from different goroutines; order them by time.
	for _, g := range gauges {
		sort.SliceStable(g, func(i, j int) bool { return g[i].t < g[j].t })
	}
	persistBytes, dropped, held := gauges[GaugePersistBytes], gauges[GaugeDropped], gauges[GaugeHeld]
	sort.SliceStable(saves, func(i, j int) bool { return saves[i].T < saves[j].T })

	// Counts and latency.
	s.Published = int64(len(pubT))
	s.Acked = int64(len(ackT))
	s.Latency.PublishToAck = latencyOf(ackLat)
	s.Latency.PublishToDelivery = latencyOf(dlvLat)
	if firstPub >= 0 && lastAck > firstPub {
		s.Publish.DurationNS = lastAck - firstPub
		s.Publish.MsgsPerS = float64(s.Acked) / (float64(s.Publish.DurationNS) / 1e9)
	}

	// Expected per subscriber: acknowledged publishes whose topic its filter matches.
	ackedBy := map[string]int64{}
	for k := range ackT {
		ackedBy[k.pub]++
	}
	pubIDs := make([]string, 0, len(ackedBy))
	for p := range ackedBy {
		pubIDs = append(pubIDs, p)
	}
	sort.Strings(pubIDs)
	relevant := map[string]bool{} // publisher whose topic some subscriber matches
	for _, p := range pubIDs {
		topic, ok := topicOf(p)
		for _, id := range subOrder {
			st := subs[id]
			switch {
			case sc == nil:
				// No scenario to say who subscribed to what: assume everyone
				// wanted everything (the single-topic experiment).
				st.sum.Expected += ackedBy[p]
				relevant[p] = true
			case ok && st.known && MatchTopic(st.filter, topic):
				st.sum.Expected += ackedBy[p]
				relevant[p] = true
			}
		}
	}
	if sc == nil {
		note("no scenario in the header: every subscriber is assumed to expect every acknowledged publish")
	}
	if len(unknownPubs) > 0 {
		note("%d publisher ids are not in the scenario (e.g. %s): their messages are not expected by anyone", len(unknownPubs), firstKey(unknownPubs))
	}
	for _, id := range subOrder {
		if st := subs[id]; !st.known && sc != nil {
			note("subscriber %s is not in the scenario: nothing is expected for it", id)
		}
	}

	// Held at the end. With a drain phase it was counted from the deliveries
	// during the drain. Without one, the latest observation of the broker's
	// holdings (a decoded save or the broker.held gauge, whichever is later) is
	// shared among subscribers like drops are (see below).
	if !drained {
		var hT int64 = -1
		var hN int64
		src := ""
		for _, sp := range saves {
			if sp.Decoded && sp.T >= hT {
				hT, hN, src = sp.T, sp.Held, "the last decoded save"
			}
		}
		if len(held) > 0 && held[len(held)-1].t >= hT {
			hT, hN, src = held[len(held)-1].t, int64(held[len(held)-1].v), "the last broker.held gauge"
		}
		if hT >= 0 && hN > 0 {
			gaps := make([]int64, len(subOrder))
			for i, id := range subOrder {
				st := subs[id]
				gaps[i] = max(0, st.sum.Expected-st.sum.Delivered)
			}
			shares, excess := apportion(hN, gaps)
			for i, id := range subOrder {
				subs[id].sum.HeldAtEnd = shares[i]
			}
			note("no drain phase: held_at_end taken from %s (%d held at %s)", src, hN, fmtNS(hT))
			if excess > 0 {
				note("the broker held %d more messages than subscribers were missing (other clients, or not yet acknowledged)", excess)
			}
		} else if hT < 0 {
			note("no drain phase and no decoded save or broker.held gauge: held_at_end unknown (counted as lost)")
		}
	}

	// Dropped by the broker. The counter is global, so it is attributed to
	// subscribers in proportion to what each is still missing (expected -
	// delivered - held), never more than that. A broker started for this run
	// counts from zero; for an external broker only the increase during the run
	// counts. A drop in the counter is a broker restart: counting goes on from
	// the new value.
	s.DroppedByBroker = int64(counterTotal(dropped, h.BrokerKind != "external"))
	gaps := make([]int64, len(subOrder))
	for i, id := range subOrder {
		st := subs[id]
		st.gap = st.sum.Expected - st.sum.Delivered - st.sum.HeldAtEnd
		if st.gap < 0 {
			note("subscriber %s consumed %d more messages than were acknowledged for it (publishes acknowledged late or never)", id, -st.gap)
			st.gap = 0
		}
		gaps[i] = st.gap
	}
	shares, excess := apportion(s.DroppedByBroker, gaps)
	if excess > 0 {
		note("the broker dropped %d messages beyond what scenario subscribers were missing (drops for other clients)", excess)
	}
	for i, id := range subOrder {
		st := subs[id]
		st.sum.Dropped = shares[i]
		st.sum.Lost = st.gap - st.sum.Dropped
		s.Delivered += st.sum.Delivered
		s.Duplicates += st.sum.Duplicates
		s.Reordered += st.sum.Reordered
		s.HeldAtEnd += st.sum.HeldAtEnd
		s.Lost += st.sum.Lost
		s.Subscribers = append(s.Subscribers, st.sum)
	}
	if s.Subscribers == nil {
		s.Subscribers = []SubscriberSummary{}
	}
	if firstPub >= 0 && lastDelivered > firstPub {
		s.Deliver.DurationNS = lastDelivered - firstPub
		s.Deliver.MsgsPerS = float64(s.Delivered) / (float64(s.Deliver.DurationNS) / 1e9)
	}

	// Crash accounting.
	if killT >= 0 {
		c := &CrashSummary{KillT: killT, RestartT: restartT}
		for _, sp := range saves {
			if sp.T <= killT {
				c.LastSaveT, c.SavedBeforeKill = sp.T, true
			}
		}
		for k, t := range ackT {
			if t > killT || !relevant[k.pub] {
				continue
			}
			c.AckedBeforeKill++
			rt, got := anyRecv[k]
			if !got {
				c.ActualLost++
			}
			if !c.SavedBeforeKill || t > c.LastSaveT {
				c.AckedSinceSave++
				if !got || rt > killT {
					c.PredictedLost++
				}
			}
		}
		s.Crash = c
		s.LostInCrash = c.ActualLost
		if c.ActualLost > 0 && s.DroppedByBroker > 0 {
			note("lost_in_crash may include some of the %d messages the broker dropped by queue limits", s.DroppedByBroker)
		}
	}

	// Persistence.
	for _, p := range persistBytes {
		s.Persist.MaxBytes = max(s.Persist.MaxBytes, int64(p.v))
	}
	for _, sp := range saves {
		s.Persist.MaxBytes = max(s.Persist.MaxBytes, sp.SizeBytes)
	}
	var finalT int64 = -1
	if n := len(persistBytes); n > 0 {
		finalT, s.Persist.FinalBytes = persistBytes[n-1].t, int64(persistBytes[n-1].v)
	}
	if n := len(saves); n > 0 && saves[n-1].T > finalT {
		s.Persist.FinalBytes = saves[n-1].SizeBytes
	}
	s.Persist.Saves = len(saves)
	s.Persist.SavePoints = saves
	if n := len(saves); n >= 2 {
		s.Persist.MeanSavePeriodNS = (saves[n-1].T - saves[0].T) / int64(n-1)
	}
	s.Persist.BytesPerHeldMessage, s.Persist.FixedBytes = fitSizePerHeld(saves)
	s.Persist.FirstMinuteGrowthBytes = firstMinuteGrowth(persistBytes, s.Phases, lastT)
	s.Persist.DuplicateStoresSeen = maxDupStores

	// Processes.
	s.Bench.MaxRSSBytes = int64(maxOf(gauges[GaugeBenchRSSBytes]))
	s.Bench.CPUSeconds = counterTotal(gauges[GaugeBenchCPUSecs], true)
	s.BrokerProcess.MaxRSSBytes = int64(maxOf(gauges[GaugeRSSBytes]))
	s.BrokerProcess.CPUSeconds = counterTotal(gauges[GaugeCPUSeconds], true)

	// Status and taint.
	if f := run.Footer; f != nil {
		s.Status = f.Status
		s.DurationNS = f.T
		s.Tainted = f.Tainted
		reasons = append(append([]string(nil), f.Reasons...), reasons...)
		if f.Error != "" && f.Status != "ok" {
			note("run error: %s", f.Error)
		}
	} else {
		s.Status = "incomplete"
		s.DurationNS = lastT
		r := "no footer: the recording was cut short"
		if run.Tail != "" {
			r += " (" + run.Tail + ")"
		}
		taint(r)
	}
	if s.Status == "" {
		s.Status = "incomplete"
	}
	s.TaintReasons = capReasons(dedupe(reasons))
	if len(s.TaintReasons) > 0 {
		s.Tainted = true
	}
	return s
}

// WriteSummary summarizes the run in dir and writes dir/summary.json. The file
// is replaced atomically (temporary file, then rename), so a reader never sees
// half a summary and an interrupted write leaves the old one.
func WriteSummary(dir string) (*Summary, error) {
	run, err := ReadRun(dir)
	if err != nil {
		return nil, err
	}
	s := Summarize(run)
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding summary of %s: %w", run.Dir, err)
	}
	data = append(data, '\n')
	if err := writeFileAtomic(filepath.Join(run.Dir, SummaryFile), data); err != nil {
		return nil, err
	}
	return &s, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return nil
}

// decodeScenario reads the resolved scenario recorded in the header; nil when
// there is none or it cannot be read (said in a note).
func decodeScenario(h Header, note func(string, ...any)) *scenarios.Scenario {
	raw := strings.TrimSpace(string(h.Scenario))
	if raw == "" || raw == "null" {
		return nil
	}
	var sc scenarios.Scenario
	if err := json.Unmarshal(h.Scenario, &sc); err != nil {
		note("header scenario unreadable (%v): expected counts assume one topic", err)
		return nil
	}
	return &sc
}

// autosaveSetting describes the configured autosave: "3" (seconds) or
// "on_changes 100", from the scenario's broker settings, else from the
// recorded mosquitto.conf lines; "" when neither sets it.
func autosaveSetting(sc *scenarios.Scenario, confLines []string) string {
	get := func(key string) (string, bool) {
		if sc != nil {
			if v, ok := sc.BrokerValue(key); ok {
				return v, true
			}
		}
		for _, l := range confLines {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == key {
				return f[1], true
			}
		}
		return "", false
	}
	interval, hasInterval := get("autosave_interval")
	if oc, ok := get("autosave_on_changes"); ok {
		if b, err := strconv.ParseBool(oc); err == nil && b {
			if !hasInterval {
				interval = "1800" // Mosquitto's default
			}
			return "on_changes " + interval
		}
	}
	return interval
}

// MatchTopic reports whether an MQTT topic filter matches a topic name: "+"
// matches one level, a trailing "#" the rest including the parent level, and
// topics starting with "$" are not matched by a filter starting with a
// wildcard. bench has its own matcher because it must not import the broker.
func MatchTopic(filter, topic string) bool {
	if filter == "" || topic == "" {
		return false
	}
	if topic[0] == '$' && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return !fmore
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case !fmore && !tmore:
			return true
		case !tmore:
			// "a/#" matches "a": the filter may end in "/#" here.
			return frest == "#"
		case !fmore:
			return false
		}
		filter, topic = frest, trest
	}
}

// latencyOf computes nearest-rank percentiles (the smallest value with at
// least p% of the samples at or below it), the maximum and the mean. It sorts
// samples in place.
func latencyOf(samples []int64) Latency {
	n := len(samples)
	if n == 0 {
		return Latency{}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	rank := func(p float64) int64 {
		// The epsilon keeps 99.9% of 1000 at rank 999 despite binary fractions.
		r := int(math.Ceil(p*float64(n)/100 - 1e-9))
		r = min(max(r, 1), n)
		return samples[r-1]
	}
	var sum float64
	for _, v := range samples {
		sum += float64(v)
	}
	return Latency{
		Count: int64(n),
		P50:   rank(50),
		P90:   rank(90),
		P99:   rank(99),
		P999:  rank(99.9),
		Max:   samples[n-1],
		Mean:  int64(math.Round(sum / float64(n))),
	}
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

// apportion splits total among buckets in proportion to their weights by the
// largest-remainder method, never giving a bucket more than its weight; what
// cannot be placed is returned as excess.
func apportion(total int64, weights []int64) (shares []int64, excess int64) {
	shares = make([]int64, len(weights))
	var sum int64
	for _, w := range weights {
		sum += w
	}
	if total <= 0 {
		return shares, 0
	}
	if total >= sum {
		copy(shares, weights)
		return shares, total - sum
	}
	type rem struct {
		i int
		r float64
	}
	rems := make([]rem, 0, len(weights))
	var given int64
	for i, w := range weights {
		exact := float64(total) * float64(w) / float64(sum)
		shares[i] = int64(math.Floor(exact))
		given += shares[i]
		rems = append(rems, rem{i, exact - float64(shares[i])})
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for j := 0; given < total && j < len(rems); j++ {
		if shares[rems[j].i] < weights[rems[j].i] {
			shares[rems[j].i]++
			given++
		}
	}
	return shares, 0
}

// counterTotal is the increase of a cumulative counter over the samples. A
// decrease means the counted process restarted from zero, so the new value is
// all increase. fromZero counts the first sample as increase too (a counter
// that started with the run).
func counterTotal(g []gaugePoint, fromZero bool) float64 {
	if len(g) == 0 {
		return 0
	}
	var total float64
	if fromZero {
		total = g[0].v
	}
	for i := 1; i < len(g); i++ {
		if d := g[i].v - g[i-1].v; d >= 0 {
			total += d
		} else {
			total += g[i].v
		}
	}
	return total
}

func maxOf(g []gaugePoint) float64 {
	var m float64
	for _, p := range g {
		m = math.Max(m, p.v)
	}
	return m
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

func capReasons(in []string) []string {
	if len(in) <= maxReasons {
		return in
	}
	out := append([]string(nil), in[:maxReasons]...)
	return append(out, fmt.Sprintf("... and %d more", len(in)-maxReasons))
}

func firstKey(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[0]
}

// fmtNS renders nanoseconds since start for notes.
func fmtNS(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 3, 64) + "s"
}

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
