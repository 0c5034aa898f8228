package auth

import (
	"strings"
	"testing"
)

// TestACLCasesAgainstMosquitto starts the real broker with every aclLineCases
// file: it must refuse to start exactly when ParseACL fails, logging the same
// complaint.
func TestACLCasesAgainstMosquitto(t *testing.T) {
	for _, c := range aclLineCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := writeFile(t, dir, "acl", c.text)
			_, err := ParseACL(strings.NewReader(c.text), path)
			_, stderr, started := startMosquittoOutcome(t, dir, "allow_anonymous true", "acl_file "+path)
			if started != (err == nil) {
				t.Fatalf("Mosquitto started: %v, ParseACL error: %v (stderr: %s)", started, err, stderr)
			}
			if err == nil {
				return
			}
			// Our message is Mosquitto's without the file name.
			msg := err.(*FileError).Msg
			if i := strings.Index(msg, " in acl_file"); i >= 0 {
				msg = msg[:i]
			}
			if !strings.Contains(strings.ToLower(stderr), strings.ToLower(msg)) {
				t.Errorf("Mosquitto's log does not say %q:\n%s", msg, stderr)
			}
		})
	}
}
