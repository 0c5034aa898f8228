package broker_test

import (
	"bytes"
	"testing"
	"time"

	p5 "github.com/eclipse/paho.golang/packets"

	"github.com/mqbench/mqbench/broker/persist"
	"github.com/mqbench/mqbench/internal/testutil"
)

// MQTT 5 state through the db file (format 6), both ways between the bundled
// broker and Mosquitto 2.0.11: the message's properties and expiry, the
// session's expiry interval, the subscription's identifier and options and
// the delivery's subscription identifier must be saved as Mosquitto saves
// them and come back intact from either broker.

var v5Props = &p5.Properties{PayloadFormat: b8(1), MessageExpiry: u32(600), ContentType: "application/json",
	ResponseTopic: "v5/reply", CorrelationData: []byte("corr"), User: []p5.User{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}}

func v5SubProps(id int) *p5.Properties { return &p5.Properties{SubscriptionIdentifier: &id} }

// holdV5 leaves v5sub offline (session expiry 3600) subscribed to v5/# with
// identifier 7, No Local and Retain As Published, and one QoS 1 message held
// for it with every kind of PUBLISH property.
func holdV5(t *testing.T, addr string) {
	t.Helper()
	sub, _ := connected5(t, addr, "v5sub", false, func(c *p5.Connect) { c.Properties.SessionExpiryInterval = u32(3600) })
	cp := p5.NewControlPacket(p5.SUBSCRIBE)
	s := cp.Content.(*p5.Subscribe)
	s.PacketID, s.Properties = 1, v5SubProps(7)
	s.Subscriptions = []p5.SubOptions{{Topic: "v5/#", QoS: 1, NoLocal: true, RetainAsPublished: true}}
	sub.send(cp)
	if a, ok := sub.read().Content.(*p5.Suback); !ok || a.Reasons[0] != 1 {
		t.Fatalf("SUBACK %v", a)
	}
	sub.disconnect(0, nil)
	pub, _ := connected5(t, addr, "v5pub", true, nil)
	pub.send(publish5("v5/a", 1, 1, []byte("payload"), v5Props))
	if a, ok := pub.read().Content.(*p5.Puback); !ok || a.ReasonCode != 0 {
		t.Fatalf("PUBACK %v", a)
	}
	pub.disconnect(0, nil)
}

// drainV5 reconnects v5sub and checks the held message with its properties.
func drainV5(t *testing.T, addr string) {
	t.Helper()
	sub, ack := connected5(t, addr, "v5sub", false, func(c *p5.Connect) { c.Properties.SessionExpiryInterval = u32(3600) })
	if !ack.SessionPresent {
		t.Fatal("session not present after the load")
	}
	m := sub.expectPublish()
	pr := m.Properties
	if string(m.Payload) != "payload" || m.Topic != "v5/a" || m.QoS != 1 || pr.ContentType != "application/json" ||
		pr.ResponseTopic != "v5/reply" || !bytes.Equal(pr.CorrelationData, []byte("corr")) || len(pr.User) != 2 ||
		pr.PayloadFormat == nil || *pr.PayloadFormat != 1 || pr.MessageExpiry == nil || *pr.MessageExpiry > 600 || *pr.MessageExpiry < 500 ||
		pr.SubscriptionIdentifier == nil || *pr.SubscriptionIdentifier != 7 {
		t.Fatalf("held message after the load: %v", m)
	}
}

// v5State is what both brokers must save alike.
type v5State struct {
	props, deliveryProps []byte
	expiryLeft           int64
	sessionExpiry        uint32
	subID                uint32
	subOptions, subQoS   uint8
}

func readV5State(t *testing.T, path string, saved time.Time) v5State {
	t.Helper()
	db, err := persist.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st v5State
	for _, ms := range db.Stores {
		if ms.Topic == "v5/a" {
			st.props, st.expiryLeft = ms.Properties, ms.ExpiryTime-saved.Unix()
		}
	}
	for _, cl := range db.Clients {
		if cl.ClientID == "v5sub" {
			st.sessionExpiry = cl.SessionExpiryInterval
		}
	}
	for _, s := range db.Subs {
		if s.ClientID == "v5sub" {
			st.subID, st.subOptions, st.subQoS = s.Identifier, s.Options, s.QoS
		}
	}
	for _, cm := range db.ClientMsgs {
		if cm.ClientID == "v5sub" {
			st.deliveryProps = cm.Properties
		}
	}
	return st
}

func checkV5State(t *testing.T, who string, got, want v5State) {
	t.Helper()
	if !bytes.Equal(got.props, want.props) || !bytes.Equal(got.deliveryProps, want.deliveryProps) ||
		got.sessionExpiry != want.sessionExpiry || got.subID != want.subID || got.subOptions != want.subOptions ||
		got.subQoS != want.subQoS || got.expiryLeft < want.expiryLeft-5 || got.expiryLeft > want.expiryLeft+5 {
		t.Errorf("%s saved %+v, Mosquitto saves %+v", who, got, want)
	}
}

func TestV5CrossLoad(t *testing.T) {
	testutil.RequireMosquitto(t)
	var mosq v5State
	t.Run("mosquitto to bundled", func(t *testing.T) {
		dir := t.TempDir()
		m := testutil.StartMosquitto(t, testutil.MosquittoOptions{Dir: dir, Persistence: true})
		holdV5(t, m.Addr)
		if err := m.Stop(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		mosq = readV5State(t, dir+"/mosquitto.db", time.Now())
		if len(mosq.props) == 0 || mosq.subID != 7 || mosq.sessionExpiry != 3600 || len(mosq.deliveryProps) == 0 {
			t.Fatalf("Mosquitto saved %+v", mosq)
		}
		b := inprocBroker(t, testutil.BundledConf(dir))
		drainV5(t, b.Addr())
	})
	t.Run("bundled to mosquitto", func(t *testing.T) {
		dir := t.TempDir()
		b := inprocBroker(t, testutil.BundledConf(dir))
		holdV5(t, b.Addr())
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		got := readV5State(t, dir+"/mosquitto.db", time.Now())
		checkV5State(t, "the bundled broker", got, mosq)
		m := testutil.StartMosquitto(t, testutil.MosquittoOptions{Dir: dir, Persistence: true})
		drainV5(t, m.Addr)
	})
}
