package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireNodeEnv is the variable that turns a missing Node.js (or a missing
// `npm ci` of a test's package.json) from a skip into a failure; .ci/run sets
// it, as it sets RequireEnv for Mosquitto.
const RequireNodeEnv = "MQBENCH_REQUIRE_NODE"

// RequireNode returns the path of node when it is installed and the npm
// packages of dir (a directory with package.json) are installed in
// dir/node_modules; otherwise it skips the test, or fails it when
// MQBENCH_REQUIRE_NODE=1. `make deps` runs `npm ci` there.
func RequireNode(t testing.TB, dir string, packages ...string) string {
	t.Helper()
	fail := func(msg string) {
		if os.Getenv(RequireNodeEnv) == "1" {
			t.Fatalf("%s, and %s=1", msg, RequireNodeEnv)
			return
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		fail("node not installed (apt-get install nodejs npm)")
		return ""
	}
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p, "package.json")); err != nil {
			fail(fmt.Sprintf("npm package %s not installed in %s (make deps runs npm ci there)", p, dir))
			return ""
		}
	}
	return node
}
