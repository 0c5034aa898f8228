// Package topic is MQTT's topic matching and validation, the one owner of
// those rules for the bundled broker, its ACL, the scenarios and the analysis:
// three copies had grown apart in what they said about odd inputs, and the
// broker's answer must be Mosquitto's.
package topic

import (
	"errors"
	"fmt"
	"strings"
)

// Match reports whether the subscription or ACL filter sub matches the
// topic, with the result mosquitto_topic_matches_sub (lib/util_topic.c of
// Mosquitto 2.0.11) gives, odd inputs included (Mosquitto ignores its error
// code and uses the result): "+" matches one level and "#" the rest including
// the parent ("a/#" matches "a"), a filter starting with '$' only matches a
// topic starting with '$' and the reverse (so a leading wildcard never
// matches "$SYS/..."), a topic containing '+' or '#' never matches, an empty
// filter or topic never matches, and an invalid filter matches only as far
// as it was scanned before the fault was found. Both strings end at a NUL,
// as C strings do.
func Match(sub, topic string) bool {
	sub, topic = cTrunc(sub), cTrunc(topic)
	if sub == "" || topic == "" {
		return false
	}
	if (sub[0] == '$') != (topic[0] == '$') {
		return false
	}
	at := func(s string, i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	s, t := 0, 0
	for s < len(sub) {
		tc := at(topic, t)
		if tc == '+' || tc == '#' {
			return false
		}
		if sub[s] != tc {
			switch sub[s] {
			case '+':
				if (s > 0 && sub[s-1] != '/') || (at(sub, s+1) != 0 && sub[s+1] != '/') {
					return false
				}
				s++
				for t < len(topic) && topic[t] != '/' {
					if topic[t] == '+' || topic[t] == '#' {
						return false
					}
					t++
				}
				if t >= len(topic) && s >= len(sub) {
					return true
				}
			case '#':
				if (s > 0 && sub[s-1] != '/') || s+1 < len(sub) {
					return false
				}
				return !strings.ContainsAny(topic[t:], "+#")
			default:
				// "foo/bar" against "foo/+/#": the topic ended after a
				// level matched by '+'.
				return t >= len(topic) && s > 0 && sub[s-1] == '+' &&
					sub[s] == '/' && at(sub, s+1) == '#'
			}
			continue
		}
		// Same byte. "foo" matches "foo/#".
		if t+1 >= len(topic) && at(sub, s+1) == '/' && at(sub, s+2) == '#' && s+3 >= len(sub) {
			return true
		}
		s++
		t++
		if s >= len(sub) && t >= len(topic) {
			return true
		}
		if t >= len(topic) && at(sub, s) == '+' && s+1 >= len(sub) {
			return !(s > 0 && sub[s-1] != '/')
		}
	}
	return false
}

// cTrunc is s up to its first NUL: what a C string made from s would hold.
func cTrunc(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// ValidFilter checks the shape of a subscription filter: not empty, "+" and
// "#" only as whole levels, "#" only as the last. (Whether its bytes are a
// valid MQTT string is the codec's question.)
func ValidFilter(f string) error {
	if f == "" {
		return errors.New("must not be empty")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("# must be a whole last level (got %q)", f)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("+ must be a whole level (got %q)", f)
		}
	}
	return nil
}

// ValidName checks a topic name a client may publish to: not empty, no
// wildcard.
func ValidName(t string) error {
	if t == "" {
		return errors.New("must not be empty")
	}
	if strings.ContainsAny(t, "+#") {
		return fmt.Errorf("a topic name must not contain + or # (got %q)", t)
	}
	return nil
}
