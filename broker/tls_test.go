package broker_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/pki"
	"github.com/mqbench/mqbench/internal/testutil"
)

// TLS listeners of the bundled broker, reached with the real mosquitto_pub and
// mosquitto_sub, side by side with Mosquitto 2.0.11 on the same certificate
// files: what one accepts or refuses, the other must too.

// tlsFiles is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate (CN alice), a CA nobody signed with, and a second set
// whose server certificate names another host.
type tlsFiles struct {
	*pki.Files
	OtherCA                                  string
	WrongHostCA, WrongHostCert, WrongHostKey string
}

func makeTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	f, err := pki.WriteSet(dir, []string{"127.0.0.1", "::1", "localhost"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	out := tlsFiles{Files: f}
	other, err := pki.NewCA("other-ca")
	if err != nil {
		t.Fatal(err)
	}
	out.OtherCA = filepath.Join(dir, "other-ca.crt")
	if err := os.WriteFile(out.OtherCA, other.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	set2, err := pki.WriteSet(filepath.Join(dir, "set2"), []string{"mqtt.example.invalid"}, "bob")
	if err != nil {
		t.Fatal(err)
	}
	out.WrongHostCA, out.WrongHostCert, out.WrongHostKey = set2.CA, set2.ServerCert, set2.ServerKey
	return out
}

// tlsBrokers starts both brokers with one TLS listener on loopback and the
// given options after its certfile/keyfile lines.
func tlsBrokers(t *testing.T, cert, key, ca string, lines ...string) []secured {
	t.Helper()
	all := append([]string{"cafile " + ca, "certfile " + cert, "keyfile " + key}, lines...)
	return startSecured(t, all...)
}

// tlsConnects runs mosquitto_pub over TLS with args.
func tlsConnects(t *testing.T, addr string, args ...string) (bool, string) {
	t.Helper()
	h, p, _ := net.SplitHostPort(addr)
	all := append([]string{"-h", h, "-p", p, "-t", "probe", "-m", "x", "-q", "1"}, args...)
	_, stderr, err := testutil.Run(15*time.Second, nil, testutil.LookPath(testutil.MosquittoPubPath), all...)
	return err == nil, stderr
}

func TestTLSClientsLikeMosquitto(t *testing.T) {
	f := makeTLSFiles(t)
	for _, b := range tlsBrokers(t, f.ServerCert, f.ServerKey, f.CA, "require_certificate true", "allow_anonymous true") {
		for _, tc := range []struct {
			name string
			args []string
			ok   bool
		}{
			{"right CA and client certificate", []string{"--cafile", f.CA, "--cert", f.ClientCert, "--key", f.ClientKey}, true},
			{"wrong CA", []string{"--cafile", f.OtherCA, "--cert", f.ClientCert, "--key", f.ClientKey}, false},
			{"no client certificate though required", []string{"--cafile", f.CA}, false},
			{"plain MQTT to a TLS listener", nil, false},
		} {
			ok, stderr := tlsConnects(t, b.addr, tc.args...)
			if ok != tc.ok {
				t.Errorf("%s: %s: connected %v, want %v (%s)", b.name, tc.name, ok, tc.ok, strings.TrimSpace(stderr))
			}
		}
	}
}

func TestTLSHostnameMismatchRefused(t *testing.T) {
	f := makeTLSFiles(t)
	set2CA := f.WrongHostCA
	for _, b := range tlsBrokers(t, f.WrongHostCert, f.WrongHostKey, set2CA, "allow_anonymous true") {
		if ok, stderr := tlsConnects(t, b.addr, "--cafile", set2CA); ok {
			t.Errorf("%s: a certificate for mqtt.example.invalid was accepted for 127.0.0.1 (%s)", b.name, stderr)
		}
		if ok, stderr := tlsConnects(t, b.addr, "--cafile", set2CA, "--insecure"); !ok {
			t.Errorf("%s: --insecure should skip the host name check: %s", b.name, stderr)
		}
	}
}

func TestTLSExpiredClientCertificateRefused(t *testing.T) {
	ca, err := pki.NewCA("expiry-ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caPath := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caPath, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server([]string{"127.0.0.1"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	old, err := ca.Client("carol", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	good, err := ca.Client("dave", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sc, sk := filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key")
	oc, ok := filepath.Join(dir, "old.crt"), filepath.Join(dir, "old.key")
	gc, gk := filepath.Join(dir, "good.crt"), filepath.Join(dir, "good.key")
	for _, w := range []struct {
		l    *pki.Leaf
		c, k string
	}{{srv, sc, sk}, {old, oc, ok}, {good, gc, gk}} {
		if err := w.l.WriteFiles(w.c, w.k); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range tlsBrokers(t, sc, sk, caPath, "require_certificate true", "allow_anonymous true") {
		if yes, stderr := tlsConnects(t, b.addr, "--cafile", caPath, "--cert", oc, "--key", ok); yes {
			t.Errorf("%s: an expired client certificate was accepted (%s)", b.name, stderr)
		}
		if yes, stderr := tlsConnects(t, b.addr, "--cafile", caPath, "--cert", gc, "--key", gk); !yes {
			t.Errorf("%s: a valid client certificate was refused: %s", b.name, stderr)
		}
	}
}

// TestTLSIdentityAsUsernameWithACL: the certificate's CN is the username the
// ACL sees; CONNECT's own username is ignored.
func TestTLSIdentityAsUsernameWithACL(t *testing.T) {
	f := makeTLSFiles(t)
	acl := testutil.WriteFile(t, t.TempDir(), "acl", "user alice\ntopic readwrite alice/#\n")
	for _, b := range tlsBrokers(t, f.ServerCert, f.ServerKey, f.CA, "require_certificate true",
		"use_identity_as_username true", "allow_anonymous false", "acl_file "+acl) {
		creds := []string{"--cafile", f.CA, "--cert", f.ClientCert, "--key", f.ClientKey}
		sub := testutil.StartSub(t, b.addr, append([]string{"-t", "#", "-q", "1"}, creds...)...)
		testutil.Pub(t, b.addr, nil, 10*time.Second, append([]string{"-t", "other/x", "-m", "no", "-q", "1", "-u", "mallory"}, creds...)...)
		testutil.Pub(t, b.addr, nil, 10*time.Second, append([]string{"-t", "alice/x", "-m", "yes", "-q", "1"}, creds...)...)
		msgs, err := sub.WaitTopic("alice/x", 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		if len(msgs) != 1 {
			t.Errorf("%s: got %+v, want only alice/x (the CN alice may not write other/x)", b.name, msgs)
		}
	}
}

// TestPlainAndTLSSideBySide: one broker, a plain and a TLS listener; each
// speaks its own protocol only.
func TestPlainAndTLSSideBySide(t *testing.T) {
	f := makeTLSFiles(t)
	bin := testutil.BuildMqbench(t)
	conf := testutil.WriteFile(t, t.TempDir(), "two.conf", fmt.Sprintf(
		"listener 0 127.0.0.1\nallow_anonymous true\nlog_dest none\nlistener 0 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n",
		f.CA, f.ServerCert, f.ServerKey))
	b := testutil.StartBundled(t, bin, conf)
	testutil.WaitFor(t, "two listening lines", func() bool { return strings.Count(b.Stdout(), "listening on") >= 2 })
	var plain, secure string
	for _, line := range strings.Split(b.Stdout(), "\n") {
		i := strings.Index(line, "listening on ")
		if i < 0 {
			continue
		}
		addr := strings.Fields(line[i+len("listening on "):])[0]
		if strings.Contains(line, "tls") {
			secure = addr
		} else {
			plain = addr
		}
	}
	if plain == "" || secure == "" {
		t.Fatalf("want a plain and a tls listener:\n%s", b.Stdout())
	}
	if ok, stderr := connects(t, plain); !ok {
		t.Errorf("plain listener: %s", stderr)
	}
	if ok, stderr := tlsConnects(t, secure, "--cafile", f.CA); !ok {
		t.Errorf("tls listener: %s", stderr)
	}
	if ok, _ := tlsConnects(t, plain, "--cafile", f.CA); ok {
		t.Error("TLS client accepted by the plain listener")
	}
}
