package auth

import (
	"fmt"
	"github.com/mqbench/mqbench/mqtt/topic"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/broker/auth/authtest"
)

// The decision table (testdata/decisions.json, with decisions.acl and
// decisions.pwfile) is data so a broker-level test can run the same rows
// against the bundled broker; TestDecisionTable checks this package predicts
// every row and mosquitto_decisions_test.go checks the real Mosquitto does.

func loadDecisions(t testing.TB) (*authtest.Table, *ACL, *Passwords) {
	t.Helper()
	d, err := authtest.LoadTable("testdata/decisions.json")
	if err != nil {
		t.Fatal(err)
	}
	acl, err := LoadACLFile(d.Path(d.ACLFile))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := LoadPasswordFile(d.Path(d.PasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	return d, acl, pw
}

// predict is what this package says Mosquitto does for the row, or an error
// when the row cannot show it (an observer that could not read the message
// anyway, a publisher that could not write it).
func predict(r authtest.Row, acl *ACL, pw *Passwords) (string, error) {
	can := func(c authtest.Client, topic string, a Access) bool {
		return acl.Check(c.ClientID, c.User, c.User != "", topic, a)
	}
	admitted := func(c authtest.Client) error {
		if code := pw.Check(c.User, c.Password).ConnackCode(true); code != 0 {
			return fmt.Errorf("client %q/%q is refused (%d)", c.User, c.ClientID, code)
		}
		return nil
	}
	verdict := func(ok bool) string {
		if ok {
			return "allowed"
		}
		return "denied"
	}
	me := r.Client()
	if r.Action == "connect" {
		if code := pw.Check(r.User, r.Password).ConnackCode(true); code != 0 {
			return fmt.Sprintf("refused %d", code), nil
		}
		return "allowed", nil
	}
	if err := admitted(me); err != nil {
		return "", err
	}
	switch r.Action {
	case "publish", "will":
		obs := me
		if r.ObserverIs != "self" {
			if r.Observer == nil {
				return "", fmt.Errorf("no observer")
			}
			obs = *r.Observer
		}
		if err := admitted(obs); err != nil {
			return "", err
		}
		if !can(obs, r.Topic, Read) {
			return "", fmt.Errorf("observer %q cannot read %q: the row shows nothing", obs.ClientID, r.Topic)
		}
		return verdict(can(me, r.Topic, Write)), nil
	case "subscribe-receive":
		if !can(me, r.Topic, Subscribe) {
			return "", fmt.Errorf("subscription refused")
		}
		switch r.PublisherIs {
		case "broker":
		case "self":
			if !can(me, r.MessageTopic, Write) {
				return "", fmt.Errorf("the subscriber cannot publish %q", r.MessageTopic)
			}
		default:
			if r.Publisher == nil {
				return "", fmt.Errorf("no publisher")
			}
			if err := admitted(*r.Publisher); err != nil {
				return "", err
			}
			if !can(*r.Publisher, r.MessageTopic, Write) {
				// Dropped at PUBLISH (and so never retained either).
				return "denied", nil
			}
		}
		return verdict(topic.Match(r.Topic, r.MessageTopic) && can(me, r.MessageTopic, Read)), nil
	}
	return "", fmt.Errorf("unknown action %q", r.Action)
}

func TestDecisionTable(t *testing.T) {
	d, acl, pw := loadDecisions(t)
	if len(d.Rows) < 40 {
		t.Fatalf("only %d rows", len(d.Rows))
	}
	for u, p := range d.Users {
		if pw.Check(u, p) != OK {
			t.Errorf("password file: %s/%s does not log in", u, p)
		}
	}
	ids := map[string]bool{}
	for _, r := range d.Rows {
		for _, id := range []string{r.ID, r.ClientID, clientIDOf(r.Publisher), clientIDOf(r.Observer)} {
			if id == "" {
				continue
			}
			if ids[id] {
				t.Errorf("%s: id %q used twice (rows run in parallel)", r.ID, id)
			}
			ids[id] = true
		}
		got, err := predict(r, acl, pw)
		if err != nil {
			t.Errorf("%s (%s): %v", r.ID, r.Note, err)
			continue
		}
		if got != r.Expect {
			t.Errorf("%s %s %q/%q %q: predicted %s, table says %s (%s)", r.ID, r.Action, r.User, r.ClientID, r.Topic, got, r.Expect, r.Note)
		}
		if r.Note == "" || (r.Action == "subscribe-receive" && r.MessageTopic == "") || strings.TrimSpace(r.Expect) != r.Expect {
			t.Errorf("%s: incomplete row", r.ID)
		}
	}
}

func clientIDOf(c *authtest.Client) string {
	if c == nil {
		return ""
	}
	return c.ClientID
}
