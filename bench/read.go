package bench

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"github.com/mqbench/mqbench/runfile"
	"os"
	"path/filepath"
)

// Run is a recorded run as read back from its event file: the input of
// Summarize and of every report, so any old run can be re-rendered.
type Run struct {
	Dir    string  // directory holding the event file
	Path   string  // the event file itself
	Header Header  // first line
	Events []Event // every line between header and footer, in file order
	Footer *Footer // nil when the recording was cut short
	// Tail says why reading stopped before a footer (truncated gzip stream,
	// half-written line), with the line number and uncompressed byte offset;
	// "" when the file ended with a footer or cleanly without one.
	Tail string
}

// ReadRun reads a run directory or an events file into memory. The recording
// process may have died mid-write, so a truncated or corrupt tail is not an
// error: the events read so far are returned, Footer is nil and Tail says
// where it stopped. A missing or unreadable header, or a schema newer than this
// code understands, is an error naming the file. Unknown event types are kept,
// so older code can still summarize what it knows of a newer file. A long run
// does not fit in memory this way: OpenRun reads one event at a time.
func ReadRun(path string) (*Run, error) {
	rr, err := OpenRun(path)
	if err != nil {
		return nil, err
	}
	defer rr.Close()
	// Events go into fixed-size chunks joined once at the end: appending to
	// one slice would copy a long run several times over.
	var chunks eventChunks
	for e := rr.Next(); e != nil; e = rr.Next() {
		*chunks.next() = *e
	}
	run := rr.Run()
	run.Events = chunks.all()
	return run, nil
}

// RunReader reads a recorded run one event at a time, so a run of any
// length is read in constant memory. OpenRun has read the header; Next
// returns the events; once it returns nil, Run says how the file ended.
type RunReader struct {
	f   *os.File
	gz  *gzip.Reader
	run Run
	er  *runfile.Reader
}

// OpenRun opens a run directory or an events file and reads its header (see
// ReadRun for what is an error and what is a cut-short tail).
func OpenRun(path string) (*RunReader, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading run: %w", err)
	}
	if fi.IsDir() {
		path = filepath.Join(path, EventsFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading run: %w", err)
	}
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: not a gzip event file: %w", path, err)
	}
	er, err := runfile.NewReader(gz, path)
	if err != nil {
		gz.Close()
		f.Close()
		return nil, err
	}
	return &RunReader{f: f, gz: gz, er: er, run: Run{Dir: filepath.Dir(path), Path: path, Header: er.Header}}, nil
}

// Next returns the next event, or nil at the end of the events. The event is
// reused by the following call.
func (r *RunReader) Next() *Event { return r.er.Next() }

// Run is the run read so far without its events: header, and after the last
// Next its footer and tail.
func (r *RunReader) Run() *Run {
	run := r.run
	run.Footer, run.Tail = r.er.Footer, r.er.Tail
	return &run
}

// Close closes the file.
func (r *RunReader) Close() error {
	r.gz.Close()
	return r.f.Close()
}

// SummarizeFile summarizes the run in a directory or events file, one event
// at a time in two passes (ScanRun, then the Summarizer): its memory does not
// hold the events.
func SummarizeFile(path string) (Summary, error) {
	in, err := ScanRun(path)
	if err != nil {
		return Summary{}, err
	}
	rr, err := OpenRun(path)
	if err != nil {
		return Summary{}, err
	}
	defer rr.Close()
	z := NewSummarizer(rr.Run().Header, in)
	for e := rr.Next(); e != nil; e = rr.Next() {
		z.Add(e)
	}
	run := rr.Run()
	return z.Close(run.Footer, run.Tail), nil
}

// eventChunks collects decoded events in chunks of eventChunkLen.
type eventChunks struct {
	full [][]Event
	cur  []Event
	n    int
}

const eventChunkLen = 8192

// next returns a zeroed slot for the next event.
func (c *eventChunks) next() *Event {
	if len(c.cur) == cap(c.cur) {
		if c.cur != nil {
			c.full = append(c.full, c.cur)
		}
		c.cur = make([]Event, 0, eventChunkLen)
	}
	c.cur = c.cur[:len(c.cur)+1]
	c.n++
	ev := &c.cur[len(c.cur)-1]
	*ev = Event{}
	return ev
}

// all returns the events in order as one slice.
func (c *eventChunks) all() []Event {
	if len(c.full) == 0 {
		return c.cur
	}
	out := make([]Event, 0, c.n)
	for _, ch := range c.full {
		out = append(out, ch...)
	}
	return append(out, c.cur...)
}
