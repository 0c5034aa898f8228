package broker

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// The read side's buffers. A connection that has gone quiet blocks in a read
// of a few bytes of its own; once bytes arrive it takes a buffered reader
// from a pool and keeps it while data moves, reading straight into it as
// before. When the buffer runs dry the next read still goes into it, but for
// at most idleHold: a connection that stays quiet that long gives the buffer
// back. So an idle connection holds no read buffer (issue #10), and a busy
// one reads with one system call per wake-up, as it did with a buffer of its
// own.

// readBufSize is the buffer a busy connection reads through.
const readBufSize = 4 << 10

// idleReadSize is what a quiet connection's blocking read takes: enough for
// a small packet (a PINGREQ, an acknowledgement) to be read whole.
const idleReadSize = 32

// idleHold is how long a connection whose buffer ran dry keeps it.
const idleHold = 20 * time.Millisecond

// handoffAfter is how long a connection that gave its buffer back waits
// before a fresh goroutine takes over its waiting (see conn.readOn): long
// enough that a connection merely between bursts keeps its goroutine.
const handoffAfter = 250 * time.Millisecond

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

// idleReader hands out a buffered reader while data moves.
type idleReader struct {
	nc       net.Conn
	src      io.Reader
	br       *bufio.Reader
	first    firstBytes
	small    [idleReadSize]byte
	deadline time.Time // the read deadline the connection's state asks for
}

// firstBytes reads b, then src.
type firstBytes struct {
	b   []byte
	src io.Reader
}

func (f *firstBytes) Read(p []byte) (int, error) {
	if len(f.b) > 0 {
		n := copy(p, f.b)
		f.b = f.b[n:]
		return n, nil
	}
	return f.src.Read(p)
}

// setDeadline sets the connection's read deadline (zero: none).
func (r *idleReader) setDeadline(t time.Time) {
	r.deadline = t
	_ = r.nc.SetReadDeadline(t)
}

// busy returns the reader to read the next packet from while data moves:
// the pooled one while it holds bytes or more arrive within idleHold. Its
// error is the read's (EOF, the deadline, a reset). quiet means there is no
// pooled reader (it went back, or there was none): the connection waits in
// wait for its next bytes.
func (r *idleReader) busy() (br *bufio.Reader, err error, quiet bool) {
	if r.br == nil {
		return nil, nil, true
	}
	if br, err, done := r.hold(); done {
		return br, err, false
	}
	r.release()
	return nil, nil, true
}

// hold is busy with a pooled reader: it or the read's error when bytes are
// buffered or arrive within idleHold (or the read fails otherwise); done is
// false when the connection went quiet and the reader should go back.
func (r *idleReader) hold() (br *bufio.Reader, err error, done bool) {
	if r.br.Buffered() > 0 {
		return r.br, nil, true
	}
	hold := time.Now().Add(idleHold)
	held := r.deadline.IsZero() || hold.Before(r.deadline)
	if held {
		_ = r.nc.SetReadDeadline(hold)
	}
	_, err = r.br.Peek(1)
	if held {
		_ = r.nc.SetReadDeadline(r.deadline)
	}
	var ne net.Error
	switch {
	case err == nil:
		return r.br, nil, true
	case !held || !errors.As(err, &ne) || !ne.Timeout():
		return nil, err, true
	}
	return nil, nil, false // quiet for idleHold (Reset clears the error)
}

// waitQuiet is wait for at most d (or until the connection's own deadline,
// when that is sooner): quiet when nothing arrived in d.
func (r *idleReader) waitQuiet(d time.Duration) (br *bufio.Reader, err error, quiet bool) {
	until := time.Now().Add(d)
	if !r.deadline.IsZero() && !until.Before(r.deadline) {
		br, err = r.wait()
		return br, err, false
	}
	_ = r.nc.SetReadDeadline(until)
	n, err := r.src.Read(r.small[:])
	_ = r.nc.SetReadDeadline(r.deadline)
	var ne net.Error
	switch {
	case n > 0:
		return r.take(n), nil, false
	case err == nil:
		br, err = r.wait()
		return br, err, false
	case errors.As(err, &ne) && ne.Timeout():
		return nil, nil, true
	}
	return nil, err, false
}

// wait blocks in the idle buffer's read until bytes arrive, then puts a
// pooled reader in front of them.
func (r *idleReader) wait() (*bufio.Reader, error) {
	for {
		n, err := r.src.Read(r.small[:])
		if n > 0 {
			return r.take(n), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// take puts a pooled reader in front of the n bytes read into small.
func (r *idleReader) take(n int) *bufio.Reader {
	r.first = firstBytes{b: r.small[:n], src: r.src}
	r.br = readerPool.Get().(*bufio.Reader)
	r.br.Reset(&r.first)
	return r.br
}

// release gives the pooled reader back (it holds no unread bytes).
func (r *idleReader) release() {
	if r.br != nil {
		r.br.Reset(nil)
		readerPool.Put(r.br)
		r.br = nil
	}
}
