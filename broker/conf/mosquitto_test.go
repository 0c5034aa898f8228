package conf

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqbench/mqbench/internal/testutil"
)

// TestWrittenConfigStartsMosquitto parses a config using many keys, writes it, and
// starts the real Mosquitto 2.0 with it: the broker must come up and accept an
// MQTT connection. Mosquitto 2.0 has no config-test flag, so starting it is the check.
func TestWrittenConfigStartsMosquitto(t *testing.T) {
	dir := t.TempDir()
	m := testutil.StartMosquittoConf(t, dir, func(port int) string {
		text := fmt.Sprintf(`
persistence true
persistence_location %[1]s/
persistence_file test.db
autosave_interval 3
autosave_on_changes false
max_inflight_messages 10
max_queued_messages 500
max_queued_bytes 0
queue_qos0_messages false
message_size_limit 0
sys_interval 5
retry_interval 20
store_clean_interval 10
persistent_client_expiration 1d
pid_file %[1]s/m.pid
user root
listener %[2]d 127.0.0.1
max_connections 10
allow_anonymous true
log_dest file %[1]s/m.log
log_type all
connection_messages true
log_timestamp true
connection testbridge
address 127.0.0.1:1
topic nothing/# out 1
start_type lazy
cleansession true
keepalive_interval 60
`, dir, port)
		c, err := Parse(strings.NewReader(text), "test.conf")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := c.Write(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	})

	opts := mqtt.NewClientOptions().AddBroker("tcp://" + m.Addr).SetClientID("conf-test").
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	cl := mqtt.NewClient(opts)
	tok := cl.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect to mosquitto: %v", tok.Error())
	}
	cl.Disconnect(100)

	// Still running after serving a client.
	if m.Exited() {
		t.Fatalf("mosquitto exited after the connection: exit %d", m.ExitCode())
	}
	if err := m.Stop(10 * time.Second); err != nil {
		t.Fatalf("stopping mosquitto: %v", err)
	}
}
