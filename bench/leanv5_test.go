package bench

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	packets5 "github.com/eclipse/paho.golang/packets"

	"github.com/mqbench/mqbench/scenarios"
)

// accept5 takes the next connection, reads its MQTT 5 CONNECT and answers
// with a CONNACK carrying props.
func (f *fakeBroker) accept5(props *packets5.Properties) (net.Conn, *bufio.Reader, *packets5.Connect, error) {
	var c net.Conn
	select {
	case c = <-f.conns:
	case <-time.After(hangGuard):
		return nil, nil, nil, fmt.Errorf("no connection")
	}
	c.SetDeadline(time.Now().Add(hangGuard))
	br := bufio.NewReader(c)
	cp, err := packets5.ReadPacket(br)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading CONNECT: %w", err)
	}
	con, ok := cp.Content.(*packets5.Connect)
	if !ok || con.ProtocolVersion != 5 {
		return nil, nil, nil, fmt.Errorf("want an MQTT 5 CONNECT, got %v", cp)
	}
	if _, err := (&packets5.Connack{Properties: props}).WriteTo(c); err != nil {
		return nil, nil, nil, err
	}
	return c, br, con, nil
}

// TestLeanV5FakeBroker: what the lean publisher's MQTT 5 mode puts on the
// wire (credentials, will, every PUBLISH property, the topic once then the
// alias alone, a window within the broker's receive maximum) and how it
// takes reason codes: PUBACK 0x10 with properties is an acknowledgement
// labelled so, PUBACK 0x87 a refusal, DISCONNECT 0x8E ends the connection
// with the code recorded.
func TestLeanV5FakeBroker(t *testing.T) {
	f := startFake(t)
	stop := make(chan struct{})
	defer close(stop)
	start := time.Now()
	var mu sync.Mutex
	acks, refused, reasons := map[int64]string{}, map[int64]string{}, []string{}
	v5 := newLeanV5(scenarios.Publisher{Protocol: 5, MessageExpiry: scenarios.Duration(1500 * time.Millisecond),
		UserProperties: map[string]string{"b": "2", "a": "1"}, TopicAlias: true, ContentType: "text/plain", ResponseTopic: "re"})
	v5.OnAck = func(seq, _ int64, reason string) { mu.Lock(); acks[seq] = reason; mu.Unlock() }
	v5.OnRefused = func(seq, _ int64, reason string) { mu.Lock(); refused[seq] = reason; mu.Unlock() }
	v5.OnReason = func(_ int64, reason, _ string) { mu.Lock(); reasons = append(reasons, reason); mu.Unlock() }
	lost := make(chan error, 1)
	type dialed struct {
		c   *leanClient
		err error
	}
	dc := make(chan dialed, 1)
	go func() {
		c, err := dialLean(leanOptions{
			Addr: f.addr(), ClientID: "v5", Clean: true, QoS: 1, Topic: "v5/topic", Window: 100,
			Username: "alice", Password: "pw", HasPassword: true, Will: &scenarios.Will{Topic: "gone", Payload: "bye", QoS: 1},
			Stop: stop, Since: func() int64 { return int64(time.Since(start)) }, V5: v5,
			OnLost: func(err error) bool { lost <- err; return false },
		})
		dc <- dialed{c, err}
	}()
	recvMax, aliasMax := uint16(2), uint16(5)
	conn, br, con, err := f.accept5(&packets5.Properties{ReceiveMaximum: &recvMax, TopicAliasMaximum: &aliasMax})
	if err != nil {
		t.Fatal(err)
	}
	if con.Username != "alice" || string(con.Password) != "pw" || !con.WillFlag || con.WillTopic != "gone" || string(con.WillMessage) != "bye" || con.WillQOS != 1 {
		t.Errorf("CONNECT = %+v", con)
	}
	d := <-dc
	if d.err != nil {
		t.Fatal(d.err)
	}
	c := d.c
	defer c.close()
	if c.window != 2 {
		t.Errorf("window %d, want the receive maximum 2", c.window)
	}
	for seq := int64(1); seq <= 2; seq++ {
		if !c.acquire(stop) {
			t.Fatal("acquire")
		}
		c.publish(seq, []byte(fmt.Sprintf("mqb:v5:%d:", seq)))
	}
	c.flush()
	var ids []uint16
	for i := 0; i < 2; i++ {
		cp, err := packets5.ReadPacket(br)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := cp.Content.(*packets5.Publish)
		if !ok {
			t.Fatalf("got %v, want PUBLISH", cp)
		}
		wantTopic := "v5/topic"
		if i > 0 {
			wantTopic = ""
		}
		pr := p.Properties
		if p.Topic != wantTopic || pr.TopicAlias == nil || *pr.TopicAlias != 1 || pr.MessageExpiry == nil || *pr.MessageExpiry != 2 ||
			pr.ContentType != "text/plain" || pr.ResponseTopic != "re" || len(pr.User) != 2 || pr.User[0] != (packets5.User{Key: "a", Value: "1"}) {
			t.Errorf("PUBLISH %d: topic %q properties %+v", i+1, p.Topic, pr)
		}
		ids = append(ids, p.PacketID)
	}
	if _, err := (&packets5.Puback{PacketID: ids[0], ReasonCode: 0x10, Properties: &packets5.Properties{ReasonString: "nobody"}}).WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	if _, err := (&packets5.Puback{PacketID: ids[1], ReasonCode: 0x87, Properties: &packets5.Properties{}}).WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	if !c.waitIdle(stop) {
		t.Fatal("not idle")
	}
	if _, err := (&packets5.Disconnect{ReasonCode: 0x8E, Properties: &packets5.Properties{}}).WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lost:
		if err == nil || err.Error() != "broker sent DISCONNECT 0x8E (session taken over)" {
			t.Errorf("lost: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("the DISCONNECT did not end the connection")
	}
	mu.Lock()
	defer mu.Unlock()
	if acks[1] != "puback 0x10" || len(acks) != 1 || refused[2] != "puback 0x87" {
		t.Errorf("acks %v refused %v", acks, refused)
	}
	if len(reasons) != 2 || reasons[0] != "connack 0x00" || reasons[1] != "disconnect 0x8E" {
		t.Errorf("reasons %v", reasons)
	}
}

// TestLeanConnectProtocol31: protocol 3 is MQTT 3.1's CONNECT ("MQIsdp", 3).
func TestLeanConnectProtocol31(t *testing.T) {
	o := leanOptions{ClientID: "old", Protocol: 3}
	if cp := o.connectPacket(); cp.ProtocolName != "MQIsdp" || cp.ProtocolVersion != 3 {
		t.Errorf("CONNECT %q %d, want MQIsdp 3", cp.ProtocolName, cp.ProtocolVersion)
	}
	o.Protocol = 0
	if cp := o.connectPacket(); cp.ProtocolName != "MQTT" || cp.ProtocolVersion != 4 {
		t.Errorf("CONNECT %q %d, want MQTT 4", cp.ProtocolName, cp.ProtocolVersion)
	}
	if pahoVersion(scenarios.Protocol31) != 3 || pahoVersion(0) != 4 {
		t.Error("pahoVersion")
	}
}
