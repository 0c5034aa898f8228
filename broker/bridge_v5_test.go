package broker_test

import (
	"testing"

	p5 "github.com/eclipse/paho.golang/packets"

	"github.com/mqbench/mqbench/internal/testutil"
)

// TestBridgeV5Properties: over a bridge_protocol_version mqttv50 bridge a
// message keeps its MQTT 5 properties in both directions (user properties,
// content type, response topic, correlation data, payload format, and the
// message expiry interval, counted down), as Mosquitto 2.0.11's bridge
// context, which speaks MQTT 5 to both sides, carries them.
func TestBridgeV5Properties(t *testing.T) {
	testutil.RequireMosquitto(t)
	props := func() *p5.Properties {
		return &p5.Properties{
			User:            []p5.User{{Key: "k", Value: "v"}, {Key: "k", Value: "w"}},
			ContentType:     "text/x",
			ResponseTopic:   "reply/here",
			CorrelationData: []byte("cd"),
			PayloadFormat:   b8(1),
			MessageExpiry:   u32(300),
		}
	}
	check := func(t *testing.T, dir string, got *p5.Publish, topic string) {
		t.Helper()
		if got.Topic != topic || string(got.Payload) != "hello" {
			t.Fatalf("%s: got %s %q, want %s hello", dir, got.Topic, got.Payload, topic)
		}
		pr := got.Properties
		if pr == nil {
			t.Fatalf("%s: no properties", dir)
		}
		if len(pr.User) != 2 || pr.User[0] != (p5.User{Key: "k", Value: "v"}) || pr.User[1] != (p5.User{Key: "k", Value: "w"}) {
			t.Errorf("%s: user properties %v", dir, pr.User)
		}
		if pr.ContentType != "text/x" || pr.ResponseTopic != "reply/here" || string(pr.CorrelationData) != "cd" {
			t.Errorf("%s: content type %q, response topic %q, correlation data %q", dir, pr.ContentType, pr.ResponseTopic, pr.CorrelationData)
		}
		if pr.PayloadFormat == nil || *pr.PayloadFormat != 1 {
			t.Errorf("%s: payload format %v, want 1", dir, pr.PayloadFormat)
		}
		if pr.MessageExpiry == nil || *pr.MessageExpiry < 290 || *pr.MessageExpiry > 300 {
			t.Errorf("%s: message expiry %v, want what is left of 300 s", dir, pr.MessageExpiry)
		}
	}
	for _, pair := range bridgePairs {
		t.Run(pair.local+"-to-"+pair.remote, func(t *testing.T) {
			remote := startSide(t, pair.remote, t.TempDir(), 0)
			local := startSide(t, pair.local, t.TempDir(), 0, bridgeBlock(remote.addr(),
				"bridge_protocol_version mqttv50", "topic q/# out 1 loc/ rem/", "topic i/# in 1 lin/ rin/", "topic probe/# in 0")...)
			waitBridgeUp(t, local.addr(), remote.addr())

			rsub, _ := connected5(t, remote.addr(), "rsub", true, nil)
			rsub.subscribe(1, p5.SubOptions{Topic: "rem/#", QoS: 1})
			lsub, _ := connected5(t, local.addr(), "lsub", true, nil)
			lsub.subscribe(1, p5.SubOptions{Topic: "lin/#", QoS: 1})

			lpub, _ := connected5(t, local.addr(), "lpub", true, nil)
			lpub.send(publish5("loc/q/a", 1, 1, []byte("hello"), props()))
			check(t, "out", rsub.expectPublish(), "rem/q/a")

			rpub, _ := connected5(t, remote.addr(), "rpub", true, nil)
			rpub.send(publish5("rin/i/b", 1, 1, []byte("hello"), props()))
			check(t, "in", lsub.expectPublish(), "lin/i/b")
		})
	}
}
