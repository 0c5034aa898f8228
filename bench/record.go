package bench

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"github.com/mqbench/mqbench/runfile"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// File names inside a run directory. They are part of the on-disk contract:
// `mqbench report`, `compare` and `check` find a run's data by these names.
const (
	EventsFile  = runfile.EventsFile
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
	line, err := runfile.HeaderLine(h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
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
	r.write(line)
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
	r.buf = runfile.AppendEvent(r.buf, &e)
	if len(r.buf) >= recordBatchBytes {
		r.full <- r.buf
		r.buf = <-r.free
	}
	r.mu.Unlock()
}

// Close writes the footer, flushes and closes the file. It returns the first
// write error of the whole recording, so a run knows its record is incomplete.
func (r *Recorder) Close(f Footer) error {
	if f.End.IsZero() {
		f.End = r.start.Add(time.Duration(r.Since()))
	}
	line, mErr := runfile.FooterLine(f)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("recorder already closed")
	}
	r.closed = true
	if mErr == nil {
		r.buf = append(r.buf, line...)
	}
	r.full <- r.buf
	r.buf = nil
	close(r.full)
	r.mu.Unlock()
	<-r.done
	if mErr != nil && r.err == nil {
		r.err = fmt.Errorf("%s: %w", r.path, mErr)
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
