package launch

import (
	"context"
	"fmt"
	"os"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// sysVersion reads $SYS/broker/version (retained on Mosquitto and the bundled
// broker), so an external broker's run header still says what it ran against.
// It gives up quietly after timeout: the version is nice to have, not required.
func sysVersion(ctx context.Context, addr string, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got := make(chan string, 1)
	opts := mqtt.NewClientOptions().
		AddBroker(addr).
		SetClientID(fmt.Sprintf("mqbench-version-%d", os.Getpid())).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(timeout)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ""
	}
	if tok.Error() != nil {
		return ""
	}
	defer c.Disconnect(50)
	sub := c.Subscribe("$SYS/broker/version", 0, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	})
	select {
	case <-sub.Done():
	case <-ctx.Done():
		return ""
	}
	select {
	case v := <-got:
		return v
	case <-ctx.Done():
		return ""
	}
}
