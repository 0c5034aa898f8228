package auth

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/broker/auth/authtest"
)

// TestRandomACLAgainstMosquitto generates ACL files (fixed seeds) with random
// topic rules per section, random patterns with %c/%u, deny rules, and
// usernames with '/' and '+', then probes random publishes (observed by a
// user that reads everything) and random deliveries (from a user that writes
// everything) on the real broker, comparing each with Check.
func TestRandomACLAgainstMosquitto(t *testing.T) {
	var rows []authtest.Row
	for seed := int64(1); seed <= 6; seed++ {
		rows = append(rows, randomACLSetup(seed).start(t)...)
	}
	authtest.RunRows(t, "", rows)
}

var randomUsers = map[string]string{"u1": "p1", "u/2": "p2", "u+3": "p3", "observer": "po", "writer": "pw"}

func randomACLSetup(seed int64) edgeSetup {
	rng := rand.New(rand.NewSource(seed))
	pick := func(xs ...string) string { return xs[rng.Intn(len(xs))] }
	filter := func(levels ...string) string {
		var parts []string
		for n := 1 + rng.Intn(2); n > 0; n-- {
			parts = append(parts, pick(levels...))
		}
		switch rng.Intn(6) {
		case 0, 1, 2:
			parts = append(parts, "#")
		case 3:
			parts = []string{"#"}
		}
		return strings.Join(parts, "/")
	}
	access := func() string { return pick("read", "write", "readwrite", "read", "write", "readwrite", "deny") }
	var b strings.Builder
	rules := func(n int) {
		for ; n > 0; n-- {
			fmt.Fprintf(&b, "topic %s %s\n", access(), filter("a", "b", "u1", "+"))
		}
	}
	rules(1 + rng.Intn(4))
	for _, u := range rng.Perm(3) {
		if rng.Intn(4) == 0 {
			continue // no section
		}
		fmt.Fprintf(&b, "user %s\n", []string{"u1", "u/2", "u+3"}[u])
		rules(2 + rng.Intn(4))
	}
	b.WriteString("user observer\ntopic read #\ntopic write clients/#\nuser writer\ntopic write #\n")
	for n := 1 + rng.Intn(4); n > 0; n-- {
		fmt.Fprintf(&b, "pattern %s %s\n", access(), filter("a", "b", "%u", "%c", "+"))
	}
	b.WriteString("pattern readwrite clients/%c/#\n")

	s := edgeSetup{acl: b.String(), users: randomUsers}
	acl, err := ParseACL(strings.NewReader(s.acl), "random")
	if err != nil {
		panic(err)
	}
	// A waiter uses its sentinel where the model says it can write and read
	// it (were the model wrong there, the sentinel would not come and the
	// row would fail); elsewhere "not received" is a timed wait.
	timed := func(c authtest.Client) bool {
		st := "clients/" + c.ClientID + "/sentinel"
		return strings.ContainsAny(c.ClientID, "+#") ||
			!acl.Check(c.ClientID, c.User, c.User != "", st, Read) || !acl.Check(c.ClientID, c.User, c.User != "", st, Write)
	}
	clients := []authtest.Client{{}, {User: "u1", Password: "p1"}, {User: "u/2", Password: "p2"}, {User: "u+3", Password: "p3"}}
	for i := 0; i < 40; i++ {
		id := fmt.Sprintf("s%d-%02d", seed, i)
		me := clients[rng.Intn(len(clients))]
		me.ClientID = id + "-c"
		if rng.Intn(6) == 0 {
			me.ClientID = id + "+c" // a dangerous client id
		}
		var levels []string
		for n := 1 + rng.Intn(3); n > 0; n-- {
			l := pick("a", "b", "u1", "$U", "$I", "$U", "$I")
			switch {
			case l == "$U":
				l = me.User
			case l == "$I" && !strings.ContainsAny(me.ClientID, "+#"):
				l = me.ClientID
			case l == "$I":
				l = "a"
			}
			levels = append(levels, l)
		}
		topic := strings.Join(levels, "/")
		if topic == "" { // anonymous "$U" alone
			topic = "a"
		}
		if strings.ContainsAny(topic, "+#") {
			topic = "a/" + strings.NewReplacer("+", "", "#", "").Replace(topic)
		}
		r := authtest.Row{ID: id, User: me.User, Password: me.Password, ClientID: me.ClientID, QoS: 1, TimedWait: timed(me),
			Note: fmt.Sprintf("random ACL seed %d", seed)}
		if rng.Intn(2) == 0 {
			r.Action, r.Topic = "publish", topic
			r.Observer = &authtest.Client{User: "observer", Password: "po", ClientID: id + "-obs"}
			r.TimedWait = timed(*r.Observer)
		} else {
			r.Action, r.Topic, r.MessageTopic, r.MessageQoS = "subscribe-receive", topic, topic, 1
			r.Publisher = &authtest.Client{User: "writer", Password: "pw", ClientID: id + "-pub"}
		}
		s.rows = append(s.rows, r)
	}
	return s
}
