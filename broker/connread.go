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

// next returns the reader to read the next packet from: the pooled one while
// it holds bytes or more arrive within idleHold, else (after giving it back)
// a new one once the blocking read of the idle buffer has returned some. Its
// error is the read's (EOF, the deadline, a reset).
func (r *idleReader) next() (*bufio.Reader, error) {
	if r.br != nil && r.br.Buffered() > 0 {
		return r.br, nil
	}
	if r.br != nil {
		hold := time.Now().Add(idleHold)
		held := r.deadline.IsZero() || hold.Before(r.deadline)
		if held {
			_ = r.nc.SetReadDeadline(hold)
		}
		_, err := r.br.Peek(1)
		if held {
			_ = r.nc.SetReadDeadline(r.deadline)
		}
		var ne net.Error
		switch {
		case err == nil:
			return r.br, nil
		case !held || !errors.As(err, &ne) || !ne.Timeout():
			return nil, err
		}
		// Quiet for idleHold: the buffer goes back (Reset clears the error).
	}
	r.release()
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
