package broker_test

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker/persist"
	"github.com/mqbench/mqbench/internal/testutil"
)

// Bridges side by side: every pairing of Mosquitto 2.0.11 and the bundled
// broker as the local (bridging) and remote side runs the same `connection`
// block text, so an expectation that Mosquitto itself does not meet fails on
// the mosquitto/mosquitto pairing.

const (
	kindMosquitto = "mosquitto"
	kindBundled   = "bundled"
)

// bridgeSide is one broker of a bridge test, restartable on its port with its
// data directory.
type bridgeSide struct {
	kind  string
	dir   string
	port  int
	extra []string
	m     *testutil.Mosquitto
	b     *inproc
}

func startSide(t *testing.T, kind, dir string, port int, extra ...string) *bridgeSide {
	t.Helper()
	s := &bridgeSide{kind: kind, dir: dir, port: port, extra: extra}
	s.start(t)
	return s
}

func (s *bridgeSide) start(t *testing.T) {
	t.Helper()
	switch s.kind {
	case kindMosquitto:
		s.m = testutil.StartMosquitto(t, testutil.MosquittoOptions{Dir: s.dir, Persistence: true, Port: s.port, Extra: s.extra})
		s.port = s.m.Port
	default:
		text := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n%s\n",
			s.port, s.dir, strings.Join(s.extra, "\n"))
		s.b = inprocBroker(t, text)
		_, p, _ := net.SplitHostPort(s.b.Addr())
		s.port, _ = strconv.Atoi(p)
	}
}

func (s *bridgeSide) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// stop shuts the broker down cleanly (final save).
func (s *bridgeSide) stop(t *testing.T) {
	t.Helper()
	switch s.kind {
	case kindMosquitto:
		if err := s.m.Stop(20 * time.Second); err != nil {
			t.Fatalf("stopping mosquitto: %v", err)
		}
	default:
		if err := s.b.Close(); err != nil {
			t.Fatalf("closing the bundled broker: %v", err)
		}
	}
}

func (s *bridgeSide) dbPath() string { return s.dir + "/mosquitto.db" }

var bridgePairs = []struct{ local, remote string }{
	{kindMosquitto, kindMosquitto},
	{kindBundled, kindMosquitto},
	{kindMosquitto, kindBundled},
	{kindBundled, kindBundled},
}

// bridgeBlock is the one `connection` text every pairing uses.
func bridgeBlock(remote string, lines ...string) []string {
	return append([]string{"connection br", "addresses " + remote, "restart_timeout 1 1", "remote_clientid edge", "local_clientid local.edge"}, lines...)
}

func dialT(t *testing.T, addr string, o testutil.ClientOptions) *testutil.Client {
	t.Helper()
	c, err := testutil.Dial(addr, o)
	if err != nil {
		t.Fatalf("connecting %s to %s: %v", o.ClientID, addr, err)
	}
	t.Cleanup(c.Close)
	return c
}

func subscribeT(t *testing.T, c *testutil.Client, qos byte, filters ...string) {
	t.Helper()
	for _, f := range filters {
		if _, err := c.Subscribe(f, qos); err != nil {
			t.Fatalf("subscribing %s: %v", f, err)
		}
	}
}

// waitBridgeUp waits until the bridge carries messages from the remote to
// the local side: a probe on the `probe/#` in topic (every block's last topic
// line, so the remote SUBSCRIBEs before it are in place too), published again
// until it arrives.
func waitBridgeUp(t *testing.T, local, remote string) {
	t.Helper()
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	sub := dialT(t, local, testutil.ClientOptions{ClientID: "probe-sub-" + tag, CleanSession: true})
	subscribeT(t, sub, 0, "probe/#")
	pub := dialT(t, remote, testutil.ClientOptions{ClientID: "probe-pub-" + tag, CleanSession: true})
	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := pub.Publish("probe/"+tag, []byte("probe"), 0, false); err != nil {
			t.Fatalf("probing the bridge: %v", err)
		}
		select {
		case <-sub.Messages():
			_ = sub.Disconnect()
			_ = pub.Disconnect()
			return
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the bridge from %s to %s never carried a message", local, remote)
		}
	}
}

func got(msgs []testutil.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, fmt.Sprintf("%s q%d %s", m.Topic, m.QoS, m.Payload))
	}
	sort.Strings(out)
	return out
}

// TestBridgeForwarding: out, in and both topics with prefix remapping, at QoS
// 0, 1 and 2; each message arrives once on each side, remapped, at the lower
// of the subscription's, the message's and the bridge topic's QoS, and
// nothing loops back across a `both` topic.
func TestBridgeForwarding(t *testing.T) {
	testutil.RequireMosquitto(t)
	for _, proto := range []string{"mqttv311", "mqttv50", "mqttv31"} {
		for _, pair := range bridgePairs {
			t.Run(proto+"/"+pair.local+"-to-"+pair.remote, func(t *testing.T) {
				testForwarding(t, pair.local, pair.remote, proto)
			})
		}
	}
}

func testForwarding(t *testing.T, localKind, remoteKind, proto string) {
	remote := startSide(t, remoteKind, t.TempDir(), 0)
	local := startSide(t, localKind, t.TempDir(), 0, bridgeBlock(remote.addr(), "bridge_protocol_version "+proto,
		"topic out/# out 1 loc/ rem/", "topic in/# in 2 loc/ rem/", "topic both/# both 2", "topic probe/# in 0")...)
	waitBridgeUp(t, local.addr(), remote.addr())
	ls := dialT(t, local.addr(), testutil.ClientOptions{ClientID: "lsub", CleanSession: true})
	subscribeT(t, ls, 2, "loc/#", "both/#")
	rs := dialT(t, remote.addr(), testutil.ClientOptions{ClientID: "rsub", CleanSession: true})
	subscribeT(t, rs, 2, "rem/#", "both/#")
	lp := dialT(t, local.addr(), testutil.ClientOptions{ClientID: "lpub", CleanSession: true})
	rp := dialT(t, remote.addr(), testutil.ClientOptions{ClientID: "rpub", CleanSession: true})
	for _, p := range []struct {
		c     *testutil.Client
		topic string
		qos   byte
	}{
		{lp, "loc/out/a", 2}, {rp, "rem/in/b", 2}, {lp, "both/c", 2}, {rp, "both/d", 1}, {lp, "loc/out/e", 0}, {rp, "rem/in/f", 0},
	} {
		if err := p.c.Publish(p.topic, []byte(p.topic), p.qos, false); err != nil {
			t.Fatalf("publishing %s: %v", p.topic, err)
		}
	}
	wantLocal := []string{"both/c q2 both/c", "both/d q1 both/d", "loc/in/b q2 rem/in/b", "loc/in/f q0 rem/in/f", "loc/out/a q2 loc/out/a", "loc/out/e q0 loc/out/e"}
	wantRemote := []string{"both/c q2 both/c", "both/d q1 both/d", "rem/in/b q2 rem/in/b", "rem/in/f q0 rem/in/f", "rem/out/a q1 loc/out/a", "rem/out/e q0 loc/out/e"}
	for _, side := range []struct {
		name string
		c    *testutil.Client
		want []string
	}{{"local", ls, wantLocal}, {"remote", rs, wantRemote}} {
		msgs, err := side.c.Collect(len(side.want), 30*time.Second)
		if err != nil {
			t.Fatalf("%s subscriber: %v (got %v)", side.name, err, got(msgs))
		}
		if g := got(msgs); strings.Join(g, "|") != strings.Join(side.want, "|") {
			t.Errorf("%s subscriber got\n  %v\nwant\n  %v", side.name, g, side.want)
		}
	}
	// A marker both ways: anything looping would arrive before it.
	if err := lp.Publish("both/zz", []byte("marker"), 1, false); err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		name string
		c    *testutil.Client
	}{{"local", ls}, {"remote", rs}} {
		msgs, err := side.c.Collect(1, 30*time.Second)
		if err != nil || len(msgs) != 1 || msgs[0].Topic != "both/zz" {
			t.Errorf("%s subscriber: after the messages got %v (%v), want only the marker both/zz", side.name, got(msgs), err)
		}
	}
}

// TestBridgeQueuedAcrossRestarts: with the remote down, QoS 1 and 2 messages
// for the bridge are held by the local broker in the bridge's own session
// (saved as Mosquitto saves a bridge: local_clientid, session expiry interval
// 0, listener port 0, its subscription No Local and Retain As Published);
// the local broker is restarted from that file, the remote comes back, and
// every message reaches the remote's persistent subscriber exactly once.
func TestBridgeQueuedAcrossRestarts(t *testing.T) {
	testutil.RequireMosquitto(t)
	const n = 20
	for _, pair := range bridgePairs {
		t.Run(pair.local+"-to-"+pair.remote, func(t *testing.T) {
			remote := startSide(t, pair.remote, t.TempDir(), 0)
			// The remote's subscriber is persistent, so what the bridge
			// delivers after the restart waits for it there.
			rs := dialT(t, remote.addr(), testutil.ClientOptions{ClientID: "rsub"})
			subscribeT(t, rs, 2, "rem/#")
			if err := rs.Disconnect(); err != nil {
				t.Fatal(err)
			}
			local := startSide(t, pair.local, t.TempDir(), 0, bridgeBlock(remote.addr(), "topic q/# out 2 loc/ rem/", "topic probe/# in 0")...)
			waitBridgeUp(t, local.addr(), remote.addr())
			remote.stop(t)

			lp := dialT(t, local.addr(), testutil.ClientOptions{ClientID: "lpub", CleanSession: true})
			for i := 0; i < n; i++ {
				if err := lp.Publish("loc/q/"+strconv.Itoa(1+i%2), []byte(strconv.Itoa(i)), byte(1+i%2), false); err != nil {
					t.Fatalf("publishing %d: %v", i, err)
				}
			}
			_ = lp.Disconnect()
			local.stop(t)
			checkBridgeDB(t, local.dbPath(), "local.edge", n)

			local.start(t)
			remote.start(t)
			rs = dialT(t, remote.addr(), testutil.ClientOptions{ClientID: "rsub"})
			msgs, err := rs.Collect(n, 60*time.Second)
			if err != nil {
				t.Fatalf("remote subscriber: %v (got %v)", err, got(msgs))
			}
			seen := map[string]int{}
			for _, m := range msgs {
				i, _ := strconv.Atoi(string(m.Payload))
				want := "rem/q/" + strconv.Itoa(1+i%2)
				if m.Topic != want || m.QoS != byte(1+i%2) {
					t.Errorf("message %s: topic %s qos %d, want %s qos %d", m.Payload, m.Topic, m.QoS, want, 1+i%2)
				}
				seen[string(m.Payload)]++
			}
			for i := 0; i < n; i++ {
				if c := seen[strconv.Itoa(i)]; c != 1 {
					t.Errorf("message %d delivered %d times, want once", i, c)
				}
			}
			if err := rs.Settle(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkBridgeDB checks the local broker's file holds the bridge's session the
// way Mosquitto 2.0.11 saves it, with n messages held for it.
func checkBridgeDB(t *testing.T, path, id string, n int) {
	t.Helper()
	db, err := persist.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	var found bool
	for _, c := range db.Clients {
		if c.ClientID == id {
			found = true
			if c.SessionExpiryInterval != 0 || c.ListenerPort != 0 {
				t.Errorf("%s: bridge session %+v, want session expiry interval 0 and listener port 0", path, c)
			}
		}
	}
	if !found {
		t.Fatalf("%s: no CLIENT %q (clients %+v)", path, id, db.Clients)
	}
	held := 0
	for _, m := range db.ClientMsgs {
		if m.ClientID == id && m.Direction == persist.DirOut {
			held++
		}
	}
	if held != n {
		t.Errorf("%s: %d messages held for %s, want %d", path, held, id, n)
	}
	for _, s := range db.Subs {
		if s.ClientID == id && (s.Topic != "loc/q/#" || s.QoS != 2 || s.Options != 0x0C) {
			t.Errorf("%s: bridge subscription %+v, want loc/q/# QoS 2 with No Local and Retain As Published", path, s)
		}
	}
}

// TestBridgeTLSAndCredentials: the link runs over TLS with a client
// certificate the remote requires (bridge_cafile, bridge_certfile,
// bridge_keyfile) and the remote's password file checks remote_username and
// remote_password.
func TestBridgeTLSAndCredentials(t *testing.T) {
	testutil.RequireMosquitto(t)
	f := makeTLSFiles(t)
	pw := passwordFile(t)
	for _, pair := range bridgePairs {
		t.Run(pair.local+"-to-"+pair.remote, func(t *testing.T) {
			tlsPort := testutil.FreePort(t)
			remote := startSide(t, pair.remote, t.TempDir(), 0, "password_file "+pw,
				fmt.Sprintf("listener %d 127.0.0.1", tlsPort), "cafile "+f.CA, "certfile "+f.ServerCert, "keyfile "+f.ServerKey,
				"require_certificate true")
			local := startSide(t, pair.local, t.TempDir(), 0, bridgeBlock(fmt.Sprintf("127.0.0.1:%d", tlsPort),
				"bridge_cafile "+f.CA, "bridge_certfile "+f.ClientCert, "bridge_keyfile "+f.ClientKey,
				"remote_username alice", "remote_password secret-a", "topic out/# out 2", "topic probe/# in 0")...)
			waitBridgeUp(t, local.addr(), remote.addr())
			rs := dialT(t, remote.addr(), testutil.ClientOptions{ClientID: "rsub", CleanSession: true})
			subscribeT(t, rs, 2, "out/#")
			lp := dialT(t, local.addr(), testutil.ClientOptions{ClientID: "lpub", CleanSession: true})
			if err := lp.Publish("out/tls", []byte("secret"), 2, false); err != nil {
				t.Fatal(err)
			}
			msgs, err := rs.Collect(1, 30*time.Second)
			if err != nil || msgs[0].Topic != "out/tls" || string(msgs[0].Payload) != "secret" {
				t.Fatalf("remote subscriber got %v (%v), want out/tls", got(msgs), err)
			}
		})
	}
}

// TestBridgeBackToPrimary: with two addresses and round_robin false (the
// default) a bridge that had to use the second address goes back to the
// first once it answers.
func TestBridgeBackToPrimary(t *testing.T) {
	testutil.RequireMosquitto(t)
	for _, localKind := range []string{kindMosquitto, kindBundled} {
		t.Run(localKind, func(t *testing.T) {
			primaryPort := testutil.FreePort(t)
			second := startSide(t, kindBundled, t.TempDir(), 0)
			local := startSide(t, localKind, t.TempDir(), 0, bridgeBlock(
				fmt.Sprintf("127.0.0.1:%d %s", primaryPort, second.addr()), "topic probe/# in 0")...)
			waitBridgeUp(t, local.addr(), second.addr())
			primary := startSide(t, kindBundled, t.TempDir(), primaryPort)
			waitBridgeUp(t, local.addr(), primary.addr())
		})
	}
}

// TestBridgeMaxPacketSize: a message whose PUBLISH would exceed
// bridge_max_packet_size is not sent to the remote (and does not hold up
// the messages after it); the others flow, at QoS 1 and 2, on 3.1.1 and MQTT 5 links.
func TestBridgeMaxPacketSize(t *testing.T) {
	testutil.RequireMosquitto(t)
	for _, proto := range []string{"mqttv311", "mqttv50"} {
		for _, pair := range bridgePairs {
			t.Run(proto+"/"+pair.local+"-to-"+pair.remote, func(t *testing.T) {
				remote := startSide(t, pair.remote, t.TempDir(), 0)
				local := startSide(t, pair.local, t.TempDir(), 0, bridgeBlock(remote.addr(), "bridge_protocol_version "+proto,
					"bridge_max_packet_size 100", "topic big/# out 2", "topic probe/# in 0")...)
				waitBridgeUp(t, local.addr(), remote.addr())
				rs := dialT(t, remote.addr(), testutil.ClientOptions{ClientID: "rsub", CleanSession: true})
				subscribeT(t, rs, 2, "big/#")
				lp := dialT(t, local.addr(), testutil.ClientOptions{ClientID: "lpub", CleanSession: true})
				for _, m := range []struct {
					topic string
					size  int
					qos   byte
				}{{"big/a", 200, 1}, {"big/b", 10, 1}, {"big/c", 200, 2}, {"big/d", 10, 2}, {"big/e", 200, 1}, {"big/f", 10, 1}} {
					if err := lp.Publish(m.topic, []byte(strings.Repeat("x", m.size)), m.qos, false); err != nil {
						t.Fatal(err)
					}
				}
				msgs, err := rs.Collect(3, 30*time.Second)
				var topics []string
				for _, m := range msgs {
					topics = append(topics, m.Topic)
				}
				sort.Strings(topics) // QoS 1 and 2 flows may overtake each other
				if err != nil || strings.Join(topics, ",") != "big/b,big/d,big/f" {
					t.Fatalf("remote got %v (%v), want big/b, big/d and big/f only", topics, err)
				}
			})
		}
	}
}

// TestBridgeStaleSubscriptionDropped: an out topic removed from the file is
// no longer subscribed by the bridge's saved session after a restart.
func TestBridgeStaleSubscriptionDropped(t *testing.T) {
	testutil.RequireMosquitto(t)
	for _, kind := range []string{kindMosquitto, kindBundled} {
		t.Run(kind, func(t *testing.T) {
			remote := startSide(t, kindBundled, t.TempDir(), 0)
			local := startSide(t, kind, t.TempDir(), 0, bridgeBlock(remote.addr(), "topic a/# out 1", "topic b/# out 2", "topic probe/# in 0")...)
			waitBridgeUp(t, local.addr(), remote.addr())
			local.stop(t)
			local.extra = bridgeBlock(remote.addr(), "topic a/# out 1", "topic probe/# in 0")
			local.start(t)
			waitBridgeUp(t, local.addr(), remote.addr()) // the attempt has resubscribed
			local.stop(t)
			db, err := persist.ReadFile(local.dbPath())
			if err != nil {
				t.Fatal(err)
			}
			var subs []string
			for _, s := range db.Subs {
				if s.ClientID == "local.edge" {
					subs = append(subs, s.Topic)
				}
			}
			if strings.Join(subs, ",") != "a/#" {
				t.Errorf("bridge session subscriptions %v, want only a/#", subs)
			}
		})
	}
}
