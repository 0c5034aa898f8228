package broker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/broker/auth"
	"github.com/mqbench/mqbench/internal/testutil"
)

// reloadable is one broker process for the SIGHUP tests.
type reloadable struct {
	name string
	addr string
	proc *testutil.Proc
}

// hup sends SIGHUP and waits until the broker has logged its n-th "Reloading
// config." line: both brokers log it as the reload starts, and apply the reload
// before they handle anything more from clients.
func (r reloadable) hup(t *testing.T, n int) {
	t.Helper()
	if err := r.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "reload logged", func() bool { return strings.Count(r.proc.Stderr(), "Reloading config.") >= n })
}

// startReloadable starts the bundled broker (the `mqbench broker` process, as
// SIGHUP reaches it) and Mosquitto 2.0.11 with the same lines, logging to
// stderr.
func startReloadable(t *testing.T, lines ...string) []reloadable {
	t.Helper()
	testutil.RequireMosquitto(t)
	bin := testutil.BuildMqbench(t)
	extra := strings.Join(lines, "\n") + "\n"
	b := testutil.StartBundled(t, bin, testutil.WriteFile(t, t.TempDir(), "bundled.conf", "listener 0 127.0.0.1\nlog_dest stderr\n"+extra))
	m := testutil.StartMosquittoConf(t, t.TempDir(), func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nuser root\nlog_dest stderr\n", port) + extra
	})
	return []reloadable{{"bundled", b.Addr, b.Proc}, {"mosquitto", m.Addr, m.Proc}}
}

func writePasswords(t *testing.T, path string, users ...string) {
	t.Helper()
	var sb strings.Builder
	for i := 0; i+1 < len(users); i += 2 {
		h, err := auth.HashPassword(users[i+1])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%s:%s\n", users[i], h)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// login connects id as user with password and returns the client and its
// CONNACK return code.
func login(t *testing.T, addr, id, user, pass string) (*rawClient, byte) {
	t.Helper()
	c := dial(t, addr)
	cp := connectPacket(id, true)
	cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, user, true, []byte(pass)
	c.send(cp)
	ack, ok := c.read().(*packets.ConnackPacket)
	if !ok {
		t.Fatalf("%s: no CONNACK", id)
	}
	return c, ack.ReturnCode
}

// TestReloadSecurity: SIGHUP re-reads the password and ACL files. A connected
// client whose password no longer passes is disconnected; a subscriber loses
// the topics the new ACL no longer lets it read; new connections meet the new
// passwords. A broken ACL file is where the bundled broker parts from
// Mosquitto on purpose: Mosquitto 2.0.11 then runs with no ACL at all (the
// denied topic is delivered), the bundled broker keeps the previous ACL.
func TestReloadSecurity(t *testing.T) {
	dir := t.TempDir()
	pw, acl := filepath.Join(dir, "passwords"), filepath.Join(dir, "acl")
	writePasswords(t, pw, "alice", "a1", "bob", "b1")
	writeACL := func(s string) {
		if err := os.WriteFile(acl, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeACL("user alice\ntopic readwrite a/#\ntopic readwrite shared/#\nuser bob\ntopic readwrite b/#\n")
	for _, b := range startReloadable(t, "allow_anonymous false", "password_file "+pw, "acl_file "+acl) {
		t.Run(b.name, func(t *testing.T) {
			writePasswords(t, pw, "alice", "a1", "bob", "b1")
			writeACL("user alice\ntopic readwrite a/#\ntopic readwrite shared/#\nuser bob\ntopic readwrite b/#\n")
			b.hup(t, 1)
			alice, rc := login(t, b.addr, "alice", "alice", "a1")
			if rc != 0 {
				t.Fatalf("alice refused (%d)", rc)
			}
			alice.subscribe(1, "a/#", 0)
			alice.subscribe(2, "shared/#", 0)
			bob, rc := login(t, b.addr, "bob", "bob", "b1")
			if rc != 0 {
				t.Fatalf("bob refused (%d)", rc)
			}

			writePasswords(t, pw, "alice", "a1", "bob", "b2")
			writeACL("user alice\ntopic readwrite a/#\ntopic write shared/#\nuser bob\ntopic readwrite b/#\n")
			b.hup(t, 2)
			bob.expectClosed()
			if _, rc := login(t, b.addr, "bob-old", "bob", "b1"); rc != packets.ErrRefusedNotAuthorised {
				t.Errorf("old password after reload: CONNACK %d, want 5", rc)
			}
			if _, rc := login(t, b.addr, "bob-new", "bob", "b2"); rc != 0 {
				t.Errorf("new password after reload: CONNACK %d, want 0", rc)
			}
			pub, rc := login(t, b.addr, "alice-pub", "alice", "a1")
			if rc != 0 {
				t.Fatalf("alice-pub refused (%d)", rc)
			}
			pub.publish("shared/x", 0, 0, []byte("revoked"), false)
			pub.publish("a/x", 0, 0, []byte("kept"), false)
			if got, _ := alice.expectPublishes(1); got[0] != "kept" {
				t.Fatalf("alice got %q first, want only the topic she may still read", got[0])
			}

			writeACL("user alice\nbogus line\n")
			b.hup(t, 3)
			pub.publish("shared/x", 0, 0, []byte("after broken acl"), false)
			pub.publish("a/x", 0, 0, []byte("kept 2"), false)
			got, _ := alice.expectPublishes(1)
			want := "kept 2" // the previous ACL stays
			if b.name == "mosquitto" {
				want = "after broken acl" // no ACL at all
			}
			if got[0] != want {
				t.Fatalf("after a reload with a broken acl_file alice got %q first, want %q", got[0], want)
			}
			if log := b.proc.Stderr(); b.name == "bundled" && (!strings.Contains(log, "Error: ") || !strings.Contains(log, acl)) {
				t.Errorf("the broken acl_file was not logged:\n%s", b.proc.Stderr())
			}
		})
	}
}
