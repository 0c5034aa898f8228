package broker_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/broker"
	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/internal/testutil"
)

func TestConnackCodes(t *testing.T) {
	cases := []struct {
		name      string
		anonymous bool
		mod       func(*packets.ConnectPacket)
		want      byte
		closed    bool // connection closed without CONNACK
	}{
		{name: "ok 3.1.1", anonymous: true, mod: func(*packets.ConnectPacket) {}, want: 0},
		{name: "ok 3.1", anonymous: true, mod: func(p *packets.ConnectPacket) { p.ProtocolName, p.ProtocolVersion = "MQIsdp", 3 }, want: 0},
		{name: "mqtt level 6", anonymous: true, mod: func(p *packets.ConnectPacket) { p.ProtocolVersion = 6 }, want: 1},
		{name: "MQIsdp level 4", anonymous: true, mod: func(p *packets.ConnectPacket) { p.ProtocolName, p.ProtocolVersion = "MQIsdp", 4 }, want: 1},
		{name: "empty id persistent", anonymous: true, mod: func(p *packets.ConnectPacket) { p.ClientIdentifier, p.CleanSession = "", false }, want: 2},
		{name: "empty id clean", anonymous: true, mod: func(p *packets.ConnectPacket) { p.ClientIdentifier = "" }, want: 0},
		// Mosquitto 2.0.11 sets no 23-character limit on a 3.1 client id.
		{name: "3.1 long id", anonymous: true, mod: func(p *packets.ConnectPacket) {
			p.ProtocolName, p.ProtocolVersion, p.ClientIdentifier = "MQIsdp", 3, strings.Repeat("x", 24)
		}, want: 0},
		{name: "3.1 empty id", anonymous: true, mod: func(p *packets.ConnectPacket) {
			p.ProtocolName, p.ProtocolVersion, p.ClientIdentifier = "MQIsdp", 3, ""
		}, want: 2},
		{name: "3.1.1 long id ok", anonymous: true, mod: func(p *packets.ConnectPacket) { p.ClientIdentifier = strings.Repeat("x", 100) }, want: 0},
		{name: "not authorised", anonymous: false, mod: func(*packets.ConnectPacket) {}, want: 5},
		// Mosquitto 2.0.11: no password file and allow_anonymous false refuses
		// every client, whatever username it gives.
		{name: "username when not anonymous", anonymous: false, mod: func(p *packets.ConnectPacket) { p.UsernameFlag, p.Username = true, "u" }, want: 5},
		{name: "bad protocol name", anonymous: true, mod: func(p *packets.ConnectPacket) { p.ProtocolName = "XYZ" }, closed: true},
		{name: "password without username", anonymous: true, mod: func(p *packets.ConnectPacket) { p.PasswordFlag, p.Password = true, []byte("p") }, closed: true},
		{name: "will qos 3", anonymous: true, mod: func(p *packets.ConnectPacket) { p.WillFlag, p.WillTopic, p.WillQos = true, "w", 3 }, closed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Security.AllowAnonymous = &tc.anonymous
			b := startBroker(t, cfg)
			c := dial(t, b.Addr())
			cp := connectPacket("client1", true)
			tc.mod(cp)
			c.send(cp)
			p, err := c.readErr(5 * time.Second)
			if tc.closed {
				if err == nil {
					t.Fatalf("got %v, want connection closed", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ack, ok := p.(*packets.ConnackPacket)
			if !ok || ack.ReturnCode != tc.want {
				t.Fatalf("got %v, want CONNACK %d", p, tc.want)
			}
			if tc.want != 0 {
				c.expectClosed()
			}
		})
	}
}

// TestPahoQoS runs every publish/subscribe QoS pair through the paho client:
// the subscriber gets each message once at min(publish, subscribe) QoS.
func TestPahoQoS(t *testing.T) {
	b := startBroker(t, testConfig(t))
	newClient := func(id string) mqtt.Client {
		o := mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID(id).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := mqtt.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c
	}
	pub := newClient("pahopub")
	sub := newClient("pahosub")
	for subQoS := byte(0); subQoS <= 2; subQoS++ {
		for pubQoS := byte(0); pubQoS <= 2; pubQoS++ {
			topic := fmt.Sprintf("q/%d/%d", subQoS, pubQoS)
			got := make(chan mqtt.Message, 10)
			if tok := sub.Subscribe(topic, subQoS, func(_ mqtt.Client, m mqtt.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
			if tok := pub.Publish(topic, pubQoS, false, "m"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
			select {
			case m := <-got:
				if m.Qos() != min(subQoS, pubQoS) || string(m.Payload()) != "m" {
					t.Errorf("%s: qos %d payload %q", topic, m.Qos(), m.Payload())
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: nothing delivered", topic)
			}
		}
	}
	st := b.Stats()
	if st.PublishReceived != 9 || st.PublishSent < 9 {
		t.Errorf("publish counters received %d sent %d", st.PublishReceived, st.PublishSent)
	}
}

// TestOverlapAndWildcards: overlapping subscriptions deliver once at the highest
// granted QoS; '$' topics are not matched by a leading wildcard.
func TestOverlapAndWildcards(t *testing.T) {
	cases := []struct {
		filters []string
		qos     []byte
		topic   string
		want    int // deliveries, -1 none
		wantQoS byte
	}{
		{[]string{"a/+", "a/#"}, []byte{1, 2}, "a/b", 1, 2},
		{[]string{"a/#", "a/b"}, []byte{0, 1}, "a/b", 1, 1},
		{[]string{"#"}, []byte{2}, "x/y/z", 1, 2},
		{[]string{"a/#"}, []byte{1}, "a", 1, 1},
		{[]string{"a/+/c"}, []byte{1}, "a/b/d", 0, 0},
		{[]string{"#", "+/broker/x"}, []byte{1, 1}, "$app/broker/x", 0, 0},
		{[]string{"$app/#"}, []byte{1}, "$app/broker/x", 1, 1},
		// Clients may not write $SYS (Mosquitto's acl__check_dollar), with
		// or without an ACL file: the publish is dropped.
		{[]string{"$SYS/#"}, []byte{1}, "$SYS/broker/x", 0, 0},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.filters, ",")+" "+tc.topic, func(t *testing.T) {
			cfg := quietConfig(t)
			b := startBroker(t, cfg)
			sub := connected(t, b.Addr(), "sub", true)
			for i, f := range tc.filters {
				sub.subscribe(uint16(i+1), f, tc.qos[i])
			}
			pub := connected(t, b.Addr(), "pub", true)
			// Clients may publish to $ topics other than $SYS; only the
			// matching rule differs.
			pub.publish(tc.topic, 2, 1, []byte("x"), false)
			pub.publish("marker", 0, 0, []byte("m"), false)
			sub.subscribe(99, "marker", 0)
			pub.publish("marker", 0, 0, []byte("m"), false)
			n := 0
			for {
				p := sub.read()
				pp, ok := p.(*packets.PublishPacket)
				if !ok {
					continue
				}
				if pp.TopicName == "marker" {
					break
				}
				n++
				if pp.Qos != tc.wantQoS {
					t.Errorf("delivered at qos %d, want %d", pp.Qos, tc.wantQoS)
				}
				if pp.Qos > 0 {
					ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
					ack.MessageID = pp.MessageID
					if pp.Qos == 2 {
						rec := packets.NewControlPacket(packets.Pubrec).(*packets.PubrecPacket)
						rec.MessageID = pp.MessageID
						sub.send(rec)
					} else {
						sub.send(ack)
					}
				}
			}
			if n != tc.want {
				t.Errorf("%d deliveries, want %d", n, tc.want)
			}
		})
	}
}

func TestRetained(t *testing.T) {
	cfg := quietConfig(t)
	b := startBroker(t, cfg)
	pub := connected(t, b.Addr(), "pub", true)
	pub.publish("r/1", 1, 1, []byte("one"), true)
	pub.publish("r/2", 0, 0, []byte("two"), true)
	pub.publish("r/2", 0, 0, []byte("two-b"), true)
	if st := b.Stats(); st.Retained != 2 || st.StoreCount != 2 {
		t.Fatalf("retained %d store %d, want 2 and 2", st.Retained, st.StoreCount)
	}
	sub := connected(t, b.Addr(), "sub", true)
	sub.subscribe(1, "r/#", 1)
	got := map[string]string{}
	for len(got) < 2 {
		p, ok := sub.read().(*packets.PublishPacket)
		if !ok {
			continue
		}
		if !p.Retain {
			t.Errorf("retained message %s delivered without RETAIN", p.TopicName)
		}
		got[p.TopicName] = string(p.Payload)
		if p.Qos == 1 {
			ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
			ack.MessageID = p.MessageID
			sub.send(ack)
		}
	}
	if got["r/1"] != "one" || got["r/2"] != "two-b" {
		t.Errorf("retained %v", got)
	}
	// Live delivery to an existing subscription has RETAIN clear; an empty
	// retained payload clears the topic.
	pub.publish("r/1", 0, 0, nil, true)
	p, ok := sub.read().(*packets.PublishPacket)
	if !ok || p.Retain || len(p.Payload) != 0 {
		t.Errorf("live delivery %v", p)
	}
	if st := b.Stats(); st.Retained != 1 || st.StoreCount != 1 {
		t.Errorf("after clear: retained %d store %d, want 1 and 1", st.Retained, st.StoreCount)
	}
}

func TestWill(t *testing.T) {
	cases := []struct {
		name     string
		end      func(c *rawClient)
		wantWill bool
	}{
		{"socket closed", func(c *rawClient) { _ = c.nc.Close() }, true},
		{"protocol error", func(c *rawClient) { c.send(connectPacket("again", true)) }, true},
		// A whole packet of a type no client may send (Mosquitto, too,
		// reads the remaining length before it judges the packet).
		{"garbage", func(c *rawClient) { c.sendRaw([]byte{0xff, 0x00}) }, true},
		{"disconnect", func(c *rawClient) { c.send(packets.NewControlPacket(packets.Disconnect)) }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quietConfig(t)
			b := startBroker(t, cfg)
			sub := connected(t, b.Addr(), "sub", true)
			sub.subscribe(1, "will/#", 1)
			sub.subscribe(2, "marker", 0)
			w := dial(t, b.Addr())
			cp := connectPacket("dying", true)
			cp.WillFlag, cp.WillTopic, cp.WillMessage, cp.WillQos = true, "will/dying", []byte("gone"), 1
			w.send(cp)
			w.read()
			tc.end(w)
			testutil.WaitFor(t, "client gone", func() bool { return b.Stats().ClientsConnected == 1 })
			pub := connected(t, b.Addr(), "pub", true)
			pub.publish("marker", 0, 0, []byte("m"), false)
			var got []string
			for {
				p, ok := sub.read().(*packets.PublishPacket)
				if !ok {
					continue
				}
				if p.TopicName == "marker" {
					break
				}
				got = append(got, p.TopicName+"="+string(p.Payload))
			}
			if (len(got) == 1) != tc.wantWill || (tc.wantWill && got[0] != "will/dying=gone") {
				t.Errorf("got %v, want will %v", got, tc.wantWill)
			}
		})
	}
}

func TestTakeoverAndPersistentSession(t *testing.T) {
	cfg := quietConfig(t)
	b := startBroker(t, cfg)
	c1 := dial(t, b.Addr())
	if ack := c1.connect("same", false); ack.SessionPresent {
		t.Error("session present on first connect")
	}
	c1.subscribe(1, "t", 1)
	c2 := dial(t, b.Addr())
	if ack := c2.connect("same", false); !ack.SessionPresent {
		t.Error("session present not set on takeover")
	}
	c1.expectClosed()
	pub := connected(t, b.Addr(), "pub", true)
	pub.publish("t", 1, 1, []byte("x"), false)
	if p, ok := c2.read().(*packets.PublishPacket); !ok || string(p.Payload) != "x" {
		t.Fatalf("new connection got %v", p)
	}
	// A clean reconnect discards the session.
	c2.send(packets.NewControlPacket(packets.Disconnect))
	c2.expectClosed()
	c3 := dial(t, b.Addr())
	if ack := c3.connect("same", true); ack.SessionPresent {
		t.Error("session present with clean session")
	}
	if st := b.Stats(); st.Subscriptions != 0 || st.Held != 0 {
		t.Errorf("clean reconnect kept %d subscriptions, %d held", st.Subscriptions, st.Held)
	}
}

// TestResendOnReconnect: unacknowledged outgoing messages are re-sent in order
// with DUP set, and PUBREL is re-sent for those waiting for PUBCOMP.
func TestResendOnReconnect(t *testing.T) {
	cfg := quietConfig(t)
	b := startBroker(t, cfg)
	sub := connected(t, b.Addr(), "sub", false)
	sub.subscribe(1, "t", 2)
	pub := connected(t, b.Addr(), "pub", true)
	for i := 1; i <= 3; i++ {
		pub.publish("t", 2, uint16(i), []byte{byte('0' + i)}, false)
	}
	var mids []uint16
	for len(mids) < 3 {
		if p, ok := sub.read().(*packets.PublishPacket); ok {
			mids = append(mids, p.MessageID)
		}
	}
	rec := packets.NewControlPacket(packets.Pubrec).(*packets.PubrecPacket)
	rec.MessageID = mids[0]
	sub.send(rec)
	if rel, ok := sub.read().(*packets.PubrelPacket); !ok || rel.MessageID != mids[0] {
		t.Fatalf("no PUBREL for %d", mids[0])
	}
	_ = sub.nc.Close()
	testutil.WaitFor(t, "subscriber offline", func() bool { return b.Stats().ClientsConnected == 1 })
	sub2 := connected(t, b.Addr(), "sub", false)
	rel, ok := sub2.read().(*packets.PubrelPacket)
	if !ok || rel.MessageID != mids[0] {
		t.Fatalf("first after reconnect %v, want PUBREL %d", rel, mids[0])
	}
	for i, want := range []string{"2", "3"} {
		p, ok := sub2.read().(*packets.PublishPacket)
		if !ok || !p.Dup || string(p.Payload) != want || p.MessageID != mids[i+1] {
			t.Fatalf("resend %d: %v", i, p)
		}
	}
}

// TestInboundQoS2Dedup: a QoS 2 PUBLISH repeated before PUBREL is delivered once.
func TestInboundQoS2Dedup(t *testing.T) {
	cfg := quietConfig(t)
	b := startBroker(t, cfg)
	sub := connected(t, b.Addr(), "sub", true)
	sub.subscribe(1, "t", 0)
	pub := connected(t, b.Addr(), "pub", true)
	for i := 0; i < 3; i++ {
		p := publishPacket("t", 2, 7, []byte("once"), false)
		p.Dup = i > 0
		pub.send(p)
		if _, ok := pub.read().(*packets.PubrecPacket); !ok {
			t.Fatal("no PUBREC")
		}
	}
	rel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
	rel.MessageID = 7
	pub.send(rel)
	pub.read()
	pub.publish("marker", 0, 0, nil, false)
	sub.subscribe(2, "marker", 0)
	pub.publish("marker", 0, 0, nil, false)
	n := 0
	for {
		p, ok := sub.read().(*packets.PublishPacket)
		if !ok {
			continue
		}
		if p.TopicName == "marker" {
			break
		}
		n++
	}
	if n != 1 {
		t.Errorf("delivered %d times, want 1", n)
	}
}

// TestMalformedPackets: garbage closes that connection only.
func TestMalformedPackets(t *testing.T) {
	cases := []struct {
		name    string
		connect bool
		raw     []byte
	}{
		{"garbage before connect", false, []byte("GET / HTTP/1.1\r\n\r\n")},
		{"publish before connect", false, []byte{0x30, 0x03, 0x00, 0x01, 'a'}},
		{"length too long", true, []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"reserved type", true, []byte{0xf0, 0x00}},
		{"connack from client", true, []byte{0x20, 0x02, 0x00, 0x00}},
		{"qos 3 publish", true, []byte{0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}},
		{"truncated topic", true, []byte{0x30, 0x03, 0x00, 0x09, 'a'}},
		{"wildcard topic", true, []byte{0x30, 0x03, 0x00, 0x01, '#'}},
		{"subscribe bad flags", true, []byte{0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}},
		{"subscribe qos 3", true, []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03}},
		{"puback wrong length", true, []byte{0x40, 0x03, 0x00, 0x01, 0x00}},
		{"second connect", true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			b := startBroker(t, cfg)
			c := dial(t, b.Addr())
			if tc.connect {
				c.connect("bad", true)
			}
			if tc.raw == nil {
				c.send(connectPacket("bad", true))
			} else {
				c.sendRaw(tc.raw)
			}
			c.expectClosed()
			ok := connected(t, b.Addr(), "good", true)
			ok.subscribe(1, "t", 1)
			ok.publish("t", 1, 1, []byte("still serving"), false)
		})
	}
}

// TestMessageSizeLimit: an oversize publish is dropped with its flow
// completed and the client kept, as in Mosquitto (see deviations_test.go for
// the side-by-side version).
func TestMessageSizeLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.MessageSizeLimit = 100
	b := startBroker(t, cfg)
	small := connected(t, b.Addr(), "small", true)
	small.publish("t", 1, 1, bytes.Repeat([]byte("x"), 100), false)
	big := connected(t, b.Addr(), "big", true)
	big.publish("t", 1, 1, bytes.Repeat([]byte("x"), 101), false)
	small.publish("t", 1, 2, []byte("ok"), false)
	big.publish("t", 1, 2, []byte("ok"), false)
}

func TestKeepalive(t *testing.T) {
	cfg := quietConfig(t)
	b := startBroker(t, cfg)
	c := dial(t, b.Addr())
	cp := connectPacket("idle", true)
	cp.Keepalive = 1
	cp.WillFlag, cp.WillTopic, cp.WillMessage = true, "will/idle", []byte("timeout")
	c.send(cp)
	c.read()
	c.send(packets.NewControlPacket(packets.Pingreq))
	if _, ok := c.read().(*packets.PingrespPacket); !ok {
		t.Fatal("no PINGRESP")
	}
	start := time.Now()
	c.expectClosed()
	if time.Since(start) < time.Second {
		t.Errorf("closed after %v, before 1.5 x keepalive", time.Since(start))
	}
}

func TestUnsubscribe(t *testing.T) {
	cfg := quietConfig(t)
	b := startBroker(t, cfg)
	c := connected(t, b.Addr(), "c", true)
	c.subscribe(1, "a", 1)
	c.subscribe(2, "b", 1)
	up := packets.NewControlPacket(packets.Unsubscribe).(*packets.UnsubscribePacket)
	up.MessageID = 3
	up.Topics = []string{"a"}
	c.send(up)
	if ua, ok := c.read().(*packets.UnsubackPacket); !ok || ua.MessageID != 3 {
		t.Fatalf("got %v, want UNSUBACK 3", ua)
	}
	if st := b.Stats(); st.Subscriptions != 1 {
		t.Errorf("%d subscriptions, want 1", st.Subscriptions)
	}
	c.publish("a", 0, 0, []byte("no"), false)
	c.publish("b", 0, 0, []byte("yes"), false)
	if p, ok := c.read().(*packets.PublishPacket); !ok || p.TopicName != "b" {
		t.Errorf("got %v, want the message on b only", p)
	}
}

func TestMaxConnections(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listeners[0].MaxConnections = 1
	b := startBroker(t, cfg)
	connected(t, b.Addr(), "one", true) // holds the only slot
	c2 := dial(t, b.Addr())
	c2.send(connectPacket("two", true))
	c2.expectClosed()
}

func TestSys(t *testing.T) {
	cfg := testConfig(t)
	cfg.SysInterval = time.Second
	b := startBroker(t, cfg)
	c := connected(t, b.Addr(), "c", true)
	c.subscribe(1, "$SYS/broker/version", 0)
	p, ok := c.read().(*packets.PublishPacket)
	if !ok || string(p.Payload) != "mqbench test" || !p.Retain {
		t.Fatalf("version: %v", p)
	}
	c.subscribe(2, "$SYS/broker/uptime", 0)
	p, ok = c.read().(*packets.PublishPacket)
	if !ok || !strings.HasSuffix(string(p.Payload), " seconds") {
		t.Fatalf("uptime: %v", p)
	}
	st := b.Stats()
	if st.SysStored == 0 || st.StoreCount < st.SysStored {
		t.Errorf("store %d, sys %d", st.StoreCount, st.SysStored)
	}
	if err := b.Save(); err != nil {
		t.Fatal(err)
	}
	// $SYS retained messages are not saved.
	if got := fileSize(t, dbPath(cfg)); got != 47 {
		t.Errorf("db with only $SYS state is %d bytes, want the empty 47", got)
	}
}

func TestNotices(t *testing.T) {
	cfg := testConfig(t)
	cfg.Unacted = []conf.Setting{{Key: "retry_interval", Value: "5"}, {Key: "store_clean_interval", Value: "10"}}
	b, err := broker.New(broker.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	got := b.Notices()
	want := []string{
		"retry_interval is accepted but has no effect on the bundled broker",
		"store_clean_interval is accepted but has no effect on the bundled broker",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notices %q", got)
	}
}

// TestRefusesWhatItCannotHonour: a security key the broker cannot act on stops
// New with the file and line, instead of a notice followed by service.
func TestRefusesWhatItCannotHonour(t *testing.T) {
	for _, line := range []string{"psk_file /x", "plugin /x.so", "log_dest syslog"} {
		k, v, _ := strings.Cut(line, " ")
		cfg := testConfig(t)
		cfg.Lines = []conf.Setting{{Key: k, Value: v, File: "m.conf", Line: 7}}
		_, err := broker.New(broker.Options{Config: cfg})
		if err == nil || !strings.Contains(err.Error(), "m.conf:7") {
			t.Errorf("%s: err = %v, want a refusal naming m.conf:7", line, err)
		}
	}
}

func TestLogLines(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	cfg := testConfig(t)
	cfg.LogTimestamp = false
	b, err := broker.New(broker.Options{Config: cfg, Log: lockedWriter{&mu, &buf}, Version: "v"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	c := connected(t, b.Addr(), "logme", true)
	c.send(packets.NewControlPacket(packets.Disconnect))
	c.expectClosed()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{"mqbench broker v starting", "New client connected from 127.0.0.1:", " as logme (p2, c1, k60).", "Client logme disconnected.", "mqbench broker v terminating"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
