package runfile

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// Writer writes a run record to any io.Writer (compression and batching are
// the caller's: the engine's Recorder gzips and batches around it).
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter writes the header line (Type and a zero Schema are filled in).
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	line, err := HeaderLine(h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(line); err != nil {
		return nil, fmt.Errorf("writing header: %w", err)
	}
	return &Writer{w: w}, nil
}

// Write writes one event line.
func (w *Writer) Write(e *Event) error {
	w.buf = AppendEvent(w.buf[:0], e)
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("writing event: %w", err)
	}
	return nil
}

// Close writes the footer line (Type is filled in). It does not close the
// underlying writer.
func (w *Writer) Close(f Footer) error {
	line, err := FooterLine(f)
	if err != nil {
		return err
	}
	if _, err := w.w.Write(line); err != nil {
		return fmt.Errorf("writing footer: %w", err)
	}
	return nil
}

// HeaderLine encodes the header as its line, with Type "header" and, when
// unset, the Schema of this code and the brokers' resolved settings (every
// header is written through here, so every new run records them).
func HeaderLine(h Header) ([]byte, error) {
	h.Type = "header"
	if h.Schema == 0 {
		h.Schema = Schema
	}
	if h.BrokerSettings == nil {
		h.BrokerSettings = resolveHeader(&h)
	}
	if len(h.Named) > 0 {
		h.Named = slices.Clone(h.Named) // the caller's header stays as it was
		for i := range h.Named {
			h.Named[i].Settings = h.Named[i].ResolvedSettings()
		}
	}
	line, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding header: %w", err)
	}
	return append(line, '\n'), nil
}

// FooterLine encodes the footer as its line, with Type "footer".
func FooterLine(f Footer) ([]byte, error) {
	f.Type = "footer"
	line, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encoding footer: %w", err)
	}
	return append(line, '\n'), nil
}

// AppendEvent appends e as one JSON line, byte for byte what encoding/json
// would write for Event (field order, omitempty, escaping), but without
// reflection or allocation: it runs for every publish, ack and delivery. A test
// checks it against encoding/json for every field of Event, so a field added to
// Event without being added here fails the tests.
func AppendEvent(b []byte, e *Event) []byte {
	b = append(b, `{"t_ns":`...)
	b = strconv.AppendInt(b, e.T, 10)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	if e.Client != "" {
		b = append(b, `,"client":`...)
		b = appendString(b, e.Client)
	}
	if e.Pub != "" {
		b = append(b, `,"pub":`...)
		b = appendString(b, e.Pub)
	}
	if e.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, e.Seq, 10)
	}
	if e.QoS != 0 {
		b = append(b, `,"qos":`...)
		b = strconv.AppendUint(b, uint64(e.QoS), 10)
	}
	if e.Dup {
		b = append(b, `,"dup":true`...)
	}
	if e.Size != 0 {
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, int64(e.Size), 10)
	}
	if e.PubT != 0 {
		b = append(b, `,"pub_t_ns":`...)
		b = strconv.AppendInt(b, e.PubT, 10)
	}
	if e.Dur != 0 {
		b = append(b, `,"dur_ns":`...)
		b = strconv.AppendInt(b, e.Dur, 10)
	}
	if e.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, e.Name)
	}
	if e.Value != 0 && !math.IsNaN(e.Value) && !math.IsInf(e.Value, 0) {
		// NaN and Inf have no JSON form; they are left out (read back as 0)
		// rather than making the whole line unreadable.
		b = append(b, `,"value":`...)
		b = appendFloat(b, e.Value)
	}
	if e.SizeBytes != 0 {
		b = append(b, `,"size_bytes":`...)
		b = strconv.AppendInt(b, e.SizeBytes, 10)
	}
	if e.Held != 0 {
		b = append(b, `,"held":`...)
		b = strconv.AppendInt(b, e.Held, 10)
	}
	if e.Queued != 0 {
		b = append(b, `,"queued":`...)
		b = strconv.AppendInt(b, e.Queued, 10)
	}
	if e.Inflight != 0 {
		b = append(b, `,"inflight":`...)
		b = strconv.AppendInt(b, e.Inflight, 10)
	}
	if e.Stored != 0 {
		b = append(b, `,"stored":`...)
		b = strconv.AppendInt(b, e.Stored, 10)
	}
	if e.DupStores != 0 {
		b = append(b, `,"dup_stores":`...)
		b = strconv.AppendInt(b, e.DupStores, 10)
	}
	if e.MsgBytes != 0 {
		b = append(b, `,"msg_bytes":`...)
		b = strconv.AppendInt(b, e.MsgBytes, 10)
	}
	if e.Decoded {
		b = append(b, `,"decoded":true`...)
	}
	if e.Action != "" {
		b = append(b, `,"action":`...)
		b = appendString(b, e.Action)
	}
	if e.Target != "" {
		b = append(b, `,"target":`...)
		b = appendString(b, e.Target)
	}
	if e.Err != "" {
		b = append(b, `,"err":`...)
		b = appendString(b, e.Err)
	}
	if e.Level != "" {
		b = append(b, `,"level":`...)
		b = appendString(b, e.Level)
	}
	if e.Msg != "" {
		b = append(b, `,"msg":`...)
		b = appendString(b, e.Msg)
	}
	if e.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, e.Reason)
	}
	if e.Broker != "" {
		b = append(b, `,"broker":`...)
		b = appendString(b, e.Broker)
	}
	return append(b, '}', '\n')
}

// appendString writes s as a JSON string. Plain ASCII (client ids, event
// types, gauge names) is copied as is; anything else goes through
// encoding/json so escaping matches it exactly, including invalid UTF-8.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendFloat formats f exactly as encoding/json does for a float64.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
