package conf

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mosquittoPath returns the real broker, skipping the test when it is missing
// unless MQBENCH_REQUIRE_MOSQUITTO=1 makes that a failure.
func mosquittoPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr == nil {
			p, err = "/usr/sbin/mosquitto", nil
		}
	}
	if err != nil {
		if os.Getenv("MQBENCH_REQUIRE_MOSQUITTO") == "1" {
			t.Fatal("mosquitto not installed and MQBENCH_REQUIRE_MOSQUITTO=1")
		}
		t.Skip("mosquitto not installed")
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestWrittenConfigStartsMosquitto parses a config using many keys, writes it, and
// starts the real Mosquitto 2.0 with it: the broker must come up and accept an
// MQTT connection. Mosquitto 2.0 has no config-test flag, so starting it is the check.
func TestWrittenConfigStartsMosquitto(t *testing.T) {
	bin := mosquittoPath(t)
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
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
		confPath := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(confPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		lastErr = runAndConnect(t, bin, confPath, port, filepath.Join(dir, "m.log"))
		if lastErr == nil {
			return
		}
		logText, _ := os.ReadFile(filepath.Join(dir, "m.log"))
		if !strings.Contains(string(logText), "Address already in use") {
			break
		}
	}
	t.Fatal(lastErr)
}

func runAndConnect(t *testing.T, bin, confPath string, port int, logPath string) error {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-c", confPath)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	defer func() {
		if stopped {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			stopped = true
			logText, _ := os.ReadFile(logPath)
			return fmt.Errorf("mosquitto exited early (%v): %s %s", err, stderr.String(), logText)
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mosquitto did not listen on %s within 10s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("conf-test").
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	cl := mqtt.NewClient(opts)
	tok := cl.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return fmt.Errorf("mqtt connect to mosquitto: %v", tok.Error())
	}
	cl.Disconnect(100)

	// Still running after serving a client.
	select {
	case err := <-done:
		stopped = true
		return fmt.Errorf("mosquitto exited after the connection: %v", err)
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-done:
		stopped = true
	case <-time.After(10 * time.Second):
		return fmt.Errorf("mosquitto did not exit within 10s of SIGTERM")
	}
	return nil
}
