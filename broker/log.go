package broker

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
)

// Log types as mosquitto.conf names them; a line is written only when its type
// is enabled by log_type, so the bundled broker's log reads like Mosquitto's.
const (
	logError = 1 << iota
	logWarning
	logNotice
	logInfo
	logDebug
	logSubscribe
	logUnsubscribe
)

// logTypeBits maps a log_type value to its bits; "none" is not here because it
// clears the types named before it rather than adding any.
var logTypeBits = map[string]int{
	"error":       logError,
	"warning":     logWarning,
	"notice":      logNotice,
	"information": logInfo,
	"debug":       logDebug,
	"subscribe":   logSubscribe,
	"unsubscribe": logUnsubscribe,
	"all":         -1,
}

// logger writes mosquitto-style lines ("1700000000: text") to one writer.
type logger struct {
	mu        sync.Mutex
	w         io.Writer
	mask      int
	timestamp bool
	connMsgs  bool
	now       func() time.Time
}

func newLogger(w io.Writer, cfg *conf.Config) *logger {
	l := &logger{w: w, timestamp: cfg.LogTimestamp, connMsgs: cfg.ConnectionMessages, now: time.Now}
	types := cfg.LogType
	if len(types) == 0 {
		types = []string{"error", "warning", "notice", "information"}
	}
	for _, t := range types {
		if t == "none" {
			l.mask = 0
			continue
		}
		l.mask |= logTypeBits[t] // "all" sets every bit; unknown types add none
	}
	for _, d := range cfg.LogDest {
		if d == "none" {
			l.mask = 0
		}
	}
	if w == io.Discard {
		l.mask = 0
	}
	return l
}

func (l *logger) enabled(typ int) bool { return l != nil && l.mask&typ != 0 }

func (l *logger) printf(typ int, format string, args ...any) {
	if !l.enabled(typ) {
		return
	}
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timestamp {
		fmt.Fprintf(l.w, "%d: %s\n", l.now().Unix(), msg)
	} else {
		fmt.Fprintf(l.w, "%s\n", msg)
	}
}

// conn logs connection messages only when connection_messages is on.
func (l *logger) conn(format string, args ...any) {
	if l.connMsgs {
		l.printf(logNotice, format, args...)
	}
}
