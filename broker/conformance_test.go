package broker_test

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/broker"
	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/internal/pki"
	"github.com/mqbench/mqbench/internal/testutil"
)

// Behaviours Mosquitto 2.0.11's own broker test suite (test/broker, run with
// MQTT 3.1.1 clients only) found the bundled broker getting wrong. Each check
// is written from the behaviour, with raw packets, and runs against both
// brokers so the expectation is Mosquitto's.

// TestTopicHierarchyLimit: Mosquitto refuses a topic or filter with more than
// 200 '/' separators from a client (TOPIC_HIERARCHY_LIMIT in its topic
// checks): the connection is closed without an acknowledgement. 200 are fine.
func TestTopicHierarchyLimit(t *testing.T) {
	deep := strings.Repeat("a/", 201) + "b" // 201 separators
	edge := strings.Repeat("/", 200)        // exactly 200
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		t.Run("200 levels work", func(t *testing.T) {
			c := connected(t, addr, "edge", true)
			if codes := c.subscribe(1, edge, 0); codes[0] != 0 {
				t.Fatalf("SUBACK %v, want granted QoS 0", codes)
			}
			c.send(publishPacket(edge, 0, 0, []byte("m"), false))
			p := c.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.PublishPacket); return ok })
			if pp := p.(*packets.PublishPacket); pp.TopicName != edge {
				t.Fatalf("got PUBLISH to a %d-byte topic, want the 200-level one", len(pp.TopicName))
			}
		})
		t.Run("subscribe", func(t *testing.T) {
			c := connected(t, addr, "deep-sub", true)
			sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
			sp.MessageID, sp.Topics, sp.Qoss = 1, []string{deep}, []byte{0}
			c.send(sp)
			expectClosedSilently(t, c)
		})
		t.Run("unsubscribe", func(t *testing.T) {
			c := connected(t, addr, "deep-unsub", true)
			up := packets.NewControlPacket(packets.Unsubscribe).(*packets.UnsubscribePacket)
			up.MessageID, up.Topics = 1, []string{deep}
			c.send(up)
			expectClosedSilently(t, c)
		})
		t.Run("publish", func(t *testing.T) {
			c := connected(t, addr, "deep-pub", true)
			c.send(publishPacket(deep, 1, 7, []byte("m"), false))
			expectClosedSilently(t, c)
		})
		t.Run("will topic", func(t *testing.T) {
			c := dial(t, addr)
			cp := connectPacket("deep-will", true)
			cp.WillFlag, cp.WillTopic, cp.WillMessage = true, deep, []byte("w")
			c.send(cp)
			expectNoConnack(t, c)
		})
	})
}

// expectClosedSilently asserts the broker closes the connection without
// sending anything first.
func expectClosedSilently(t *testing.T, c *rawClient) {
	t.Helper()
	p, err := c.readErr(5 * time.Second)
	if err == nil {
		t.Fatalf("got %v, want the connection closed", p)
	}
	if strings.Contains(err.Error(), "timeout") {
		t.Fatalf("connection still open: %v", err)
	}
}

// TestTLSServerChainFromCAFile: a certfile holding only the server
// certificate, signed by an intermediate CA that is in cafile, still verifies
// for a client that trusts only the root: OpenSSL (and so Mosquitto) sends
// the issuers it finds in the verify store with the server certificate.
func TestTLSServerChainFromCAFile(t *testing.T) {
	root, err := pki.NewCA("chain-root")
	if err != nil {
		t.Fatal(err)
	}
	interLeaf, err := root.Issue(&x509.Certificate{
		Subject:  pkix.Name{CommonName: "chain-intermediate"},
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		IsCA:     true,
	}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(interLeaf.KeyPEM)
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	inter := &pki.CA{Cert: interLeaf.Cert, Key: key.(crypto.Signer), CertPEM: interLeaf.CertPEM}
	srv, err := inter.Server([]string{"127.0.0.1", "localhost"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := srv.WriteFiles(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	allCA := filepath.Join(dir, "all-ca.crt")
	if err := os.WriteFile(allCA, append(append([]byte{}, inter.CertPEM...), root.CertPEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	rootOnly := filepath.Join(dir, "root.crt")
	if err := os.WriteFile(rootOnly, root.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range tlsBrokers(t, certPath, keyPath, allCA, "allow_anonymous true") {
		if ok, stderr := tlsConnects(t, b.addr, "--cafile", rootOnly); !ok {
			t.Errorf("%s: a client trusting only the root could not verify the server: %s", b.name, strings.TrimSpace(stderr))
		}
	}
}

// startParsed starts the in-process bundled broker from config text, parsed
// the way `mqbench broker -c` parses a file.
func startParsed(t *testing.T, text string) *broker.Broker {
	t.Helper()
	path := testutil.WriteFile(t, t.TempDir(), "bundled.conf", text)
	cfg, err := conf.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return startBroker(t, cfg)
}

// awaitPublish reads until a PUBLISH arrives.
func awaitPublish(c *rawClient) *packets.PublishPacket {
	c.t.Helper()
	return c.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.PublishPacket); return ok }).(*packets.PublishPacket)
}

// expectNoPublish asserts nothing was delivered to c before a PINGRESP.
func expectNoPublish(t *testing.T, c *rawClient, why string) {
	t.Helper()
	c.send(packets.NewControlPacket(packets.Pingreq))
	for i := 0; i < 100; i++ {
		switch p := c.read().(type) {
		case *packets.PingrespPacket:
			return
		case *packets.PublishPacket:
			t.Fatalf("%s: got PUBLISH %q %q", why, p.TopicName, p.Payload)
		}
	}
	t.Fatal("no PINGRESP")
}

// TestMountPoint: a listener's mount_point is prefixed to what its clients
// publish (wills too) and subscribe to, before the ACL and routing. Mosquitto
// 2.0.11 does not strip it from deliveries to those clients, and does not
// prefix UNSUBSCRIBE filters, so unsubscribing there removes nothing.
func TestMountPoint(t *testing.T) {
	check := func(t *testing.T, plain, mounted string) {
		all := connected(t, plain, "all", true)
		all.subscribe(1, "#", 0)

		pub := connected(t, mounted, "m-pub", true)
		pub.publish("test", 1, 1, []byte("from mount"), false)
		if p := awaitPublish(all); p.TopicName != "mount/test" || string(p.Payload) != "from mount" {
			t.Fatalf("plain subscriber got %q %q, want mount/test", p.TopicName, p.Payload)
		}

		sub := connected(t, mounted, "m-sub", true)
		sub.subscribe(1, "news", 0)
		connected(t, plain, "p-pub", true).publish("mount/news", 0, 0, []byte("inside"), false)
		if p := awaitPublish(sub); p.TopicName != "mount/news" {
			t.Fatalf("mounted subscriber got topic %q, want mount/news (not stripped)", p.TopicName)
		}
		connected(t, plain, "p-pub2", true).publish("news", 0, 0, []byte("outside"), false)
		expectNoPublish(t, sub, "a mounted subscription matched an unmounted topic")

		up := packets.NewControlPacket(packets.Unsubscribe).(*packets.UnsubscribePacket)
		up.MessageID, up.Topics = 2, []string{"news"}
		sub.send(up)
		sub.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.UnsubackPacket); return ok })
		connected(t, plain, "p-pub3", true).publish("mount/news", 0, 0, []byte("still"), false)
		if p := awaitPublish(sub); string(p.Payload) != "still" {
			t.Fatalf("after UNSUBSCRIBE got %q, want the subscription kept", p.Payload)
		}

		w := dial(t, mounted)
		cp := connectPacket("m-will", true)
		cp.WillFlag, cp.WillTopic, cp.WillMessage = true, "gone", []byte("bye")
		w.send(cp)
		w.read()
		_ = w.nc.Close()
		for {
			if p := awaitPublish(all); p.TopicName == "mount/gone" {
				break
			} else if !strings.HasPrefix(p.TopicName, "mount/news") && p.TopicName != "news" {
				t.Fatalf("plain subscriber got %q, want the will on mount/gone", p.TopicName)
			}
		}
	}
	t.Run("bundled", func(t *testing.T) {
		b := startParsed(t, "listener 0 127.0.0.1\nallow_anonymous true\nlistener 0 127.0.0.1\nmount_point mount/\n")
		addrs := b.Addrs()
		check(t, broker.DialAddr(addrs[0]), broker.DialAddr(addrs[1]))
	})
	t.Run("mosquitto", func(t *testing.T) {
		testutil.RequireMosquittoBroker(t)
		p2 := testutil.FreePort(t)
		m := testutil.StartMosquitto(t, testutil.MosquittoOptions{Extra: []string{
			fmt.Sprintf("listener %d 127.0.0.1", p2), "mount_point mount/"}})
		check(t, m.Addr, net.JoinHostPort("127.0.0.1", strconv.Itoa(p2)))
	})
}

// TestCheckRetainSource: with check_retain_source a retained message is sent
// to a new subscriber only while its publisher may still write the topic
// under the ACL in force now; after a restart with write access withdrawn it
// is withheld (it stays retained), while another publisher's is still sent.
func TestCheckRetainSource(t *testing.T) {
	acl := func(aliceWrites bool) string {
		a := "read"
		if aliceWrites {
			a = "readwrite"
		}
		return "user alice\ntopic " + a + " t/#\nuser carol\ntopic readwrite t/#\nuser bob\ntopic read t/#\n"
	}
	user := func(t *testing.T, addr, name string) *rawClient {
		c := dial(t, addr)
		cp := connectPacket(name, true)
		cp.UsernameFlag, cp.Username = true, name
		c.send(cp)
		if ack, ok := c.read().(*packets.ConnackPacket); !ok || ack.ReturnCode != 0 {
			t.Fatalf("%s: connect refused: %v", name, ack)
		}
		return c
	}
	before := func(t *testing.T, addr string) {
		user(t, addr, "alice").publish("t/alice", 0, 0, []byte("a"), true)
		user(t, addr, "carol").publish("t/carol", 0, 0, []byte("c"), true)
	}
	after := func(t *testing.T, addr string) {
		bob := user(t, addr, "bob")
		bob.subscribe(1, "t/#", 0)
		if p := awaitPublish(bob); p.TopicName != "t/carol" {
			t.Fatalf("bob got the retained %q, want only t/carol", p.TopicName)
		}
		expectNoPublish(t, bob, "a retained message whose publisher lost write access was sent")
	}
	t.Run("bundled", func(t *testing.T) {
		dir := t.TempDir()
		aclPath := testutil.WriteFile(t, dir, "acl", acl(true))
		text := "listener 0 127.0.0.1\nallow_anonymous true\ncheck_retain_source true\nacl_file " + aclPath +
			"\npersistence true\npersistence_location " + dir + "/\n"
		b := startParsed(t, text)
		before(t, b.Addr())
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		testutil.WriteFile(t, dir, "acl", acl(false))
		after(t, startParsed(t, text).Addr())
	})
	t.Run("mosquitto", func(t *testing.T) {
		testutil.RequireMosquittoBroker(t)
		dir := t.TempDir()
		aclPath := testutil.WriteFile(t, dir, "acl", acl(true))
		o := testutil.MosquittoOptions{Dir: dir, Persistence: true, Extra: []string{"check_retain_source true", "acl_file " + aclPath}}
		m := testutil.StartMosquitto(t, o)
		before(t, m.Addr)
		if err := m.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		testutil.WriteFile(t, dir, "acl", acl(false))
		after(t, testutil.StartMosquitto(t, o).Addr)
	})
}

// TestTakeoverAfterLastPacket: a client that publishes, closes its socket
// and at once reconnects with the same client id has its last message
// routed and its will sent, as Mosquitto handles the old socket's data (it
// became readable first) before the new CONNECT.
func TestTakeoverAfterLastPacket(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		obs := connected(t, addr, "observer", true)
		obs.subscribe(1, "last/#", 0)
		for i := 0; i < 20; i++ {
			old := dial(t, addr)
			cp := connectPacket("hasty", true)
			cp.WillFlag, cp.WillTopic, cp.WillMessage = true, "last/will", []byte(strconv.Itoa(i))
			old.send(cp)
			old.read()
			old.send(publishPacket("last/msg", 0, 0, []byte(strconv.Itoa(i)), false))
			_ = old.nc.Close()
			connected(t, addr, "hasty", true)
			got := map[string]bool{}
			for len(got) < 2 {
				p := awaitPublish(obs)
				if string(p.Payload) != strconv.Itoa(i) {
					t.Fatalf("round %d: got %q on %s", i, p.Payload, p.TopicName)
				}
				got[p.TopicName] = true
			}
		}
	})
}

// TestQoS0DroppedOverQueuedBytes: a QoS 0 delivery to a connected client is
// dropped once the QoS 1/2 payload it holds reaches max_queued_bytes (with
// max_queued_messages also set), as db__ready_for_flight decides.
func TestQoS0DroppedOverQueuedBytes(t *testing.T) {
	lines := []string{"max_inflight_messages 5", "max_queued_messages 100", "max_queued_bytes 50"}
	apply := func(c *conf.Config) {
		c.MaxInflightMessages, c.MaxQueuedMessages, c.MaxQueuedBytes = 5, 100, 50
	}
	bothBrokers(t, lines, apply, func(t *testing.T, addr string) {
		sub := connected(t, addr, "holder", true)
		sub.subscribe(1, "q/#", 1)
		pub := connected(t, addr, "pub", true)
		pub.publish("q/small", 0, 0, []byte("before"), false)
		if p := awaitPublish(sub); string(p.Payload) != "before" {
			t.Fatalf("got %q, want the QoS 0 message sent while nothing is held", p.Payload)
		}
		pub.publish("q/big", 1, 1, []byte(strings.Repeat("y", 60)), false)
		awaitPublish(sub) // in flight, not acknowledged: 60 bytes held
		pub.publish("q/small", 0, 0, []byte("after"), false)
		expectNoPublish(t, sub, "a QoS 0 message was sent while max_queued_bytes was held")
	})
}
