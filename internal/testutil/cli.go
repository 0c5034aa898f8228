package testutil

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CLIMessage is one message as mosquitto_sub -d -v reported it.
type CLIMessage struct {
	Topic   string
	Payload string
	QoS     int
	Retain  bool
	Dup     bool
}

// Sub is a running mosquitto_sub.
type Sub struct {
	*Proc
}

var (
	publishLine = regexp.MustCompile(`^Client .* received PUBLISH \(d(\d), q(\d), r(\d), m(\d+), '(.*)', \.\.\. \(\d+ bytes\)\)$`)
	pubrelLine  = regexp.MustCompile(`^Client .* received PUBREL \(Mid: (\d+)\)`)
)

// hostPort splits 127.0.0.1:PORT for the -h/-p flags of the mosquitto clients.
func hostPort(addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, "1883"
	}
	return h, p
}

// stdbufArgs runs name with line-buffered stdout: mosquitto_sub's debug lines
// are block-buffered into a pipe, and the test has to see "Subscribed" before it
// publishes.
func stdbufArgs(name string, args []string) (string, []string) {
	if p, ok := findProgram("stdbuf"); ok {
		return p, append([]string{"-oL", LookPath(name)}, args...)
	}
	return LookPath(name), args
}

// StartSub runs `mosquitto_sub -h H -p P -d -v ARGS...` and waits until its
// subscription is acknowledged ("Subscribed" line), so anything published after
// it returns must reach it. It is killed by PID when the test ends.
func StartSub(t testing.TB, addr string, args ...string) *Sub {
	t.Helper()
	s := StartSubNoWait(t, addr, args...)
	if _, err := s.WaitStdoutLine("Subscribed (mid", 10*time.Second); err != nil {
		t.Fatalf("mosquitto_sub %v: %v (stdout: %s, stderr: %s)", args, err, tail(s.Stdout(), 2000), tail(s.Stderr(), 2000))
	}
	return s
}

// StartSubNoWait is StartSub without waiting for the subscription.
func StartSubNoWait(t testing.TB, addr string, args ...string) *Sub {
	t.Helper()
	h, p := hostPort(addr)
	name, full := stdbufArgs(MosquittoSubPath, append([]string{"-h", h, "-p", p, "-d", "-v"}, args...))
	return &Sub{Proc: StartProc(t, nil, name, full...)}
}

// Messages parses the messages received so far: each "received PUBLISH" debug
// line (flags, topic) joined with the "TOPIC PAYLOAD" line -v prints for it.
// libmosquitto hands a QoS 0/1 message over right after its PUBLISH, a QoS 2
// one only when its PUBREL arrives, so QoS 2 headers wait by packet id.
func (s *Sub) Messages() []CLIMessage {
	var out []CLIMessage
	var cur *CLIMessage
	qos2 := map[string]*CLIMessage{}
	for _, line := range s.StdoutLines() {
		if m := publishLine.FindStringSubmatch(line); m != nil {
			qos, _ := strconv.Atoi(m[2])
			msg := &CLIMessage{Dup: m[1] == "1", QoS: qos, Retain: m[3] == "1", Topic: m[5]}
			if qos == 2 {
				qos2[m[4]] = msg
			} else {
				cur = msg
			}
			continue
		}
		if m := pubrelLine.FindStringSubmatch(line); m != nil {
			if msg := qos2[m[1]]; msg != nil {
				cur = msg
				delete(qos2, m[1])
			}
			continue
		}
		if strings.HasPrefix(line, "Client ") || strings.HasPrefix(line, "Subscribed (mid") || cur == nil {
			continue
		}
		payload := strings.TrimPrefix(line, cur.Topic)
		payload = strings.TrimPrefix(payload, " ")
		if payload == "(null)" {
			payload = ""
		}
		cur.Payload = payload
		out = append(out, *cur)
		cur = nil
	}
	return out
}

// WaitMessages waits until at least n messages arrived and returns them all.
func (s *Sub) WaitMessages(n int, timeout time.Duration) ([]CLIMessage, error) {
	deadline := time.Now().Add(timeout)
	for {
		msgs := s.Messages()
		if len(msgs) >= n {
			return msgs, nil
		}
		if s.Exited() {
			// Read once more: the last lines may have landed with the exit.
			if msgs = s.Messages(); len(msgs) >= n {
				return msgs, nil
			}
			return msgs, fmt.Errorf("mosquitto_sub exited after %d of %d messages (exit %d, stderr: %s)", len(msgs), n, s.ExitCode(), tail(s.Stderr(), 1000))
		}
		if time.Now().After(deadline) {
			return msgs, fmt.Errorf("mosquitto_sub got %d of %d messages within %v", len(msgs), n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitTopic waits for a message on topic and returns every message so far.
func (s *Sub) WaitTopic(topic string, timeout time.Duration) ([]CLIMessage, error) {
	deadline := time.Now().Add(timeout)
	for {
		msgs := s.Messages()
		for _, m := range msgs {
			if m.Topic == topic {
				return msgs, nil
			}
		}
		if s.Exited() || time.Now().After(deadline) {
			return msgs, fmt.Errorf("no message on %q (got %d messages, exited %v)", topic, len(msgs), s.Exited())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Pub runs `mosquitto_pub -h H -p P ARGS...` with stdin under a time limit and
// fails the test when it does not exit 0.
func Pub(t testing.TB, addr string, stdin []byte, timeout time.Duration, args ...string) {
	t.Helper()
	h, p := hostPort(addr)
	_, stderr, err := Run(timeout, stdin, LookPath(MosquittoPubPath), append([]string{"-h", h, "-p", p}, args...)...)
	if err != nil {
		t.Fatalf("mosquitto_pub %v: %v (stderr: %s)", args, err, tail(stderr, 2000))
	}
}
