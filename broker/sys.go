package broker

import (
	"strconv"
	"time"
)

// publishSys publishes the $SYS tree every sys_interval, retained and only for
// values that changed, as Mosquitto does. The messages go through the normal
// routing, so they are store entries (counted in the store statistics like
// Mosquitto's) and reach $SYS subscribers; they are never saved as RETAIN.
func (st *state) publishSys(now time.Time) {
	iv := st.cfg.SysInterval
	if iv <= 0 {
		return
	}
	if !st.lastSys.IsZero() && now.Sub(st.lastSys) < iv {
		return
	}
	st.lastSys = now
	b := st.b
	if !st.sysVersionDone {
		st.sysVersionDone = true
		st.sysPublish("$SYS/broker/version", "mqbench "+b.opts.Version)
	}
	up := int64(0)
	if !b.started.IsZero() {
		up = int64(now.Sub(b.started) / time.Second)
	}
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	// The store counters are published last and read after the other updates,
	// so they include the $SYS entries of this round.
	values := [][2]string{
		{"$SYS/broker/uptime", i(up) + " seconds"},
		{"$SYS/broker/clients/connected", i(st.connected)},
		{"$SYS/broker/clients/total", i(int64(len(st.sessions)))},
		{"$SYS/broker/messages/received", i(b.msgsRecv.Load())},
		{"$SYS/broker/messages/sent", i(b.msgsSent.Load())},
		{"$SYS/broker/bytes/received", i(b.bytesRecv.Load())},
		{"$SYS/broker/bytes/sent", i(b.bytesSent.Load())},
		{"$SYS/broker/publish/messages/received", i(b.pubRecv.Load())},
		{"$SYS/broker/publish/messages/sent", i(b.pubSent.Load())},
		{"$SYS/broker/publish/messages/dropped", i(st.dropped)},
		{"$SYS/broker/subscriptions/count", i(st.nsubs)},
		{"$SYS/broker/retained messages/count", i(int64(len(st.retained)))},
	}
	for _, v := range values {
		st.sysUpdate(v[0], v[1])
	}
	st.sysUpdate("$SYS/broker/store/messages/count", i(st.storeCount))
	st.sysUpdate("$SYS/broker/store/messages/bytes", i(st.storeBytes))
}

func (st *state) sysUpdate(topic, val string) {
	if st.sysLast[topic] == val {
		return
	}
	st.sysLast[topic] = val
	st.sysPublish(topic, val)
}

func (st *state) sysPublish(topic, val string) {
	st.lastID++
	st.route(&storedMsg{id: st.lastID, topic: topic, payload: []byte(val), retain: true, sys: true})
}
