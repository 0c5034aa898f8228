package persist

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/testutil"
)

// TestMosquittoAgreesOnDamage gives every damaged file of damageCases to the
// real Mosquitto 2.0.11: a file the case says is refused must make it exit
// with an error and stay byte for byte as it was; any other must load, and
// what Mosquitto saves at shutdown must hold exactly what the case says
// ParseChecked loads. A wrong expectation in damageCases fails here.
func TestMosquittoAgreesOnDamage(t *testing.T) {
	bin := testutil.RequireMosquittoBroker(t)
	for _, tt := range damageCases() {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "mosquitto.db")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" {
				conf := testutil.WriteFile(t, dir, "mosquitto.conf", testutil.MosquittoConf(testutil.FreePort(t),
					testutil.MosquittoOptions{Dir: dir, Persistence: true, LogDest: "stderr"}))
				_, stderr, err := testutil.Run(10*time.Second, nil, bin, "-c", conf)
				if err == nil || strings.Contains(err.Error(), "timed out") {
					t.Fatalf("mosquitto did not refuse the file: %v\n%s", err, stderr)
				}
				if after, _ := os.ReadFile(path); !bytes.Equal(after, tt.data) {
					t.Fatal("mosquitto changed the refused file")
				}
				return
			}
			m := testutil.StartMosquitto(t, testutil.MosquittoOptions{
				Dir: dir, Persistence: true, LogDest: "stderr", Extra: []string{"autosave_interval 3600"},
			})
			if err := m.Stop(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			saved, err := ReadChecked(m.DBPath)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.loaded
			if tt.ambiguous {
				c, err := ParseChecked(tt.data)
				if err != nil {
					t.Fatal(err)
				}
				want = checkedView(c, false)
			}
			if got := checkedView(saved, !tt.ambiguous); got != want {
				t.Fatalf("mosquitto saved\n%s\nwant\n%s\nlog:\n%s", got, want, m.Stderr())
			}
		})
	}
}
