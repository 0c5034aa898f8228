package testutil

import (
	"bytes"
	"os"
	"testing"
	"time"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, tc := range []struct{ id, size int }{{0, 150}, {7, 150}, {123456, 150}, {3, 60}} {
		p := Payload(tc.id, tc.size)
		if len(p) != tc.size {
			t.Errorf("Payload(%d, %d) has %d bytes", tc.id, tc.size, len(p))
		}
		got, err := PayloadID(p)
		if err != nil || got != tc.id {
			t.Errorf("PayloadID(Payload(%d)) = %d, %v", tc.id, got, err)
		}
		if bytes.Equal(p, Payload(tc.id+1, tc.size)) {
			t.Errorf("payloads %d and %d are equal", tc.id, tc.id+1)
		}
	}
	if _, err := PayloadID([]byte("garbage")); err == nil {
		t.Error("PayloadID accepted garbage")
	}
}

// TestClientAgainstMosquitto checks the lean client itself against the real
// broker: QoS 0/1/2 round trips and a persistent session holding messages.
func TestClientAgainstMosquitto(t *testing.T) {
	m := StartMosquitto(t, MosquittoOptions{Persistence: true, Extra: []string{"max_queued_messages 0"}})
	sub, err := Dial(m.Addr, ClientOptions{ClientID: "slowsub"})
	if err != nil {
		t.Fatal(err)
	}
	if g, err := sub.Subscribe("test", 2); err != nil || g != 2 {
		t.Fatalf("subscribe: granted %d, %v", g, err)
	}
	if err := sub.Disconnect(); err != nil {
		t.Fatal(err)
	}
	pub, err := Dial(m.Addr, ClientOptions{ClientID: "pub", CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	if err := pub.PublishN(n, 20, 2, "test", func(i int) []byte { return Payload(i, PayloadSize) }, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	sub, err = Dial(m.Addr, ClientOptions{ClientID: "slowsub"})
	if err != nil {
		t.Fatal(err)
	}
	if !sub.SessionPresent() {
		t.Error("session not present on reconnect")
	}
	msgs, err := sub.Collect(n, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i, msg := range msgs {
		if !bytes.Equal(msg.Payload, Payload(i, PayloadSize)) {
			t.Fatalf("message %d: got %q", i, msg.Payload)
		}
	}
	for _, qos := range []byte{0, 1, 2} {
		if _, err := sub.Subscribe("q", qos); err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish("q", []byte{'a' + qos}, qos, false); err != nil {
			t.Fatal(err)
		}
		got, err := sub.Collect(1, 5*time.Second)
		if err != nil {
			t.Fatalf("qos %d: %v", qos, err)
		}
		if got[0].QoS != qos || string(got[0].Payload) != string([]byte{'a' + qos}) {
			t.Errorf("qos %d: got %+v", qos, got[0])
		}
	}
	if err := sub.Settle(); err != nil {
		t.Fatal(err)
	}
	sub.Disconnect()
	pub.Disconnect()
	if err := m.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(m.DBPath)
	if err != nil {
		t.Fatalf("no db after clean stop: %v", err)
	}
	// slowsub is persistent with subscriptions test and q, nothing held.
	want := int64(23 + 24 + (32 + 7) + (20 + 7 + 4) + (20 + 7 + 1))
	if st.Size() != want {
		t.Errorf("db size %d, want %d", st.Size(), want)
	}
}

// recorder is a testing.TB that records Skip and Fatal instead of stopping.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skip(...any)           { r.skipped = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestRequireSkipsOrFails(t *testing.T) {
	for _, tc := range []struct {
		env                   string
		program               string
		wantSkip, wantFailure bool
	}{
		{"", "/nonexistent/mosquitto", true, false},
		{"1", "/nonexistent/mosquitto", false, true},
		{"0", "/nonexistent/mosquitto", true, false},
		{"1", "/bin/sh", false, false},
	} {
		t.Run(tc.env+tc.program, func(t *testing.T) {
			t.Setenv(RequireEnv, tc.env)
			r := &recorder{TB: t}
			require(r, tc.program)
			if r.skipped != tc.wantSkip || r.failed != tc.wantFailure {
				t.Errorf("skipped %v failed %v, want %v %v", r.skipped, r.failed, tc.wantSkip, tc.wantFailure)
			}
		})
	}
}
