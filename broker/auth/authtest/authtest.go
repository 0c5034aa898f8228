// Package authtest runs the authentication and ACL decision table
// (broker/auth/testdata/decisions.json) against a broker at an address, so the
// same rows verified against the real Mosquitto 2.0.11 can be run against the
// bundled broker. It drives brokers with internal/testutil's client and only
// reports what happened; predicting the rows is package auth's job.
package authtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/testutil"
)

// Client is who connects: user "" is anonymous.
type Client struct {
	User     string `json:"user"`
	Password string `json:"password"`
	ClientID string `json:"client_id"`
}

// Row is one decision: Action is "connect", "publish", "subscribe-receive"
// or "will", Expect "allowed", "denied" or "refused NN"; the table's
// "actions" entry says how each is run.
type Row struct {
	ID           string  `json:"id"`
	User         string  `json:"user"`
	Password     string  `json:"password"`
	ClientID     string  `json:"client_id"`
	Action       string  `json:"action"`
	Topic        string  `json:"topic"`
	QoS          byte    `json:"qos"`
	Expect       string  `json:"expect"`
	MessageTopic string  `json:"message_topic,omitempty"`
	MessageQoS   byte    `json:"message_qos,omitempty"`
	Retained     bool    `json:"retained,omitempty"`
	Publisher    *Client `json:"publisher,omitempty"`
	PublisherIs  string  `json:"publisher_is,omitempty"` // "self", "broker"
	Observer     *Client `json:"observer,omitempty"`
	ObserverIs   string  `json:"observer_is,omitempty"` // "self"
	Note         string  `json:"note"`

	// TimedWait: the waiting client may not be able to read its sentinel
	// (random ACLs), so "not received" is a timed wait.
	TimedWait bool `json:"-"`
	// Addr, when set, is the broker the row runs against.
	Addr string `json:"-"`
}

// Client is the row's own client.
func (r Row) Client() Client {
	return Client{User: r.User, Password: r.Password, ClientID: r.ClientID}
}

// Table is decisions.json. Start the broker with allow_anonymous true, the
// password file Users describes (PasswordFile is one made by mosquitto_passwd
// 2.0.11) and ACLFile, then run the rows.
type Table struct {
	Description  string            `json:"description"`
	Users        map[string]string `json:"users"`
	ACLFile      string            `json:"acl_file"`
	PasswordFile string            `json:"password_file"`
	Rows         []Row             `json:"rows"`

	// Dir is the directory of the JSON file, where ACLFile and
	// PasswordFile are.
	Dir string `json:"-"`
}

// LoadTable reads a decision table file.
func LoadTable(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Table
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Dir = filepath.Dir(path)
	return &t, nil
}

// Path is name (ACLFile, PasswordFile) next to the table file.
func (t *Table) Path(name string) string { return filepath.Join(t.Dir, name) }

// RunRows runs the rows all at once (goroutines, not parallel subtests, which
// -parallel would limit to the CPU count while most rows just wait), then
// reports each in a subtest named after it.
func RunRows(t *testing.T, addr string, rows []Row) {
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
			if r.Addr != "" {
				a = r.Addr
			}
			got, err := RunRow(a, r)
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
				t.Errorf("%s %s user %q id %q topic %q: broker %s, expected %s (%s)",
					r.ID, r.Action, r.User, r.ClientID, r.Topic, got, r.Expect, r.Note)
			}
		})
	}
}

const (
	decisionTimeout = 5 * time.Second
	// timedWait bounds "not received" for a client that cannot receive a
	// sentinel (id or username with '+' or '#': patterns deny it all).
	timedWait = 1500 * time.Millisecond
	// willSettle lets the broker see a dropped connection before the sentinel.
	willSettle = 300 * time.Millisecond
)

func dialAs(addr string, c Client, will *testutil.ClientOptions) (*testutil.Client, error) {
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

func newWaiter(addr string, who Client, filter string, qos byte, timed bool) (*waiter, error) {
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
func RunRow(addr string, r Row) (string, error) {
	verdict := func(ok bool, err error) (string, error) {
		if err != nil {
			return "", err
		}
		if ok {
			return "allowed", nil
		}
		return "denied", nil
	}
	me := r.Client()
	payload := []byte(r.ID)
	ours := func(topic string) func(testutil.Message) bool {
		return func(m testutil.Message) bool { return m.Topic == topic && string(m.Payload) == r.ID }
	}
	switch r.Action {
	case "connect":
		code, err := ConnectCode(addr, r.ClientID, r.User, r.Password)
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
		w, err := newWaiter(addr, obs, r.Topic, 2, r.TimedWait)
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
		publish := func(c Client, retain bool) error {
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
		w, err := newWaiter(addr, me, r.Topic, r.QoS, r.TimedWait)
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
		w, err := newWaiter(addr, *r.Observer, r.Topic, 2, r.TimedWait)
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

// ConnectCode connects with the credentials and returns the CONNACK return
// code (0 = accepted; the connection is then closed cleanly).
func ConnectCode(addr, clientID, user, pass string) (byte, error) {
	c, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: clientID, CleanSession: true,
		Username: user, Password: pass, Timeout: decisionTimeout})
	var ce *testutil.ConnackError
	if errors.As(err, &ce) {
		return ce.Code, nil
	}
	if err != nil {
		return 0, err
	}
	return 0, c.Disconnect()
}
