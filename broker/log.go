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
		switch t {
		case "error":
			l.mask |= logError
		case "warning":
			l.mask |= logWarning
		case "notice":
			l.mask |= logNotice
		case "information":
			l.mask |= logInfo
		case "debug":
			l.mask |= logDebug
		case "subscribe":
			l.mask |= logSubscribe
		case "unsubscribe":
			l.mask |= logUnsubscribe
		case "all":
			l.mask = -1
		case "none":
			l.mask = 0
		}
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
