package auth

import (
	mqtopic "github.com/mqbench/mqbench/mqtt/topic"
	"strings"
)

// Check reports whether Mosquitto 2.0.11 with this ACL lets the client do
// access on topic. It is mosquitto_acl_check (src/security.c) with the default
// ACL plugin, mosquitto_acl_check_default (src/security_default.c), behind it,
// for a client that is not a bridge:
//
//  1. $-topics first, whatever the ACL (even with none): Write to a $SYS
//     topic is denied except $SYS/broker/connection/+/state; Read and Write of
//     a $share topic are denied; everything else goes on.
//  2. No acl_file (a nil *ACL): allowed.
//  3. Subscribe and Unsubscribe: allowed. 2.0.11 does not check filters
//     against the ACL at all ("FIXME - implement ACL subscription strings");
//     the ACL applies when messages are delivered.
//  4. The client's own topic lines: those of its "user" section, or the
//     anonymous section when it has no username. A rule matches when its
//     topic, as a filter, matches the topic (mosquitto_topic_matches_sub; an
//     ACL topic not starting with '$' never matches a $ topic, so "#" does
//     not grant $SYS). Deny rules come first and a matching one denies; then
//     the first matching rule whose access includes the requested one allows.
//  5. If there are patterns: a username or client id containing '+' or '#'
//     is denied. Patterns are then tried the same way with "%c" replaced by
//     the client id and "%u" by the username (substituted verbatim: a '/' in
//     either adds topic levels); a pattern with %u is skipped for a client
//     without a username.
//  6. Otherwise denied, including a client with no section and no patterns,
//     and every client when the file has no rules at all.
//
// A deny rule in step 4 therefore wins over a grant in step 5, but a grant in
// step 4 wins over a deny pattern. hasUsername false, or an empty username
// (Mosquitto reads a zero-length username as none), is an anonymous client.
// Strings are used up to a NUL byte, as C sees them.
func (a *ACL) Check(clientID, username string, hasUsername bool, topic string, access Access) bool {
	if a == nil && !strings.HasPrefix(topic, "$") {
		// No acl_file and no $ rule to apply: the broker calls this for every
		// delivery, so it answers before scanning any string.
		return true
	}
	clientID, username, topic = cTrunc(clientID), cTrunc(username), cTrunc(topic)
	if username == "" {
		hasUsername = false
	}
	if !checkDollar(topic, access) {
		return false
	}
	if a == nil {
		return true
	}
	if access == Subscribe || access == Unsubscribe {
		return true
	}
	var own []*Rule
	if hasUsername {
		own = a.users[username]
	} else {
		own = a.anon
	}
	if len(own) == 0 && len(a.patterns) == 0 {
		return false
	}
	for _, r := range own {
		if strings.HasPrefix(topic, "$") && !strings.HasPrefix(r.Topic, "$") {
			continue
		}
		if mqtopic.Match(r.Topic, topic) {
			if r.Access == Deny {
				return false
			}
			if access&r.Access != 0 {
				return true
			}
		}
	}
	if len(a.patterns) == 0 {
		return false
	}
	if (hasUsername && strings.ContainsAny(username, "+#")) || strings.ContainsAny(clientID, "+#") {
		return false
	}
	for _, r := range a.patterns {
		if r.ucount > 0 && !hasUsername {
			continue
		}
		if mqtopic.Match(substitute(r.Topic, clientID, username, hasUsername), topic) {
			if r.Access == Deny {
				return false
			}
			if access&r.Access != 0 {
				return true
			}
		}
	}
	return false
}

// checkDollar is acl__check_dollar of src/security.c.
func checkDollar(topic string, access Access) bool {
	switch {
	case !strings.HasPrefix(topic, "$"):
		return true
	case strings.HasPrefix(topic, "$SYS"):
		if access == Write {
			return mqtopic.Match("$SYS/broker/connection/+/state", topic)
		}
		return true
	case strings.HasPrefix(topic, "$share"):
		return access == Subscribe || access == Unsubscribe
	}
	return true
}

// substitute expands a pattern as mosquitto_acl_check_default does: scanning
// left to right, "%c" becomes the client id and "%u" the username (only when
// there is one); any other '%' stays.
func substitute(pattern, clientID, username string, hasUsername bool) string {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == '%' && i+1 < len(pattern) {
			switch {
			case pattern[i+1] == 'c':
				b.WriteString(clientID)
				i++
				continue
			case pattern[i+1] == 'u' && hasUsername:
				b.WriteString(username)
				i++
				continue
			}
		}
		b.WriteByte(pattern[i])
	}
	return b.String()
}
