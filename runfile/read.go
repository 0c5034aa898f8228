package runfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Reader decodes the JSON lines of an event file (uncompressed) from any
// reader: the header first, then one event per Next. name is the file's name
// for errors.
type Reader struct {
	Header Header
	// Footer and Tail are set when Next has returned nil: the footer, or why
	// reading stopped before one (see Run.Tail).
	Footer *Footer
	Tail   string

	br     *bufio.Reader
	name   string
	lineNo int
	offset int64 // uncompressed offset of the current line
	ev     Event
	done   bool
}

// NewReader reads and checks the header line.
func NewReader(r io.Reader, name string) (*Reader, error) {
	er := &Reader{br: bufio.NewReaderSize(r, 256<<10), name: name, lineNo: 1}
	line, rerr := readLine(er.br)
	if len(line) == 0 {
		if rerr == nil || errors.Is(rerr, io.EOF) {
			return nil, fmt.Errorf("reading %s: empty event file, no header", name)
		}
		return nil, fmt.Errorf("reading %s: header: %w", name, rerr)
	}
	if line[len(line)-1] != '\n' {
		return nil, fmt.Errorf("reading %s: line 1: header is incomplete (%d bytes, no end of line): %v", name, len(line), rerr)
	}
	h := &er.Header
	if err := json.Unmarshal(line, h); err != nil {
		return nil, fmt.Errorf("reading %s: line 1: bad header: %w", name, err)
	}
	if h.Type != "header" {
		return nil, fmt.Errorf("reading %s: line 1: first line has type %q, want \"header\"", name, h.Type)
	}
	if h.Schema < 1 {
		return nil, fmt.Errorf("reading %s: line 1: header has no schema version", name)
	}
	if h.Schema > Schema {
		return nil, fmt.Errorf("reading %s: event schema %d is newer than this mqbench understands (%d): upgrade mqbench", name, h.Schema, Schema)
	}
	er.offset = int64(len(line))
	return er, nil
}

// Next returns the next event, or nil when the events end: at the footer, at
// the end of the stream, or at a line that cannot be read (then Tail says
// which). The event is reused by the following call.
func (er *Reader) Next() *Event {
	for !er.done {
		er.lineNo++
		line, rerr := readLine(er.br)
		if len(line) == 0 {
			er.done = true
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				// gzip's unexpected EOF, a checksum or deflate error right at a
				// line boundary: the file was cut or damaged; every line before
				// is good.
				er.Tail = fmt.Sprintf("at byte %d: %v", er.offset, rerr)
			}
			return nil
		}
		if line[len(line)-1] != '\n' {
			er.done = true
			er.Tail = fmt.Sprintf("line %d at byte %d: incomplete last line (%d bytes)", er.lineNo, er.offset, len(line))
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				er.Tail += ": " + rerr.Error()
			}
			return nil
		}
		at := er.offset
		er.offset += int64(len(line))
		body := bytes.TrimSpace(line)
		if len(body) == 0 {
			continue
		}
		er.ev = Event{}
		if err := json.Unmarshal(body, &er.ev); err != nil {
			er.done = true
			er.Tail = fmt.Sprintf("line %d at byte %d: %v", er.lineNo, at, err)
			return nil
		}
		if er.ev.Type == "footer" {
			er.done = true
			var ft Footer
			if err := json.Unmarshal(body, &ft); err != nil {
				er.Tail = fmt.Sprintf("line %d at byte %d: bad footer: %v", er.lineNo, at, err)
				return nil
			}
			er.Footer = &ft
			return nil
		}
		return &er.ev
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
