package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/internal/testutil"
	"github.com/mqbench/mqbench/scenarios"
)

const shardScenario = `name: shard-split
publishers:
  - client_id: pub-%d
    count: 3
    messages: 200
    qos: 1
    topic: t/a
    inflight: 10
    rate: 600
    rate_scope: global
subscribers:
  - client_id: sub-%d
    count: 2
    filter: t/#
    qos: 1
duration: 3s
drain_timeout: 10s
`

// Two shard processes started together against one broker run every client
// exactly once under its unsharded id, publish every message once, release
// their publishers no earlier than --start-at, and each subscriber receives
// what the whole run published, wherever its publisher ran.
func TestShardedRunsSplitTheScenario(t *testing.T) {
	dir := t.TempDir()
	addr := startPlainBundled(t, dir)
	scPath := filepath.Join(dir, "shard.yaml")
	if err := os.WriteFile(scPath, []byte(shardScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	const n = 2
	startAt := time.Now().Add(4 * time.Second).Truncate(time.Second)
	runShards(t, scPath, addr, n, startAt, dir)
	pubsRan := map[string]int{}
	subsRan := map[string]int{}
	published := map[string]int{}
	received := map[string]map[string]bool{} // subscriber -> pub/seq
	for i := 1; i <= n; i++ {
		run := readRun(t, shardDir(dir, i))
		var sc scenarios.Scenario
		if err := json.Unmarshal(run.Header.Scenario, &sc); err != nil {
			t.Fatal(err)
		}
		if sc.Shard == nil || *sc.Shard != (scenarios.Shard{Index: i, Count: n}) {
			t.Errorf("shard %d's header records shard %v", i, sc.Shard)
		}
		if run.Header.Clock == nil {
			t.Errorf("shard %d's header has no clock state", i)
		}
		seenPub := map[string]bool{}
		for _, ev := range run.Events {
			switch {
			case ev.Type == bench.EvPhase && ev.Msg == "run":
				if at := run.Header.Start.Add(time.Duration(ev.T)); at.Before(startAt) {
					t.Errorf("shard %d released its publishers at %s, before --start-at %s", i, at, startAt)
				}
			case ev.Type == bench.EvPub:
				published[fmt.Sprintf("%s/%d", ev.Client, ev.Seq)]++
				seenPub[ev.Client] = true
			case ev.Type == bench.EvRecv:
				if received[ev.Client] == nil {
					received[ev.Client] = map[string]bool{}
					subsRan[ev.Client]++
				}
				received[ev.Client][fmt.Sprintf("%s/%d", ev.Pub, ev.Seq)] = true
			}
		}
		for p := range seenPub {
			pubsRan[p]++
		}
	}
	for _, p := range []string{"pub-1", "pub-2", "pub-3"} {
		if pubsRan[p] != 1 {
			t.Errorf("%s ran on %d shards, want 1", p, pubsRan[p])
		}
	}
	if len(published) != 600 {
		t.Errorf("%d distinct messages published, want 600", len(published))
	}
	for m, c := range published {
		if c != 1 {
			t.Errorf("message %s published %d times", m, c)
		}
	}
	for _, s := range []string{"sub-1", "sub-2"} {
		if subsRan[s] != 1 || len(received[s]) != 600 {
			t.Errorf("%s ran on %d shards and received %d distinct messages, want 1 and 600", s, subsRan[s], len(received[s]))
		}
	}
}

func TestShardFlagsRefused(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x")
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--shard", "2/4"}, nil, "every shard would start its own"},
		{[]string{"--shard", "5/4", "--broker", "tcp://127.0.0.1:1"}, nil, "index must be 1 to 4"},
		{[]string{"--shard", "1/2", "--shard-from-env", "2", "--broker", "tcp://127.0.0.1:1"}, nil, "choose one"},
		{[]string{"--shard-from-env", "4", "--broker", "tcp://127.0.0.1:1"}, []string{"JOB_COMPLETION_INDEX="}, "not a whole number"},
		{[]string{"--shard-from-env", "4", "--broker", "tcp://127.0.0.1:1"}, []string{"JOB_COMPLETION_INDEX=4"}, "index must be 1 to 4"},
		{[]string{"--start-at", "tomorrow"}, nil, "want RFC 3339"},
	} {
		args := append([]string{"run", "persist-quick", "--no-progress", "--out", out}, tc.args...)
		res := runCLI(t, cliOpts{env: tc.env}, args...)
		if res.code == 0 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("mqbench %s: want an error with %q\n%s", strings.Join(args, " "), tc.want, res)
		}
	}
}

// A cluster target of two brokers: client k of the scenario connects to
// address k mod 2, so with two unconnected brokers each subscriber receives
// exactly the messages of the publisher on its node, and the report names
// the split.
func TestClusterTargetSpreadsClients(t *testing.T) {
	dir := t.TempDir()
	var addrs []string
	for i := range 2 {
		d := filepath.Join(dir, fmt.Sprintf("b%d", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, startPlainBundled(t, d))
	}
	sc := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(sc, []byte(`name: cluster
publishers:
  - client_id: pub-%d
    count: 2
    messages: 100
    qos: 1
    topic: t
subscribers:
  - client_id: sub-%d
    count: 2
    filter: t
    qos: 1
duration: 2s
drain_timeout: 5s
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	res := runCLI(t, cliOpts{}, "run", sc, "--broker", strings.Join(addrs, ","), "--no-progress", "--out", out)
	if res.code != 0 {
		t.Fatalf("run failed:\n%s", res)
	}
	run := readRun(t, out)
	from := map[string]map[string]bool{}
	for _, ev := range run.Events {
		if ev.Type == bench.EvRecv {
			if from[ev.Client] == nil {
				from[ev.Client] = map[string]bool{}
			}
			from[ev.Client][ev.Pub] = true
		}
	}
	// k: pub-1 0, pub-2 1, sub-1 2, sub-2 3: sub-1 shares node 0 with pub-1.
	if len(from["sub-1"]) != 1 || !from["sub-1"]["pub-1"] || len(from["sub-2"]) != 1 || !from["sub-2"]["pub-2"] {
		t.Errorf("subscribers received from %v, want sub-1 from pub-1 only and sub-2 from pub-2 only", from)
	}
	if len(run.Header.Brokers) != 2 || run.Header.Brokers[0].Publishers != 1 || run.Header.Brokers[0].Subscribers != 1 {
		t.Errorf("header shares %+v", run.Header.Brokers)
	}
	report, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "Clients spread over 2 brokers") || !strings.Contains(string(report), addrs[1]) {
		t.Errorf("report.md does not show the split:\n%s", report)
	}
}

// startPlainBundled runs a bundled broker on 127.0.0.1, port 0, anonymous,
// for runs against an external address; its conf goes into dir.
func startPlainBundled(t *testing.T, dir string) string {
	t.Helper()
	conf := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(conf, []byte("listener 0 127.0.0.1\nallow_anonymous true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return "tcp://" + testutil.StartBundled(t, mqbenchBin, conf).Addr
}

// shardDir is where runShards records shard i.
func shardDir(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("shard-%d", i)) }

// runShards runs shards 1..n of scenario against addr as n processes at
// once, released together at startAt, into shardDir(dir, i); any failing
// shard fails the test.
func runShards(t *testing.T, scenario, addr string, n int, startAt time.Time, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	errs := make(chan error, n)
	for i := 1; i <= n; i++ {
		cmd, stdout, stderr := newCmd(ctx, t, cliOpts{}, "run", scenario, "--broker", addr,
			"--shard", fmt.Sprintf("%d/%d", i, n), "--start-at", startAt.UTC().Format(time.RFC3339),
			"--no-progress", "--out", shardDir(dir, i))
		go func() {
			if err := cmd.Run(); err != nil {
				errs <- fmt.Errorf("shard %d: %v\n%s\n%s", i, err, stdout, stderr)
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
