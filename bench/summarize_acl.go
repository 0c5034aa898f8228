package bench

import (
	"strings"

	"github.com/mqbench/mqbench/broker/auth"
	"github.com/mqbench/mqbench/scenarios"
)

// aclModel says, for a run whose scenario secured the broker with an ACL,
// whether Mosquitto's rules let a publisher's message reach a subscriber: the
// publisher must be allowed to write its topic and the subscriber to read it.
// A message the ACL held back is neither expected nor lost; it is counted as
// denied, so an auth run reconciles like any other. The ACL is judged with
// broker/auth, the one model of Mosquitto's ACL, verified against Mosquitto.
type aclModel struct {
	acl   *auth.ACL
	users map[string]string // client id -> username ("" = anonymous)
}

// newACLModel is nil when the scenario has no security ACL (then nothing is
// held back) or when the recorded ACL no longer parses (noted by the caller).
func newACLModel(sc *scenarios.Scenario) (*aclModel, error) {
	if sc == nil || sc.Security == nil || sc.Security.ACL == "" {
		return nil, nil
	}
	acl, err := auth.ParseACL(strings.NewReader(sc.Security.ACL), "security.acl")
	if err != nil {
		return nil, err
	}
	m := &aclModel{acl: acl, users: map[string]string{}}
	for i, g := range sc.Publishers {
		for _, id := range g.IDs() {
			m.users[id] = sc.PublisherUsername(i)
		}
	}
	for i, g := range sc.Subscribers {
		for _, id := range g.IDs() {
			m.users[id] = sc.SubscriberUsername(i)
		}
	}
	return m, nil
}

// verdict is the ACL's decision for pub's messages on topic to sub.
func (m *aclModel) verdict(pub, sub, topic string) string {
	if m == nil {
		return ACLAllowed
	}
	pu, su := m.users[pub], m.users[sub]
	switch {
	case !m.acl.Check(pub, pu, pu != "", topic, auth.Write):
		return ACLDeniedWrite
	case !m.acl.Check(sub, su, su != "", topic, auth.Read):
		return ACLDeniedRead
	}
	return ACLAllowed
}
