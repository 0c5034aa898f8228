package testutil

import (
	"fmt"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Publish sends one message and, for QoS 1/2, waits for its PUBACK/PUBCOMP.
func (c *Client) Publish(topic string, payload []byte, qos byte, retain bool) error {
	return c.publish(1, 1, qos, retain, topic, func(int) []byte { return payload }, c.opts.Timeout, nil)
}

// PublishN sends n messages to topic with at most window unacknowledged QoS 1/2
// publishes at a time, payload(i) for the i-th, and waits until all are
// complete. It fails when the whole batch does not complete within timeout: a
// stalled broker must fail a test, not hang it.
func (c *Client) PublishN(n, window int, qos byte, topic string, payload func(i int) []byte, timeout time.Duration) error {
	return c.publish(n, window, qos, false, topic, payload, timeout, nil)
}

// PublishTimed is PublishN that also reports, for each message i, how long it
// took from the send to its completion (QoS 1/2) to onDone(i, d). Only a window
// of 1 gives per-message latencies that do not include queueing behind others.
func (c *Client) PublishTimed(n, window int, qos byte, topic string, payload func(i int) []byte, timeout time.Duration, onDone func(i int, d time.Duration)) error {
	return c.publish(n, window, qos, false, topic, payload, timeout, onDone)
}

func (c *Client) publish(n, window int, qos byte, retain bool, topic string, payload func(i int) []byte, timeout time.Duration, onDone func(int, time.Duration)) error {
	if window < 1 {
		window = 1
	}
	if window > 65000 {
		window = 65000
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	sem := make(chan struct{}, window)
	c.mu.Lock()
	c.completed = sem
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.completed = nil
		c.mu.Unlock()
	}()
	var times []time.Time
	if onDone != nil && window == 1 {
		times = make([]time.Time, n)
	}
	for i := 0; i < n; i++ {
		pp := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		pp.TopicName = topic
		pp.Payload = payload(i)
		pp.Qos = qos
		pp.Retain = retain
		if qos > 0 {
			select {
			case sem <- struct{}{}:
			case <-deadline.C:
				return fmt.Errorf("publishing: %d of %d sent, window of %d stuck for %v", i, n, window, timeout)
			case <-c.done:
				return fmt.Errorf("publishing: connection ended after %d of %d: %v", i, n, c.Err())
			}
			c.mu.Lock()
			pp.MessageID = c.allocID()
			c.pending[pp.MessageID] = qos
			c.mu.Unlock()
		}
		start := time.Now()
		if err := c.send(pp); err != nil {
			return fmt.Errorf("publishing message %d: %w", i, err)
		}
		if times != nil {
			times[i] = start
			if qos > 0 {
				// Window of one: wait for this one to complete before timing the next.
				select {
				case sem <- struct{}{}:
					<-sem
				case <-deadline.C:
					return fmt.Errorf("publishing: message %d not acknowledged within %v", i, timeout)
				case <-c.done:
					return fmt.Errorf("publishing: connection ended at %d of %d: %v", i, n, c.Err())
				}
			}
			onDone(i, time.Since(start))
		}
	}
	if qos == 0 {
		return nil
	}
	for k := 0; k < window; k++ {
		select {
		case sem <- struct{}{}:
		case <-deadline.C:
			c.mu.Lock()
			left := len(c.pending)
			c.mu.Unlock()
			return fmt.Errorf("publishing: %d of %d not acknowledged within %v", left, n, timeout)
		case <-c.done:
			return fmt.Errorf("publishing: connection ended before all %d were acknowledged: %v", n, c.Err())
		}
	}
	return nil
}
