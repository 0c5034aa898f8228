package main

import (
	"fmt"

	"github.com/mqbench/mqbench/broker/launch"
	"github.com/mqbench/mqbench/scenarios"
)

// secureOptions turns a scenario's security section into what launch
// generates, refusing it for an external broker, which mqbench cannot
// configure.
func secureOptions(sc *scenarios.Scenario, kind string) (*launch.Secure, error) {
	sec := sc.Security
	if sec == nil {
		return nil, nil
	}
	if kind != launch.KindBundled && kind != launch.KindMosquitto && kind != "" {
		return nil, fmt.Errorf("scenario %s: the security section configures a broker mqbench starts (bundled or mosquitto); for %s give its CA and credentials with --cafile, --cert, --key, -u and -P", sc.Name, kind)
	}
	s := &launch.Secure{TLS: sec.TLS.On(), RequireCertificate: sec.RequireCertificate, ACL: sec.ACL}
	if sec.AllowAnonymous != nil {
		s.AllowAnonymous = *sec.AllowAnonymous
	}
	for _, u := range sec.Users {
		s.Users = append(s.Users, launch.User{Name: u.Name, Password: u.Password.Reveal()})
	}
	if c, err := sc.RunConn(); err == nil && c.Username != "" {
		s.ClientCN = c.Username
	}
	return s, nil
}
