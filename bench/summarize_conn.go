package bench

// ConnSummary is what opening the run's connections took and cost (summary
// key "connections"): the connect rate and latency of the clients' first
// connects at the start barrier, and how many were open at once.
type ConnSummary struct {
	// Connected counts first connects that succeeded.
	Connected int64 `json:"connected"`
	// Lost counts connections lost during the run (a reconnect after it is
	// not counted again in Connected or Peak).
	Lost int64 `json:"lost"`
	// Peak is the most connections open at once: first connects less the
	// losses before them.
	Peak int64 `json:"peak"`
	// PerS is Connected over the time from the first dial to the last
	// connect: the connect rate the broker sustained (or the ramp allowed).
	PerS float64 `json:"per_s"`
	// ConnectP99Ns is the 99th percentile of Connect, the key thresholds use.
	ConnectP99Ns int64   `json:"connect_p99_ns"`
	Connect      Latency `json:"connect_latency"` // dial to connected and subscribed
}

// connPass is the summary's connection pass: it sees EvConn events and the
// memory gauges sampled at the edges of the connect phase.
type connPass struct {
	seen       bool
	up, lost   int64
	open, peak int64
	firstDial  int64
	lastUp     int64
	lat        latencyAcc
	rss        map[string]float64 // first value of each edge gauge
}

func (c *connPass) add(e *Event) {
	if !c.seen {
		c.seen, c.firstDial = true, -1
	}
	switch e.Msg {
	case ConnUp:
		c.up++
		c.open++
		c.peak = max(c.peak, c.open)
		if dial := e.T - e.Dur; c.firstDial < 0 || dial < c.firstDial {
			c.firstDial = dial
		}
		c.lastUp = max(c.lastUp, e.T)
		c.lat.add(e.Dur)
	case ConnLost:
		c.lost++
		if c.open > 0 {
			c.open--
		}
	}
}

// gauge keeps the connect phase's memory samples.
func (c *connPass) gauge(e *Event) {
	switch e.Name {
	case GaugeBenchRSSBeforeConnect, GaugeBenchRSSConnected, GaugeBrokerRSSBeforeConnect, GaugeBrokerRSSConnected:
		if c.rss == nil {
			c.rss = map[string]float64{}
		}
		if _, ok := c.rss[e.Name]; !ok {
			c.rss[e.Name] = e.Value
		}
	}
}

// close fills the summary; a run recorded before connections were timed
// has no "connections" key, and memory per connection is left out (unknown)
// when either edge was not sampled, e.g. an external broker's.
func (c *connPass) close(s *Summary) {
	if !c.seen {
		return
	}
	cs := &ConnSummary{Connected: c.up, Lost: c.lost, Peak: c.peak, Connect: c.lat.latency()}
	cs.ConnectP99Ns = cs.Connect.P99
	if span := c.lastUp - c.firstDial; c.up > 0 && span > 0 {
		cs.PerS = float64(c.up) / (float64(span) / 1e9)
	}
	s.Connections = cs
	per := func(before, after string) *float64 {
		b, ok1 := c.rss[before]
		a, ok2 := c.rss[after]
		if !ok1 || !ok2 || c.peak == 0 {
			return nil
		}
		v := (a - b) / float64(c.peak)
		return &v
	}
	s.Bench.BytesPerConnection = per(GaugeBenchRSSBeforeConnect, GaugeBenchRSSConnected)
	s.BrokerProcess.BytesPerConnection = per(GaugeBrokerRSSBeforeConnect, GaugeBrokerRSSConnected)
}
