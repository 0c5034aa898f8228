package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is 100
// on every Linux architecture Go supports (the kernel ABI fixes it), so reading
// sysconf is not worth a cgo dependency.
const clockTicks = 100

// procSample is one reading of a process's memory and CPU use.
type procSample struct {
	RSSBytes   int64
	CPUSeconds float64
}

// readProc reads VmRSS from /proc/PID/status and utime+stime from
// /proc/PID/stat. Resource use is sampled because a broker that holds a large
// backlog pays in memory, and a save in CPU; both belong next to the file size.
func readProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("reading process status: %w", err)
	}
	rss, err := parseVmRSS(status)
	if err != nil {
		return s, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("reading process stat: %w", err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return s, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	s.RSSBytes = rss
	s.CPUSeconds = cpu
	return s, nil
}

// parseVmRSS finds "VmRSS:   1234 kB" and returns bytes.
func parseVmRSS(status []byte) (int64, error) {
	for _, line := range bytes.Split(status, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("VmRSS:")) {
			continue
		}
		f := bytes.Fields(line[len("VmRSS:"):])
		if len(f) < 1 {
			return 0, fmt.Errorf("VmRSS line %q has no value", line)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS value %q: %w", f[0], err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no VmRSS line (zombie or kernel thread?)")
}

// parseStatCPU returns utime+stime in seconds. The command name (field 2) may
// contain spaces and parentheses, so fields are counted after the last ')'.
func parseStatCPU(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no ')' after the command name")
	}
	f := bytes.Fields(stat[i+1:])
	// After ')': field 3 (state) is f[0], so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("only %d fields after the command name", len(f))
	}
	ut, err := strconv.ParseUint(string(f[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime %q: %w", f[11], err)
	}
	st, err := strconv.ParseUint(string(f[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime %q: %w", f[12], err)
	}
	return float64(ut+st) / clockTicks, nil
}
