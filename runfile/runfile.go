// Package runfile is the run record, events.jsonl.gz: its header, events and
// footer, the words they use (event types, gauge names, statuses, note
// levels), and the codec: a Writer over any io.Writer and a Reader over any
// io.Reader. It is the contract between mqbench commands (any old run can be
// re-rendered), so it has one owner: the engine writes it through this
// package, the analysis and the reports read it through this package.
package runfile

import (
	"encoding/json"
	"time"
)

// EventsFile is the event file's name inside a run directory: `mqbench
// report`, `compare` and `check` find a run's data by it.
const EventsFile = "events.jsonl.gz"

// The event file (events.jsonl.gz) is the contract between mqbench commands: one
// JSON object per line, gzip-compressed. The first line is {"type":"header",...},
// the last is {"type":"footer",...} (absent if the process died), and every line in
// between is an Event. Old runs must stay readable: fields are only ever added.

// Schema is the version of the event file layout written by this code.
const Schema = 1

// Event types. Times are integer nanoseconds since the run's start (t_ns).
const (
	EvPub    = "pub"    // a publisher sent a PUBLISH (Client=publisher id, Seq)
	EvAck    = "ack"    // the broker acknowledged it (PUBACK, or PUBCOMP for QoS 2; for QoS 0 when written)
	EvRecv   = "recv"   // a subscriber consumed a message (Client=subscriber id, Pub, Seq, Dup)
	EvGauge  = "gauge"  // a sampled value (Name, Value)
	EvSave   = "save"   // the sampler detected a new persistence file (SizeBytes and, if decoded, Held/Queued/Inflight/Stored)
	EvAction = "action" // a scenario action ran (Action, Target, Err)
	EvNote   = "note"   // free text worth keeping (Msg), e.g. a disconnect; Level "warn" taints the run
	EvPhase  = "phase"  // a phase began: "connect", "run", "drain", "done" (Msg holds the phase)
	// EvReason is a reason code that is not a successful publish's (Reason):
	// CONNACK, SUBACK per filter, DISCONNECT from the broker, or a publish
	// the broker refused (Client, Seq: it was never acknowledged).
	EvReason = "reason"
	// EvConn is a client's connection at the start of the run: Msg ConnUp
	// when its first connect succeeded (Dur: from dialing to connected and
	// subscribed), ConnLost when a connection was lost.
	EvConn = "conn"
)

// EvConn messages.
const (
	ConnUp   = "up"
	ConnLost = "lost"
)

// Gauge names written by the sampler.
const (
	GaugePersistBytes   = "persist.size_bytes"  // size of the persistence file (or directory) at this instant
	GaugeDropped        = "broker.dropped"      // broker's cumulative count of messages dropped by queue limits
	GaugeStoreCount     = "broker.store_count"  // broker's stored message count ($SYS/broker/store/messages/count)
	GaugeStoreBytes     = "broker.store_bytes"  // broker's stored payload bytes
	GaugeClients        = "broker.clients"      // clients connected
	GaugePublishedTotal = "client.published"    // progress: total publishes sent so far
	GaugeDeliveredTotal = "client.delivered"    // progress: total messages consumed so far
	GaugeRSSBytes       = "process.rss_bytes"   // resident memory of the broker process, when known
	GaugeCPUSeconds     = "process.cpu_seconds" // CPU time of the broker process, when known
	GaugeBenchRSSBytes  = "bench.rss_bytes"     // resident memory of mqbench itself
	GaugeBenchCPUSecs   = "bench.cpu_seconds"   // CPU time of mqbench itself
	// Resident memory of mqbench and of the broker process just before the
	// clients connect and once all are connected: what the connections cost.
	GaugeBenchRSSBeforeConnect  = "bench.rss_bytes.before_connect"
	GaugeBenchRSSConnected      = "bench.rss_bytes.connected"
	GaugeBrokerRSSBeforeConnect = "process.rss_bytes.before_connect"
	GaugeBrokerRSSConnected     = "process.rss_bytes.connected"
)

// Event is one line of the event stream. Only the fields that matter for a type
// are set; the rest are omitted from the JSON.
type Event struct {
	T    int64  `json:"t_ns"`
	Type string `json:"type"`

	// pub, ack, recv
	Client string `json:"client,omitempty"` // publisher id (pub/ack) or subscriber id (recv)
	Pub    string `json:"pub,omitempty"`    // recv: the publisher id carried in the message
	Seq    int64  `json:"seq,omitempty"`    // message number within its publisher, starting at 1
	QoS    byte   `json:"qos,omitempty"`
	Dup    bool   `json:"dup,omitempty"`  // recv: DUP flag seen on the PUBLISH
	Size   int    `json:"size,omitempty"` // payload bytes
	// recv and ack: nanoseconds since start at which the publisher sent it (copy of the pub
	// event's t_ns), so delivery and ack latency need no join. Older files have it on recv only.
	PubT int64 `json:"pub_t_ns,omitempty"`
	// conn: how long the connect took, ns.
	Dur int64 `json:"dur_ns,omitempty"`

	// gauge
	Name  string  `json:"name,omitempty"`
	Value float64 `json:"value,omitempty"`

	// save
	SizeBytes int64 `json:"size_bytes,omitempty"`
	Held      int64 `json:"held,omitempty"`     // CLIENT_MSG records (deliveries held for clients)
	Queued    int64 `json:"queued,omitempty"`   // of which state queued
	Inflight  int64 `json:"inflight,omitempty"` // of which in flight
	Stored    int64 `json:"stored,omitempty"`   // MSG_STORE records
	// DupStores counts messages stored more than once in this save (two MSG_STORE
	// records carrying the same publisher and seq): the seed experiment's question.
	DupStores int64 `json:"dup_stores,omitempty"`
	// MsgBytes is how much of the file the messages take (MSG_STORE and
	// CLIENT_MSG chunks); SizeBytes - MsgBytes is the fixed part.
	MsgBytes int64 `json:"msg_bytes,omitempty"`
	Decoded  bool  `json:"decoded,omitempty"` // Held/Queued/Inflight/Stored are valid

	// action, note, phase
	Action string `json:"action,omitempty"` // save, stop, kill, start, disconnect, reconnect
	Target string `json:"target,omitempty"` // subscriber id for disconnect/reconnect
	Err    string `json:"err,omitempty"`
	Level  string `json:"level,omitempty"` // note: "info" or "warn"
	Msg    string `json:"msg,omitempty"`

	// Reason is an MQTT 5 reason code as "PACKET 0xNN" ("puback 0x10"): on
	// an ack event the acknowledgement's (for QoS 2 the PUBREC's when it is
	// not success, else the PUBCOMP's), on a reason event a CONNACK, a SUBACK
	// filter (Msg holds the filter), a DISCONNECT from the broker or a
	// refused publish (Seq set). Empty for MQTT 3.1.1, which has none.
	Reason string `json:"reason,omitempty"`

	// Broker names the broker of a run with several (the scenario's brokers
	// list) that a save, gauge, action or note belongs to; empty for the only
	// broker, so a one-broker run records exactly what it always did.
	Broker string `json:"broker,omitempty"`
}

// Header is the first line of the event file: everything needed to understand
// and re-render the run without the process that recorded it.
type Header struct {
	Type          string          `json:"type"` // always "header"
	Schema        int             `json:"schema"`
	RunID         string          `json:"run_id"`
	ScenarioName  string          `json:"scenario_name"`
	Scenario      json.RawMessage `json:"scenario"`    // the resolved scenarios.Scenario as JSON
	BrokerKind    string          `json:"broker_kind"` // bundled, mosquitto, external
	BrokerVersion string          `json:"broker_version"`
	BrokerAddr    string          `json:"broker_addr"`
	PersistPath   string          `json:"persist_path,omitempty"`
	BrokerConfig  []string        `json:"broker_config,omitempty"` // the mosquitto.conf lines the broker ran with
	// BrokerConfigSource says whose lines BrokerConfig holds: "launched",
	// "file" (an external broker's own file) or "unknown"; empty in runs
	// recorded before it existed (then the broker kind decides).
	BrokerConfigSource string    `json:"broker_config_source,omitempty"`
	MQBench            string    `json:"mqbench_version"`
	GoVersion          string    `json:"go_version"`
	Host               string    `json:"host"`
	Start              time.Time `json:"start"`
	TimeScale          float64   `json:"time_scale"`
	// Clock is the host clock's synchronisation state at the start (nil in
	// runs recorded before it existed, or when the kernel would not say).
	Clock *Clock `json:"clock,omitempty"`
	// Brokers is how a cluster target's addresses (BrokerAddr holds them
	// comma-separated) shared this run's clients; nil for one broker.
	Brokers []BrokerShare `json:"brokers,omitempty"`
	// Merged lists the shards a merged run was made of (mqbench merge):
	// where each ran and what its clock was; nil for a run recorded as one.
	Merged []MergedShard `json:"merged,omitempty"`
	// Named lists every broker of a run with several (the scenario's brokers
	// list, in its order): the Broker* fields above then describe the first,
	// which publishers and subscribers use unless they name another. Nil for
	// one broker.
	Named []NamedBroker `json:"named_brokers,omitempty"`
	// BrokerSettings are the settings BrokerConfig resolves to, with
	// Mosquitto's defaults (see BrokerSettings); nil when they are unknown,
	// and in runs recorded before the field (read them with ResolvedBroker).
	BrokerSettings *BrokerSettings `json:"broker_settings,omitempty"`
}

// NamedBroker is one broker of a run with several, as it ran: its events
// carry Name in Event.Broker.
type NamedBroker struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"` // bundled, mosquitto, external
	Version      string   `json:"version"`
	Addr         string   `json:"addr"`
	PersistPath  string   `json:"persist_path,omitempty"`
	Config       []string `json:"config,omitempty"` // the mosquitto.conf lines it ran with
	ConfigSource string   `json:"config_source,omitempty"`
	// Settings are what Config resolves to (see Header.BrokerSettings);
	// read them with ResolvedSettings.
	Settings *BrokerSettings `json:"settings,omitempty"`
}

// MergedShard is one shard of a merged run, as its own header recorded it.
type MergedShard struct {
	Index int       `json:"index"`
	Count int       `json:"count"`
	Dir   string    `json:"dir"`
	RunID string    `json:"run_id"`
	Host  string    `json:"host"`
	Start time.Time `json:"start"`
	Clock *Clock    `json:"clock,omitempty"`
}

// Footer is the last line of the event file. A run without a footer was cut
// short (the process died); readers treat it as status "incomplete".
type Footer struct {
	Type    string    `json:"type"`   // always "footer"
	T       int64     `json:"t_ns"`   // end time since start
	Status  string    `json:"status"` // ok, interrupted, error, incomplete
	Error   string    `json:"error,omitempty"`
	Tainted bool      `json:"tainted"`
	Reasons []string  `json:"reasons,omitempty"` // why it is tainted
	End     time.Time `json:"end"`
}

// Footer statuses (Footer.Status): how the run ended.
const (
	StatusOK          = "ok"          // the scenario ran to its end
	StatusInterrupted = "interrupted" // stopped by a signal
	StatusError       = "error"       // stopped by an error (Footer.Error)
	StatusIncomplete  = "incomplete"  // no footer: the recording was cut short (readers' word)
)

// Note levels (Event.Level of a note).
const (
	LevelInfo = "info" // worth keeping, does not taint the run
	LevelWarn = "warn" // taints the run (a disconnect, a client error)
)

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

// BrokerShare is how many of this run's clients one address of a cluster
// target got (Header.Brokers), so the report can show the split.
type BrokerShare struct {
	Addr        string `json:"addr"`
	Publishers  int    `json:"publishers"`
	Subscribers int    `json:"subscribers"`
}
