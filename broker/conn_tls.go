package broker

import "github.com/mqbench/mqbench/broker/listen"

// certUsername is the username use_identity_as_username (the certificate's
// common name) or use_subject_as_username (its whole subject) gives a client,
// as Mosquitto's handle_connect derives it (listen.Identity); false when the
// client sent no usable certificate, which Mosquitto answers with CONNACK 4.
func (c *conn) certUsername() (string, bool) {
	if c.tlsState == nil || c.lis.cfg == nil {
		return "", false
	}
	return listen.Identity(*c.tlsState, *c.lis.cfg)
}

// certAuth reports whether this connection's username comes from its
// certificate rather than its CONNECT.
func (c *conn) certAuth() bool {
	return c.lis.cfg != nil && listen.CertificateUsername(*c.lis.cfg)
}

// tlsHandshakeTimeout bounds a TLS handshake, so a client that opens a socket
// and sends nothing cannot hold a connection slot for long.
const tlsHandshakeTimeout = connectTimeout

// handshake completes a TLS handshake in the connection's own goroutine (never
// in the accept loop) and keeps the state for certificate usernames.
func (c *conn) handshake() error {
	st, err := listen.Handshake(c.nc, tlsHandshakeTimeout)
	if err != nil {
		return err
	}
	c.tlsState = st
	return nil
}
