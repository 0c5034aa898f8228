package bench

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// ReadRun reads a run directory or an events file. The recording process may
// have died mid-write, so a truncated or corrupt tail is not an error: the
// events read so far are returned, Footer is nil and Tail says where it
// stopped. A missing or unreadable header, or a schema newer than this code
// understands, is an error naming the file. Unknown event types are kept, so
// older code can still summarize what it knows of a newer file.
func ReadRun(path string) (*Run, error) {
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
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("reading %s: not a gzip event file: %w", path, err)
	}
	defer gz.Close()
	run := &Run{Dir: filepath.Dir(path), Path: path}
	if err := readEvents(gz, path, run); err != nil {
		return nil, err
	}
	return run, nil
}

// readEvents parses the decompressed JSON lines of an event file into run.
func readEvents(r io.Reader, path string, run *Run) error {
	br := bufio.NewReaderSize(r, 256<<10)

	line, rerr := readLine(br)
	if len(line) == 0 {
		if rerr == nil || errors.Is(rerr, io.EOF) {
			return fmt.Errorf("reading %s: empty event file, no header", path)
		}
		return fmt.Errorf("reading %s: header: %w", path, rerr)
	}
	if line[len(line)-1] != '\n' {
		return fmt.Errorf("reading %s: line 1: header is incomplete (%d bytes, no end of line): %v", path, len(line), rerr)
	}
	if err := json.Unmarshal(line, &run.Header); err != nil {
		return fmt.Errorf("reading %s: line 1: bad header: %w", path, err)
	}
	if run.Header.Type != "header" {
		return fmt.Errorf("reading %s: line 1: first line has type %q, want \"header\"", path, run.Header.Type)
	}
	if run.Header.Schema < 1 {
		return fmt.Errorf("reading %s: line 1: header has no schema version", path)
	}
	if run.Header.Schema > EventSchema {
		return fmt.Errorf("reading %s: event schema %d is newer than this mqbench understands (%d): upgrade mqbench", path, run.Header.Schema, EventSchema)
	}

	// Events go into fixed-size chunks joined once at the end: appending to
	// one slice would copy a long run several times over.
	var chunks eventChunks
	defer func() { run.Events = chunks.all() }()
	offset := int64(len(line)) // uncompressed offset of the current line
	for lineNo := 2; ; lineNo++ {
		line, rerr = readLine(br)
		if len(line) == 0 {
			break
		}
		if line[len(line)-1] != '\n' {
			run.Tail = fmt.Sprintf("line %d at byte %d: incomplete last line (%d bytes)", lineNo, offset, len(line))
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				run.Tail += ": " + rerr.Error()
			}
			return nil
		}
		body := bytes.TrimSpace(line)
		if len(body) > 0 {
			ev := chunks.next()
			if err := json.Unmarshal(body, ev); err != nil {
				chunks.drop()
				run.Tail = fmt.Sprintf("line %d at byte %d: %v", lineNo, offset, err)
				return nil
			}
			if ev.Type == "footer" {
				chunks.drop()
				var ft Footer
				if err := json.Unmarshal(body, &ft); err != nil {
					run.Tail = fmt.Sprintf("line %d at byte %d: bad footer: %v", lineNo, offset, err)
					return nil
				}
				run.Footer = &ft
				return nil
			}
		}
		offset += int64(len(line))
	}
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		// gzip's unexpected EOF, a checksum or deflate error right at a line
		// boundary: the file was cut or damaged; every line before is good.
		run.Tail = fmt.Sprintf("at byte %d: %v", offset, rerr)
	}
	return nil
}

// readLine returns the next line including its newline; a line without one is
// the last, cut short. Lines longer than the buffer are assembled in a copy.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	long := append([]byte(nil), line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		line, err = br.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
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

// drop takes back the slot last returned by next.
func (c *eventChunks) drop() {
	c.cur = c.cur[:len(c.cur)-1]
	c.n--
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
