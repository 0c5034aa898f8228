package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/pki"
	"github.com/mqbench/mqbench/internal/testutil"
)

func TestWriteSetMosquittoRequireCertificate(t *testing.T) {
	testutil.RequireMosquitto(t)
	dir := t.TempDir()
	f, err := pki.WriteSet(dir, []string{"127.0.0.1", "localhost"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{f.ServerKey, f.ClientKey} {
		st, err := os.Stat(k)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", k, st.Mode().Perm())
		}
	}
	m := testutil.StartMosquittoConf(t, dir, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nuser root\nlog_dest stderr\n"+
			"cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n", port, f.CA, f.ServerCert, f.ServerKey)
	})
	testutil.Pub(t, m.Addr, nil, 10*time.Second, "--cafile", f.CA, "--cert", f.ClientCert, "--key", f.ClientKey, "-t", "pki/test", "-m", "hello")

	// The same listener refuses a client without a certificate.
	_, _, err = testutil.Run(10*time.Second, nil, testutil.LookPath(testutil.MosquittoPubPath),
		"-h", "127.0.0.1", "-p", fmt.Sprint(m.Port), "--cafile", f.CA, "-t", "pki/test", "-m", "x")
	if err == nil {
		t.Error("mosquitto_pub without a client certificate succeeded against require_certificate true")
	}
}

func TestOpenSSLVerify(t *testing.T) {
	openssl := requireOpenSSL(t)
	dir := t.TempDir()
	f, err := pki.WriteSet(dir, []string{"127.0.0.1", "::1", "localhost"}, "bob")
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, err := testutil.Run(10*time.Second, nil, openssl, "verify", "-CAfile", f.CA, f.ServerCert, f.ClientCert)
	if err != nil {
		t.Fatalf("openssl verify: %v: %s%s", err, out, stderr)
	}
	if strings.Count(out, ": OK") != 2 {
		t.Fatalf("openssl verify output %q", out)
	}
}

func TestRevokeAndExpiry(t *testing.T) {
	openssl := requireOpenSSL(t)
	dir := t.TempDir()
	ca, err := pki.NewCA("revoking CA")
	if err != nil {
		t.Fatal(err)
	}
	good, err := ca.Client("good", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := ca.Client("bad", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.Client("old", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ca.Revoke(bad.Cert.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(pemDER(t, crl))
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatalf("crl signature: %v", err)
	}
	caPath := write(t, dir, "ca.crt", ca.CertPEM)
	crlPath := write(t, dir, "crl.pem", crl)
	verify := func(name string, l *pki.Leaf, crlCheck bool) error {
		args := []string{"verify", "-CAfile", caPath}
		if crlCheck {
			args = append(args, "-crl_check", "-CRLfile", crlPath)
		}
		args = append(args, write(t, dir, name+".crt", l.CertPEM))
		out, stderr, err := testutil.Run(10*time.Second, nil, openssl, args...)
		if err != nil {
			return fmt.Errorf("%v: %s%s", err, out, stderr)
		}
		return nil
	}
	if err := verify("good", good, true); err != nil {
		t.Errorf("good certificate with crl: %v", err)
	}
	if err := verify("bad", bad, false); err != nil {
		t.Errorf("revoked certificate without crl check: %v", err)
	}
	if err := verify("bad", bad, true); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked certificate with crl check: %v, want revoked", err)
	}
	if err := verify("old", expired, false); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired certificate: %v, want expired", err)
	}
}

func TestServerSANs(t *testing.T) {
	ca, err := pki.NewCA("san CA")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ca.Server([]string{"127.0.0.1", "::1", "broker.test"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Cert.IPAddresses) != 2 || len(l.Cert.DNSNames) != 1 || l.Cert.DNSNames[0] != "broker.test" {
		t.Fatalf("SANs: ips %v dns %v", l.Cert.IPAddresses, l.Cert.DNSNames)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, host := range []string{"127.0.0.1", "::1", "broker.test"} {
		if _, err := l.Cert.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := l.Cert.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: pool}); err == nil {
		t.Error("verify for other.test succeeded")
	}
	if _, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM); err != nil {
		t.Errorf("key pair: %v", err)
	}
	other, err := ca.Server(nil, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if other.Cert.SerialNumber.Cmp(l.Cert.SerialNumber) == 0 {
		t.Error("two leaves share a serial")
	}
}

func requireOpenSSL(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/openssl", "/usr/local/bin/openssl"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv(testutil.RequireEnv) == "1" {
		t.Fatal("openssl not installed")
	}
	t.Skip("openssl not installed")
	return ""
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemDER(t *testing.T, b []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("no PEM block in %q", b)
	}
	return blk.Bytes
}
