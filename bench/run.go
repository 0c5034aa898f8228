package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqbench/mqbench/scenarios"
)

// Engine timing that is not a scenario setting.
const (
	progressEvery = 500 * time.Millisecond
	drainQuiet    = time.Second // drain ends this long after the last delivery once nothing is pending
	drainPoll     = 50 * time.Millisecond
	// drainSettle lets the last acknowledgement flows (PUBREC, PUBREL, PUBCOMP)
	// finish after the last delivery, so the broker's final state is clean.
	drainSettle    = 300 * time.Millisecond
	actionTimeout  = 30 * time.Second
	shutdownWait   = 5 * time.Second
	maxTaintReason = 20
)

// Options says what to run and where to record it. The caller resolves the
// scenario (Load, Expand, Scale) and provides the broker; Run only drives it.
type Options struct {
	Scenario *scenarios.Scenario
	// Target is the broker of a one-broker scenario. A scenario with a
	// brokers list takes Brokers instead, one per broker by name (Target may
	// then be left nil: it becomes the first).
	Target    Target
	Brokers   []NamedTarget
	OutDir    string  // created; events.jsonl.gz goes here (an existing event file is never overwritten)
	MQBench   string  // mqbench version for the header
	TimeScale float64 // recorded in the header (already applied to Scenario by the caller)
	// StartAt, when set, is the wall-clock instant the publishers are
	// released, after every client has connected: the shards of one run
	// (--shard I/N on several machines) start together this way.
	StartAt time.Time
	// Progress is called about every 500 ms from one goroutine; nil = none.
	Progress func(Progress)
}

// Progress is a live view of a run for the terminal: enough to see that the
// backlog builds and the file grows without waiting for the report.
type Progress struct {
	Elapsed      time.Duration
	Phase        string
	Published    int64
	Acked        int64
	Delivered    int64
	PersistBytes int64
	Saves        int
}

// Result is where a run was recorded and how it ended.
type Result struct {
	Dir    string
	Footer Footer
}

// Execute runs one scenario (named Execute because Run is the recorded-run type) against the target and records it to
// OutDir/events.jsonl.gz: connect subscribers and the $SYS monitor, release the
// publishers together, run the actions on time, drain, write the footer.
// Cancelling ctx (Ctrl-C) stops the clients and records status "interrupted";
// the file is kept and the Result returned without error. An error is returned
// when the run could not be done (bad options, broker unreachable); if the
// event file was created it holds the footer with status "error".
func Execute(ctx context.Context, o Options) (*Result, error) {
	if o.Scenario == nil {
		return nil, errors.New("run: no scenario")
	}
	if o.Target == nil && len(o.Brokers) > 0 {
		o.Target = o.Brokers[0].Target
	}
	if o.Target == nil {
		return nil, errors.New("run: no broker target")
	}
	if o.OutDir == "" {
		return nil, errors.New("run: no output directory")
	}
	sc := o.Scenario.Clone()
	sc.ApplyDefaults()
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	if _, err := sc.Settings(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	brokers, byClient, err := newBrokers(o, sc)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	o.Target = brokers[0].target
	// Credentials and TLS files before anything is recorded: an unset
	// password variable or an unreadable CA is a mistake to fix, not a run.
	conns, err := resolveConns(sc, o.Target.Addr())
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	if err := checkFileLimit(connectionsOf(sc)); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating run directory: %w", err)
	}
	path := filepath.Join(o.OutDir, EventsFile)
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%s already exists: refusing to overwrite a recorded run", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("checking %s: %w", path, err)
	}
	scJSON, err := json.Marshal(sc)
	if err != nil {
		return nil, fmt.Errorf("encoding scenario %s: %w", sc.Name, err)
	}
	scale := o.TimeScale
	if scale == 0 {
		scale = sc.TimeScale
	}
	if scale == 0 {
		scale = 1
	}
	host, _ := os.Hostname()
	start := time.Now()
	h := Header{
		Schema:             EventSchema,
		RunID:              fmt.Sprintf("%s-%s-%04x", sc.Name, start.UTC().Format("20060102T150405Z"), rand.IntN(1<<16)),
		ScenarioName:       sc.Name,
		Scenario:           scJSON,
		BrokerKind:         o.Target.Kind(),
		BrokerVersion:      o.Target.Version(),
		BrokerAddr:         o.Target.Addr(),
		PersistPath:        o.Target.PersistPath(),
		BrokerConfig:       o.Target.ConfigLines(),
		BrokerConfigSource: configSourceOf(o.Target),
		MQBench:            o.MQBench,
		GoVersion:          runtime.Version(),
		Host:               host,
		Start:              start,
		TimeScale:          scale,
		Clock:              readClock(),
	}
	h.Named = namedHeader(brokers)
	cluster := newClusterPlan(sc, o.Target.Addr())
	if cluster != nil {
		h.Brokers = cluster.shares
	}
	rec, err := NewRecorder(path, h)
	if err != nil {
		return nil, err
	}
	e := newEngine(o, sc, rec)
	e.brokers, e.byClient = brokers, byClient
	e.cluster = cluster
	e.conns = conns
	status, runErr := e.run(ctx)
	e.reasonsMu.Lock()
	reasons := append([]string(nil), e.reasons...)
	e.reasonsMu.Unlock()
	f := Footer{Type: "footer", T: rec.Since(), Status: status, Tainted: len(reasons) > 0, Reasons: reasons, End: time.Now()}
	if runErr != nil {
		f.Error = runErr.Error()
	}
	if err := rec.Close(f); err != nil && runErr == nil {
		runErr = fmt.Errorf("recording %s: %w", path, err)
	}
	return &Result{Dir: o.OutDir, Footer: f}, runErr
}

// engine is the state of one run.
type engine struct {
	o      Options
	sc     *scenarios.Scenario
	target Target
	addr   string
	rec    *Recorder
	conns  *runConns // connection settings of every client group
	// cluster spreads the clients over a cluster target's addresses (nil
	// for one broker); see cluster.go.
	cluster *clusterPlan
	// sources spreads the clients over loopback source addresses when one
	// address's ephemeral ports cannot hold them (nil: one is enough).
	sources *sourcePlan

	stop        chan struct{} // the run is over: every wait returns
	stopPublish chan struct{} // the observation window is over: no new publishes
	drainCh     chan struct{} // the drain phase began: subscribers stop pacing
	stopOnce    sync.Once
	pubOnce     sync.Once
	drainOnce   sync.Once
	isDraining  atomic.Bool
	stopping    atomic.Bool
	interrupted atomic.Bool
	// brokers are the run's brokers (one, named "", unless the scenario
	// lists several); byClient maps each client id to its broker.
	brokers  []*brokerRun
	byClient map[string]*brokerRun
	phase    atomic.Value

	published, delivered atomic.Int64

	pubs       map[string]*publisher
	pubList    []*publisher
	subs       []*subscriber
	subByID    map[string]*subscriber
	defaultPub string

	reasonsMu sync.Mutex
	reasons   []string
	wg        sync.WaitGroup
}

func newEngine(o Options, sc *scenarios.Scenario, rec *Recorder) *engine {
	e := &engine{
		o: o, sc: sc, target: o.Target, addr: o.Target.Addr(), rec: rec,
		stop:        make(chan struct{}),
		stopPublish: make(chan struct{}),
		drainCh:     make(chan struct{}),
		pubs:        map[string]*publisher{},
		subByID:     map[string]*subscriber{},
	}
	e.phase.Store("")
	return e
}

// emit records an event; the recorder drops events after Close, so late
// goroutines are harmless.
func (e *engine) emit(ev Event) { e.rec.Emit(ev) }

// note records a note; "warn" notes taint the run and become footer reasons.
func (e *engine) note(level, msg string) {
	e.emit(Event{T: e.rec.Since(), Type: EvNote, Level: level, Msg: msg})
	if level != LevelWarn {
		return
	}
	e.reasonsMu.Lock()
	defer e.reasonsMu.Unlock()
	for _, r := range e.reasons {
		if r == msg {
			return
		}
	}
	if len(e.reasons) < maxTaintReason {
		e.reasons = append(e.reasons, msg)
	}
}

// connLost records an unexpected connection loss; expected ones (a disconnect
// action, a stopped broker, the end of the run) are only informational.
func (e *engine) connLost(kind, id string, err error, expected bool) {
	if e.stopping.Load() {
		return
	}
	lvl := e.levelFor(id)
	if expected {
		lvl = LevelInfo
	}
	e.emit(Event{T: e.rec.Since(), Type: EvConn, Client: id, Msg: ConnLost})
	e.note(lvl, fmt.Sprintf("%s %s lost its connection: %v", kind, id, err))
}

func (e *engine) setPhase(p string) {
	e.phase.Store(p)
	e.emit(Event{T: e.rec.Since(), Type: EvPhase, Msg: p})
}

func (e *engine) publishingOver() bool {
	select {
	case <-e.stopPublish:
		return true
	default:
		return false
	}
}

func (e *engine) draining() bool { return e.isDraining.Load() }

func (e *engine) stopped() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// sleepUntil waits for t; false if the run's publishing window or the run ended first.
func (e *engine) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return !e.publishingOver()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-e.stopPublish:
		return false
	}
}

// waitUntil waits for t; false if the run ended first.
func (e *engine) waitUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return !e.stopped()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-e.stop:
		return false
	}
}

// pause waits d, cut short by the drain phase (pace 0) or the end of the run.
func (e *engine) pause(d time.Duration) {
	if d <= 0 || e.draining() {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-e.drainCh:
	case <-e.stop:
	}
}

func (e *engine) endRun() {
	e.stopping.Store(true)
	e.pubOnce.Do(func() { close(e.stopPublish) })
	e.stopOnce.Do(func() { close(e.stop) })
}

// run drives the phases and returns the footer status.
func (e *engine) run(ctx context.Context) (string, error) {
	ctxDone := make(chan struct{})
	defer close(ctxDone)
	go func() {
		select {
		case <-ctx.Done():
			e.interrupted.Store(true)
			e.note(LevelInfo, "interrupted")
			e.endRun()
		case <-ctxDone:
		}
	}()

	e.setPhase("connect")
	e.noteInsecure()
	if sh := e.sc.Shard; sh != nil && sh.Count > 1 {
		e.note(LevelInfo, fmt.Sprintf("shard %s: this run holds one shard's share of the scenario; its subscribers also receive the other shards' messages, and its lost and held counts judge only what it saw", sh))
	}
	if err := e.setup(); err != nil {
		e.setPhase("done")
		return "error", err
	}
	samplersDone := make(chan struct{})
	samplerStop := make(chan struct{})
	var swg sync.WaitGroup
	for _, b := range e.brokers {
		if path := b.target.PersistPath(); path != "" && e.sc.RunsBrokerSide() {
			b.smp = &sampler{e: e, b: b, path: path, interval: e.sc.Sample.Interval.D(), decode: e.sc.DecodeSaves()}
			swg.Add(1)
			go func() { defer swg.Done(); b.smp.run(samplerStop) }()
		}
	}
	swg.Add(1)
	go func() { defer swg.Done(); e.procSampler(samplerStop) }()
	if e.o.Progress != nil {
		swg.Add(1)
		go func() { defer swg.Done(); e.progress(samplerStop) }()
	}
	go func() { swg.Wait(); close(samplersDone) }()

	status, err := e.phases()
	e.shutdown()
	e.noteUnknownSendTimes()
	close(samplerStop)
	select {
	case <-samplersDone:
	case <-time.After(shutdownWait):
	}
	if e.interrupted.Load() && err == nil {
		status = "interrupted"
	}
	return status, err
}

func (e *engine) phases() (string, error) {
	if e.cluster != nil && e.sc.SYSEnabled() {
		// Each node counts only its own clients and drops: one node's
		// counters would pass for the cluster's. Drops stay unknown.
		e.note(LevelInfo, fmt.Sprintf("cluster target of %d brokers: $SYS counters are per node and not sampled; drops by the broker are unknown", len(e.cluster.addrs)))
	} else if e.sc.SYSEnabled() && e.sc.RunsBrokerSide() {
		for _, b := range e.brokers {
			if err := e.connectSys(b); err != nil {
				if e.stopped() {
					return "interrupted", nil
				}
				e.note(LevelInfo, fmt.Sprintf("no $SYS counters%s: %v", b.of(), err))
			}
		}
	}
	var subs []*subscriber
	for _, s := range e.subs {
		if s.cfg.PaceMode != "block" {
			e.wg.Add(1)
			go func() { defer e.wg.Done(); s.consumeLoop() }()
		}
		if s.cfg.StartAt <= 0 {
			subs = append(subs, s)
		}
	}
	var pubs []*publisher
	for _, p := range e.pubList {
		if !p.cfg.ConnectionPerMessage {
			pubs = append(pubs, p)
		}
	}
	// The start barrier: subscribers, then publishers, each in parallel,
	// each first connect timed; the memory at its edges says what the
	// connections cost.
	e.sampleConnMemory(GaugeBenchRSSBeforeConnect, GaugeBrokerRSSBeforeConnect)
	err := connectAll(subs, func(s *subscriber) error { return e.timedConnect(s.id, s.connLim, s.connect) })
	if err == nil {
		err = connectAll(pubs, func(p *publisher) error { return e.timedConnect(p.id, nil, p.connect) })
	}
	if err == nil {
		e.sampleConnMemory(GaugeBenchRSSConnected, GaugeBrokerRSSConnected)
	}
	if err != nil {
		if e.stopped() {
			return "interrupted", nil
		}
		return "error", err
	}

	if !e.o.StartAt.IsZero() {
		if late := time.Since(e.o.StartAt); late > 0 {
			// The shards of one run are meant to start together; one that
			// starts late publishes later than the others, which the merged
			// latencies and rates carry.
			e.note(LevelWarn, fmt.Sprintf("start time %s had passed %s before every client was connected: publishing starts late", e.o.StartAt.UTC().Format(time.RFC3339), late.Round(time.Millisecond)))
		} else if !e.waitUntil(e.o.StartAt) {
			return "interrupted", nil
		}
	}
	runStart := time.Now()
	e.setPhase("run")
	for _, p := range e.pubList {
		e.wg.Add(1)
		go func() { defer e.wg.Done(); p.run(runStart) }()
	}
	for _, s := range e.subs {
		if s.cfg.StartAt <= 0 {
			continue
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if !e.waitUntil(runStart.Add(s.cfg.StartAt.D())) {
				return
			}
			if err := s.connect(); err != nil && !e.stopped() {
				e.note(LevelWarn, err.Error())
			}
		}()
	}
	if len(e.sc.Actions) > 0 {
		e.wg.Add(1)
		go func() { defer e.wg.Done(); e.actions(runStart) }()
	}

	if !e.waitUntil(runStart.Add(e.sc.Duration.D())) {
		return "interrupted", nil
	}
	e.pubOnce.Do(func() { close(e.stopPublish) })
	if e.sc.DrainEnabled() {
		e.isDraining.Store(true)
		e.setPhase("drain")
		e.drainOnce.Do(func() { close(e.drainCh) })
		e.drain()
	}
	if e.stopped() {
		return "interrupted", nil
	}
	return "ok", nil
}

// shutdown ends the run: phase done, clients disconnected, goroutines waited for.
func (e *engine) shutdown() {
	e.setPhase("done")
	e.endRun()
	var cwg sync.WaitGroup
	disc := func(c mqtt.Client) {
		if c == nil {
			return
		}
		cwg.Add(1)
		go func() { defer cwg.Done(); c.Disconnect(disconnectQuiet) }()
	}
	for _, p := range e.pubList {
		disc(p.client)
		if p.p5 != nil {
			cwg.Add(1)
			go func() { defer cwg.Done(); p.closePaho5() }()
		}
	}
	for _, s := range e.subs {
		if s.v5 != nil {
			cwg.Add(1)
			go func() { defer cwg.Done(); s.closeV5() }()
		}
		s.subscribeMu.Lock()
		c := s.client
		s.subscribeMu.Unlock()
		disc(c)
	}
	for _, b := range e.brokers {
		disc(b.sys)
	}
	done := make(chan struct{})
	go func() { cwg.Wait(); e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownWait):
		e.note(LevelInfo, fmt.Sprintf("clients did not stop within %s", shutdownWait))
	}
}

// progress reports to the caller every progressEvery until stop.
func (e *engine) progress(stop <-chan struct{}) {
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		p := Progress{
			Elapsed:   time.Duration(e.rec.Since()),
			Phase:     e.phase.Load().(string),
			Published: e.published.Load(),
			Acked:     e.acked(),
			Delivered: e.delivered.Load(),
		}
		if smp := e.brokers[0].smp; smp != nil {
			p.PersistBytes = smp.size.Load()
			p.Saves = int(smp.saves.Load())
		}
		e.o.Progress(p)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
