package broker_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/testutil"
)

// TestBridgeLazy: a start_type lazy bridge subscribes locally at start but
// connects to the remote only once the messages held for it reach threshold,
// and after losing its link it stays down, whatever restart_timeout says,
// until they reach threshold again; a QoS 0 message dropped while it is down
// does not count. Every pairing runs the
// same block, so the expectation is Mosquitto 2.0.11's own.
func TestBridgeLazy(t *testing.T) {
	testutil.RequireMosquitto(t)
	for _, pair := range bridgePairs {
		t.Run(pair.local+"-to-"+pair.remote, func(t *testing.T) {
			remote := startSide(t, pair.remote, t.TempDir(), 0)
			rs := dialT(t, remote.addr(), testutil.ClientOptions{ClientID: "rsub"})
			subscribeT(t, rs, 2, "rem/#")
			local := startSide(t, pair.local, t.TempDir(), 0, bridgeBlock(remote.addr(),
				"start_type lazy", "threshold 3", "topic q/# out 2 loc/ rem/")...)
			lp := dialT(t, local.addr(), testutil.ClientOptions{ClientID: "lpub", CleanSession: true})
			round := func(n int) {
				t.Helper()
				publish := func(topic, payload string, qos byte) {
					t.Helper()
					if err := lp.Publish(topic, []byte(payload), qos, false); err != nil {
						t.Fatalf("publishing %s: %v", payload, err)
					}
				}
				tag := strconv.Itoa(n)
				publish("loc/q/1", "one"+tag, 1)
				publish("loc/q/0", "two"+tag, 0)
				publish("loc/q/2", "three"+tag, 2)
				// Two held: the QoS 0 message is dropped while the link is
				// down (with max_queued_messages set, db__ready_for_queue
				// holds no QoS 0 without queue_qos0_messages) and does not
				// count. An automatic bridge would be up within
				// restart_timeout (1 s) and deliver; a lazy one stays down.
				if msgs, err := rs.Collect(1, 4*time.Second); err == nil {
					t.Fatalf("round %d: the lazy bridge connected below its threshold: remote got %v", n, got(msgs))
				}
				publish("loc/q/1", "four"+tag, 1)
				msgs, err := rs.Collect(3, 60*time.Second)
				if err != nil {
					t.Fatalf("round %d: after the third held message (threshold 3) the remote got %v: %v", n, got(msgs), err)
				}
				want := []string{"rem/q/1 q1 four" + tag, "rem/q/1 q1 one" + tag, "rem/q/2 q2 three" + tag}
				if g := got(msgs); strings.Join(g, ",") != strings.Join(want, ",") {
					t.Errorf("round %d: remote got %v, want %v", n, g, want)
				}
			}
			round(1) // from the start: not connected until the threshold

			if err := rs.Settle(); err != nil { // every QoS 2 flow complete
				t.Fatal(err)
			}
			rs.Close()
			remote.stop(t)
			// Let the local broker see the link close, so what is published
			// next is held for a bridge that is down.
			time.Sleep(time.Second)
			remote.start(t)
			rs = dialT(t, remote.addr(), testutil.ClientOptions{ClientID: "rsub"})
			round(2) // after the link was lost
			if err := rs.Settle(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
