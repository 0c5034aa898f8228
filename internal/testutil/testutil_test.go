package testutil

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
	msg             string
}

func (r *recorder) Helper()     {}
func (r *recorder) Skip(...any) { r.skipped = true }
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
}

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

func TestLogFileTail(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "m.log")
	if err := os.WriteFile(logPath, []byte("1: Error: Address already in use\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, conf, want string
	}{
		{"no log file", "listener 1883 127.0.0.1\nlog_dest stderr\n", ""},
		{"log file", "listener 1883\nlog_dest file " + logPath + "\n", ", log " + logPath + ": 1: Error: Address already in use\n"},
		{"missing log file", "log_dest file " + dir + "/none.log\n", ", log " + dir + "/none.log: open " + dir + "/none.log: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := logFileTail(tc.conf); got != tc.want {
				t.Errorf("logFileTail = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestStartMosquittoConfReportsFailure starts Mosquitto with a config it
// rejects: the start must fail the test with Mosquitto's own complaint.
func TestStartMosquittoConfReportsFailure(t *testing.T) {
	RequireMosquittoBroker(t)
	dir := t.TempDir()
	r := &recorder{TB: t}
	m := StartMosquittoConf(r, dir, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nno_such_key_mqbench 1\n", port)
	})
	if m != nil || !r.failed {
		t.Fatalf("start with a bad config: mosquitto %v, failed %v", m, r.failed)
	}
	if !strings.Contains(r.msg, "no_such_key_mqbench") {
		t.Errorf("failure does not quote mosquitto's complaint: %s", r.msg)
	}
}

// TestLineBufferWaits covers the three ways a wait on a child's output ends:
// the line arrives, the stream closes first, or the timeout passes.
func TestLineBufferWaits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		input   string
		close   bool // close the stream after input
		sub     string
		n       int
		wantErr string // "" = found
	}{
		{"line found", "a\nready on 1\nb\n", false, "ready", 2, ""},
		{"closed first", "a\nb\n", true, "ready", 3, "output ended"},
		{"timeout", "a\n", false, "ready", 2, "within"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w := io.Pipe()
			defer w.Close()
			lb := newLineBuffer()
			go lb.consume(r)
			go func() {
				_, _ = w.Write([]byte(tc.input))
				if tc.close {
					w.Close()
				}
			}()
			line, err := lb.waitLine(tc.sub, 200*time.Millisecond)
			lines, cerr := lb.waitCount(tc.n, 200*time.Millisecond)
			if tc.wantErr == "" {
				if err != nil || line != "ready on 1" || cerr != nil || len(lines) < tc.n {
					t.Fatalf("waitLine = %q, %v; waitCount = %q, %v", line, err, lines, cerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || cerr == nil || !strings.Contains(cerr.Error(), tc.wantErr) {
				t.Fatalf("waitLine = %q, %v; waitCount = %q, %v; want errors with %q", line, err, lines, cerr, tc.wantErr)
			}
		})
	}
}
