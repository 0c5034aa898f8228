package persist

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestKeepDamaged: the copy has the bytes given, mode 0600 and the UTC time
// in its name; a second copy in the same second gets -2 and the first is left
// as it was.
func TestKeepDamaged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mosquitto.db")
	at := time.Date(2026, 12, 1, 19, 30, 0, 0, time.FixedZone("CET", 3600))
	name, err := KeepDamaged(path, []byte("first"), at)
	if err != nil {
		t.Fatal(err)
	}
	if want := path + ".damaged-20261201T183000Z"; name != want {
		t.Fatalf("name %s, want %s", name, want)
	}
	second, err := KeepDamaged(path, []byte("second"), at)
	if err != nil {
		t.Fatal(err)
	}
	if second != name+"-2" {
		t.Fatalf("second name %s, want %s-2", second, name)
	}
	for n, want := range map[string]string{name: "first", second: "second"} {
		got, err := os.ReadFile(n)
		if err != nil || !bytes.Equal(got, []byte(want)) {
			t.Errorf("%s holds %q (%v), want %q", n, got, err, want)
		}
		if fi, err := os.Stat(n); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v (%v), want 0600", n, fi.Mode(), err)
		}
	}
	if _, err := KeepDamaged(filepath.Join(dir, "missing", "mosquitto.db"), nil, at); err == nil {
		t.Error("no error for a directory that does not exist")
	}
}
