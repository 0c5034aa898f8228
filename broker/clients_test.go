package broker_test

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker"
	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/internal/testutil"
)

// These tests drive the bundled broker with the real Debian mosquitto_pub and
// mosquitto_sub, the clients users will point at it. Every scenario also runs
// against the real Mosquitto 2.0.11: a test that real Mosquitto fails is a test
// bug, not a broker bug, so running both keeps the expectations honest.

const cliTimeout = 15 * time.Second

// inproc is a bundled broker running in the test process. Close may be called
// by the test (to force the final save) and again by the cleanup.
type inproc struct {
	*broker.Broker
	once     sync.Once
	closeErr error
}

// Close closes the broker once and returns the first Close's error.
func (b *inproc) Close() error {
	b.once.Do(func() { b.closeErr = b.Broker.Close() })
	return b.closeErr
}

// inprocBroker starts the bundled broker in this process from mosquitto.conf
// text (parsed by conf.Parse, as `mqbench broker -c` would) and closes it when
// the test ends.
func inprocBroker(t testing.TB, confText string) *inproc {
	t.Helper()
	cfg, err := conf.Parse(strings.NewReader(confText), "test.conf")
	if err != nil {
		t.Fatalf("parsing test config: %v\n%s", err, confText)
	}
	b, err := broker.New(broker.Options{Config: cfg, ConfigFile: "test.conf", Version: "test"})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("broker.Start: %v", err)
	}
	h := &inproc{Broker: b}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// brokerKind starts one kind of broker with extra config lines and returns its
// address.
type brokerKind struct {
	name  string
	start func(t *testing.T, extra ...string) string
}

var cliKinds = []brokerKind{
	{"bundled", func(t *testing.T, extra ...string) string {
		return inprocBroker(t, testutil.BundledConf("", extra...)).Addr()
	}},
	{"mosquitto", func(t *testing.T, extra ...string) string {
		return testutil.StartMosquitto(t, testutil.MosquittoOptions{Extra: extra}).Addr
	}},
}

// forKinds runs f once per broker kind as subtests.
func forKinds(t *testing.T, f func(t *testing.T, k brokerKind)) {
	testutil.RequireClients(t)
	for _, k := range cliKinds {
		t.Run(k.name, func(t *testing.T) {
			if k.name == "mosquitto" {
				testutil.RequireMosquitto(t)
			}
			f(t, k)
		})
	}
}

func TestCLIQoS(t *testing.T) {
	forKinds(t, func(t *testing.T, k brokerKind) {
		addr := k.start(t)
		for _, tc := range []struct{ pub, sub int }{{0, 0}, {1, 1}, {2, 2}, {2, 1}, {1, 2}, {2, 0}, {0, 2}} {
			topic := fmt.Sprintf("cli/qos/%d%d", tc.pub, tc.sub)
			payload := fmt.Sprintf("pub%d-sub%d", tc.pub, tc.sub)
			s := testutil.StartSub(t, addr, "-t", topic, "-q", fmt.Sprint(tc.sub), "-C", "1")
			testutil.Pub(t, addr, nil, cliTimeout, "-t", topic, "-q", fmt.Sprint(tc.pub), "-m", payload)
			msgs, err := s.WaitMessages(1, cliTimeout)
			if err != nil {
				t.Fatalf("%s: %v", topic, err)
			}
			want := min(tc.pub, tc.sub)
			if m := msgs[0]; m.Topic != topic || m.Payload != payload || m.QoS != want || m.Retain {
				t.Errorf("%s: got %+v, want payload %q at QoS %d, not retained", topic, m, payload, want)
			}
			if err := s.Wait(cliTimeout); err != nil {
				t.Errorf("%s: mosquitto_sub -C 1 did not exit cleanly: %v", topic, err)
			}
		}
	})
}

func TestCLIRetained(t *testing.T) {
	forKinds(t, func(t *testing.T, k brokerKind) {
		addr := k.start(t)
		testutil.Pub(t, addr, nil, cliTimeout, "-t", "cli/ret", "-q", "1", "-r", "-m", "kept")
		s := testutil.StartSub(t, addr, "-t", "cli/ret", "-q", "1", "-C", "1")
		msgs, err := s.WaitMessages(1, cliTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if m := msgs[0]; m.Payload != "kept" || !m.Retain {
			t.Errorf("later subscriber got %+v, want retained \"kept\"", m)
		}
		// Live delivery to an existing subscriber carries retain 0.
		live := testutil.StartSub(t, addr, "-t", "cli/ret", "-q", "1", "-C", "2")
		testutil.Pub(t, addr, nil, cliTimeout, "-t", "cli/ret", "-q", "1", "-r", "-m", "kept2")
		if msgs, err := live.WaitMessages(2, cliTimeout); err != nil {
			t.Fatal(err)
		} else if m := msgs[1]; m.Payload != "kept2" || m.Retain {
			t.Errorf("live subscriber got %+v, want \"kept2\" with retain 0", m)
		}
		// An empty retained message clears it: a new subscriber sees only what
		// is published after it subscribed.
		testutil.Pub(t, addr, nil, cliTimeout, "-t", "cli/ret", "-q", "1", "-r", "-n")
		after := testutil.StartSub(t, addr, "-t", "cli/ret", "-q", "1", "-C", "1")
		testutil.Pub(t, addr, nil, cliTimeout, "-t", "cli/ret", "-q", "1", "-m", "live")
		msgs, err = after.WaitMessages(1, cliTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if m := msgs[0]; m.Payload != "live" || m.Retain {
			t.Errorf("after clearing, subscriber got %+v first, want the live message", m)
		}
	})
}

func TestCLIWildcards(t *testing.T) {
	forKinds(t, func(t *testing.T, k brokerKind) {
		addr := k.start(t)
		plus := testutil.StartSub(t, addr, "-t", "w/+/c", "-q", "1")
		hash := testutil.StartSub(t, addr, "-t", "w/#", "-q", "1")
		all := testutil.StartSub(t, addr, "-t", "#", "-q", "1")
		dollar := testutil.StartSub(t, addr, "-t", "$private/#", "-q", "1")
		for _, topic := range []string{"w/a/c", "w/b/d", "w/a/c/e", "w", "x/a/c", "$private/w/a/c", "w/end/c"} {
			testutil.Pub(t, addr, nil, cliTimeout, "-t", topic, "-q", "1", "-m", "m:"+topic)
		}
		if _, err := dollar.WaitTopic("$private/w/a/c", cliTimeout); err != nil {
			t.Fatalf("$private/#: %v", err)
		}
		for _, tc := range []struct {
			name string
			sub  *testutil.Sub
			want []string
		}{
			{"w/+/c", plus, []string{"w/a/c", "w/end/c"}},
			{"w/#", hash, []string{"w/a/c", "w/b/d", "w/a/c/e", "w", "w/end/c"}},
			// A leading wildcard does not match topics starting with $.
			{"#", all, []string{"w/a/c", "w/b/d", "w/a/c/e", "w", "x/a/c", "w/end/c"}},
		} {
			msgs, err := tc.sub.WaitTopic("w/end/c", cliTimeout)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, m.Topic)
				if m.Payload != "m:"+m.Topic {
					t.Errorf("%s: payload %q on %s", tc.name, m.Payload, m.Topic)
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("%s received %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}

// TestCLIOverlapOnce is bundled-only: the issue demands one delivery at the
// highest granted QoS for overlapping subscriptions, where Mosquitto 2.0 sends
// one per matching subscription. mosquitto_sub takes one QoS for all its
// topics, so the QoS part uses the lean client.
func TestCLIOverlapOnce(t *testing.T) {
	testutil.RequireClients(t)
	addr := inprocBroker(t, testutil.BundledConf("")).Addr()
	s := testutil.StartSub(t, addr, "-t", "o/#", "-t", "o/+", "-t", "o/x", "-q", "2")
	testutil.Pub(t, addr, nil, cliTimeout, "-t", "o/x", "-q", "2", "-m", "once")
	testutil.Pub(t, addr, nil, cliTimeout, "-t", "o/end", "-q", "2", "-m", "end")
	msgs, err := s.WaitTopic("o/end", cliTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Topic != "o/x" || msgs[0].QoS != 2 {
		t.Errorf("overlapping subscriptions delivered %+v, want o/x once at QoS 2 then o/end", msgs)
	}

	c, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: "overlap", CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, sub := range []struct {
		filter string
		qos    byte
	}{{"p/#", 0}, {"p/+", 2}, {"p/x", 1}} {
		if g, err := c.Subscribe(sub.filter, sub.qos); err != nil || g != sub.qos {
			t.Fatalf("subscribe %s: granted %d, %v", sub.filter, g, err)
		}
	}
	testutil.Pub(t, addr, nil, cliTimeout, "-t", "p/x", "-q", "2", "-m", "once")
	testutil.Pub(t, addr, nil, cliTimeout, "-t", "p/y/end", "-q", "2", "-m", "end")
	got, err := c.Collect(2, cliTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Topic != "p/x" || got[0].QoS != 2 || got[1].Topic != "p/y/end" || got[1].QoS != 0 {
		t.Errorf("lean client got %s@%d then %s@%d, want p/x@2 once then p/y/end@0", got[0].Topic, got[0].QoS, got[1].Topic, got[1].QoS)
	}
}

func TestCLISysVersion(t *testing.T) {
	forKinds(t, func(t *testing.T, k brokerKind) {
		addr := k.start(t, "sys_interval 1")
		s := testutil.StartSubNoWait(t, addr, "-t", "$SYS/#", "-C", "1")
		msgs, err := s.WaitMessages(1, cliTimeout)
		if err != nil {
			t.Fatalf("$SYS/#: %v", err)
		}
		if !strings.HasPrefix(msgs[0].Topic, "$SYS/broker/") {
			t.Errorf("$SYS/# -C 1 got %+v", msgs[0])
		}
		v := testutil.StartSubNoWait(t, addr, "-t", "$SYS/broker/version", "-C", "1")
		msgs, err = v.WaitMessages(1, cliTimeout)
		if err != nil {
			t.Fatalf("$SYS/broker/version: %v", err)
		}
		want := "mosquitto version 2.0.11"
		if k.name == "bundled" {
			want = "mqbench test"
		}
		if m := msgs[0]; m.Payload != want || !m.Retain {
			t.Errorf("$SYS/broker/version = %+v, want retained %q", m, want)
		}
	})
}

func TestCLIPersistentSession(t *testing.T) {
	forKinds(t, func(t *testing.T, k brokerKind) {
		addr := k.start(t)
		args := []string{"-c", "-i", "cli-persist", "-q", "1", "-t", "ps/t"}
		first := testutil.StartSub(t, addr, args...)
		// SIGTERM: mosquitto_sub disconnects cleanly; the session stays.
		if err := first.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := first.Wait(cliTimeout); err != nil {
			t.Logf("mosquitto_sub exit after SIGTERM: %v", err)
		}
		for i := 0; i < 5; i++ {
			testutil.Pub(t, addr, nil, cliTimeout, "-t", "ps/t", "-q", "1", "-m", fmt.Sprintf("away-%d", i))
		}
		back := testutil.StartSubNoWait(t, addr, append(args, "-C", "5")...)
		msgs, err := back.WaitMessages(5, cliTimeout)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			if want := fmt.Sprintf("away-%d", i); m.Payload != want || m.QoS != 1 {
				t.Errorf("message %d: %+v, want %q at QoS 1", i, m, want)
			}
		}
	})
}

func TestCLIWill(t *testing.T) {
	forKinds(t, func(t *testing.T, k brokerKind) {
		addr := k.start(t)
		watch := testutil.StartSub(t, addr, "-t", "will/#", "-q", "1")
		// A clean exit (SIGTERM: DISCONNECT sent) must not send the will.
		polite := testutil.StartSub(t, addr, "-i", "polite", "-t", "dummy",
			"--will-topic", "will/polite", "--will-payload", "should-not-appear", "--will-qos", "1")
		if err := polite.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		_ = polite.Wait(cliTimeout)
		// SIGKILL: the connection just drops, the will goes out.
		victim := testutil.StartSub(t, addr, "-i", "victim", "-t", "dummy",
			"--will-topic", "will/victim", "--will-payload", "gone", "--will-qos", "1")
		if err := victim.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if _, err := watch.WaitTopic("will/victim", cliTimeout); err != nil {
			t.Fatal(err)
		}
		testutil.Pub(t, addr, nil, cliTimeout, "-t", "will/end", "-q", "1", "-m", "end")
		msgs, err := watch.WaitTopic("will/end", cliTimeout)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			got = append(got, m.Topic+"="+m.Payload)
		}
		if want := "will/victim=gone will/end=end"; strings.Join(got, " ") != want {
			t.Errorf("watcher got %v, want %s", got, want)
		}
	})
}

func TestCLIPubLines(t *testing.T) {
	forKinds(t, func(t *testing.T, k brokerKind) {
		// No queue limit: on a loaded machine mosquitto_sub can fall more than
		// 1,020 messages behind, and drops are tested elsewhere.
		addr := k.start(t, "max_queued_messages 0")
		const n = 2000
		var in strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&in, "%s\n", testutil.Payload(i, 100))
		}
		s := testutil.StartSub(t, addr, "-t", "lines", "-q", "2", "-C", fmt.Sprint(n))
		testutil.Pub(t, addr, []byte(in.String()), 60*time.Second, "-t", "lines", "-q", "2", "-l")
		msgs, err := s.WaitMessages(n, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			if want := string(testutil.Payload(i, 100)); m.Payload != want || m.QoS != 2 || m.Dup {
				t.Fatalf("line %d: got %+v, want %q at QoS 2", i, m, want)
			}
		}
		if len(msgs) != n {
			t.Errorf("got %d messages, want %d", len(msgs), n)
		}
	})
}
