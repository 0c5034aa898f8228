package listen

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
)

// tlsVersions maps tls_version to the lowest version a client may use.
//
// Mosquitto 2.0.11 (net__tls_server_ctx) turns tls_version into OpenSSL
// SSL_OP_NO_* options: unset and "tlsv1.1" forbid SSLv3 and TLS 1.0 only,
// "tlsv1.2" also TLS 1.1, "tlsv1.3" everything below 1.3; the maximum is
// always the library's (1.3). So tls_version is a minimum, not an exact
// version. The Debian/Ubuntu build links OpenSSL 3, whose default security
// level 1 rejects TLS 1.1's SHA-1/MD5 handshake signatures ("no suitable
// signature algorithm", checked against the installed mosquitto with
// `openssl s_client -tls1_1`), so in practice TLS 1.2 is the floor for unset
// and "tlsv1.1" too, and that is what is reproduced.
var tlsVersions = map[string]uint16{
	"":        tls.VersionTLS12,
	"tlsv1.1": tls.VersionTLS12,
	"tlsv1.2": tls.VersionTLS12,
	"tlsv1.3": tls.VersionTLS13,
}

// opensslSuites maps the OpenSSL names accepted in `ciphers` to the Go
// suites they are. Only suites both sides have: the OpenSSL 3 Mosquitto
// links has no RC4 or 3DES suites (`openssl ciphers DES-CBC3-SHA` finds no
// match, so Mosquitto would refuse such a list), Go has no DHE, PSK, SRP,
// CCM, ARIA, Camellia or SEED suites. TestCipherMapping checks every row
// against `openssl ciphers -stdname`. TLS 1.3 suites are not in `ciphers` (see
// ciphers_tls1.3).
var opensslSuites = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA256":     tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-RSA-AES128-SHA256":       tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA256":                 tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// goTLS13 is the TLS 1.3 suite set Go always offers; it cannot be changed.
var goTLS13 = []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}

// CipherNames is the OpenSSL-name-to-Go table `ciphers` accepts, sorted by
// name, for documentation and start-up reports.
func CipherNames() []string {
	out := make([]string, 0, len(opensslSuites))
	for n := range opensslSuites {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// cipherSuites parses an OpenSSL cipher list. OpenSSL separates entries with
// ':', ',', ' ' or ';' and silently skips names it does not know as long as
// one matches; here every entry must be a suite name from opensslSuites,
// because anything else (keywords such as HIGH or DEFAULT, operators such
// as !aNULL or @STRENGTH, DHE suites) selects a set Go cannot reproduce.
// Go orders the suites itself, so the list's order (Mosquitto sets
// SSL_OP_CIPHER_SERVER_PREFERENCE) is not honoured.
func cipherSuites(list string) ([]uint16, error) {
	names := strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' || r == ';' })
	if len(names) == 0 {
		return nil, errors.New("empty cipher list")
	}
	var ids []uint16
	seen := map[uint16]bool{}
	for _, n := range names {
		id, ok := opensslSuites[n]
		if !ok {
			switch {
			case strings.HasPrefix(n, "TLS_"):
				return nil, fmt.Errorf("%q is a TLS 1.3 suite: those belong in ciphers_tls1.3", n)
			case strings.ContainsAny(n, "!+@=") || !strings.Contains(n, "-"):
				return nil, fmt.Errorf("%q is an OpenSSL cipher keyword or operator, which go's crypto/tls cannot reproduce; list suite names (e.g. ECDHE-ECDSA-AES128-GCM-SHA256)", n)
			}
			return nil, fmt.Errorf("cipher %q is not one go's crypto/tls implements", n)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// checkTLS13 accepts a ciphers_tls1.3 list only when it names exactly Go's
// fixed TLS 1.3 suites (in any order): Go offers no way to restrict them.
func checkTLS13(list string) error {
	names := strings.Split(list, ":")
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	want := map[string]bool{}
	for _, n := range goTLS13 {
		want[n] = true
	}
	same := len(set) == len(want)
	for n := range set {
		same = same && want[n]
	}
	if !same {
		return fmt.Errorf("go's crypto/tls cannot choose TLS 1.3 suites; it always uses %s", strings.Join(goTLS13, ":"))
	}
	return nil
}

// ServerTLS builds the listener's TLS configuration, or returns nil for a
// plain listener. Like Mosquitto 2.0.11, TLS is on only when both certfile
// and keyfile are set (net__socket_listen); cafile and capath are optional,
// even with require_certificate (then no client certificate verifies, as in
// Mosquitto). The checks follow net__tls_server_ctx, net__tls_load_verify
// and net__load_certificates:
//
//   - certfile is a PEM chain, keyfile its PEM key; unreadable, unparsable
//     or mismatched files are errors naming the key's FILE:LINE and path;
//   - cafile must hold at least one certificate; capath is read the way
//     OpenSSL's hashed directory lookup reads it: only files named
//     HASH.N (8 hex digits, a dot, a number; made by `openssl rehash` or
//     c_rehash). OpenSSL 3 accepts a capath that does not exist (the
//     installed mosquitto starts with one), so that is not an error;
//   - require_certificate asks for and verifies a client certificate
//     (SSL_VERIFY_PEER|SSL_VERIFY_FAIL_IF_NO_PEER_CERT) against cafile and
//     capath, for client authentication (OpenSSL's "ssl_client" purpose);
//     without it none is requested (SSL_VERIFY_NONE), whatever cafile says;
//   - crlfile must hold at least one parsable PEM CRL; peers are then checked
//     against it as X509_V_FLAG_CRL_CHECK does (the leaf only, see crlCheck);
//   - tls_version, ciphers and ciphers_tls1.3 as described at tlsVersions,
//     cipherSuites and checkTLS13; dhparamfile, psk_hint, tls_engine and
//     tls_keyform engine are refused (see Check).
//
// Websockets listeners get what Mosquitto gives libwebsockets: cafile,
// certfile, keyfile, ciphers, ciphers_tls1.3 and require_certificate; capath,
// crlfile and tls_version are ignored there (reported by Check).
func ServerTLS(l conf.Listener) (*tls.Config, error) {
	if err := refusals(l); err != nil {
		return nil, err
	}
	if !isTLS(l) {
		return nil, nil
	}
	pair, err := loadKeyPair(l)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tlsVersions[""],
		MaxVersion:   tls.VersionTLS13,
	}
	if !isWS(l) {
		cfg.MinVersion = tlsVersions[l.TLSVersion]
	}
	if l.Ciphers != "" {
		if cfg.CipherSuites, err = cipherSuites(l.Ciphers); err != nil {
			return nil, fmt.Errorf("%s: %w", placeOf(l, "ciphers"), err)
		}
	}
	// Mosquitto loads cafile, capath and crlfile whether or not it asks for
	// client certificates, so their errors stop the start either way.
	store := &caStore{pool: x509.NewCertPool()}
	if l.CAFile != "" {
		if err := loadCAFile(store, l); err != nil {
			return nil, err
		}
	}
	if l.CAPath != "" && !isWS(l) {
		if err := loadCAPath(store, l); err != nil {
			return nil, err
		}
	}
	pool := store.pool
	cfg.Certificates[0] = autoChain(pair, store.certs)
	var crls []*x509.RevocationList
	if l.CRLFile != "" && !isWS(l) {
		if crls, err = loadCRLs(l); err != nil {
			return nil, err
		}
	}
	if !l.RequireCertificate {
		cfg.ClientAuth = tls.NoClientCert
		return cfg, nil
	}
	// Verification is done here rather than by RequireAndVerifyClientCert,
	// because that would list the CA names in the CertificateRequest, which
	// Mosquitto never does (it sets no client CA list): Go clients would
	// then withhold a certificate from another CA instead of sending it.
	// VerifyConnection also runs on resumed sessions, so a CRL still bites.
	cfg.ClientAuth = tls.RequireAnyClientCert
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return verifyClient(cs.PeerCertificates, pool, crls, time.Now())
	}
	return cfg, nil
}

func loadKeyPair(l conf.Listener) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(l.CertFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: unable to load server certificate %q: %w", placeOf(l, "certfile"), l.CertFile, err)
	}
	keyPEM, err := os.ReadFile(l.KeyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: unable to load server key file %q: %w", placeOf(l, "keyfile"), l.KeyFile, err)
	}
	if blk, _ := pem.Decode(certPEM); blk == nil || blk.Type != "CERTIFICATE" {
		return tls.Certificate{}, fmt.Errorf("%s: unable to load server certificate %q: no PEM certificate", placeOf(l, "certfile"), l.CertFile)
	}
	if blk, _ := pem.Decode(keyPEM); blk == nil || !strings.HasSuffix(blk.Type, "PRIVATE KEY") {
		return tls.Certificate{}, fmt.Errorf("%s: unable to load server key file %q: no PEM private key", placeOf(l, "keyfile"), l.KeyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s, %s: server certificate %q and key %q: %w",
			placeOf(l, "certfile"), placeOf(l, "keyfile"), l.CertFile, l.KeyFile, err)
	}
	return pair, nil
}

// loadCAFile adds every PEM certificate in cafile; none is an error, as
// OpenSSL's load_verify_file fails on a file without certificates.
func loadCAFile(pool *caStore, l conf.Listener) error {
	data, err := os.ReadFile(l.CAFile)
	if err != nil {
		return fmt.Errorf("%s: unable to load CA certificates from %q: %w", placeOf(l, "cafile"), l.CAFile, err)
	}
	n, err := addPEMCerts(pool, data)
	if err != nil {
		return fmt.Errorf("%s: unable to load CA certificates from %q: %w", placeOf(l, "cafile"), l.CAFile, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: unable to load CA certificates from %q: no PEM certificate in it", placeOf(l, "cafile"), l.CAFile)
	}
	return nil
}

// hashName is an OpenSSL hashed-directory certificate name (CRLs are HASH.rN).
var hashName = regexp.MustCompile(`^[0-9a-f]{8}\.[0-9]+$`)

// loadCAPath adds the certificates of capath's HASH.N files. OpenSSL reads
// them lazily at verification time; they are read once here, at start.
func loadCAPath(pool *caStore, l conf.Listener) error {
	entries, err := os.ReadDir(l.CAPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil // OpenSSL 3's SSL_CTX_load_verify_dir accepts it too
	}
	if err != nil {
		return fmt.Errorf("%s: unable to load CA certificates from %q: %w", placeOf(l, "capath"), l.CAPath, err)
	}
	for _, e := range entries {
		if !hashName.MatchString(e.Name()) {
			continue
		}
		p := filepath.Join(l.CAPath, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			continue // OpenSSL skips what it cannot open
		}
		if _, err := addPEMCerts(pool, data); err != nil {
			return fmt.Errorf("%s: CA certificate %q: %w", placeOf(l, "capath"), p, err)
		}
	}
	return nil
}

// caStore is the verify store cafile and capath make: the pool client
// certificates are verified against, and the same certificates in load order
// for building the server's chain (autoChain).
type caStore struct {
	pool  *x509.CertPool
	certs []*x509.Certificate
}

// maxAutoChain bounds the chain autoChain builds (OpenSSL's default verify
// depth is 100; real chains are a handful of certificates).
const maxAutoChain = 10

// autoChain is OpenSSL's automatic chain building (ssl_add_cert_chain without
// SSL_MODE_NO_AUTO_CHAIN): when certfile holds only the server certificate,
// Mosquitto's TLS handshake still sends the issuers it finds in the verify
// store (cafile, capath), up to the root, as far as they can be found and
// whether or not they are currently valid. Clients that trust only the root
// then verify a server certificate signed by an intermediate in cafile, as
// they do against Mosquitto. A certfile that has its own chain is sent as is.
func autoChain(pair tls.Certificate, cas []*x509.Certificate) tls.Certificate {
	if len(pair.Certificate) != 1 || len(cas) == 0 {
		return pair
	}
	cur, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return pair
	}
	out := pair
	out.Certificate = [][]byte{pair.Certificate[0]}
	for len(out.Certificate) < maxAutoChain {
		if bytes.Equal(cur.RawIssuer, cur.RawSubject) && cur.CheckSignatureFrom(cur) == nil {
			break // self-signed: the root is already in the chain
		}
		var issuer *x509.Certificate
		for _, c := range cas {
			if bytes.Equal(c.RawSubject, cur.RawIssuer) && cur.CheckSignatureFrom(c) == nil {
				issuer = c
				break
			}
		}
		if issuer == nil || bytes.Equal(issuer.Raw, cur.Raw) {
			break
		}
		out.Certificate = append(out.Certificate, issuer.Raw)
		cur = issuer
	}
	return out
}

func addPEMCerts(store *caStore, data []byte) (int, error) {
	n := 0
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return n, nil
		}
		if blk.Type != "CERTIFICATE" && blk.Type != "TRUSTED CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return n, err
		}
		store.pool.AddCert(c)
		store.certs = append(store.certs, c)
		n++
	}
}

// loadCRLs reads every PEM "X509 CRL" block of crlfile (X509_load_crl_file
// reads all of them; a file with none, or an unparsable one, stops
// Mosquitto from starting).
func loadCRLs(l conf.Listener) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(l.CRLFile)
	if err != nil {
		return nil, fmt.Errorf("%s: unable to load certificate revocation file %q: %w", placeOf(l, "crlfile"), l.CRLFile, err)
	}
	var out []*x509.RevocationList
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		if blk.Type != "X509 CRL" {
			continue
		}
		rl, err := x509.ParseRevocationList(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: unable to load certificate revocation file %q: %w", placeOf(l, "crlfile"), l.CRLFile, err)
		}
		out = append(out, rl)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: unable to load certificate revocation file %q: no PEM CRL in it", placeOf(l, "crlfile"), l.CRLFile)
	}
	return out, nil
}

// verifyClient checks a client's chain against the CA pool and, with a
// crlfile, the CRLs.
func verifyClient(certs []*x509.Certificate, pool *x509.CertPool, crls []*x509.RevocationList, now time.Time) error {
	if len(certs) == 0 {
		return errors.New("no client certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	if crls == nil {
		return nil
	}
	return crlCheck(chains[0], crls, now)
}

// crlCheck is OpenSSL's X509_V_FLAG_CRL_CHECK (what Mosquitto sets): the
// leaf of the verified chain must be covered by a CRL from its issuer that
// is signed by that issuer and current, and must not be listed in it.
// OpenSSL's verify errors are used as messages. Intermediates are not checked
// (that would be X509_V_FLAG_CRL_CHECK_ALL).
func crlCheck(chain []*x509.Certificate, crls []*x509.RevocationList, now time.Time) error {
	leaf := chain[0]
	issuer := leaf
	if len(chain) > 1 {
		issuer = chain[1]
	}
	var signed []*x509.RevocationList
	for _, rl := range crls {
		if !bytes.Equal(rl.RawIssuer, leaf.RawIssuer) {
			continue
		}
		if rl.CheckSignatureFrom(issuer) == nil {
			signed = append(signed, rl)
		}
	}
	if len(signed) == 0 {
		for _, rl := range crls {
			if bytes.Equal(rl.RawIssuer, leaf.RawIssuer) {
				return errors.New("crl check: CRL signature failure")
			}
		}
		return errors.New("crl check: unable to get certificate CRL")
	}
	var current *x509.RevocationList
	var timeErr error
	for _, rl := range signed {
		switch {
		case now.Before(rl.ThisUpdate):
			timeErr = errors.New("crl check: CRL is not yet valid")
		case !rl.NextUpdate.IsZero() && now.After(rl.NextUpdate):
			timeErr = errors.New("crl check: CRL has expired")
		default:
			current = rl
		}
		if current != nil {
			break
		}
	}
	if current == nil {
		return timeErr
	}
	for _, e := range current.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return errors.New("crl check: certificate revoked")
		}
	}
	return nil
}
