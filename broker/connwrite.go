package broker

import (
	"bufio"
	"runtime"
	"sync"
)

// The write side of a connection. There is no writer goroutine waiting on an
// idle connection: the first packet queued starts one, it takes a buffer and
// an encoder from a pool, writes and flushes until the queue is empty, gives
// them back and ends. Packets still go out in the order queued, written by
// one goroutine at a time: a writer declares itself done only after its
// flush, under the lock that send takes.

// writeBufSize is the buffer a busy connection writes through, as large as
// the one it had for good before (so a pipelined stream is written in as few
// system calls).
const writeBufSize = 4 << 10

// writer is what a running writer holds, pooled between bursts, with the
// arrays the connection's queue is swapped through (spare is the one the
// state owner appends to next), so a burst does not grow a queue from nil.
type writer struct {
	bw    *bufio.Writer
	enc   encoder
	batch []outPkt
	spare []outPkt
}

var writerPool = sync.Pool{New: func() any { return &writer{bw: bufio.NewWriterSize(nil, writeBufSize)} }}

// send queues a packet for the writer. Called by the state owner only.
func (c *conn) send(p outPkt) {
	c.mu.Lock()
	if c.dead || c.closing {
		c.mu.Unlock()
		return
	}
	w := c.startWriter()
	c.q = append(c.q, p)
	c.mu.Unlock()
	if w != nil {
		go c.write(w)
	}
}

// startWriter returns the writer the caller must start, nil when one is
// running or the connection is gone (c.mu held). An idle connection's queue
// is nil: it takes the writer's spare array.
func (c *conn) startWriter() *writer {
	if c.writing || c.gone {
		return nil
	}
	c.writing = true
	w := writerPool.Get().(*writer)
	if c.q == nil {
		c.q, w.spare = w.spare[:0], nil
	}
	return w
}

// queueLen is how many packets wait for the writer (Mosquitto's out_packet_count).
func (c *conn) queueLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.q)
}

// authorised releases the reader past CONNECT. Called by the state owner once.
func (c *conn) authorised() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return // gate is closed: the reader hears false
	}
	select {
	case c.gate <- true:
	default:
	}
}

// finish closes the connection once what is queued has been written.
func (c *conn) finish() {
	c.mu.Lock()
	c.closing = true
	w := c.startWriter()
	c.mu.Unlock()
	if w != nil {
		go c.write(w)
	}
}

// kill closes the connection at once, dropping anything queued.
func (c *conn) kill() {
	c.mu.Lock()
	c.closing = true
	c.dead = true
	c.q = nil
	w := c.startWriter()
	c.mu.Unlock()
	_ = c.nc.Close()
	if w != nil {
		go c.write(w)
	}
}

// write is one writer's run: it drains the queue, and ends the connection
// once it is closing and everything queued is out (or at once when dead).
func (c *conn) write(w *writer) {
	b := c.b
	w.bw.Reset(counted{nc: c.nc, n: &b.bytesSent})
	defer func() {
		clear(w.batch)
		w.batch = w.batch[:0]
		w.bw.Reset(nil)
		w.enc.buf.Reset()
		writerPool.Put(w)
	}()
	fail := func() {
		c.mu.Lock()
		c.dead = true
		c.q = nil
		c.mu.Unlock()
		c.release()
	}
	lingered := false
	for {
		c.mu.Lock()
		if len(c.q) == 0 && !c.closing && !c.dead && !lingered {
			// Let the state owner run once before giving up: under load
			// the next packet is usually queued by then, and a writer
			// that stays saves starting another.
			c.mu.Unlock()
			lingered = true
			runtime.Gosched()
			continue
		}
		lingered = false
		w.batch, c.q = c.q, w.batch[:0]
		closing, dead := c.closing, c.dead
		if len(w.batch) == 0 && !closing && !dead {
			// Flushed below before the queue was found empty: done. The
			// queue's array goes back to the pool with the writer, so an
			// idle connection keeps none.
			w.spare, c.q = c.q[:0], nil
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if dead {
			c.release()
			return
		}
		var pubs int64
		for i := range w.batch {
			if w.batch[i].kind == outPublish {
				pubs++
			}
			if err := w.enc.write(w.bw, &w.batch[i]); err != nil {
				fail()
				return
			}
		}
		n := len(w.batch)
		clear(w.batch)
		if n > 0 {
			b.msgsSent.Add(int64(n))
			b.pubSent.Add(pubs)
			if c.queueLen() > 0 {
				continue // more to come: keep filling the buffer
			}
		}
		if err := w.bw.Flush(); err != nil {
			fail()
			return
		}
		if n == 0 && closing {
			c.release()
			return
		}
	}
}

// release closes the socket and lets the connection go, once.
func (c *conn) release() {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return
	}
	c.gone, c.writing = true, false
	close(c.gate) // a reader waiting past CONNECT hears false
	c.mu.Unlock()
	b := c.b
	_ = c.nc.Close()
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	c.lis.active.Add(-1)
	b.connWG.Done()
}
