package reports

import (
	"github.com/mqbench/mqbench/bench"
	"gonum.org/v1/plot/plotter"
)

// runPlots is what the plots draw of a run, gathered in the same single pass
// over its events as the summary, so rendering a run of millions of messages
// does not hold its events: the gauges and saves (which grow with the run's
// duration), the run's phases and actions, the cumulative counts thinned to
// a bounded number of points, and the latency distributions the analysis
// keeps in histograms.
type runPlots struct {
	header *bench.Header

	// zero is the time plots are measured from: the "run" phase (publishers
	// released), so runs with different connect times line up; 0 if absent.
	zero                 int64
	haveZero             bool
	gauges               map[string][]tpoint
	saves                []bench.Event // save events, in file order
	actions              []bench.Event // action events, in file order
	firstPub, lastPub    int64
	drainT, doneT, lastT int64
	published, delivered cumSeries
	seen                 map[[2]string]*bench.SeqSet // recv: (subscriber, publisher) -> seqs consumed
	ackLat, deliveryLat  *bench.Distribution
	// exp is the MQTT 5 experiment pass over the same events.
	exp bench.Experiments
	// brokers: each broker's file of a run with several (see brokers.go).
	brokers map[string]*brokerPlots
}

// tpoint is a sample at a time in ns since start.
type tpoint struct {
	t int64
	v float64
}

// cumSeriesMax bounds the points kept of a cumulative count: when full, every
// other point is dropped and only points at least twice as far apart are kept
// from then on. The plots draw at most maxPlotPoints anyway.
const cumSeriesMax = 4 * maxPlotPoints

// cumSeries is a count over time (one step per event), thinned as it grows.
type cumSeries struct {
	pts  []tpoint
	gap  int64 // smallest time between kept points
	n    float64
	last tpoint // the latest step, kept apart so the final count is exact
}

func (c *cumSeries) add(t int64) {
	c.n++
	c.last = tpoint{t, c.n}
	if k := len(c.pts); k > 0 && t-c.pts[k-1].t < c.gap {
		return
	}
	c.pts = append(c.pts, c.last)
	if len(c.pts) >= cumSeriesMax {
		kept := c.pts[:0]
		for i := 0; i < len(c.pts); i += 2 {
			kept = append(kept, c.pts[i])
		}
		c.pts = kept
		c.gap = max(2*c.gap, 1)
	}
}

// series returns the kept points and the last step.
func (c *cumSeries) series() []tpoint {
	if c.n == 0 {
		return nil
	}
	if k := len(c.pts); k > 0 && c.pts[k-1] == c.last {
		return c.pts
	}
	return append(c.pts, c.last)
}

func newRunPlots(h *bench.Header) *runPlots {
	return &runPlots{header: h, gauges: map[string][]tpoint{}, seen: map[[2]string]*bench.SeqSet{},
		firstPub: -1, lastPub: -1, drainT: -1, doneT: -1}
}

// add takes one event, in file order.
func (p *runPlots) add(e *bench.Event) {
	p.lastT = max(p.lastT, e.T)
	if e.Broker != "" && !p.addBroker(e) {
		return
	}
	switch e.Type {
	case bench.EvPub:
		if p.firstPub < 0 {
			p.firstPub = e.T
		}
		p.lastPub = e.T
		p.published.add(e.T)
	case bench.EvRecv:
		k := [2]string{e.Client, e.Pub}
		s := p.seen[k]
		if s == nil {
			s = &bench.SeqSet{}
			p.seen[k] = s
		}
		if !s.Add(e.Seq) {
			p.delivered.add(e.T)
		}
	case bench.EvGauge:
		p.gauges[e.Name] = append(p.gauges[e.Name], tpoint{e.T, e.Value})
	case bench.EvSave:
		p.saves = append(p.saves, *e)
	case bench.EvAction:
		p.actions = append(p.actions, *e)
	case bench.EvPhase:
		switch {
		case e.Msg == "run" && !p.haveZero:
			p.zero, p.haveZero = e.T, true
		case e.Msg == "drain" && p.drainT < 0:
			p.drainT = e.T
		case e.Msg == "done" && p.doneT < 0:
			p.doneT = e.T
		}
	}
}

// readRun reads a run into its summary and what its plots draw: a first pass
// for the instants the analysis asks about (bench.ScanRun), then one for the
// rest. The returned Run has no events.
func readRun(path string) (*bench.Run, bench.Summary, *runPlots, error) {
	in, err := bench.ScanRun(path)
	if err != nil {
		return nil, bench.Summary{}, nil, err
	}
	rr, err := bench.OpenRun(path)
	if err != nil {
		return nil, bench.Summary{}, nil, err
	}
	defer rr.Close()
	h := rr.Run().Header
	z := bench.NewSummarizer(h, in)
	x := bench.NewExperimentPass(z.Scenario(), in)
	p := newRunPlots(&h)
	for e := rr.Next(); e != nil; e = rr.Next() {
		z.Add(e)
		x.Add(e)
		p.add(e)
	}
	run := rr.Run()
	run.Header = h
	p.header = &run.Header
	s := z.Close(run.Footer, run.Tail)
	p.ackLat, p.deliveryLat = z.Distributions()
	p.exp = x.Close()
	return run, s, p, nil
}

// plotsOf is runPlots of a run already in memory (tests).
func plotsOf(run *bench.Run) *runPlots {
	z := bench.NewSummarizer(run.Header, bench.InstantsOf(run))
	p := newRunPlots(&run.Header)
	for i := range run.Events {
		z.Add(&run.Events[i])
		p.add(&run.Events[i])
	}
	z.Close(run.Footer, run.Tail)
	p.ackLat, p.deliveryLat = z.Distributions()
	p.exp = bench.RunExperiments(run)
	return p
}

// gaugeSeries is one gauge's samples, scaled, in time order; offsetFirst
// subtracts the first sample (counters that began before the run).
func (p *runPlots) gaugeSeries(name string, scale float64, offsetFirst bool) plotter.XYs {
	g := p.gauges[name] // in file order, as the events were always drawn
	var xy plotter.XYs
	first, have := 0.0, false
	for _, s := range g {
		v := s.v
		if offsetFirst {
			if !have {
				first, have = v, true
			}
			v -= first
		}
		xy = append(xy, plotter.XY{X: secs(s.t, p.zero), Y: v * scale})
	}
	return xy
}

// cumulative is a count series in seconds since runZero.
func (p *runPlots) cumulative(c *cumSeries) plotter.XYs {
	var xy plotter.XYs
	for _, s := range c.series() {
		xy = append(xy, plotter.XY{X: secs(s.t, p.zero), Y: s.v})
	}
	return xy
}
