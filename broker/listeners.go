package broker

import (
	"fmt"
	"net"
	"strconv"

	"github.com/mqbench/mqbench/broker/conf"
)

// loadSecurity reads every password and ACL file the configuration names, once
// per set of security options, before any socket is opened: a file Mosquitto
// could not load stops the bundled broker too.
func (b *Broker) loadSecurity() error {
	cfg := b.cfg
	global, err := loadSecurity(cfg, nil)
	if err != nil {
		return err
	}
	b.secLocal = global
	b.sec = make([]*security, len(cfg.Listeners))
	for i := range cfg.Listeners {
		if !cfg.PerListenerSettings {
			b.sec[i] = global
			continue
		}
		if b.sec[i], err = loadSecurity(cfg, &cfg.Listeners[i]); err != nil {
			return err
		}
	}
	return nil
}

// securityForPort finds the security options of a session restored from the
// persistence file by the listener port it was saved with, as Mosquitto does;
// nil (every ACL check denied) when per_listener_settings is on and no listener
// has that port any more.
func (b *Broker) securityForPort(port int) *security {
	if !b.cfg.PerListenerSettings {
		if len(b.sec) > 0 {
			return b.sec[0]
		}
		return b.secLocal
	}
	for i, l := range b.cfg.Listeners {
		if l.Port == port {
			return b.sec[i]
		}
	}
	return nil
}

// openListeners binds every configured listener, or Mosquitto 2.0's
// local-only pair (127.0.0.1 and ::1) when none is configured. On any error
// whatever was opened is closed again, so a failed Start leaves nothing bound.
func (b *Broker) openListeners() ([]*listener, error) {
	var lns []*listener
	fail := func(err error) ([]*listener, error) {
		for _, l := range lns {
			_ = l.ln.Close()
		}
		return nil, err
	}
	if len(b.cfg.Listeners) == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:1883")
		if err != nil {
			return fail(fmt.Errorf("opening local-only listener on 127.0.0.1:1883: %w", err))
		}
		lns = append(lns, &listener{ln: ln, port: 1883, max: -1, sec: b.secLocal, label: "mqtt"})
		return lns, nil
	}
	for i := range b.cfg.Listeners {
		l := &b.cfg.Listeners[i]
		if r := listenerRefusal(l); r != "" {
			return fail(fmt.Errorf("%s: %s", listenerPlace(l), r))
		}
		addr := net.JoinHostPort(l.BindAddress, strconv.Itoa(l.Port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("%s: opening listener on %s: %w", listenerPlace(l), addr, err))
		}
		lns = append(lns, &listener{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, max: l.MaxConnections,
			sec: b.sec[i], cfg: l, label: "mqtt"})
	}
	return lns, nil
}

// listenerRefusal says why a listener cannot be opened as configured.
func listenerRefusal(l *conf.Listener) string {
	switch {
	case l.CertFile != "" || l.KeyFile != "" || l.CAFile != "" || l.CAPath != "" || l.CRLFile != "":
		return "TLS listeners are not available in this build of the bundled broker"
	case l.Protocol == "websockets":
		return "websockets listeners are not available in this build of the bundled broker"
	case l.BindInterface != "":
		return "bind_interface is not available in this build of the bundled broker"
	}
	return ""
}

func listenerPlace(l *conf.Listener) string {
	if p := l.Place("listener"); p != "" {
		return p
	}
	return "listener " + strconv.Itoa(l.Port)
}
