package persist

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DamagedSuffix starts the name of the copy KeepDamaged makes beside a
// persistence file: <file>.damaged-<UTC time>.
const DamagedSuffix = ".damaged-"

// KeepDamaged writes data, the bytes a damaged persistence file held when it
// was loaded, to <path>.damaged-<at in UTC, like 20261201T183000Z> and returns
// that name. A broker calls it before its first save replaces the file, so
// what it dropped while loading can still be looked at (or loaded by another
// broker). It never overwrites anything: when the name is taken (two loads in
// one second), -2, -3, ... is appended. The copy gets mode 0600 like the db,
// and it and its directory entry are fsynced before KeepDamaged returns.
func KeepDamaged(path string, data []byte, at time.Time) (string, error) {
	base := path + DamagedSuffix + at.UTC().Format("20060102T150405Z")
	for n := 1; n <= 100; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("creating %s: %w", name, err)
		}
		if err := writeSynced(f, data); err != nil {
			_ = os.Remove(name)
			return "", fmt.Errorf("writing %s: %w", name, err)
		}
		if err := syncDir(filepath.Dir(name)); err != nil {
			return "", fmt.Errorf("wrote %s but syncing its directory: %w", name, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("keeping a copy of %s: %s and its -2 to -100 variants exist already", path, base)
}

func writeSynced(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
