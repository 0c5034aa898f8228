package broker_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/testutil"
)

// TestMosquittoClientsV5: the real mosquitto_pub and mosquitto_sub speaking
// MQTT 5 (-V 5) to both brokers: a retained QoS 2 message with a user
// property and a content type arrives with both properties intact.
func TestMosquittoClientsV5(t *testing.T) {
	for _, b := range startSecured(t, "allow_anonymous true") {
		h, p, _ := net.SplitHostPort(b.addr)
		pub := testutil.LookPath(testutil.MosquittoPubPath)
		if _, stderr, err := testutil.Run(10*time.Second, nil, pub, "-h", h, "-p", p, "-V", "5", "-q", "2", "-r",
			"-t", "v5/props", "-m", "hello", "-D", "publish", "user-property", "colour", "blue",
			"-D", "publish", "content-type", "text/plain"); err != nil {
			t.Fatalf("%s: mosquitto_pub -V 5: %v (%s)", b.name, err, stderr)
		}
		sub := testutil.LookPath(testutil.MosquittoSubPath)
		out, stderr, err := testutil.Run(10*time.Second, nil, sub, "-h", h, "-p", p, "-V", "5", "-q", "2",
			"-t", "v5/props", "-C", "1", "-W", "8", "-F", "%t|%p|%P|%C")
		if err != nil {
			t.Fatalf("%s: mosquitto_sub -V 5: %v (%s)", b.name, err, stderr)
		}
		got := strings.TrimSpace(out)
		if !strings.HasPrefix(got, "v5/props|hello|") || !strings.Contains(got, "colour:blue") || !strings.Contains(got, "text/plain") {
			t.Errorf("%s: received %q, want the message with its user property and content type", b.name, got)
		}
	}
}
