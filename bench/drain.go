package bench

import (
	"fmt"
	"github.com/mqbench/mqbench/mqtt/topic"
	"time"
)

// expected is how many distinct messages a subscriber should get: the
// acknowledged publishes of every publisher whose topic its filter matches.
func (e *engine) expected(s *subscriber) int64 {
	var n int64
	for _, p := range e.pubList {
		if topic.Match(s.cfg.Filter, p.cfg.Topic) {
			n += p.acked.Load()
		}
	}
	return n
}

// missing is how many expected deliveries have not arrived yet; the
// members of a shared subscription count together, as the broker gives
// each message to one of them.
func (e *engine) missing() int64 {
	var missing int64
	shares := map[string]int64{}
	expected := map[string]int64{}
	for _, s := range e.subs {
		if s.cfg.SharedGroup != "" {
			k := s.cfg.SubscribeFilter()
			shares[k] += s.unique.Load()
			expected[k] = e.expected(s)
			continue
		}
		if d := e.expected(s) - s.unique.Load(); d > 0 {
			missing += d
		}
	}
	for k, got := range shares {
		if d := expected[k] - got; d > 0 {
			missing += d
		}
	}
	return missing
}

func (e *engine) acked() int64 {
	var n int64
	for _, p := range e.pubList {
		n += p.acked.Load()
	}
	return n
}

// drain waits until every subscriber has every acknowledged message, or
// nothing is pending and nothing arrived for drainQuiet, or the drain timeout.
func (e *engine) drain() {
	start := time.Now()
	deadline := start.Add(e.sc.DrainTimeout.D())
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		pubsDone := true
		for _, p := range e.pubList {
			if !p.finished.Load() {
				pubsDone = false
			}
		}
		complete, quiet := pubsDone, pubsDone
		if e.sc.Shard != nil && e.sc.Shard.Count > 1 {
			// Other shards' publishers are not counted here: only the quiet
			// rule or the timeout can tell this shard that nothing more comes.
			complete = false
		}
		now := e.rec.Since()
		startNS := now - int64(time.Since(start))
		if e.missing() > 0 {
			complete = false
		}
		for _, s := range e.subs {
			if s.expectedDown.Load() {
				continue
			}
			last := s.lastRecv.Load()
			if last < startNS {
				last = startNS
			}
			if !s.connected.Load() || time.Duration(now-last) < drainQuiet {
				quiet = false
			}
		}
		if complete {
			e.waitUntil(time.Now().Add(drainSettle))
			return
		}
		if quiet {
			return
		}
		if time.Now().After(deadline) {
			missing := e.missing()
			e.note(LevelInfo, fmt.Sprintf("drain timeout after %s: %d expected deliveries not received", e.sc.DrainTimeout.D(), missing))
			return
		}
	}
}
