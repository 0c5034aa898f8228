package auth

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/broker/auth/authtest"
)

// edgeSetup is a broker configuration with its own rows, outside the main
// decision table: each row must be predicted by this package and observed on
// the real Mosquitto alike.
type edgeSetup struct {
	acl   string // "" = no acl_file
	users map[string]string
	rows  []authtest.Row
}

func (s edgeSetup) run(t *testing.T) {
	t.Helper()
	authtest.RunRows(t, "", s.start(t))
}

// start checks the predictions, starts the broker and returns the rows bound
// to it.
func (s edgeSetup) start(t *testing.T) []authtest.Row {
	t.Helper()
	dir := t.TempDir()
	extra := []string{"allow_anonymous true"}
	var acl *ACL
	var pw *Passwords
	if s.acl != "" {
		path := writeFile(t, dir, "acl", s.acl)
		extra = append(extra, "acl_file "+path)
		var err error
		if acl, err = LoadACLFile(path); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.users) > 0 {
		var b strings.Builder
		for u, p := range s.users {
			line, err := PasswordLine(u, p)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(line)
		}
		path := writeFile(t, dir, "pw", b.String())
		extra = append(extra, "password_file "+path)
		var err error
		if pw, err = LoadPasswordFile(path); err != nil {
			t.Fatal(err)
		}
	}
	allowed := 0
	for i, r := range s.rows {
		got, err := predict(r, acl, pw)
		if r.Expect == "" && err == nil {
			// Generated rows: the prediction is what the real broker must do.
			s.rows[i].Expect, r.Expect = got, got
		}
		if err != nil || got != r.Expect {
			t.Errorf("%s: predicted %q (%v), want %s (%s)", r.ID, got, err, r.Expect, r.Note)
		}
		if got == "allowed" {
			allowed++
		}
	}
	t.Logf("%d of %d rows allowed", allowed, len(s.rows))
	m := startMosquitto(t, dir, extra...)
	rows := append([]authtest.Row(nil), s.rows...)
	for i := range rows {
		rows[i].Addr = m.Addr
	}
	return rows
}

func pubRow(id string, who authtest.Client, topic string, qos byte, obs authtest.Client, expect, note string) authtest.Row {
	obs.ClientID = id + "-obs"
	return authtest.Row{ID: id, User: who.User, Password: who.Password, ClientID: id + "-pub", Action: "publish",
		Topic: topic, QoS: qos, Expect: expect, Observer: &obs, Note: note}
}

// TestNoACLAgainstMosquitto: without an acl_file everything is allowed except
// what acl__check_dollar refuses, which applies even then.
func TestNoACLAgainstMosquitto(t *testing.T) {
	anon := authtest.Client{}
	edgeSetup{rows: []authtest.Row{
		pubRow("n1", anon, "a/b", 1, anon, "allowed", "no ACL: allowed"),
		pubRow("n2", anon, "$SYS/x", 1, anon, "denied", "$SYS write denied even without an ACL"),
		pubRow("n3", anon, "$SYS/broker/connection/br/state", 1, anon, "allowed", "the bridge state topic is the exception"),
		pubRow("n4", anon, "$other/x", 0, anon, "allowed", "other $ topics are not special"),
	}}.run(t)
}

// TestACLEdgesAgainstMosquitto: usernames with '/' or '+' against patterns, a
// pattern without %c/%u, the one-word topic form.
func TestACLEdgesAgainstMosquitto(t *testing.T) {
	slash := authtest.Client{User: "p/q", Password: "pq"}
	plus := authtest.Client{User: "plus+user", Password: "pp"}
	anon := authtest.Client{}
	sub := func(id string, who authtest.Client, filter, msgTopic string, pub authtest.Client, expect, note string) authtest.Row {
		pub.ClientID = id + "-pub"
		return authtest.Row{ID: id, User: who.User, Password: who.Password, ClientID: id + "-sub", Action: "subscribe-receive",
			Topic: filter, QoS: 1, MessageTopic: msgTopic, MessageQoS: 1, Publisher: &pub, Expect: expect, Note: note}
	}
	edgeSetup{
		acl: "topic read\ntopic write anon/#\nuser p/q\ntopic read own/#\nuser plus+user\ntopic read own/#\ntopic deny\n" +
			"pattern readwrite users/%u/#\npattern readwrite clients/%c/#\npattern read anon/#\n",
		users: map[string]string{"p/q": "pq", "plus+user": "pp"},
		rows: []authtest.Row{
			pubRow("e1", slash, "users/p/q/x", 1, slash, "allowed", "%u with a '/' adds a level"),
			sub("e2", slash, "anon/#", "anon/x", anon, "allowed", "pattern without %c/%u applies to all"),
			sub("e3", plus, "anon/#", "anon/x", anon, "denied", "'+' in the username: every pattern denied"),
			pubRow("e5", anon, "read", 1, anon, "allowed", "\"topic read\" is readwrite on the topic \"read\""),
			pubRow("e6", plus, "deny", 1, plus, "allowed", "\"topic deny\" is readwrite on the topic \"deny\""),
		},
	}.run(t)
}

// TestZeroLengthUsername: a CONNECT whose username flag is set with an empty
// username is anonymous to Mosquitto; a password file entry with an empty
// name never matches.
func TestZeroLengthUsername(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "pw", " :"+fixedHash("pw", PBKDF2SHA512)+"\n")
	p, err := LoadPasswordFile(pw)
	if err != nil {
		t.Fatal(err)
	}
	for _, anonOK := range []bool{false, true} {
		m := startMosquitto(t, t.TempDir(), fmt.Sprintf("allow_anonymous %v", anonOK), "password_file "+pw)
		code, err := rawConnect(m.Addr, "", []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		if want := p.Check("", "pw").ConnackCode(anonOK); code != want {
			t.Errorf("allow_anonymous %v: CONNACK %d, Check says %d", anonOK, code, want)
		}
	}
}

// rawConnect sends a 3.1.1 CONNECT with the username flag set whatever the
// username (testutil.Dial leaves it out when empty) and returns the CONNACK
// code.
func rawConnect(addr, user string, password []byte) (byte, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion, cp.CleanSession = "MQTT", 4, true
	cp.ClientIdentifier = "raw-connect"
	cp.UsernameFlag, cp.Username = true, user
	cp.PasswordFlag, cp.Password = password != nil, password
	if err := cp.Write(c); err != nil {
		return 0, err
	}
	pk, err := packets.ReadPacket(bufio.NewReader(c))
	if err != nil {
		return 0, err
	}
	ca, ok := pk.(*packets.ConnackPacket)
	if !ok {
		return 0, fmt.Errorf("got %T", pk)
	}
	return ca.ReturnCode, nil
}
