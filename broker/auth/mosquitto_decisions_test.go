package auth

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/testutil"
)

// TestDecisionsAgainstMosquitto runs every row of testdata/decisions.json
// against the real Mosquitto 2.0.11, started with the table's ACL and a
// password file made by the real mosquitto_passwd. The rows run in parallel
// (every client id is unique, payloads carry the row id). runDecisionRow only
// needs an address, so a broker-level test can run the same rows against the
// bundled broker.
func TestDecisionsAgainstMosquitto(t *testing.T) {
	d, _, _ := loadDecisions(t)
	dir := t.TempDir()
	pwfile := filepath.Join(dir, "pwfile")
	first := true
	for _, u := range []string{"alice", "bob"} {
		args := []string{"-b", pwfile, u, d.Users[u]}
		if first {
			args = append([]string{"-c"}, args...)
			first = false
		}
		runPasswd(t, args...)
	}
	aclPath, err := filepath.Abs("testdata/" + d.ACLFile)
	if err != nil {
		t.Fatal(err)
	}
	m := startMosquitto(t, dir, "allow_anonymous true", "password_file "+pwfile, "acl_file "+aclPath)
	runRows(t, m.Addr, d.Rows)
	if t.Failed() {
		t.Logf("mosquitto log tail: %s", tailString(m.Stderr(), 4000))
	}
}

// runRows runs the rows all at once (goroutines, not parallel subtests, which
// -parallel would limit to the CPU count while most rows just wait), then
// reports each in a subtest named after it.
func runRows(t *testing.T, addr string, rows []decisionRow) {
	t.Helper()
	type outcome struct {
		got string
		err error
	}
	out := make([]outcome, len(rows))
	var wg sync.WaitGroup
	for i, r := range rows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := addr
			if r.addr != "" {
				a = r.addr
			}
			got, err := runDecisionRow(a, r)
			out[i] = outcome{got, err}
		}()
	}
	wg.Wait()
	for i, r := range rows {
		t.Run(r.ID, func(t *testing.T) {
			if err := out[i].err; err != nil {
				t.Fatalf("%s %s %q: %v", r.Action, r.Topic, r.Note, err)
			}
			if got := out[i].got; got != r.Expect {
				t.Errorf("%s %s user %q id %q topic %q: Mosquitto %s, expected %s (%s)",
					r.ID, r.Action, r.User, r.ClientID, r.Topic, got, r.Expect, r.Note)
			}
		})
	}
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

const (
	decisionTimeout = 5 * time.Second
	// timedWait bounds "not received" for a client that cannot receive a
	// sentinel (id or username with '+' or '#': patterns deny it all).
	timedWait = 1500 * time.Millisecond
	// willSettle lets the broker see a dropped connection before the sentinel.
	willSettle = 300 * time.Millisecond
)

func dialAs(addr string, c decisionClient, will *testutil.ClientOptions) (*testutil.Client, error) {
	o := testutil.ClientOptions{ClientID: c.ClientID, CleanSession: true, Username: c.User,
		Password: c.Password, Timeout: decisionTimeout}
	if will != nil {
		o.WillTopic, o.WillPayload, o.WillQoS = will.WillTopic, will.WillPayload, will.WillQoS
	}
	cl, err := testutil.Dial(addr, o)
	if err != nil {
		return nil, fmt.Errorf("connecting %q/%q: %w", c.User, c.ClientID, err)
	}
	return cl, nil
}

// waiter is the client a row watches for its message.
type waiter struct {
	c        *testutil.Client
	id       string
	sentinel bool // can use clients/ID/sentinel (via the %c pattern)
}

func newWaiter(addr string, who decisionClient, filter string, qos byte, timed bool) (*waiter, error) {
	c, err := dialAs(addr, who, nil)
	if err != nil {
		return nil, err
	}
	w := &waiter{c: c, id: who.ClientID, sentinel: !timed && !strings.ContainsAny(who.ClientID+who.User, "+#")}
	granted, err := c.Subscribe(filter, qos)
	if err != nil {
		c.Close()
		return nil, err
	}
	if granted != qos {
		c.Close()
		return nil, fmt.Errorf("SUBACK for %q granted %#x, asked %d (2.0.11 grants every subscription)", filter, granted, qos)
	}
	if w.sentinel {
		if _, err := c.Subscribe(w.sentinelTopic(), 0); err != nil {
			c.Close()
			return nil, err
		}
	}
	return w, nil
}

func (w *waiter) sentinelTopic() string { return "clients/" + w.id + "/sentinel" }

// received reports whether a message matching arrives: it waits for the
// message itself, and once the sentinel the waiter publishes to itself has
// arrived (plus a PINGREQ round trip) concludes it will not.
func (w *waiter) received(match func(testutil.Message) bool) (bool, error) {
	payload := "sentinel-" + w.id
	if w.sentinel {
		if err := w.c.Publish(w.sentinelTopic(), []byte(payload), 0, false); err != nil {
			return false, err
		}
	}
	wait := decisionTimeout
	if !w.sentinel {
		wait = timedWait
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		select {
		case m, ok := <-w.c.Messages():
			if !ok {
				return false, fmt.Errorf("connection of %q ended: %v", w.id, w.c.Err())
			}
			if match(m) {
				return true, nil
			}
			if w.sentinel && m.Topic == w.sentinelTopic() && string(m.Payload) == payload {
				if err := w.c.Sync(); err != nil {
					return false, err
				}
				for {
					select {
					case m, ok := <-w.c.Messages():
						if ok && match(m) {
							return true, nil
						}
						if !ok {
							return false, nil
						}
					default:
						return false, nil
					}
				}
			}
		case <-deadline.C:
			if w.sentinel {
				return false, errors.New("the sentinel never arrived")
			}
			return false, nil
		}
	}
}

// runDecisionRow runs one row against the broker at addr and returns what
// happened in the table's terms.
func runDecisionRow(addr string, r decisionRow) (string, error) {
	verdict := func(ok bool, err error) (string, error) {
		if err != nil {
			return "", err
		}
		if ok {
			return "allowed", nil
		}
		return "denied", nil
	}
	me := r.client()
	payload := []byte(r.ID)
	ours := func(topic string) func(testutil.Message) bool {
		return func(m testutil.Message) bool { return m.Topic == topic && string(m.Payload) == r.ID }
	}
	switch r.Action {
	case "connect":
		code, err := connectCode(addr, r.ClientID, r.User, r.Password)
		if err != nil {
			return "", err
		}
		if code != 0 {
			return fmt.Sprintf("refused %d", code), nil
		}
		return "allowed", nil

	case "publish":
		obs := me
		if r.ObserverIs != "self" {
			obs = *r.Observer
		}
		w, err := newWaiter(addr, obs, r.Topic, 2, r.timedWait)
		if err != nil {
			return "", err
		}
		defer w.c.Close()
		pub := w.c
		if r.ObserverIs != "self" {
			if pub, err = dialAs(addr, me, nil); err != nil {
				return "", err
			}
			defer pub.Close()
		}
		// Publish waits for PUBACK / PUBCOMP: a denied QoS 1/2 publish must
		// still complete its flow.
		if err := pub.Publish(r.Topic, payload, r.QoS, false); err != nil {
			return "", fmt.Errorf("publish flow: %w", err)
		}
		if err := pub.Sync(); err != nil {
			return "", err
		}
		return verdict(w.received(ours(r.Topic)))

	case "subscribe-receive":
		publish := func(c decisionClient, retain bool) error {
			p, err := dialAs(addr, c, nil)
			if err != nil {
				return err
			}
			defer p.Close()
			if err := p.Publish(r.MessageTopic, payload, r.MessageQoS, retain); err != nil {
				return err
			}
			return p.Sync()
		}
		if r.Retained {
			if err := publish(*r.Publisher, true); err != nil {
				return "", err
			}
		}
		w, err := newWaiter(addr, me, r.Topic, r.QoS, r.timedWait)
		if err != nil {
			return "", err
		}
		defer w.c.Close()
		match := ours(r.MessageTopic)
		switch {
		case r.PublisherIs == "broker":
			match = func(m testutil.Message) bool { return m.Topic == r.MessageTopic }
		case r.Retained:
		case r.PublisherIs == "self":
			if err := w.c.Publish(r.MessageTopic, payload, r.MessageQoS, false); err != nil {
				return "", err
			}
		default:
			if err := publish(*r.Publisher, false); err != nil {
				return "", err
			}
		}
		return verdict(w.received(match))

	case "will":
		w, err := newWaiter(addr, *r.Observer, r.Topic, 2, r.timedWait)
		if err != nil {
			return "", err
		}
		defer w.c.Close()
		wc, err := dialAs(addr, me, &testutil.ClientOptions{WillTopic: r.Topic, WillPayload: payload, WillQoS: r.QoS})
		if err != nil {
			return "", err
		}
		wc.Close() // no DISCONNECT: the will is due
		time.Sleep(willSettle)
		return verdict(w.received(ours(r.Topic)))
	}
	return "", fmt.Errorf("unknown action %q", r.Action)
}
