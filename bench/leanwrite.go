package bench

import (
	"bufio"
	"fmt"
	"io"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// writer sleeps until a flush is requested (requestFlush), then writes
// everything queued and flushes once. Requests come from the publisher when it
// is about to wait (window full, rate limit, end) or has queued a batch, from
// the reader when it has answered everything it read, and from the monitor for
// PINGREQ. Waking per message would cost a context switch and a system call
// each, for us and for the broker, and capped the rate at about half of what
// batching reaches.
func (c *leanClient) writer(cn *leanConn) {
	defer close(cn.writerDone)
	bw := bufio.NewWriterSize(cn.nc, leanBufSize)
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.Retain, pub.TopicName = c.o.QoS, c.o.Retain, c.o.Topic
	var w5 *leanWriter5
	if c.o.V5 != nil {
		w5 = c.newWriter5(cn)
	}
	var written0 []int64 // QoS 0 publishes written since the last flush: acked once flushed
	for {
		select {
		case <-cn.kick:
		case <-cn.dead:
			return
		}
		// Everything queued before the request is in ch now (requesters queue,
		// then kick; a kick dropped because one was pending is covered by the
		// pending one, taken after it was queued).
		bye := false
		var n int64 // PUBLISH/PUBREL written
	drain:
		for {
			var it leanItem
			select {
			case it = <-cn.ch:
			default:
				break drain
			}
			var err error
			if w5 != nil {
				err = w5.writeItem5(bw, it)
			} else {
				err = c.writeItem(bw, pub, it)
			}
			if err != nil {
				cn.fail(fmt.Errorf("writing to broker: %w", err))
				return
			}
			if it.kind == packets.Publish && c.o.QoS == 0 {
				written0 = append(written0, it.seq)
			}
			if it.kind == packets.Publish || it.kind == packets.Pubrel {
				n++
			}
			if it.kind == packets.Disconnect {
				bye = true
				break
			}
		}
		cn.unflushed.Add(-n)
		if err := bw.Flush(); err != nil {
			cn.fail(fmt.Errorf("writing to broker: %w", err))
			return
		}
		t := c.o.Since()
		cn.lastWrite.Store(t)
		if len(written0) > 0 {
			c.mu.Lock()
			for _, seq := range written0 {
				c.ack(seq, t, "")
			}
			c.inflight -= len(written0)
			c.mu.Unlock()
			written0 = written0[:0]
			c.signal()
		}
		if bye {
			cn.fail(errLeanClosed)
			return
		}
	}
}

// writeItem encodes one packet with paho's codec.
func (c *leanClient) writeItem(bw io.Writer, pub *packets.PublishPacket, it leanItem) error {
	switch it.kind {
	case packets.Publish:
		pub.MessageID, pub.Dup, pub.Payload = it.id, it.dup, it.payload
		err := pub.Write(bw)
		pub.Payload = nil
		return err
	case packets.Pubrel:
		rel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
		rel.MessageID = it.id
		return rel.Write(bw)
	case packets.Pingreq:
		return packets.NewControlPacket(packets.Pingreq).Write(bw)
	case packets.Disconnect:
		return packets.NewControlPacket(packets.Disconnect).Write(bw)
	}
	return nil
}

// wantFlush decides whether queued packets should go out now: a batch is
// full (a quarter of the window, at most leanFlushBatch), or the publisher is
// about to wait for the window, or the reader has answered all it read
// (blocking true for both). Flushing on every chance would send a packet or
// two per system call; waiting longer does not work either: Mosquitto does not
// set TCP_NODELAY, so its small acks wait for our TCP ACK, which the kernel
// delays unless we send data, and batching PUBRELs further stalls the flow
// (measured: half the rate).
func (c *leanClient) wantFlush(cn *leanConn, blocking bool) bool {
	u := int(cn.unflushed.Load())
	return u > 0 && (blocking || u >= c.batch)
}

// requestFlush wakes the writer to write and flush what is queued. Call it
// after queueing: the writer drains after taking the wake-up.
func (cn *leanConn) requestFlush() {
	select {
	case cn.kick <- struct{}{}:
	default:
	}
}

// flush asks the current connection's writer to flush (rate-limited
// publishers call it after every message: nothing else would follow soon).
func (c *leanClient) flush() {
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn != nil {
		cn.requestFlush()
	}
}
