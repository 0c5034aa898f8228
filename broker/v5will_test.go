package broker_test

import (
	"testing"
	"time"

	p5 "github.com/eclipse/paho.golang/packets"
)

// TestV5WillDelay: a delayed will waits, is cancelled by a reconnect, and
// goes with its session when the session expires first; against both brokers.
func TestV5WillDelay(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		obs, _ := connected5(t, addr, "obs", true, nil)
		obs.subscribe(1, p5.SubOptions{Topic: "wd/#", QoS: 0})
		willed := func(id string, delay, expiry uint32) func(*p5.Connect) {
			return func(c *p5.Connect) {
				c.WillFlag, c.WillTopic, c.WillMessage = true, "wd/"+id, []byte(id)
				c.WillProperties.WillDelayInterval = u32(delay)
				c.Properties.SessionExpiryInterval = u32(expiry)
			}
		}
		t.Run("delayed", func(t *testing.T) {
			c, _ := connected5(t, addr, "late", true, willed("late", 2, 60))
			start := time.Now()
			_ = c.nc.Close()
			m := obs.expectPublish()
			if el := time.Since(start); m.Topic != "wd/late" || el < 1500*time.Millisecond {
				t.Fatalf("got %v after %v, want the will after its 2 s delay", m, el)
			}
		})
		t.Run("cancelled by reconnect", func(t *testing.T) {
			c, _ := connected5(t, addr, "back", true, willed("back", 2, 60))
			_ = c.nc.Close()
			time.Sleep(300 * time.Millisecond)
			connected5(t, addr, "back", false, func(c *p5.Connect) { c.Properties.SessionExpiryInterval = u32(60) })
			obs.expectNothing(3500 * time.Millisecond)
		})
		t.Run("session expires first", func(t *testing.T) {
			c, _ := connected5(t, addr, "gone", true, willed("gone", 30, 1))
			_ = c.nc.Close()
			m, err := obs.readErr(5 * time.Second)
			if err != nil {
				t.Fatalf("no will when the session expired: %v", err)
			}
			if pub, ok := m.Content.(*p5.Publish); !ok || pub.Topic != "wd/gone" {
				t.Fatalf("got %v, want the will of gone", m)
			}
		})
	})
}
