package bench

import (
	"os"
	"strings"
	"testing"
)

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"Name:\tx\nVmRSS:\t  1234 kB\nVmSwap: 0 kB\n", 1234 * 1024, ""},
		{"Name:\tx\n", 0, "no VmRSS line"},
		{"VmRSS:\n", 0, "has no value"},
		{"VmRSS: lots kB\n", 0, "VmRSS value"},
	}
	for _, tt := range tests {
		got, err := parseVmRSS([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// Field 14 utime=250, 15 stime=150 ticks -> 4 s; the command name has spaces and ')'.
	stat := "42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 1 0 100 1000 10 18446744073709551615"
	got, err := parseStatCPU([]byte(stat))
	if err != nil || got != 4 {
		t.Fatalf("got %v, %v; want 4", got, err)
	}
	for _, bad := range []string{"no paren", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 1"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if s.RSSBytes <= 0 || s.CPUSeconds < 0 {
		t.Fatalf("self sample %+v", s)
	}
	if _, err := readProc(-5); err == nil {
		t.Fatal("no error for a missing process")
	}
}
