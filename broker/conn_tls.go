package broker

import (
	"crypto/tls"
	"strings"
)

// tlsConn is what a TLS connection (plain mqtts, or a websocket over TLS)
// offers to read the client's certificate after the handshake.
type tlsConn interface {
	ConnectionState() tls.ConnectionState
}

// certUsername is the username use_identity_as_username (the certificate's
// common name) or use_subject_as_username (its whole subject) gives a client,
// as Mosquitto's handle_connect derives it; false when the client sent no
// certificate or it has no usable name, which Mosquitto answers with CONNACK 4.
func (c *conn) certUsername() (string, bool) {
	tc, ok := c.nc.(tlsConn)
	if !ok || c.lis.cfg == nil {
		return "", false
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return "", false
	}
	cert := st.PeerCertificates[0]
	if c.lis.cfg.UseIdentityAsUsername {
		cn := cert.Subject.CommonName
		if cn == "" || strings.IndexByte(cn, 0) >= 0 {
			return "", false
		}
		return cn, true
	}
	return cert.Subject.String(), true
}
