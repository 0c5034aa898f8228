package bench

import (
	"context"
	"github.com/mqbench/mqbench/runfile"
	"github.com/mqbench/mqbench/scenarios"
)

// The run record (events.jsonl.gz) is package runfile: its header, events,
// footer and their words. These names are the same types and constants, so
// the engine and its callers read as before.
type (
	Event  = runfile.Event
	Header = runfile.Header
	Footer = runfile.Footer
	// MergedShard is one shard of a merged run (Header.Merged).
	MergedShard = runfile.MergedShard
)

// EventSchema is the version of the event file layout written by this code.
const EventSchema = runfile.Schema

// Event types and gauge names (see runfile).
const (
	EvPub               = runfile.EvPub
	EvAck               = runfile.EvAck
	EvRecv              = runfile.EvRecv
	EvGauge             = runfile.EvGauge
	EvSave              = runfile.EvSave
	EvAction            = runfile.EvAction
	EvNote              = runfile.EvNote
	EvPhase             = runfile.EvPhase
	EvReason            = runfile.EvReason
	GaugePersistBytes   = runfile.GaugePersistBytes
	GaugeDropped        = runfile.GaugeDropped
	GaugeStoreCount     = runfile.GaugeStoreCount
	GaugeStoreBytes     = runfile.GaugeStoreBytes
	GaugeClients        = runfile.GaugeClients
	GaugePublishedTotal = runfile.GaugePublishedTotal
	GaugeDeliveredTotal = runfile.GaugeDeliveredTotal
	GaugeRSSBytes       = runfile.GaugeRSSBytes
	GaugeCPUSeconds     = runfile.GaugeCPUSeconds
	GaugeBenchRSSBytes  = runfile.GaugeBenchRSSBytes
	GaugeBenchCPUSecs   = runfile.GaugeBenchCPUSecs

	// Action words of action events (scenarios owns them: Action.Do).
	ActSave                     = scenarios.DoSave
	ActStop                     = scenarios.DoStop
	ActKill                     = scenarios.DoKill
	ActStart                    = scenarios.DoStart
	ActDisconnect               = scenarios.DoDisconnect
	ActReconnect                = scenarios.DoReconnect
	LevelInfo                   = runfile.LevelInfo
	LevelWarn                   = runfile.LevelWarn
	EvConn                      = runfile.EvConn
	ConnUp                      = runfile.ConnUp
	ConnLost                    = runfile.ConnLost
	GaugeBenchRSSBeforeConnect  = runfile.GaugeBenchRSSBeforeConnect
	GaugeBenchRSSConnected      = runfile.GaugeBenchRSSConnected
	GaugeBrokerRSSBeforeConnect = runfile.GaugeBrokerRSSBeforeConnect
	GaugeBrokerRSSConnected     = runfile.GaugeBrokerRSSConnected
)

// Target is the broker a run drives. bench never starts brokers itself; the
// launch package (or a test) provides a Target, so restart/kill actions work the
// same for every broker kind. Lifecycle methods return an error when the kind
// cannot do it (e.g. Kill on an external broker).
type Target interface {
	Kind() string        // bundled, mosquitto, external
	Version() string     // broker version string, "" if unknown
	Addr() string        // "tcp://127.0.0.1:PORT"
	PersistPath() string // persistence file to sample, "" if none
	ConfigLines() []string
	Save(ctx context.Context) error  // ask for a save now (SIGUSR1)
	Stop(ctx context.Context) error  // clean stop (SIGTERM): final save
	Kill(ctx context.Context) error  // SIGKILL: nothing saved
	Start(ctx context.Context) error // start again after Stop/Kill, same address and data
	PID() int                        // broker process id, 0 if not a local child
}

// Persist.FinalSource words.
const (
	FinalStop       = "stop"        // the broker's final save after a clean stop
	FinalWindowEnd  = "window_end"  // the last sample before the drain
	FinalLastSample = "last_sample" // no drain: the recording's last sample
)

// Latency holds percentiles in nanoseconds.
type Latency struct {
	Count int64 `json:"count"`
	P50   int64 `json:"p50_ns"`
	P90   int64 `json:"p90_ns"`
	P99   int64 `json:"p99_ns"`
	P999  int64 `json:"p99_9_ns"`
	Max   int64 `json:"max_ns"`
	Mean  int64 `json:"mean_ns"`
}

// SavePoint is one detected save of the persistence file.
type SavePoint struct {
	T         int64 `json:"t_ns"`
	SizeBytes int64 `json:"size_bytes"`
	Held      int64 `json:"held"`
	Queued    int64 `json:"queued"`
	Inflight  int64 `json:"inflight"`
	Stored    int64 `json:"stored"`
	Decoded   bool  `json:"decoded"`
	MsgBytes  int64 `json:"msg_bytes,omitempty"` // bytes of the file taken by messages, when decoded
}

// Persist summarizes the persistence file over the run.
type Persist struct {
	Path                string      `json:"path,omitempty"`
	AutosaveInterval    string      `json:"autosave_interval,omitempty"` // as configured, e.g. "3" (seconds) or "on_changes 100"
	MaxBytes            int64       `json:"max_bytes"`
	FinalBytes          int64       `json:"final_bytes"`
	Saves               int         `json:"saves"`
	SavePoints          []SavePoint `json:"save_points,omitempty"`
	MeanSavePeriodNS    int64       `json:"mean_save_period_ns"`
	BytesPerHeldMessage float64     `json:"bytes_per_held_message"` // slope of size vs held over decoded saves; 0 if unknown
	FixedBytes          float64     `json:"fixed_bytes"`            // intercept of the same fit
	DuplicateStoresSeen int64       `json:"duplicate_stores_seen"`  // max over saves of messages stored twice
	// FirstMinuteGrowthBytes is the seed experiment's own measure: how much the
	// file grew between the start of publishing and 60 s later (-1 when the run
	// was shorter than that).
	FirstMinuteGrowthBytes int64 `json:"first_minute_growth_bytes"`

	// FinalSource says which observation FinalBytes is, so two runs' final
	// sizes are only compared when they mean the same thing: "stop" (the last
	// save detected after a clean stop action: the broker's final save),
	// "window_end" (the last sample before the drain: the drain empties the
	// broker, and whether a timer save falls inside it is chance), "last_sample"
	// (no drain: the last sample of the recording), "" (never sampled).
	FinalSource string `json:"final_source,omitempty"`
	// EndBytes is the last sample of the recording, drain included.
	EndBytes int64 `json:"end_bytes"`
	// MaxStoredMessages is the most distinct messages (MSG_STORE records) a
	// decoded save held; MaxHeldDeliveries the most deliveries held for clients
	// (CLIENT_MSG records, one per subscriber and message). With two
	// subscribers a message is stored once and held twice.
	MaxStoredMessages int64 `json:"max_stored_messages"`
	MaxHeldDeliveries int64 `json:"max_held_deliveries"`

	// The autosave trade-off. Sampled is false when no persistence file was
	// sampled (an external broker without --db): the numbers below are then
	// unknown and encoded as null, which check skips.
	Sampled bool `json:"sampled"`
	// MaxSaveGapNS is the longest stretch of publishing without a save: from
	// the first acknowledgement to the first save, between saves, and from the
	// last save to the last acknowledgement.
	MaxSaveGapNS *int64 `json:"max_save_gap_ns"`
	// BytesWritten sums the sizes of every detected save: each save rewrites
	// the whole file, so this is what autosave cost the disk.
	BytesWritten *int64 `json:"bytes_written"`
	// BytesWrittenPerMin is BytesWritten over the time from the start of
	// publishing to the end of the recording.
	BytesWrittenPerMin *float64 `json:"bytes_written_per_min"`
	// ExposureMaxNS is the longest time an acknowledged message was held only
	// in memory: from its acknowledgement until the next save, the consumption
	// by every subscriber expecting it, a kill, or the end, whichever is first.
	ExposureMaxNS *int64 `json:"exposure_max_ns"`
	// PredictedCrashLoss is the worst case of a crash at the run's rate:
	// acknowledged messages per second times MaxSaveGapNS, capped by the most
	// messages held at once (acknowledged and not yet consumed by every
	// subscriber expecting them, less the broker's drops).
	PredictedCrashLoss *int64 `json:"predicted_crash_loss"`
}

// DropCounter says where dropped_by_broker comes from and whether it can be
// trusted to the end: the broker's $SYS counter is published once per
// sys_interval, so drops in the last interval may not have been seen yet.
type DropCounter struct {
	// Source is "$SYS" (the broker's publish/messages/dropped counter was
	// sampled) or "unknown" (no sample: dropped_by_broker is not a measured 0).
	Source  string `json:"source"`
	Samples int    `json:"samples"`
	// LastUpdateT is the last $SYS update of any counter: the broker's last
	// tick seen. AgeAtEndNS is the end of the recording minus that time.
	LastUpdateT int64 `json:"last_update_t_ns"`
	AgeAtEndNS  int64 `json:"age_at_end_ns"`
	// Stale is true when no $SYS update came after the last acknowledged
	// publish: drops of the last messages may be missing from the count.
	Stale bool `json:"stale"`
}

// ACLDecision is the scenario ACL's verdict for one publisher's messages to
// one subscriber: Verdict is ACLAllowed, ACLDeniedWrite or ACLDeniedRead.
type ACLDecision struct {
	Publisher  string `json:"publisher"`
	Subscriber string `json:"subscriber"`
	Topic      string `json:"topic"`
	Verdict    string `json:"verdict"`
	Messages   int64  `json:"messages"` // acknowledged publishes this verdict covers
}

// ACL verdicts (ACLDecision.Verdict).
const (
	ACLAllowed     = "allowed"
	ACLDeniedWrite = "denied: publisher may not write"
	ACLDeniedRead  = "denied: subscriber may not read"
)

// SubscriberSummary reconciles one subscriber: acked_for_it = delivered + held_at_end + dropped + lost.
type SubscriberSummary struct {
	Client     string `json:"client"`
	Expected   int64  `json:"expected"` // acked publishes that matched its filter
	Delivered  int64  `json:"delivered"`
	Duplicates int64  `json:"duplicates"`
	Reordered  int64  `json:"reordered"`
	HeldAtEnd  int64  `json:"held_at_end"`
	Dropped    int64  `json:"dropped"`
	Lost       int64  `json:"lost"`
	// DeniedByACL counts acknowledged publishes its filter matched that the
	// scenario's ACL keeps from it (not expected, not lost).
	DeniedByACL int64 `json:"denied_by_acl,omitempty"`
	// ExpiredOrLost counts messages with an MQTT 5 message expiry it never
	// got that had been acknowledged longer ago than their expiry when the
	// run ended: the broker may have discarded them as expired (Mosquitto
	// counts that nowhere a client can read), or lost them. Not in Lost.
	ExpiredOrLost int64 `json:"expired_or_lost,omitempty"`
}

// Summary is derived from the events only (Summarize), so any recorded run can be
// re-summarized with newer code. It is written as summary.json.
type Summary struct {
	Schema        int      `json:"schema"`
	RunID         string   `json:"run_id"`
	Scenario      string   `json:"scenario"`
	BrokerKind    string   `json:"broker_kind"`
	BrokerVersion string   `json:"broker_version"`
	Status        string   `json:"status"`
	Tainted       bool     `json:"tainted"`
	TaintReasons  []string `json:"taint_reasons,omitempty"`
	DurationNS    int64    `json:"duration_ns"`

	Published       int64 `json:"published"`
	Acked           int64 `json:"acked"`
	Delivered       int64 `json:"delivered"`
	Duplicates      int64 `json:"duplicates"`
	Lost            int64 `json:"lost"`
	Reordered       int64 `json:"reordered"`
	DroppedByBroker int64 `json:"dropped_by_broker"`
	HeldAtEnd       int64 `json:"held_at_end"`
	LostInCrash     int64 `json:"lost_in_crash"` // messages acked before a kill that no subscriber ever got
	// ExpiredOrLost sums the subscribers' (see SubscriberSummary).
	ExpiredOrLost int64 `json:"expired_or_lost,omitempty"`
	// Refused counts publishes the broker refused with an MQTT 5 reason
	// code of 0x80 or above (never acknowledged).
	Refused int64 `json:"refused,omitempty"`
	// ReasonCodes counts every MQTT 5 reason code received, by label
	// ("puback 0x10": 123); absent for MQTT 3.1.1 runs.
	ReasonCodes map[string]int64 `json:"reason_codes,omitempty"`

	// BrokerConfigSource says whose settings the header's broker_config lines
	// are: "launched" (mqbench wrote them and started the broker with them),
	// "file" (the broker's own configuration file), "unknown" (an external
	// broker: the lines are the scenario's, never applied to it).
	BrokerConfigSource string `json:"broker_config_source"`
	// Drops says where dropped_by_broker comes from and how fresh it is.
	Drops DropCounter `json:"drops"`

	// Crash is set when the scenario killed the broker: predicted against actual loss.
	Crash *CrashSummary `json:"crash,omitempty"`
	// Notes say where the events left room for interpretation (how held_at_end
	// was found, drops beyond what subscribers missed...), so a reader can judge
	// the numbers. They do not taint the run.
	Notes []string `json:"notes,omitempty"`
	// Phases holds when each phase began (connect, run, drain, done), ns since start.
	Phases map[string]int64 `json:"phases_ns,omitempty"`

	Subscribers []SubscriberSummary `json:"subscribers"`
	// ACL is, for a run whose scenario secured the broker with an ACL, what
	// it decided for each publisher and subscriber whose topic and filter
	// meet: the table of what was allowed and what was held back.
	ACL []ACLDecision `json:"acl,omitempty"`

	Publish struct {
		MsgsPerS   float64 `json:"msgs_per_s"`
		DurationNS int64   `json:"duration_ns"` // first pub to last ack
	} `json:"publish"`
	Deliver struct {
		MsgsPerS   float64 `json:"msgs_per_s"`
		DurationNS int64   `json:"duration_ns"` // first pub to last delivery before the drain
	} `json:"deliver"`
	Latency struct {
		PublishToAck Latency `json:"publish_to_ack"`
		// PublishToDelivery covers first deliveries during the observation
		// window; DrainDelivery those during the drain, which measure how long
		// held messages waited, not how fast the broker delivers.
		PublishToDelivery Latency `json:"publish_to_delivery"`
		DrainDelivery     Latency `json:"drain_delivery"`
	} `json:"latency"`

	Persist Persist `json:"persist"`

	Bench struct {
		MaxRSSBytes int64   `json:"max_rss_bytes"`
		CPUSeconds  float64 `json:"cpu_seconds"`
		// BytesPerConnection is what the run's connections added to
		// mqbench's resident memory, per connection open at the peak
		// (absent when unknown).
		BytesPerConnection *float64 `json:"bytes_per_connection,omitempty"`
	} `json:"bench"`
	BrokerProcess struct {
		MaxRSSBytes        int64    `json:"max_rss_bytes"`
		CPUSeconds         float64  `json:"cpu_seconds"`
		BytesPerConnection *float64 `json:"bytes_per_connection,omitempty"`
	} `json:"broker_process"`
	// Connections: the clients' connects and how many were open at once
	// (absent in runs recorded before connects were timed).
	Connections *ConnSummary `json:"connections,omitempty"`

	// Brokers describes each broker of a run with several, by name; Bridge
	// reconciles what crossed between them (see summarize_brokers.go).
	// Absent for one broker.
	Brokers map[string]*BrokerSummary `json:"brokers,omitempty"`
	Bridge  []BridgeFlow              `json:"bridge,omitempty"`
}
