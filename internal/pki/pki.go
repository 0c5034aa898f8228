// Package pki is a throwaway certificate authority for tests and for scenarios
// that ask for generated certificates. Everything is ECDSA P-256 (cheap to
// generate, accepted by Go's TLS stack and by the OpenSSL that real Mosquitto
// and its clients link), serial numbers are random so two runs never collide in
// a CRL, and private keys are written mode 0600 because OpenSSL-based tools
// and reviewers alike treat a world-readable key as a mistake.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a self-signed certificate authority held in memory.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// Leaf is a certificate issued by a CA with its private key.
type Leaf struct {
	CertPEM, KeyPEM []byte
	Cert            *x509.Certificate
}

// Files names what WriteSet wrote.
type Files struct {
	Dir, CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// caValidity is long enough for any test run yet short enough that a stray
// file is useless later; leaves default to a week (see validity).
const (
	caValidity   = 365 * 24 * time.Hour
	leafValidity = 7 * 24 * time.Hour
	// backdate absorbs clock skew between the test and the process verifying.
	backdate = time.Hour
)

// NewCA creates a self-signed CA whose subject is CN=commonName. It may sign
// certificates and CRLs (KeyUsage CertSign|CRLSign), which OpenSSL checks
// before it accepts a CRL for crlfile.
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ca key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	skid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating ca certificate %q: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing ca certificate %q: %w", commonName, err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: pemBlock("CERTIFICATE", der)}, nil
}

// Server issues a TLS server certificate for hosts: entries that parse as IP
// addresses become IP SANs, the rest DNS SANs; the first host is also the
// subject CN, for tools that still print it. Zero notBefore/notAfter default to
// now-1h and now+7 days; a notAfter in the past gives an expired certificate.
func (ca *CA) Server(hosts []string, notBefore, notAfter time.Time) (*Leaf, error) {
	cn := "server"
	if len(hosts) > 0 {
		cn = hosts[0]
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl, notBefore, notAfter)
}

// Client issues a TLS client certificate with subject CN=commonName (what
// use_identity_as_username turns into the username). Zero times default as for
// Server.
func (ca *CA) Client(commonName string, notBefore, notAfter time.Time) (*Leaf, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return ca.issue(tmpl, notBefore, notAfter)
}

// Issue signs an arbitrary template (serial, key and validity are filled in
// like Server and Client do), for tests that need a particular subject such as
// a multi-attribute one for use_subject_as_username.
func (ca *CA) Issue(tmpl *x509.Certificate, notBefore, notAfter time.Time) (*Leaf, error) {
	c := *tmpl
	return ca.issue(&c, notBefore, notAfter)
}

func (ca *CA) issue(tmpl *x509.Certificate, notBefore, notAfter time.Time) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key for %q: %w", tmpl.Subject.CommonName, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	skid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.SubjectKeyId = skid
	tmpl.NotBefore, tmpl.NotAfter = validity(notBefore, notAfter)
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("creating certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key for %q: %w", tmpl.Subject.CommonName, err)
	}
	return &Leaf{CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", keyDER), Cert: cert}, nil
}

// Revoke returns a PEM X.509 v2 CRL signed by the CA listing serials (none is
// a valid, empty CRL). It is current from now-1h to now+7 days: OpenSSL, and
// so Mosquitto's crlfile, rejects every peer when the CRL has expired.
func (ca *CA) Revoke(serials ...*big.Int) ([]byte, error) {
	now := time.Now()
	number, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.RevocationList{
		Number:     number,
		ThisUpdate: now.Add(-backdate),
		NextUpdate: now.Add(leafValidity),
	}
	for _, s := range serials {
		if s == nil {
			return nil, errors.New("revoking a nil serial")
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber:   new(big.Int).Set(s),
			RevocationTime: now.Add(-time.Minute),
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("creating crl of %q: %w", ca.Cert.Subject.CommonName, err)
	}
	return pemBlock("X509 CRL", der), nil
}

// WriteFiles writes the certificate (mode 0644) and key (mode 0600) to the
// two paths.
func (l *Leaf) WriteFiles(certPath, keyPath string) error {
	if err := os.WriteFile(certPath, l.CertPEM, 0o644); err != nil {
		return fmt.Errorf("writing certificate: %w", err)
	}
	if err := writeKey(keyPath, l.KeyPEM); err != nil {
		return err
	}
	return nil
}

// WriteSet creates a fresh CA and writes ca.crt, server.crt/server.key for
// hosts and client.crt/client.key for clientCN into dir (created if needed):
// the files a cafile/certfile/keyfile listener and a mosquitto_pub
// --cafile/--cert/--key client need. The CA key is not kept; use NewCA when a
// CRL or more leaves are needed.
func WriteSet(dir string, hosts []string, clientCN string) (*Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	ca, err := NewCA("mqbench test CA")
	if err != nil {
		return nil, err
	}
	server, err := ca.Server(hosts, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	client, err := ca.Client(clientCN, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	f := &Files{
		Dir:        dir,
		CA:         filepath.Join(dir, "ca.crt"),
		ServerCert: filepath.Join(dir, "server.crt"),
		ServerKey:  filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.crt"),
		ClientKey:  filepath.Join(dir, "client.key"),
	}
	if err := os.WriteFile(f.CA, ca.CertPEM, 0o644); err != nil {
		return nil, fmt.Errorf("writing ca certificate: %w", err)
	}
	if err := server.WriteFiles(f.ServerCert, f.ServerKey); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := client.WriteFiles(f.ClientCert, f.ClientKey); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return f, nil
}

// writeKey writes a private key mode 0600, also when the file already existed
// with a wider mode (os.WriteFile keeps an existing file's mode).
func writeKey(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("restricting key %s: %w", path, err)
	}
	return nil
}

func validity(notBefore, notAfter time.Time) (time.Time, time.Time) {
	now := time.Now()
	if notBefore.IsZero() {
		notBefore = now.Add(-backdate)
	}
	if notAfter.IsZero() {
		notAfter = now.Add(leafValidity)
	}
	return notBefore, notAfter
}

// randomSerial is a positive 127-bit serial (RFC 5280 allows up to 20 octets).
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// keyID is the RFC 5280 method-1 key identifier (SHA-1 of the public key bits).
func keyID(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("decoding public key: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
