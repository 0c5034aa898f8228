package listen_test

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker/listen"
	"github.com/mqbench/mqbench/internal/pki"
	"github.com/mqbench/mqbench/internal/testutil"
)

// tlsFixture is one set of certificates for the comparison tests.
type tlsFixture struct {
	dir                           string
	ca, otherCA                   *pki.CA
	caFile, serverCert, serverKey string
	wrongHostCert, wrongHostKey   string
	crl, expiredCRL, otherCRL     string
	clients                       map[string][2]string // name -> cert, key
	revokedSerial                 *big.Int
}

func newTLSFixture(t testing.TB) *tlsFixture {
	t.Helper()
	f := &tlsFixture{dir: t.TempDir(), clients: map[string][2]string{}}
	var err error
	if f.ca, err = pki.NewCA("listen test CA"); err != nil {
		t.Fatal(err)
	}
	if f.otherCA, err = pki.NewCA("some other CA"); err != nil {
		t.Fatal(err)
	}
	f.caFile = writeFile(t, f.dir, "ca.crt", f.ca.CertPEM)
	leaf := func(l *pki.Leaf, err error) *pki.Leaf {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	server := leaf(f.ca.Server([]string{"127.0.0.1", "::1", "localhost"}, time.Time{}, time.Time{}))
	f.serverCert, f.serverKey = f.write(t, "server", server)
	wrong := leaf(f.ca.Server([]string{"other.test"}, time.Time{}, time.Time{}))
	f.wrongHostCert, f.wrongHostKey = f.write(t, "wronghost", wrong)
	f.addClient(t, "good", leaf(f.ca.Client("good", time.Time{}, time.Time{})))
	f.addClient(t, "expired", leaf(f.ca.Client("expired", time.Now().Add(-72*time.Hour), time.Now().Add(-24*time.Hour))))
	f.addClient(t, "wrongca", leaf(f.otherCA.Client("stranger", time.Time{}, time.Time{})))
	revoked := leaf(f.ca.Client("revoked", time.Time{}, time.Time{}))
	f.revokedSerial = revoked.Cert.SerialNumber
	f.addClient(t, "revoked", revoked)

	crl, err := f.ca.Revoke(f.revokedSerial)
	if err != nil {
		t.Fatal(err)
	}
	f.crl = writeFile(t, f.dir, "crl.pem", crl)
	other, err := f.otherCA.Revoke()
	if err != nil {
		t.Fatal(err)
	}
	f.otherCRL = writeFile(t, f.dir, "other-crl.pem", other)
	f.expiredCRL = writeFile(t, f.dir, "expired-crl.pem", expiredCRL(t, f.ca))
	return f
}

func (f *tlsFixture) write(t testing.TB, name string, l *pki.Leaf) (string, string) {
	t.Helper()
	c, k := filepath.Join(f.dir, name+".crt"), filepath.Join(f.dir, name+".key")
	if err := l.WriteFiles(c, k); err != nil {
		t.Fatal(err)
	}
	return c, k
}

func (f *tlsFixture) addClient(t testing.TB, name string, l *pki.Leaf) {
	c, k := f.write(t, "client-"+name, l)
	f.clients[name] = [2]string{c, k}
}

// clientArgs are mosquitto_pub's TLS options for a named client ("none":
// --cafile only).
func (f *tlsFixture) clientArgs(name string) []string {
	args := []string{"--cafile", f.caFile}
	if c, ok := f.clients[name]; ok {
		args = append(args, "--cert", c[0], "--key", c[1])
	}
	return args
}

func expiredCRL(t testing.TB, ca *pki.CA) []byte {
	t.Helper()
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(7), ThisUpdate: now.Add(-72 * time.Hour), NextUpdate: now.Add(-24 * time.Hour),
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

type clientCase struct {
	name string
	args []string
	ok   bool
}

// compareWithMosquitto opens our listener and a real Mosquitto with the same
// listener settings and runs every client case against both: each must
// succeed or fail as expected on both, so a wrong expectation shows up as a
// Mosquitto failure rather than as our "correct" behaviour.
func compareWithMosquitto(t *testing.T, kv []string, cases []clientCase) {
	t.Helper()
	testutil.RequireMosquitto(t)
	ln := openOne(t, lconf(kv...))
	sessions := miniBroker(t, ln)
	m := testutil.StartMosquittoConf(t, t.TempDir(), func(port int) string { return mosqLines(port, kv...) })
	for _, c := range cases {
		ours := pub(ln.String(), c.args...)
		theirs := pub(m.Addr, c.args...)
		if (theirs == nil) != c.ok {
			t.Errorf("%s: real Mosquitto: ok=%v (err %v), want ok=%v", c.name, theirs == nil, theirs, c.ok)
		}
		if (ours == nil) != c.ok {
			t.Errorf("%s: our listener: ok=%v (err %v), want ok=%v", c.name, ours == nil, ours, c.ok)
		}
		s := nextSession(t, sessions)
		if c.ok && (s.handshakeErr != nil || !s.connected) {
			t.Errorf("%s: our listener saw handshake error %v, connected %v", c.name, s.handshakeErr, s.connected)
		}
	}
}

func TestRequireCertificateWithCRLMatchesMosquitto(t *testing.T) {
	f := newTLSFixture(t)
	kv := []string{"cafile", f.caFile, "certfile", f.serverCert, "keyfile", f.serverKey,
		"require_certificate", "true", "crlfile", f.crl}
	compareWithMosquitto(t, kv, []clientCase{
		{"good client", f.clientArgs("good"), true},
		{"expired client certificate", f.clientArgs("expired"), false},
		{"client certificate from another CA", f.clientArgs("wrongca"), false},
		{"no client certificate", f.clientArgs("none"), false},
		{"revoked client certificate", f.clientArgs("revoked"), false},
		{"plain MQTT to a TLS listener", nil, false},
	})
}

func TestRevokedAcceptedWithoutCRL(t *testing.T) {
	f := newTLSFixture(t)
	kv := []string{"cafile", f.caFile, "certfile", f.serverCert, "keyfile", f.serverKey, "require_certificate", "true"}
	compareWithMosquitto(t, kv, []clientCase{
		{"revoked client, no crlfile", f.clientArgs("revoked"), true},
	})
}

func TestCRLEdgesMatchMosquitto(t *testing.T) {
	f := newTLSFixture(t)
	base := []string{"cafile", f.caFile, "certfile", f.serverCert, "keyfile", f.serverKey, "require_certificate", "true"}
	t.Run("expired crl", func(t *testing.T) {
		compareWithMosquitto(t, append(base, "crlfile", f.expiredCRL), []clientCase{{"good client", f.clientArgs("good"), false}})
	})
	t.Run("crl of another issuer only", func(t *testing.T) {
		compareWithMosquitto(t, append(base, "crlfile", f.otherCRL), []clientCase{{"good client", f.clientArgs("good"), false}})
	})
}

func TestServerVerificationMatchesMosquitto(t *testing.T) {
	f := newTLSFixture(t)
	kv := []string{"certfile", f.wrongHostCert, "keyfile", f.wrongHostKey}
	compareWithMosquitto(t, kv, []clientCase{
		{"hostname mismatch", []string{"--cafile", f.caFile}, false},
		{"hostname mismatch, --insecure", []string{"--cafile", f.caFile, "--insecure"}, true},
		{"server certificate from another CA", []string{"--cafile", writeFile(t, f.dir, "other-ca.crt", f.otherCA.CertPEM), "--insecure"}, false},
	})
}

func TestCAPathMatchesMosquitto(t *testing.T) {
	openssl := requireOpenSSL(t)
	f := newTLSFixture(t)
	out, stderr, err := testutil.Run(10*time.Second, nil, openssl, "x509", "-noout", "-hash", "-in", f.caFile)
	if err != nil {
		t.Fatalf("openssl x509 -hash: %v: %s", err, stderr)
	}
	hashed := t.TempDir()
	writeFile(t, hashed, strings.TrimSpace(out)+".0", f.ca.CertPEM)
	unhashed := t.TempDir()
	writeFile(t, unhashed, "ca.pem", f.ca.CertPEM)
	for _, tc := range []struct {
		dir string
		ok  bool
	}{{hashed, true}, {unhashed, false}} {
		kv := []string{"capath", tc.dir, "certfile", f.serverCert, "keyfile", f.serverKey, "require_certificate", "true"}
		compareWithMosquitto(t, kv, []clientCase{{"good client via capath " + filepath.Base(tc.dir), f.clientArgs("good"), tc.ok}})
	}
}

func TestPlainAndTLSSideBySide(t *testing.T) {
	testutil.RequireClients(t)
	f := newTLSFixture(t)
	plain := lconf()
	secure := lconf("certfile", f.serverCert, "keyfile", f.serverKey)
	cfg := confWith(plain, secure)
	lns, warnings, err := listen.OpenAll(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listen.CloseAll(lns) })
	if len(lns) != 2 || len(warnings) != 0 {
		t.Fatalf("got %d listeners, warnings %q", len(lns), warnings)
	}
	if lns[0].TLS() || !lns[1].TLS() || lns[0].Index != 0 || lns[1].Index != 1 {
		t.Fatalf("TLS %v/%v, index %d/%d", lns[0].TLS(), lns[1].TLS(), lns[0].Index, lns[1].Index)
	}
	plainSessions, tlsSessions := miniBroker(t, lns[0]), miniBroker(t, lns[1])
	if err := pub(lns[0].String()); err != nil {
		t.Errorf("plain: %v", err)
	}
	if s := nextSession(t, plainSessions); s.state != nil || !s.connected {
		t.Errorf("plain session: state %v connected %v", s.state, s.connected)
	}
	if err := pub(lns[1].String(), "--cafile", f.caFile); err != nil {
		t.Errorf("tls: %v", err)
	}
	if s := nextSession(t, tlsSessions); s.state == nil || !s.connected || s.state.Version < tls.VersionTLS12 {
		t.Errorf("tls session: state %v connected %v", s.state, s.connected)
	}
	if err := pub(lns[1].String()); err == nil {
		t.Error("plain client on the TLS listener published")
	}
	nextSession(t, tlsSessions)
}

// TestTLSVersionFloor: tls_version is a minimum, and TLS 1.1 fails even
// where Mosquitto's code allows it (OpenSSL 3's security level), which the
// real Mosquitto confirms for the same certificate.
func TestTLSVersionFloor(t *testing.T) {
	testutil.RequireMosquittoBroker(t)
	f := newTLSFixture(t)
	for _, tc := range []struct {
		version string
		client  uint16
		ok      bool
	}{
		{"", tls.VersionTLS11, false},
		{"", tls.VersionTLS12, true},
		{"", tls.VersionTLS13, true},
		{"tlsv1.1", tls.VersionTLS11, false},
		{"tlsv1.2", tls.VersionTLS12, true},
		{"tlsv1.3", tls.VersionTLS12, false},
		{"tlsv1.3", tls.VersionTLS13, true},
	} {
		kv := []string{"certfile", f.serverCert, "keyfile", f.serverKey}
		if tc.version != "" {
			kv = append(kv, "tls_version", tc.version)
		}
		ln := openOne(t, lconf(kv...))
		sessions := miniBroker(t, ln)
		m := testutil.StartMosquittoConf(t, t.TempDir(), func(port int) string { return mosqLines(port, kv...) })
		for _, target := range []struct{ who, addr string }{{"ours", ln.String()}, {"mosquitto", m.Addr}} {
			c, err := tls.Dial("tcp", target.addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tc.client, MaxVersion: tc.client})
			if err == nil {
				c.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("%s: tls_version %q, client TLS %x: err %v, want ok=%v", target.who, tc.version, tc.client, err, tc.ok)
			}
		}
		nextSession(t, sessions)
		m.Kill()
	}
}

func TestServerTLSErrorsNamePlaces(t *testing.T) {
	f := newTLSFixture(t)
	missing := filepath.Join(f.dir, "nope.pem")
	garbage := writeFile(t, f.dir, "garbage.pem", []byte("not pem\n"))
	for _, tc := range []struct {
		kv   []string
		want []string
	}{
		{[]string{"certfile", missing, "keyfile", f.serverKey}, []string{"test.conf:10: certfile", missing}},
		{[]string{"certfile", f.serverCert, "keyfile", missing}, []string{"test.conf:11: keyfile", missing}},
		{[]string{"certfile", f.serverCert, "keyfile", f.clients["good"][1]}, []string{"test.conf:10: certfile", "test.conf:11: keyfile"}},
		{[]string{"certfile", f.serverCert, "keyfile", f.serverKey, "cafile", missing}, []string{"test.conf:12: cafile", missing}},
		{[]string{"certfile", f.serverCert, "keyfile", f.serverKey, "require_certificate", "true", "cafile", garbage}, []string{"test.conf:13: cafile", "no PEM certificate"}},
		{[]string{"certfile", f.serverCert, "keyfile", f.serverKey, "crlfile", garbage}, []string{"test.conf:12: crlfile", "no PEM CRL"}},
		{[]string{"certfile", f.serverCert, "keyfile", f.serverKey, "crlfile", f.caFile}, []string{"test.conf:12: crlfile"}},
		{[]string{"certfile", f.serverCert, "keyfile", f.serverKey, "tls_version", "tlsv1.0"}, []string{"test.conf:12: tls_version tlsv1.0", "unsupported"}},
		{[]string{"certfile", f.serverCert, "keyfile", f.serverKey, "ciphers", "HIGH:!aNULL"}, []string{"test.conf:12: ciphers", `"HIGH"`}},
		{[]string{"certfile", f.serverCert, "keyfile", f.serverKey, "ciphers_tls1.3", "TLS_AES_128_GCM_SHA256"}, []string{"test.conf:12: ciphers_tls1.3", "cannot choose TLS 1.3 suites"}},
		{[]string{"certfile", f.serverCert, "keyfile", f.serverKey, "dhparamfile", missing}, []string{"test.conf:12: dhparamfile", "finite-field DHE"}},
		{[]string{"certfile", f.serverCert, "keyfile", f.serverKey, "tls_engine", "pkcs11"}, []string{"test.conf:12: tls_engine pkcs11", "engines"}},
		{[]string{"certfile", f.serverCert, "keyfile", f.serverKey, "tls_keyform", "engine"}, []string{"test.conf:12: tls_keyform engine", "engines"}},
		{[]string{"psk_hint", "hint"}, []string{"test.conf:10: psk_hint hint: go's crypto/tls has no PSK cipher suites"}},
		{[]string{"protocol", "websockets", "http_dir", f.dir}, []string{"test.conf:11: http_dir", "not implemented"}},
	} {
		_, _, err := listen.Open(lconf(tc.kv...))
		if err == nil {
			t.Errorf("%v: opened", tc.kv)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", tc.kv, err, w)
			}
		}
	}
}

// TestIgnoredLikeMosquitto: settings Mosquitto ignores are warnings, not
// errors (checked against the installed mosquitto by hand: a plain listener
// with tls_version tlsv1.0, ciphers FOO and a missing dhparamfile starts;
// certfile without keyfile gives a plain listener).
func TestIgnoredLikeMosquitto(t *testing.T) {
	f := newTLSFixture(t)
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"tls_version", "tlsv1.0", "ciphers", "FOO", "dhparamfile", "/nonexistent"}, "not TLS"},
		{[]string{"certfile", f.serverCert}, "ignored without keyfile"},
		{[]string{"use_identity_as_username", "true"}, "keeps the CONNECT username"},
		{[]string{"protocol", "websockets", "certfile", f.serverCert, "keyfile", f.serverKey, "crlfile", f.crl}, "revoked client certificates are accepted"},
		{[]string{"protocol", "websockets", "bind_interface", "lo"}, "does not pass it to libwebsockets"},
	} {
		lns, warnings, err := listen.Open(lconf(tc.kv...))
		if err != nil {
			t.Errorf("%v: %v", tc.kv, err)
			continue
		}
		listen.CloseAll(lns)
		if lns[0].TLS() != strings.Contains(tc.want, "revoked") {
			t.Errorf("%v: TLS listener", tc.kv)
		}
		if !strings.Contains(strings.Join(warnings, "\n"), tc.want) {
			t.Errorf("%v: warnings %q lack %q", tc.kv, warnings, tc.want)
		}
	}
}

func TestCipherMapping(t *testing.T) {
	openssl := requireOpenSSL(t)
	for _, name := range listen.CipherNames() {
		out, stderr, err := testutil.Run(10*time.Second, nil, openssl, "ciphers", "-stdname", name)
		if err != nil {
			t.Errorf("openssl ciphers %s: %v %s", name, err, stderr)
			continue
		}
		cfg, err := serverTLSWith(t, "ciphers", name)
		if err != nil || len(cfg.CipherSuites) != 1 {
			t.Errorf("%s: %v", name, err)
			continue
		}
		std := tls.CipherSuiteName(cfg.CipherSuites[0])
		// openssl prints "IANA_NAME - OPENSSL_NAME ..." per suite (the TLS 1.3
		// ones are always listed too).
		found := ""
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[1] == "-" && f[2] == name {
				found = f[0]
			}
		}
		if found != std {
			t.Errorf("%s: go maps it to %s, openssl to %q", name, std, found)
		}
	}
	for _, bad := range []string{"HIGH", "!aNULL", "DEFAULT", "ALL:@STRENGTH", "DHE-RSA-AES128-GCM-SHA256", "RC4-SHA", "DES-CBC3-SHA", "TLS_AES_128_GCM_SHA256", "ECDHE+AESGCM"} {
		if _, err := serverTLSWith(t, "ciphers", bad); err == nil || !strings.Contains(err.Error(), "test.conf:12: ciphers") {
			t.Errorf("ciphers %q: %v, want a refusal naming the place", bad, err)
		}
	}
	if _, err := serverTLSWith(t, "ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384,AES128-SHA"); err != nil {
		t.Errorf("a list: %v", err)
	}
	if _, err := serverTLSWith(t, "ciphers_tls1.3", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"); err != nil {
		t.Errorf("ciphers_tls1.3 equal to go's set: %v", err)
	}
}

// serverTLSWith runs ServerTLS for a TLS listener with one more setting.
func serverTLSWith(t *testing.T, key, value string) (*tls.Config, error) {
	t.Helper()
	f, err := pki.WriteSet(t.TempDir(), []string{"127.0.0.1"}, "c")
	if err != nil {
		t.Fatal(err)
	}
	return listen.ServerTLS(lconf("certfile", f.ServerCert, "keyfile", f.ServerKey, key, value))
}

func TestCipherRestrictionHandshake(t *testing.T) {
	f := newTLSFixture(t)
	ln := openOne(t, lconf("certfile", f.serverCert, "keyfile", f.serverKey, "ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384"))
	sessions := miniBroker(t, ln)
	try := func(suite uint16) error {
		c, err := tls.Dial("tcp", ln.String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
		if err == nil {
			c.Close()
		}
		nextSession(t, sessions)
		return err
	}
	if err := try(tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384); err != nil {
		t.Errorf("listed suite: %v", err)
	}
	if err := try(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err == nil {
		t.Error("unlisted suite negotiated")
	}
}

// TestCertificateRequestLikeMosquitto: the CertificateRequest names no CAs
// at either broker, so a client sends whatever certificate it has.
func TestCertificateRequestLikeMosquitto(t *testing.T) {
	testutil.RequireMosquittoBroker(t)
	f := newTLSFixture(t)
	kv := []string{"cafile", f.caFile, "certfile", f.serverCert, "keyfile", f.serverKey, "require_certificate", "true"}
	ln := openOne(t, lconf(kv...))
	sessions := miniBroker(t, ln)
	m := testutil.StartMosquittoConf(t, t.TempDir(), func(port int) string { return mosqLines(port, kv...) })
	pair, err := tls.LoadX509KeyPair(f.clients["good"][0], f.clients["good"][1])
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []struct{ who, addr string }{{"ours", ln.String()}, {"mosquitto", m.Addr}} {
		asked, cas := false, -1
		c, err := tls.Dial("tcp", target.addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
			GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
				asked, cas = true, len(cri.AcceptableCAs)
				return &pair, nil
			}})
		if err != nil {
			t.Errorf("%s: %v", target.who, err)
			continue
		}
		c.Close()
		if !asked || cas != 0 {
			t.Errorf("%s: certificate requested %v with %d CA names, want 0", target.who, asked, cas)
		}
	}
	nextSession(t, sessions)
}
