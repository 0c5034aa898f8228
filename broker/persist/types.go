package persist

// DB is the whole content of a persistence file, in the order the chunks are
// written (Mosquitto 2.0.11 order: CFG, MSG_STOREs newest first, per client its
// CLIENT then its CLIENT_MSGs, SUBs, RETAINs).
type DB struct {
	Version  uint32 // db format version read (writes are always 6)
	LastDBID uint64 // CFG last_db_id: the store id counter
	Shutdown bool   // CFG shutdown: written by a clean exit
	DBIDSize uint8  // CFG dbid_size, always 8

	Stores     []MsgStore
	Clients    []Client
	ClientMsgs []ClientMsg
	Subs       []Sub
	Retains    []uint64 // store ids of retained messages

	// CFGChunks and UnknownChunks are what Read found, so Stats can count
	// chunks the way mosquitto_db_dump --stats does even for odd files (no
	// CFG, two CFGs, chunk types from a newer Mosquitto). Write ignores them:
	// it always writes exactly one CFG and never an unknown chunk.
	CFGChunks     int
	UnknownChunks int
}

// MsgStore is one stored message (MSG_STORE chunk).
type MsgStore struct {
	StoreID        uint64
	ExpiryTime     int64 // unix seconds, 0 = never
	SourceMid      uint16
	SourceID       string
	SourceUsername string
	SourcePort     uint16
	Topic          string
	QoS            uint8
	Retain         bool
	Payload        []byte
	Properties     []byte // MQTT 5 properties (raw, with varint length); nil when absent
}

// ClientMsg is one delivery held for a client (CLIENT_MSG chunk).
type ClientMsg struct {
	ClientID   string
	StoreID    uint64
	Mid        uint16
	QoS        uint8
	State      uint8 // see the State* constants
	Retain     bool
	Dup        bool
	Direction  uint8 // 0 in, 1 out
	Properties []byte
}

// Client is a persistent session (CLIENT chunk).
type Client struct {
	ClientID              string
	Username              string
	LastMid               uint16
	SessionExpiryTime     int64
	SessionExpiryInterval uint32 // 0xFFFFFFFF for an MQTT 3.1.1 persistent session
	ListenerPort          uint16
	DisconnectTime        int64 // formats 3-4 only
}

// Sub is one subscription of a persistent session (SUB chunk).
type Sub struct {
	ClientID   string
	Topic      string
	QoS        uint8
	Identifier uint32
	Options    uint8 // bit 2 no_local, bit 3 retain_as_published
}

// Direction values of ClientMsg.
const (
	DirIn  uint8 = 0
	DirOut uint8 = 1
)

// State values of ClientMsg, as Mosquitto numbers them.
const (
	StateInvalid        uint8 = 0
	StatePublishQoS0    uint8 = 1
	StatePublishQoS1    uint8 = 2
	StateWaitForPuback  uint8 = 3
	StatePublishQoS2    uint8 = 4
	StateWaitForPubrec  uint8 = 5
	StateResendPubrel   uint8 = 6
	StateWaitForPubrel  uint8 = 7
	StateResendPubcomp  uint8 = 8
	StateWaitForPubcomp uint8 = 9
	StateSendPubrec     uint8 = 10
	StateQueued         uint8 = 11
)

// Chunk types.
const (
	ChunkCFG       = 1
	ChunkMsgStore  = 2
	ChunkClientMsg = 3
	ChunkRetain    = 4
	ChunkSub       = 5
	ChunkClient    = 6
)
