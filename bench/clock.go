package bench

import (
	"github.com/mqbench/mqbench/runfile"
	"golang.org/x/sys/unix"
)

// Clock is the host clock's state in the header (runfile.Clock).
type Clock = runfile.Clock

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
