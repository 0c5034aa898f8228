package listen_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/mqbench/mqbench/broker/listen"
	"github.com/mqbench/mqbench/internal/pki"
	"github.com/mqbench/mqbench/internal/testutil"
)

type tATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// tRDNSET is one RDN (encoding/asn1 writes a type named ...SET as a SET).
type tRDNSET []tATV

var (
	oidCN     = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidC      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidL      = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidST     = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidO      = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU     = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidSerial = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidTitle  = asn1.ObjectIdentifier{2, 5, 4, 12}
	oidSN     = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidGN     = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidStreet = asn1.ObjectIdentifier{2, 5, 4, 9}
	oidEmail  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDC     = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidUID    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	oidOther  = asn1.ObjectIdentifier{1, 2, 3, 4}
)

func utf8v(s string) asn1.RawValue { return asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(s)} }
func printable(s string) asn1.RawValue {
	return asn1.RawValue{Tag: asn1.TagPrintableString, Bytes: []byte(s)}
}
func ia5(s string) asn1.RawValue { return asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(s)} }
func bmp(s string) asn1.RawValue {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return asn1.RawValue{Tag: asn1.TagBMPString, Bytes: b}
}

func rdn(t asn1.ObjectIdentifier, v asn1.RawValue) tRDNSET { return tRDNSET{{t, v}} }

// subjects are the names compared with openssl and Mosquitto.
var subjects = map[string][]tRDNSET{
	"simple": {rdn(oidCN, utf8v("alice"))},
	"full": {rdn(oidC, printable("GB")), rdn(oidST, utf8v("Some State")), rdn(oidL, utf8v("Town")),
		rdn(oidO, utf8v("Org, Inc.")), rdn(oidOU, utf8v("Unit+Dev")), rdn(oidCN, utf8v("bob")), rdn(oidEmail, ia5("bob@example.com"))},
	"escapes": {rdn(oidCN, utf8v(` #lead`)), rdn(oidO, utf8v(`#hash`)), rdn(oidOU, utf8v(`trail `)),
		rdn(oidL, utf8v(`a,b+c"d\e<f>g;h=i/j`)), rdn(oidST, utf8v("ctl\x01\x1fdel\x7f"))},
	"unicode":      {rdn(oidO, utf8v("Société")), rdn(oidCN, utf8v("日本 user"))},
	"multivalued":  {rdn(oidDC, ia5("org")), rdn(oidDC, ia5("example")), {{oidCN, utf8v("carol")}, {oidUID, utf8v("c42")}}},
	"string types": {rdn(oidCN, bmp("bmp é")), rdn(oidO, asn1.RawValue{Tag: asn1.TagT61String, Bytes: []byte("t61 \xe9")})},
	"unknown oid":  {rdn(oidOther, utf8v("foo")), rdn(oidCN, utf8v("dave"))},
	"more types": {rdn(oidSerial, printable("1234")), rdn(oidTitle, utf8v("Dr")), rdn(oidSN, utf8v("Smith")),
		rdn(oidGN, utf8v("Jo")), rdn(oidStreet, utf8v("1 Road")), rdn(oidCN, utf8v("eve"))},
	"two cns":   {rdn(oidCN, utf8v("first")), rdn(oidCN, utf8v("second"))},
	"nul in cn": {rdn(oidCN, utf8v("bad\x00name"))},
	"no cn":     {rdn(oidO, utf8v("nobody"))},
}

// issueSubject signs a client certificate with exactly this subject.
func issueSubject(t *testing.T, ca *pki.CA, name []tRDNSET) *pki.Leaf {
	t.Helper()
	raw, err := asn1.Marshal(name)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ca.Issue(&x509.Certificate{RawSubject: raw, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSubjectRFC2253MatchesOpenSSL(t *testing.T) {
	openssl := requireOpenSSL(t)
	ca, err := pki.NewCA("subject CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, subj := range subjects {
		l := issueSubject(t, ca, subj)
		path := writeFile(t, dir, strings.ReplaceAll(name, " ", "_")+".crt", l.CertPEM)
		out, stderr, err := testutil.Run(10*time.Second, nil, openssl, "x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", path)
		if err != nil {
			t.Fatalf("openssl: %v: %s", err, stderr)
		}
		want := strings.TrimPrefix(strings.TrimRight(out, "\n"), "subject=")
		got, err := listen.SubjectRFC2253(l.Cert.RawSubject)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got != want {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
}

// TestIdentityMatchesMosquitto connects with certificates of each subject to
// the real Mosquitto and to our listener, with use_identity_as_username and
// with use_subject_as_username, and compares the username Mosquitto logs
// ("New client connected ... u'NAME'") or its refusal with Identity's.
func TestIdentityMatchesMosquitto(t *testing.T) {
	testutil.RequireMosquitto(t)
	dir := t.TempDir()
	ca, err := pki.NewCA("identity CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := writeFile(t, dir, "ca.crt", ca.CertPEM)
	server, err := ca.Server([]string{"127.0.0.1"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sc, sk := filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key")
	if err := server.WriteFiles(sc, sk); err != nil {
		t.Fatal(err)
	}
	clients := map[string][2]string{}
	for name, subj := range subjects {
		c, k := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".crt"), filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".key")
		if err := issueSubject(t, ca, subj).WriteFiles(c, k); err != nil {
			t.Fatal(err)
		}
		clients[name] = [2]string{c, k}
	}
	for _, opt := range []string{"use_identity_as_username", "use_subject_as_username"} {
		kv := []string{"cafile", caFile, "certfile", sc, "keyfile", sk, "require_certificate", "true", opt, "true"}
		ln := openOne(t, lconf(kv...))
		if !listen.CertificateUsername(ln.Conf) {
			t.Fatalf("%s: CertificateUsername false", opt)
		}
		sessions := miniBroker(t, ln)
		m := testutil.StartMosquittoConf(t, t.TempDir(), func(port int) string { return mosqLines(port, kv...) })
		for name, files := range clients {
			args := []string{"--cafile", caFile, "--cert", files[0], "--key", files[1], "-u", "connect-user", "-i", "id-" + strings.ReplaceAll(name, " ", "-")}
			theirErr := pub(m.Addr, args...)
			theirName, theirOK := "", theirErr == nil
			if theirOK {
				line, err := m.WaitStderrLine("as id-"+strings.ReplaceAll(name, " ", "-")+" ", 5*time.Second)
				if err != nil {
					t.Fatalf("%s %s: no connect line: %v", opt, name, err)
				}
				i, j := strings.Index(line, "u'"), strings.LastIndex(line, "').")
				if i < 0 || j < i {
					t.Fatalf("%s %s: connect line %q has no username", opt, name, line)
				}
				theirName = line[i+2 : j]
			}
			ourErr := pub(ln.String(), args...)
			s := nextSession(t, sessions)
			if (ourErr == nil) != theirOK || s.identityOK != theirOK {
				t.Errorf("%s %s: ours ok=%v (%v, identity %v), mosquitto ok=%v (%v)", opt, name, ourErr == nil, ourErr, s.identityOK, theirOK, theirErr)
				continue
			}
			if s.username != theirName {
				t.Errorf("%s %s: username %q, mosquitto %q", opt, name, s.username, theirName)
			}
		}
	}
}

func TestIdentityNotApplicable(t *testing.T) {
	f, err := pki.WriteSet(t.TempDir(), []string{"127.0.0.1"}, "c")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		kv   []string
		want bool
	}{
		{[]string{"use_identity_as_username", "true"}, false},
		{[]string{"certfile", f.ServerCert, "keyfile", f.ServerKey}, false},
		{[]string{"certfile", f.ServerCert, "keyfile", f.ServerKey, "use_subject_as_username", "true"}, true},
		{[]string{"protocol", "websockets", "certfile", f.ServerCert, "keyfile", f.ServerKey, "use_identity_as_username", "true"}, false},
	} {
		if got := listen.CertificateUsername(lconf(l.kv...)); got != l.want {
			t.Errorf("%v: %v", l.kv, got)
		}
	}
	// No peer certificate: refused.
	if _, ok := listen.Identity(tls.ConnectionState{}, lconf("certfile", f.ServerCert, "keyfile", f.ServerKey, "use_identity_as_username", "true")); ok {
		t.Error("identity without a certificate")
	}
}
