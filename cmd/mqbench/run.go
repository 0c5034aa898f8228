package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/broker/launch"
	"github.com/mqbench/mqbench/kube"
	"github.com/mqbench/mqbench/reports"
	"github.com/mqbench/mqbench/scenarios"
)

// runFlags are the flags of `mqbench run`.
var runFlags struct {
	broker     string
	db         string
	conf       string
	out        string
	sets       []string
	timeScale  float64
	noProgress bool
	json       bool
	connect    scenarios.ConnectFlags
	// Distributed runs (docs/distributed.md).
	shard        string
	shardFromEnv int
	startAt      string
}

// exitInterrupted is the shell's code for a command ended by Ctrl-C (128 +
// SIGINT), so scripts can tell an interrupted run from a failed one.
const exitInterrupted = 130

// runCmd runs scenarios end to end: start the broker, drive it, record the
// events, render the report, and compare the runs when there are several.
var runCmd = &cobra.Command{
	Use:   "run SCENARIO...",
	Short: "Run scenarios (shipped names or YAML files) against a broker and report",
	Long: `Run each scenario (a sweep becomes one run per value) against a fresh broker,
record events.jsonl.gz in the run directory, then render summary.json, report.md
and plots there and print the summary. With several runs, a comparison follows.

--broker bundled (default) runs mqbench's own broker, mosquitto a real Mosquitto,
an address an external broker (kill/stop/start actions then fail): tcp://HOST:PORT
(or mqtt://), mqtts://HOST:PORT (TLS: --cafile, or --insecure), ws://HOST:PORT/path
or wss://HOST:PORT/path (MQTT over websockets). A scenario with a brokers
list (e.g. bridge-outage: an edge bridged to a core) starts every broker:
--broker bundled or mosquitto for all of them, or per broker,
--broker edge=bundled,core=mosquitto.

-u/-P, --cafile, --cert, --key, --insecure and --tls-server-name set the
scenario's run-wide connect section (a publisher or subscriber group's own
connect section still wins for it); a password is never recorded, and
connect.password_env in the scenario keeps it off the command line too.`,
	Args:              cobra.MinimumNArgs(1),
	RunE:              runRun,
	ValidArgsFunction: completeScenarios,
}

func init() {
	f := runCmd.Flags()
	f.StringVar(&runFlags.broker, "broker", launch.KindBundled, "broker: bundled, mosquitto or an address: tcp://, mqtts://HOST:PORT, ws://, wss://HOST:PORT[/path]; for a scenario with several brokers, one kind for all or NAME=KIND,... (edge=bundled,core=mosquitto)")
	f.StringVar(&runFlags.db, "db", "", "external broker: persistence file to sample")
	f.StringVar(&runFlags.conf, "conf", "", "external broker: its mosquitto.conf, so the report shows its real settings (and samples its persistence file without --db)")
	f.StringVar(&runFlags.out, "out", "", "run directory (with several runs: their parent); default runs/<scenario>-<UTC time>")
	f.StringArrayVar(&runFlags.sets, "set", nil, "override a scenario field or broker key: KEY=VALUE (repeatable)")
	f.Float64Var(&runFlags.timeScale, "time-scale", 1, "multiply every duration of the scenario by this factor")
	f.BoolVar(&runFlags.noProgress, "no-progress", false, "no progress line on stderr")
	f.BoolVar(&runFlags.json, "json", false, "print the summary JSON on stdout (an array for several runs); tables go to stderr")
	f.StringVar(&runFlags.shard, "shard", "", "run shard I of N of the scenario (I/N, e.g. 2/4), against an external broker; merge the shards' runs with mqbench merge")
	f.IntVar(&runFlags.shardFromEnv, "shard-from-env", 0, "run shard k+1 of `N`, k read from $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job's pod index)")
	f.StringVar(&runFlags.startAt, "start-at", "", "release the publishers at this wall-clock instant (RFC 3339), after every client has connected: shards start together")
	_ = runCmd.RegisterFlagCompletionFunc("broker", completeBroker)
	c := &runFlags.connect
	f.StringVarP(&c.Username, "username", "u", "", "MQTT username for every client")
	f.StringVarP(&c.Password, "password", "P", "", "MQTT password (needs -u; never recorded)")
	f.StringVar(&c.CAFile, "cafile", "", "TLS: PEM file of the CAs to verify the broker with")
	f.StringVar(&c.Cert, "cert", "", "TLS: client certificate (PEM), with --key")
	f.StringVar(&c.Key, "key", "", "TLS: client private key (PEM), with --cert")
	f.BoolVar(&c.Insecure, "insecure", false, "TLS: do not verify the broker's certificate (recorded as a warning)")
	f.StringVar(&c.ServerName, "tls-server-name", "", "TLS: name the broker's certificate must carry (default: the broker address's host)")
	rootCmd.AddCommand(runCmd)
}

func runRun(cmd *cobra.Command, args []string) error {
	if runFlags.conf != "" && (runFlags.broker == "" || runFlags.broker == launch.KindBundled || runFlags.broker == launch.KindMosquitto) {
		return fmt.Errorf("--conf names an external broker's own mosquitto.conf; for --broker %s the scenario's broker section is the configuration", runFlags.broker)
	}
	fractional := allBundled(runFlags.broker)
	shard, startAt, err := distributedFlags()
	if err != nil {
		return err
	}
	// Before any broker starts: it inherits the limit, and holds a
	// descriptor per connection as mqbench does.
	if _, err := bench.RaiseFileLimit(); err != nil {
		return err
	}
	var list []*scenarios.Scenario
	// Every scenario is loaded before anything runs, and every error of every
	// file is reported at once, so one pass fixes them all.
	var loadErrs []error
	for _, a := range args {
		sc, err := scenarios.Load(a, runFlags.sets)
		if err == nil {
			err = sc.ApplyConnectFlags(runFlags.connect)
		}
		if err == nil {
			for _, w := range sc.InsecureTLS() {
				fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: %s: the broker's TLS certificate is NOT verified\n", w)
			}
			sc, err = scenarios.Scale(sc, runFlags.timeScale, fractional)
		}
		if err != nil {
			loadErrs = append(loadErrs, err)
			continue
		}
		for _, part := range scenarios.Expand(sc) {
			if shard != nil {
				if err := part.SetShard(*shard); err != nil {
					return err
				}
			}
			list = append(list, part)
		}
	}
	if err := errors.Join(loadErrs...); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	dirs := make([]string, len(list))
	parent := runFlags.out
	if len(list) == 1 {
		dirs[0] = runFlags.out
		if dirs[0] == "" {
			dirs[0] = filepath.Join("runs", list[0].Name+"-"+stamp)
		}
	} else {
		if parent == "" {
			var names []string
			for _, a := range args {
				names = append(names, strings.TrimSuffix(filepath.Base(a), filepath.Ext(a)))
			}
			parent = filepath.Join("runs", strings.Join(names, "+")+"-"+stamp)
		}
		for i, sc := range list {
			dirs[i] = filepath.Join(parent, sc.Name)
		}
	}
	if err := checkRunDirs(dirs, list); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the mqbench executable for the bundled broker: %w", err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	// With --json stdout carries only the summary JSON; tables go to stderr.
	tables := out
	if runFlags.json {
		tables = errw
	}
	var summaries []*bench.Summary
	defer func() {
		if runFlags.json && len(summaries) > 0 {
			_ = writeJSON(out, summaries)
		}
	}()
	var done []string
	for i, sc := range list {
		if i > 0 {
			fmt.Fprintln(tables)
		}
		fmt.Fprintf(errw, "running %s -> %s\n", sc.Name, dirs[i])
		res, err := runOne(ctx, sc, dirs[i], exe, errw, startAt)
		if res != nil {
			s, rerr := reports.Render(dirs[i])
			if rerr != nil {
				fmt.Fprintf(errw, "mqbench: rendering %s: %v\n", dirs[i], rerr)
			} else {
				fmt.Fprintf(tables, "%s\n%s", dirs[i], reports.SummaryTable(s))
				summaries = append(summaries, s)
				for _, w := range reports.Warnings(s) {
					fmt.Fprintln(errw, "WARNING:", w)
				}
				done = append(done, dirs[i])
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", sc.Name, err)
		}
		if res.Footer.Status == "interrupted" || ctx.Err() != nil {
			return &exitError{code: exitInterrupted, err: fmt.Errorf("%s: interrupted; the partial run is in %s", sc.Name, dirs[i])}
		}
	}
	if len(done) > 1 {
		text, err := reports.Compare(done, parent)
		if err != nil {
			return fmt.Errorf("comparing runs: %w", err)
		}
		fmt.Fprintf(tables, "\n%s", text)
	}
	return nil
}

// distributedFlags reads --shard, --shard-from-env and --start-at. A shard
// needs a broker every shard reaches: with one mqbench starts, each shard
// would start its own.
func distributedFlags() (*scenarios.Shard, time.Time, error) {
	var startAt time.Time
	if runFlags.startAt != "" {
		t, err := time.Parse(time.RFC3339, runFlags.startAt)
		if err != nil {
			return nil, startAt, fmt.Errorf("--start-at %q: want RFC 3339, e.g. 2026-12-01T22:00:00Z", runFlags.startAt)
		}
		startAt = t
	}
	var shard *scenarios.Shard
	switch {
	case runFlags.shard != "" && runFlags.shardFromEnv != 0:
		return nil, startAt, errors.New("--shard and --shard-from-env both given: choose one")
	case runFlags.shard != "":
		sh, err := scenarios.ParseShard(runFlags.shard)
		if err != nil {
			return nil, startAt, fmt.Errorf("--shard: %w", err)
		}
		shard = &sh
	case runFlags.shardFromEnv != 0:
		idx, ok := os.LookupEnv(kube.IndexEnv)
		if !ok {
			return nil, startAt, fmt.Errorf("--shard-from-env: $%s is not set (it is in the pods of a Kubernetes Indexed Job)", kube.IndexEnv)
		}
		sh, err := scenarios.ShardFromIndex(idx, runFlags.shardFromEnv)
		if err != nil {
			return nil, startAt, fmt.Errorf("--shard-from-env: $%s: %w", kube.IndexEnv, err)
		}
		shard = &sh
	}
	if shard != nil && (runFlags.broker == "" || runFlags.broker == launch.KindBundled || runFlags.broker == launch.KindMosquitto) {
		return nil, startAt, fmt.Errorf("--shard %s runs part of a scenario against a broker all shards share: give its address (--broker tcp://HOST:PORT); with --broker %s every shard would start its own", shard, runFlags.broker)
	}
	return shard, startAt, nil
}

// writeJSON prints one run's summary as a JSON object, several as an array,
// for scripts that read `mqbench run --json`.
func writeJSON(w io.Writer, ss []*bench.Summary) error {
	var v any = ss
	if len(ss) == 1 {
		v = ss[0]
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// completeScenarios offers the shipped scenario names, and YAML files.
func completeScenarios(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	var names []string
	for _, info := range scenarios.Shipped() {
		names = append(names, info.Name+"\t"+info.Description)
	}
	return names, cobra.ShellCompDirectiveDefault
}

// completeBroker offers the broker kinds and the address schemes.
func completeBroker(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{
		launch.KindBundled + "\tmqbench's own broker",
		launch.KindMosquitto + "\ta real Mosquitto started for the run",
		"tcp://\tan external broker: tcp://HOST:PORT",
		"mqtts://\tan external broker over TLS",
		"ws://\tan external broker over websockets",
		"wss://\tan external broker over websockets and TLS",
	}, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
}

// runFiles are what a run writes into its directory: none may exist yet.
var runFiles = []string{bench.EventsFile, "broker", bench.SummaryFile, reports.ReportFile, reports.ReportHTML,
	reports.PersistencePNG, reports.BacklogPNG, reports.LatencyPNG, reports.MemoryPNG}

// checkRunDirs refuses, before any broker starts, run directories that would
// mix two runs: the same directory twice in one invocation (the second run
// would fail only after the first one finished), or one that already holds a
// recorded run, a broker data directory (the broker would restore the old
// mosquitto.db and save over it, changing a recorded run) or a file the run
// would write (a user's report.md in the directory given as --out).
func checkRunDirs(dirs []string, list []*scenarios.Scenario) error {
	seen := make(map[string]string, len(dirs))
	for i, d := range dirs {
		key := filepath.Clean(d)
		if prev, ok := seen[key]; ok {
			return fmt.Errorf("runs %s and %s would both write %s: give the scenarios different names", prev, list[i].Name, d)
		}
		seen[key] = list[i].Name
		names := runFiles
		for _, b := range list[i].BrokerNames() {
			names = append(names[:len(names):len(names)], reports.BrokerPersistencePNG(b))
		}
		for _, name := range names {
			p := filepath.Join(d, name)
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s already exists: refusing to overwrite it or mix two runs in one directory (choose another --out)", p)
			} else if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("checking run directory: %w", err)
			}
		}
	}
	return nil
}

// runOne starts the broker for one scenario, runs it and stops the broker.
func runOne(ctx context.Context, sc *scenarios.Scenario, dir, exe string, errw io.Writer, startAt time.Time) (*bench.Result, error) {
	o := bench.Options{
		Scenario:  sc,
		OutDir:    dir,
		MQBench:   version,
		TimeScale: sc.TimeScale,
		StartAt:   startAt,
	}
	switch {
	case sc.MultiBroker() && sc.Shard != nil:
		return nil, fmt.Errorf("scenario %s runs %d brokers: it cannot be sharded (--shard), each shard would start its own", sc.Name, len(sc.Brokers))
	case sc.MultiBroker():
		brokers, closeAll, err := startBrokers(ctx, sc, dir, exe, errw)
		if err != nil {
			return nil, err
		}
		defer closeAll()
		o.Brokers = brokers
		return execute(ctx, o, errw)
	case perBrokerFlag(runFlags.broker):
		return nil, fmt.Errorf("--broker %s names brokers, but scenario %s has one broker (no brokers list): give bundled, mosquitto or an address", runFlags.broker, sc.Name)
	}
	settings, err := sc.Settings()
	if err != nil {
		return nil, err
	}
	secure, err := secureOptions(sc, runFlags.broker)
	if err != nil {
		return nil, err
	}
	inst, err := launch.Start(ctx, launch.Options{
		Kind:           runFlags.broker,
		Settings:       settings,
		DataDir:        filepath.Join(dir, "broker"),
		BundledCommand: []string{exe, "broker"},
		DBPath:         runFlags.db,
		ConfFile:       runFlags.conf,
		Secure:         secure,
	})
	if err != nil {
		return nil, fmt.Errorf("starting broker: %w", err)
	}
	defer inst.Close()
	if f := inst.SecureFiles(); f != nil && f.TLS {
		sc.UseGenerated(f.CA, f.ClientCert, f.ClientKey)
	}
	for _, n := range inst.Notices() {
		fmt.Fprintln(errw, "broker:", n)
	}
	o.Target = inst
	return execute(ctx, o, errw)
}

// execute runs the scenario on the started brokers with the progress line.
func execute(ctx context.Context, o bench.Options, errw io.Writer) (*bench.Result, error) {
	var pp *progressPrinter
	if !runFlags.noProgress {
		pp = newProgressPrinter(errw)
		o.Progress = pp.update
	}
	res, err := bench.Execute(ctx, o)
	if pp != nil {
		pp.finish()
	}
	if err != nil && res == nil {
		return nil, err
	}
	if err != nil {
		return res, err
	}
	if res.Footer.Status == "error" {
		return res, errors.New(res.Footer.Error)
	}
	return res, nil
}

// progressPrinter draws the progress line: redrawn in place on a terminal,
// a plain line every 5 s otherwise (logs, CI).
type progressPrinter struct {
	w        io.Writer
	tty      bool
	last     time.Time
	drawn    bool
	lastText string
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := &progressPrinter{w: w}
	if f, ok := w.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		p.tty = err == nil
	}
	return p
}

func (p *progressPrinter) update(pr bench.Progress) {
	text := fmt.Sprintf("%7.1fs %-7s published %d  acked %d  delivered %d  file %s  saves %d",
		pr.Elapsed.Seconds(), pr.Phase, pr.Published, pr.Acked, pr.Delivered, reports.HumanBytes(float64(pr.PersistBytes)), pr.Saves)
	if p.tty {
		pad := ""
		if n := len(p.lastText) - len(text); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		fmt.Fprintf(p.w, "\r%s%s", text, pad)
		p.lastText = text
		p.drawn = true
		return
	}
	if time.Since(p.last) >= 5*time.Second {
		p.last = time.Now()
		fmt.Fprintln(p.w, text)
	}
}

func (p *progressPrinter) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
