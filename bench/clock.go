package bench

import "golang.org/x/sys/unix"

// Clock is what the kernel says about this host's wall clock when a run
// starts. Runs recorded on several machines (--shard) are merged on wall-clock
// time, so a latency from a publish on one host to a delivery on another
// carries both clocks' errors; the header keeps them so the merge can say how
// much, instead of presenting a cross-machine latency as exact.
type Clock struct {
	// Synced is false when the kernel marks the clock unsynchronised
	// (STA_UNSYNC: no NTP/PTP daemon disciplines it): its error is unknown.
	Synced bool `json:"synced"`
	// MaxErrorNs is the kernel's bound on the clock's error (adjtimex
	// maxerror), meaningful only when Synced.
	MaxErrorNs int64 `json:"max_error_ns,omitempty"`
	// EstErrorNs is the kernel's estimated error (adjtimex esterror).
	EstErrorNs int64 `json:"est_error_ns,omitempty"`
}

// readClock asks the kernel (adjtimex in read-only mode); nil when it cannot.
func readClock() *Clock {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return nil
	}
	c := &Clock{Synced: state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0}
	if c.Synced {
		c.MaxErrorNs = tx.Maxerror * 1000 // microseconds
		c.EstErrorNs = tx.Esterror * 1000
	}
	return c
}
