// Package scenarios defines what a run does: the broker settings, publishers,
// subscribers, timed actions, sampling and pass/fail thresholds. Scenarios are
// YAML, shipped ones are embedded so `mqbench run persist-3s` needs no files, and
// every error names the file, line and field so a typo costs seconds.
package scenarios

// Scenario is one experiment. The struct is the schema: yaml tags for files,
// json tags for the copy recorded in the run header.
type Scenario struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Broker holds mosquitto.conf keys in file order, used verbatim for every broker
	// kind. A key may carry a list value (e.g. autosave_interval: [1, 3, 10, 30]):
	// that is a sweep, expanded by Expand into one scenario per value.
	Broker []BrokerSetting `yaml:"-" json:"broker"`
	// Brokers, when given, runs several brokers (an edge bridged to a
	// core): see NamedBroker. Empty for the one broker of Broker.
	Brokers     []NamedBroker `yaml:"-" json:"brokers,omitempty"`
	Publishers  []Publisher   `yaml:"publishers" json:"publishers"`
	Subscribers []Subscriber  `yaml:"subscribers" json:"subscribers"`
	Actions     []Action      `yaml:"actions,omitempty" json:"actions,omitempty"`
	Sample      Sample        `yaml:"sample,omitempty" json:"sample"`
	// Connect is how every client connects (credentials, TLS, keepalive,
	// will); a group's own connect section is merged over it (see Connect).
	Connect *Connect `yaml:"connect,omitempty" json:"connect,omitempty"`
	// Protocol is the MQTT protocol level every group speaks unless it says
	// otherwise: 3 (3.1), 4 (3.1.1, the default) or 5. It is run-wide and per
	// group so one run can set a v5 subscriber against a 3.1.1 publisher.
	Protocol int `yaml:"protocol,omitempty" json:"protocol,omitempty"`
	// Security secures a broker mqbench starts with generated certificates,
	// password and ACL files (see Security).
	Security *Security `yaml:"security,omitempty" json:"security,omitempty"`
	// Duration is how long the run is observed after publishing starts.
	Duration Duration `yaml:"duration" json:"duration"`
	// Drain: after Duration, subscribers consume as fast as they can for at most
	// DrainTimeout so the run measures what the broker still held (held_at_end).
	Drain        *bool    `yaml:"drain,omitempty" json:"drain,omitempty"`
	DrainTimeout Duration `yaml:"drain_timeout,omitempty" json:"drain_timeout,omitempty"`
	// Thresholds are checked by `mqbench check`: "lost == 0", "persist.max_bytes <= 3MB".
	Thresholds []string `yaml:"thresholds,omitempty" json:"thresholds,omitempty"`
	// TimeScale is the factor Scale applied to every duration (0 or 1 = as written),
	// recorded so a shortened run is never mistaken for the full experiment.
	TimeScale float64 `yaml:"-" json:"time_scale,omitempty"`
	// Shard, when set, is the share of the scenario this instance runs
	// (--shard I/N): see Shard. Recorded in the header so a merge knows which
	// parts it has.
	Shard *Shard `yaml:"-" json:"shard,omitempty"`
	// Source names where the scenario came from (shipped file name or path), for errors.
	Source string `yaml:"-" json:"source,omitempty"`

	// pos maps a field path ("publishers[0].qos") to where it was set
	// ("persist-3s.yaml:14" or "--set publishers.0.qos"), so validation errors
	// point at the line to fix.
	pos map[string]string
}

// BrokerSetting is one mosquitto.conf line: key and value(s). Values has more than
// one entry only for a sweep.
type BrokerSetting struct {
	Key    string   `json:"key"`
	Values []string `json:"values"`
	Line   int      `json:"-"` // line in the scenario file, for errors
}

// Publisher describes Count identical publishers.
type Publisher struct {
	ClientID string  `yaml:"client_id,omitempty" json:"client_id"` // "pub" or a template with %d (1-based); default "pub-%d" when Count>1
	Count    int     `yaml:"count,omitempty" json:"count"`         // default 1
	Messages int     `yaml:"messages" json:"messages"`             // per publisher
	QoS      byte    `yaml:"qos" json:"qos"`
	Topic    string  `yaml:"topic" json:"topic"`
	Retain   bool    `yaml:"retain,omitempty" json:"retain,omitempty"`
	Payload  Payload `yaml:"payload,omitempty" json:"payload"`
	// Rate in messages per second; 0 = unlimited. RateScope "per_publisher" (default) or "global".
	Rate      float64 `yaml:"rate,omitempty" json:"rate,omitempty"`
	RateScope string  `yaml:"rate_scope,omitempty" json:"rate_scope,omitempty"`
	// Inflight is how many publishes may await acknowledgement at once (default 1; 0 is invalid).
	Inflight int `yaml:"inflight,omitempty" json:"inflight"`
	// ConnectionPerMessage opens a new connection for every message, as paho-mqtt's publish.single did.
	ConnectionPerMessage bool     `yaml:"connection_per_message,omitempty" json:"connection_per_message,omitempty"`
	CleanSession         *bool    `yaml:"clean_session,omitempty" json:"clean_session,omitempty"` // default true
	StartAt              Duration `yaml:"start_at,omitempty" json:"start_at,omitempty"`
	// Client is the MQTT client implementation: "lean" (default for one persistent
	// connection) or "paho". The lean client speaks through paho's packet codec
	// without paho's per-message token and store, so a run measures the broker
	// (~40k QoS 2 msgs/s) rather than the client (~10k with paho). "paho" keeps
	// the library client, e.g. to compare, or for behaviour only paho has;
	// connection_per_message always uses paho, as the seed experiment used
	// paho-mqtt's publish.single.
	Client string `yaml:"client,omitempty" json:"client,omitempty"`
	// Connect is merged over the scenario's run-wide connect section.
	Connect *Connect `yaml:"connect,omitempty" json:"connect,omitempty"`
	// Protocol overrides the scenario's protocol for this group (3, 4 or 5).
	Protocol int `yaml:"protocol,omitempty" json:"protocol,omitempty"`
	// Broker names the broker of the scenario's brokers list the group
	// connects to (default: the first); empty with one broker.
	Broker string `yaml:"broker,omitempty" json:"broker,omitempty"`

	// MQTT 5 properties put on every PUBLISH; errors on a group that does
	// not speak MQTT 5, so a property never silently vanishes on the wire.
	// MessageExpiry is the message expiry interval (whole seconds on the
	// wire): a message the broker holds longer is discarded, not delivered.
	MessageExpiry Duration `yaml:"message_expiry,omitempty" json:"message_expiry,omitempty"`
	// UserProperties are sent as user properties, in key order.
	UserProperties map[string]string `yaml:"user_properties,omitempty" json:"user_properties,omitempty"`
	// TopicAlias sends the topic once with alias 1, then the alias alone,
	// when the broker's CONNACK allows aliases.
	TopicAlias    bool   `yaml:"topic_alias,omitempty" json:"topic_alias,omitempty"`
	ContentType   string `yaml:"content_type,omitempty" json:"content_type,omitempty"`
	ResponseTopic string `yaml:"response_topic,omitempty" json:"response_topic,omitempty"`
}

// MQTT protocol levels (Scenario.Protocol and the groups').
const (
	Protocol31  = 3
	Protocol311 = 4
	Protocol5   = 5
)

// Client implementations (Publisher.Client, Subscriber.Client).
const (
	ClientLean = "lean" // mqbench's lean publisher on paho's packets codec
	ClientPaho = "paho" // github.com/eclipse/paho.mqtt.golang's client
)

// Payload says what each message carries. Every payload embeds the publisher id and
// sequence number so deliveries can be matched, duplicates and reorders found.
type Payload struct {
	// Kind: "experiment" (the seed experiment's JSON: id, Timestamp, str1, str2; default),
	// "random" (Size random bytes, with the id header inside), "template" (Template with
	// {{.Seq}}, {{.Pub}}, {{.Timestamp}}, {{.Random N}}).
	Kind     string `yaml:"kind,omitempty" json:"kind"`
	Size     int    `yaml:"size,omitempty" json:"size,omitempty"`
	Template string `yaml:"template,omitempty" json:"template,omitempty"`
}

// Subscriber describes Count identical subscribers.
type Subscriber struct {
	ClientID     string `yaml:"client_id,omitempty" json:"client_id"` // default "sub-%d" / "slowsub" style ids
	Count        int    `yaml:"count,omitempty" json:"count"`
	Filter       string `yaml:"filter" json:"filter"`
	QoS          byte   `yaml:"qos" json:"qos"`
	CleanSession *bool  `yaml:"clean_session,omitempty" json:"clean_session,omitempty"` // default true
	// Pace: consume one message per Pace (0 = as fast as possible).
	Pace Duration `yaml:"pace,omitempty" json:"pace,omitempty"`
	// PaceMode "ack" (default: messages are received, acknowledgements released one per
	// Pace, the connection stays healthy) or "block" (the handler sleeps Pace, as the
	// original experiment's callback did; keepalive may suffer, which is recorded).
	PaceMode string   `yaml:"pace_mode,omitempty" json:"pace_mode,omitempty"`
	StartAt  Duration `yaml:"start_at,omitempty" json:"start_at,omitempty"`
	// Connect is merged over the scenario's run-wide connect section.
	Connect *Connect `yaml:"connect,omitempty" json:"connect,omitempty"`
	// Protocol overrides the scenario's protocol for this group (3, 4 or 5).
	Protocol int `yaml:"protocol,omitempty" json:"protocol,omitempty"`
	// Client is the MQTT client implementation: "lean" (default, also when
	// empty: the lean publisher's codec and dialing on the receiving side,
	// bench/leansub.go, which keeps up with the broker where hundreds of paho
	// subscribers fall behind) or "paho" (paho.mqtt.golang for 3.1/3.1.1,
	// paho.golang for MQTT 5). Left empty in a recorded scenario, so runs
	// recorded before the field existed read the same.
	Client string `yaml:"client,omitempty" json:"client,omitempty"`
	// ConnectRate caps how many of the group's clients connect per second
	// at the start (a ramp, as a fleet of devices comes online); 0 connects
	// them as fast as the start barrier allows.
	ConnectRate float64 `yaml:"connect_rate,omitempty" json:"connect_rate,omitempty"`
	// Broker names the broker of the scenario's brokers list the group
	// connects to (default: the first); empty with one broker.
	Broker string `yaml:"broker,omitempty" json:"broker,omitempty"`

	// MQTT 5 settings, errors on a group that does not speak MQTT 5.
	// SessionExpiry is how long the broker keeps the session after the
	// connection ends; with clean_session false and no session_expiry the
	// session never expires, as a 3.1.1 persistent session.
	SessionExpiry Duration `yaml:"session_expiry,omitempty" json:"session_expiry,omitempty"`
	// ReceiveMaximum caps the QoS 1/2 deliveries in flight to the subscriber.
	ReceiveMaximum int  `yaml:"receive_maximum,omitempty" json:"receive_maximum,omitempty"`
	NoLocal        bool `yaml:"no_local,omitempty" json:"no_local,omitempty"`
	// SharedGroup subscribes $share/GROUP/FILTER: the group's subscribers
	// (and any other group naming it) split the matching messages.
	SharedGroup string `yaml:"shared_group,omitempty" json:"shared_group,omitempty"`
}

// Lean says whether the group runs on the lean subscriber (the default).
func (s Subscriber) Lean() bool { return s.Client != ClientPaho }

// SubscribeFilter is the filter sent in SUBSCRIBE: $share/GROUP/FILTER for
// a shared group, else the filter itself.
func (s Subscriber) SubscribeFilter() string {
	if s.SharedGroup != "" {
		return "$share/" + s.SharedGroup + "/" + s.Filter
	}
	return s.Filter
}

// Action runs at a given time after the start.
type Action struct {
	At Duration `yaml:"at" json:"at"`
	// Do: save, stop, kill, start (broker); disconnect, reconnect (subscriber named by Target).
	// With several brokers a broker action's Target names the broker.
	Do     string `yaml:"do" json:"do"`
	Target string `yaml:"target,omitempty" json:"target,omitempty"`
	Line   int    `yaml:"-" json:"-"`
}

// The words of Action.Do, which are also the Action of the action events a
// run records: the broker's (save, stop, kill, start) and a subscriber's
// (disconnect, reconnect).
const (
	DoSave       = "save"
	DoStop       = "stop"
	DoKill       = "kill"
	DoStart      = "start"
	DoDisconnect = "disconnect"
	DoReconnect  = "reconnect"
)

// Sample configures the sampler.
type Sample struct {
	Interval Duration `yaml:"interval,omitempty" json:"interval"` // default 100ms
	// Decode each detected save with broker/persist (default true).
	Decode *bool `yaml:"decode,omitempty" json:"decode,omitempty"`
	// SYS subscribes to the broker's $SYS counters (default true).
	SYS *bool `yaml:"sys,omitempty" json:"sys,omitempty"`
}
