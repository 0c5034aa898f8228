package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCompareGolden(t *testing.T) {
	root := t.TempDir()
	a := defaultFixture()
	b := defaultFixture()
	b.name, b.autosave, b.saveEvery = "persist-fixture-2s", "2", 2*time.Second
	c := defaultFixture()
	c.name, c.messages = "persist-fixture-small", 500
	dirs := []string{
		writeFixture(t, filepath.Join(root, "a"), a),
		writeFixture(t, filepath.Join(root, "b"), b),
		writeFixture(t, filepath.Join(root, "c"), c),
	}
	out := filepath.Join(root, "cmp")
	text, err := Compare(dirs, out)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "compare_table.golden", text)
	md, err := os.ReadFile(filepath.Join(out, CompareFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| persist-fixture-2s", ComparePersistencePNG, "DROPPED 976"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("compare.md lacks %q", want)
		}
	}
	checkPNG(t, filepath.Join(out, ComparePersistencePNG))
}

func TestCompareErrors(t *testing.T) {
	if _, err := Compare(nil, t.TempDir()); err == nil {
		t.Error("Compare with no runs succeeded")
	}
	if _, err := Compare([]string{filepath.Join(t.TempDir(), "missing")}, t.TempDir()); err == nil {
		t.Error("Compare of a missing run succeeded")
	}
}
