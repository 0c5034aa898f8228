package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspLeeway is how far OCSP_check_validity lets a stapled response's times
// be off: Mosquitto's callback passes 300 s (and no maximum age).
const ocspLeeway = 300 * time.Second

// checkStapledOCSP is Mosquitto's mosquitto__verify_ocsp_status_cb for
// bridge_require_ocsp: the remote must staple an OCSP response, signed by its
// certificate's issuer (or a responder the issuer delegated to), saying the
// certificate is good and current; anything else fails the handshake.
func checkStapledOCSP(cs tls.ConnectionState, roots *x509.CertPool, now time.Time) error {
	if len(cs.OCSPResponse) == 0 {
		return errors.New("OCSP: no response stapled")
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("OCSP: no server certificate")
	}
	leaf := cs.PeerCertificates[0]
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), CurrentTime: now}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return fmt.Errorf("OCSP: %w", err)
	}
	issuer := chains[0][0]
	if len(chains[0]) > 1 {
		issuer = chains[0][1]
	}
	r, err := ocsp.ParseResponseForCert(cs.OCSPResponse, leaf, issuer)
	if err != nil {
		return fmt.Errorf("OCSP: invalid response: %w", err)
	}
	if r.Certificate == nil && !slices.ContainsFunc(cs.PeerCertificates[1:], issuer.Equal) {
		// OCSP_basic_verify looks for the signer among the certificates
		// the server sent and those in the response, never in the CA
		// store: a response the issuer signed itself needs the issuer in
		// the server's chain.
		return errors.New("OCSP: signer certificate not found")
	}
	switch r.Status {
	case ocsp.Good:
	case ocsp.Revoked:
		return fmt.Errorf("OCSP: certificate revoked (reason %d)", r.RevocationReason)
	default:
		return errors.New("OCSP: certificate status unknown")
	}
	if r.ThisUpdate.After(now.Add(ocspLeeway)) {
		return errors.New("OCSP: response not yet valid")
	}
	if !r.NextUpdate.IsZero() && (r.NextUpdate.Before(now.Add(-ocspLeeway)) || r.NextUpdate.Before(r.ThisUpdate)) {
		return errors.New("OCSP: response has expired")
	}
	return nil
}
