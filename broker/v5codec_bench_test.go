package broker

import (
	"bufio"
	"bytes"
	"testing"

	p5 "github.com/eclipse/paho.golang/packets"
)

// The benchmark behind v5codec.go's choice: a QoS 2 PUBLISH with a 256-byte
// payload and four properties, decoded by the broker's reader (mochi) and by
// paho.golang's.

func benchPublish5(b *testing.B) []byte {
	pf, ex := byte(1), uint32(60)
	p := &p5.Publish{Topic: "bench/topic/a", QoS: 2, PacketID: 7, Payload: bytes.Repeat([]byte("x"), 256),
		Properties: &p5.Properties{PayloadFormat: &pf, MessageExpiry: &ex, ContentType: "text/plain", User: []p5.User{{Key: "k", Value: "v"}}}}
	var buf bytes.Buffer
	if _, err := p.WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkDecodeV5PublishMochi(b *testing.B) {
	raw := benchPublish5(b)
	rd := bytes.NewReader(raw)
	br := bufio.NewReader(rd)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rd.Reset(raw)
		br.Reset(rd)
		if _, err := readPacketRules(br, readRules{proto: 5}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeV5PublishPaho(b *testing.B) {
	raw := benchPublish5(b)
	rd := bytes.NewReader(raw)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rd.Reset(raw)
		if _, err := p5.ReadPacket(rd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeV5Publish(b *testing.B) {
	var e encoder
	var buf bytes.Buffer
	p := outPkt{kind: outPublish, qos: 2, mid: 7, topic: "bench/topic/a", payload: bytes.Repeat([]byte("x"), 256), v5: true,
		raw: []byte{1, 1, 2, 0, 0, 0, 60, 3, 0, 10, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n', 38, 0, 1, 'k', 0, 1, 'v'}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if err := e.write(&buf, &p); err != nil {
			b.Fatal(err)
		}
	}
}
