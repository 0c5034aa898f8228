package broker

import (
	"fmt"
	"net"

	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/broker/listen"
)

// loadSecurity reads every password and ACL file the configuration names, once
// per set of security options, before any socket is opened: a file Mosquitto
// could not load stops the bundled broker too.
func (b *Broker) loadSecurity() error {
	global, per, err := loadAllSecurity(b.cfg)
	if err != nil {
		return err
	}
	b.secLocal = global
	b.sec = make([]*security, len(b.cfg.Listeners))
	for i := range b.sec {
		b.sec[i] = global
		if per != nil {
			b.sec[i] = per[i]
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

// openListeners binds every configured listener through package listen
// (Mosquitto's address rules, TLS, websockets, bind_interface), or Mosquitto
// 2.0's local-only pair (127.0.0.1 and ::1) when none is configured. Settings
// Mosquitto would ignore are logged as warnings; settings it would use and Go
// cannot are refused. On any error whatever was opened is closed again, so a
// failed Start leaves nothing bound.
func (b *Broker) openListeners() ([]*listener, error) {
	var (
		opened   []*listen.Listener
		warnings []string
		err      error
	)
	if len(b.cfg.Listeners) == 0 && len(b.opts.LocalPorts) > 0 {
		opened, warnings, err = openLocalPorts(b.opts.LocalPorts)
	} else {
		opened, warnings, err = listen.OpenAll(b.cfg)
	}
	for _, w := range warnings {
		b.log.printf(logWarning, "Warning: %s", w)
	}
	if err != nil {
		return nil, err
	}
	lns := make([]*listener, 0, len(opened))
	for _, ln := range opened {
		l := &listener{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, max: -1, sec: b.secLocal, tls: ln.TLS(), label: ln.Protocol()}
		if ln.TLS() {
			l.label += " over tls"
		}
		if i := ln.Index; i >= 0 {
			l.cfg = &b.cfg.Listeners[i]
			l.max = l.cfg.MaxConnections
			l.sec = b.sec[i]
			l.index = i
		}
		lns = append(lns, l)
	}
	return lns, nil
}

// openLocalPorts is local-only mode on the ports of mosquitto's -p: each on
// 127.0.0.1 and ::1, running as long as one socket opened.
func openLocalPorts(ports []int) ([]*listen.Listener, []string, error) {
	var (
		all      []*listen.Listener
		warnings []string
		firstErr error
	)
	for _, port := range ports {
		for _, host := range []string{"127.0.0.1", "::1"} {
			lns, w, err := listen.Open(conf.Listener{Port: port, BindAddress: host, MaxConnections: -1, Protocol: "mqtt"})
			warnings = append(warnings, w...)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			all = append(all, lns...)
		}
	}
	if len(all) == 0 {
		return nil, warnings, fmt.Errorf("local-only mode: %w", firstErr)
	}
	return all, warnings, nil
}
