package bench

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqbench/mqbench/scenarios"
)

// Broker address schemes. The paho client understands every one of them
// itself; the lean publisher dials them in leandial.go.
var (
	plainSchemes  = map[string]bool{"tcp": true, "mqtt": true, "ws": true}
	secureSchemes = map[string]bool{"ssl": true, "tls": true, "mqtts": true, "wss": true}
)

// connSettings is what a client needs to connect beyond its id and session
// flag: the scenario's connect section resolved for its group, with the TLS
// configuration built from the files it names. One is built per group before
// the run starts, so a missing CA file or password variable fails the run
// before anything is recorded.
type connSettings struct {
	username, password string
	hasPass            bool
	tls                *tls.Config // nil for tcp://, mqtt://, ws://
	keepAlive          time.Duration
	will               *scenarios.Will
	insecure           string // where verification was turned off, "" if it is on
}

// runConns are the settings of every client group of a run.
type runConns struct {
	sys  *connSettings
	pubs []*connSettings // by publisher group
	subs []*connSettings // by subscriber group
}

// resolveConns builds the connection settings of the $SYS monitor and of
// every group for the target address: a TLS target gets a TLS configuration,
// and TLS settings for a plain target are an error rather than silently
// unused.
func resolveConns(sc *scenarios.Scenario, addr string) (*runConns, error) {
	addrs := splitAddrs(addr)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("broker address %q: want SCHEME://HOST:PORT", addr)
	}
	u, err := parseTarget(addrs[0])
	if err != nil {
		return nil, err
	}
	for _, a := range addrs[1:] {
		v, err := parseTarget(a)
		if err != nil {
			return nil, err
		}
		if secureSchemes[v.Scheme] != secureSchemes[u.Scheme] {
			return nil, fmt.Errorf("broker addresses %s and %s: a cluster target is all TLS or all plain, as one connect section serves every node", u.Redacted(), v.Redacted())
		}
	}
	// With several nodes, each node's certificate is checked against the
	// node's own host name: the dialers fill it in when the configuration
	// leaves it empty.
	perNode := len(addrs) > 1
	r := &runConns{}
	c, err := sc.RunConn()
	if err != nil {
		return nil, err
	}
	if r.sys, err = newConnSettings(c, u, perNode); err != nil {
		return nil, err
	}
	for i := range sc.Publishers {
		if c, err = sc.PublisherConn(i); err != nil {
			return nil, err
		}
		cs, err := newConnSettings(c, u, perNode)
		if err != nil {
			return nil, err
		}
		r.pubs = append(r.pubs, cs)
	}
	for i := range sc.Subscribers {
		if c, err = sc.SubscriberConn(i); err != nil {
			return nil, err
		}
		cs, err := newConnSettings(c, u, perNode)
		if err != nil {
			return nil, err
		}
		r.subs = append(r.subs, cs)
	}
	return r, nil
}

// parseTarget checks a broker address: a known scheme, a host and a port.
// Credentials in the address are refused: they would be recorded with it.
func parseTarget(addr string) (*url.URL, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("broker address %q: want SCHEME://HOST:PORT (tcp, mqtt, mqtts, ws, wss)", addr)
	}
	if u.User != nil {
		return nil, fmt.Errorf("broker address %s: credentials in the address are not supported (use connect.username/password or -u/-P)", u.Redacted())
	}
	if !plainSchemes[u.Scheme] && !secureSchemes[u.Scheme] {
		return nil, fmt.Errorf("broker address %q: unknown scheme %q (want tcp, mqtt, mqtts, ssl, ws or wss)", addr, u.Scheme)
	}
	return u, nil
}

// newConnSettings builds one group's settings for target u.
func newConnSettings(c *scenarios.Conn, u *url.URL, perNode bool) (*connSettings, error) {
	cs := &connSettings{username: c.Username, password: c.Password, hasPass: c.HasPass, keepAlive: c.KeepAlive, will: c.Will}
	if !secureSchemes[u.Scheme] {
		if c.TLS != nil {
			return nil, fmt.Errorf("%s: TLS settings, but the broker address %s is not a TLS one (use mqtts:// or wss://)", c.Where("tls"), u.Redacted())
		}
		return cs, nil
	}
	t := c.TLS
	if t == nil {
		t = &scenarios.TLS{}
	}
	insecure := c.Insecure()
	if t.CA == "" && !insecure {
		return nil, fmt.Errorf("broker address %s is TLS: give the CA that signed its certificate (connect.tls.ca or --cafile; the system's: /etc/ssl/certs/ca-certificates.crt) or turn verification off (connect.tls.insecure or --insecure)", u.Redacted())
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if cfg.ServerName == "" && !perNode {
		cfg.ServerName = u.Hostname()
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("%s: reading the CA file: %w", c.Where("tls.ca"), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", c.Where("tls.ca"), t.CA)
		}
		cfg.RootCAs = pool
	}
	if t.Cert != "" || t.Key != "" {
		if t.Cert == "" || t.Key == "" {
			return nil, fmt.Errorf("%s: a client certificate needs both tls.cert and tls.key", c.Where("tls"))
		}
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: loading the client certificate %s with key %s: %w", c.Where("tls.cert"), t.Cert, t.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if insecure {
		cfg.InsecureSkipVerify = true
		cs.insecure = c.Where("tls.insecure")
	}
	cs.tls = cfg
	return cs, nil
}

// errNoTLS is returned when a TLS address reaches a dialer without a TLS
// configuration (only a caller bypassing resolveConns can do that).
var errNoTLS = errors.New("a TLS broker address needs a TLS configuration")

// apply sets the connection settings on paho options (publishers,
// subscribers and the $SYS monitor alike); withWill is false for the
// monitor, whose disappearance is no event of the scenario's.
func (cs *connSettings) apply(o *mqtt.ClientOptions, withWill bool) *mqtt.ClientOptions {
	if cs == nil {
		return o
	}
	if cs.username != "" {
		o.SetUsername(cs.username)
	}
	if cs.hasPass {
		o.SetPassword(cs.password)
	}
	if cs.tls != nil {
		o.SetTLSConfig(cs.tls)
	}
	if cs.keepAlive > 0 {
		o.SetKeepAlive(cs.keepAlive)
	}
	if withWill && cs.will != nil {
		o.SetBinaryWill(cs.will.Topic, []byte(cs.will.Payload), cs.will.QoS, cs.will.Retain)
	}
	return o
}

// noteInsecure records, as a warning, every group that does not verify the
// broker's certificate: such a run may not have measured the broker it names.
func (e *engine) noteInsecure() {
	seen := map[string]bool{}
	note := func(cs *connSettings) {
		if cs == nil || cs.insecure == "" || seen[cs.insecure] {
			return
		}
		seen[cs.insecure] = true
		e.note(LevelWarn, fmt.Sprintf("TLS certificate verification is OFF (%s): the broker's identity was not checked", cs.insecure))
	}
	note(e.conns.sys)
	for _, cs := range e.conns.pubs {
		note(cs)
	}
	for _, cs := range e.conns.subs {
		note(cs)
	}
}
