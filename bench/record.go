package bench

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// File names inside a run directory. They are part of the on-disk contract:
// `mqbench report`, `compare` and `check` find a run's data by these names.
const (
	EventsFile  = "events.jsonl.gz"
	SummaryFile = "summary.json"
)

// Recorder tuning. A batch is handed to the compressing goroutine when it
// reaches recordBatchBytes, so emitters only ever append bytes to memory; the
// stream is flushed about every recordFlushEvery so a killed process leaves a
// readable prefix of at most that much lost time.
const (
	recordBatchBytes = 64 << 10
	recordBuffers    = 3
	recordFlushEvery = time.Second
	recordTick       = 100 * time.Millisecond
)

// Recorder writes the event stream of a run. Emit is on the hot path of every
// publish, acknowledgement and delivery, so it only encodes the event into an
// in-memory batch under a mutex; a single background goroutine compresses full
// batches and flushes the gzip stream every second. It is safe for concurrent
// use by many goroutines.
type Recorder struct {
	start time.Time
	path  string

	mu     sync.Mutex
	buf    []byte // batch being filled by Emit, guarded by mu
	closed bool   // guarded by mu

	full chan []byte // batches for the writer goroutine, in emit order
	free chan []byte // empty batches returned by the writer
	done chan struct{}

	// Owned by the writer goroutine until done is closed.
	file      *os.File
	bw        *bufio.Writer
	gz        *gzip.Writer
	err       error
	lastFlush time.Time
}

// NewRecorder creates the event file and writes the header line. path is the
// events file, or an existing directory in which EventsFile is created. An
// existing file is never overwritten: recorded runs are user data. A zero
// h.Start is set to now; Since counts from h.Start on the monotonic clock, so
// pass a time.Now() value (not one decoded from JSON) to keep it monotonic.
func NewRecorder(path string, h Header) (*Recorder, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, EventsFile)
	}
	if h.Start.IsZero() {
		h.Start = time.Now()
	}
	h.Type = "header"
	if h.Schema == 0 {
		h.Schema = EventSchema
	}
	line, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding header for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating event file: %w", err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	gz, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("creating gzip stream for %s: %w", path, err)
	}
	r := &Recorder{
		start:     h.Start,
		path:      path,
		buf:       make([]byte, 0, recordBatchBytes+1024),
		full:      make(chan []byte, 1),
		free:      make(chan []byte, recordBuffers),
		done:      make(chan struct{}),
		file:      f,
		bw:        bw,
		gz:        gz,
		lastFlush: time.Now(),
	}
	for i := 1; i < recordBuffers; i++ {
		r.free <- make([]byte, 0, recordBatchBytes+1024)
	}
	// The header goes out at once, so even a run killed in its first second
	// leaves a file that names itself.
	r.write(append(line, '\n'))
	r.flush()
	if r.err != nil {
		gz.Close()
		f.Close()
		return nil, r.err
	}
	go r.loop()
	return r, nil
}

// Path is the events file being written, for messages and for the reader.
func (r *Recorder) Path() string { return r.path }

// Start is the run's reference instant; every t_ns counts from it.
func (r *Recorder) Start() time.Time { return r.start }

// Since returns nanoseconds since the run's start on the monotonic clock, the
// time base of every event's t_ns.
func (r *Recorder) Since() int64 { return int64(time.Since(r.start)) }

// Emit records one event. It never blocks on I/O unless the writer is a whole
// batch behind (back-pressure instead of unbounded memory), and it cannot fail:
// a write error is reported by Close. Events emitted after Close are dropped.
func (r *Recorder) Emit(e Event) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.buf = appendEvent(r.buf, &e)
	if len(r.buf) >= recordBatchBytes {
		r.full <- r.buf
		r.buf = <-r.free
	}
	r.mu.Unlock()
}

// Close writes the footer, flushes and closes the file. It returns the first
// write error of the whole recording, so a run knows its record is incomplete.
func (r *Recorder) Close(f Footer) error {
	f.Type = "footer"
	if f.End.IsZero() {
		f.End = r.start.Add(time.Duration(r.Since()))
	}
	line, mErr := json.Marshal(f)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("recorder already closed")
	}
	r.closed = true
	if mErr == nil {
		r.buf = append(r.buf, line...)
		r.buf = append(r.buf, '\n')
	}
	r.full <- r.buf
	r.buf = nil
	close(r.full)
	r.mu.Unlock()
	<-r.done
	if mErr != nil && r.err == nil {
		r.err = fmt.Errorf("encoding footer for %s: %w", r.path, mErr)
	}
	return r.err
}

// loop is the single writer: it compresses batches in emit order and flushes
// the stream regularly. Only it touches the gzip stream and the file.
func (r *Recorder) loop() {
	defer close(r.done)
	tick := time.NewTicker(recordTick)
	defer tick.Stop()
	for {
		select {
		case b, ok := <-r.full:
			if !ok {
				r.finish()
				return
			}
			r.write(b)
			if cap(b) > 0 {
				r.free <- b[:0]
			}
		case <-tick.C:
			if time.Since(r.lastFlush) < recordFlushEvery {
				continue
			}
			// TryLock, not Lock: an emitter holding mu may be waiting for this
			// goroutine to take a full batch, so blocking here could deadlock.
			// A busy recorder rotates batches on its own; retry next tick.
			if !r.mu.TryLock() {
				continue
			}
			if r.closed {
				r.mu.Unlock()
				continue
			}
			// Batches queued before the current one must be written first.
			for drained := false; !drained; {
				select {
				case b := <-r.full:
					r.write(b)
					r.free <- b[:0]
				default:
					drained = true
				}
			}
			r.write(r.buf)
			r.buf = r.buf[:0]
			r.mu.Unlock()
			r.flush()
		}
	}
}

func (r *Recorder) write(b []byte) {
	if r.err != nil || len(b) == 0 {
		return
	}
	if _, err := r.gz.Write(b); err != nil {
		r.err = fmt.Errorf("writing %s: %w", r.path, err)
	}
}

// flush pushes everything written so far to the file as a complete deflate
// block, so a reader of a file cut here gets every line up to this point.
func (r *Recorder) flush() {
	r.lastFlush = time.Now()
	if r.err != nil {
		return
	}
	if err := r.gz.Flush(); err != nil {
		r.err = fmt.Errorf("flushing %s: %w", r.path, err)
		return
	}
	if err := r.bw.Flush(); err != nil {
		r.err = fmt.Errorf("flushing %s: %w", r.path, err)
	}
}

func (r *Recorder) finish() {
	if r.err == nil {
		if err := r.gz.Close(); err != nil {
			r.err = fmt.Errorf("closing gzip stream of %s: %w", r.path, err)
		}
	}
	if r.err == nil {
		if err := r.bw.Flush(); err != nil {
			r.err = fmt.Errorf("flushing %s: %w", r.path, err)
		}
	}
	if r.err == nil {
		if err := r.file.Sync(); err != nil {
			r.err = fmt.Errorf("syncing %s: %w", r.path, err)
		}
	}
	if err := r.file.Close(); err != nil && r.err == nil {
		r.err = fmt.Errorf("closing %s: %w", r.path, err)
	}
}

// appendEvent appends e as one JSON line, byte for byte what encoding/json
// would write for Event (field order, omitempty, escaping), but without
// reflection or allocation: it runs for every publish, ack and delivery. A test
// checks it against encoding/json for every field of Event, so a field added to
// Event without being added here fails the tests.
func appendEvent(b []byte, e *Event) []byte {
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
