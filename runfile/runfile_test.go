package runfile

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullEvent sets every field of Event to a non-zero value by reflection, so a
// field added to Event but forgotten in AppendEvent makes the test fail.
func fullEvent(t *testing.T) Event {
	t.Helper()
	var e Event
	v := reflect.ValueOf(&e).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x" + v.Type().Field(i).Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(1000 + i))
		case reflect.Uint8:
			f.SetUint(uint64(i % 3))
			if f.Uint() == 0 {
				f.SetUint(2)
			}
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Float64:
			f.SetFloat(12.5)
		default:
			t.Fatalf("Event field %s has kind %s that AppendEvent does not handle: extend AppendEvent and this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	return e
}

func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
	}{
		{"every field", fullEvent(t)},
		{"zero", Event{}},
		{"pub", Event{T: 123, Type: EvPub, Client: "pub", Seq: 1, QoS: 2, Size: 150}},
		{"recv dup", Event{T: 99, Type: EvRecv, Client: "slowsub", Pub: "pub-3", Seq: 77, QoS: 1, Dup: true, PubT: 12}},
		{"negative time", Event{T: -5, Type: EvNote, Level: "warn", Msg: "clock"}},
		{"escapes", Event{Type: EvNote, Msg: "quote \" backslash \\ newline \n tab \t <html> & done"}},
		{"unicode", Event{Type: EvNote, Msg: "grüße ✓ \u2028"}},
		{"invalid utf8", Event{Type: EvNote, Msg: "bad \xff byte"}},
		{"control", Event{Type: EvNote, Msg: "\x00\x01\x1f"}},
		{"float small", Event{Type: EvGauge, Name: GaugeCPUSeconds, Value: 1e-7}},
		{"float tiny neg", Event{Type: EvGauge, Name: "x", Value: -3.25e-12}},
		{"float big", Event{Type: EvGauge, Name: "x", Value: 1e21}},
		{"float huge", Event{Type: EvGauge, Name: "x", Value: 1.5e300}},
		{"float plain", Event{Type: EvGauge, Name: "x", Value: 2280117}},
		{"float fraction", Event{Type: EvGauge, Name: "x", Value: 0.1}},
		{"float neg", Event{Type: EvGauge, Name: "x", Value: -42.125}},
		{"save", Event{T: 4e9, Type: EvSave, SizeBytes: 228117, Held: 1000, Queued: 980, Inflight: 20, Stored: 1000, Decoded: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			got := AppendEvent([]byte("prefix"), &tt.ev)
			if !bytes.HasPrefix(got, []byte("prefix")) {
				t.Fatalf("AppendEvent dropped the existing buffer: %q", got)
			}
			got = got[len("prefix"):]
			if !bytes.Equal(got, want) {
				t.Errorf("AppendEvent:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestAppendEventNonFiniteValue(t *testing.T) {
	for _, v := range []float64{nan(), inf(1), inf(-1)} {
		line := AppendEvent(nil, &Event{Type: EvGauge, Name: "x", Value: v})
		var back Event
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatalf("value %v: line %q is not JSON: %v", v, line, err)
		}
		if back.Value != 0 || back.Name != "x" {
			t.Errorf("value %v: read back %+v", v, back)
		}
	}
}

func nan() float64 { var z float64; return z / z }

func inf(sign float64) float64 { var z float64; return sign / z }

// TestWriterReaderRoundTrip writes a record through Writer and reads it
// back through Reader: header, every event as written, footer.
func TestWriterReaderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	h := Header{RunID: "r1", ScenarioName: "s", Scenario: json.RawMessage(`{"name":"s"}`), BrokerKind: "bundled",
		Start: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), TimeScale: 1, Clock: &Clock{Synced: true, MaxErrorNs: 5},
		Brokers: []BrokerShare{{Addr: "tcp://127.0.0.1:1", Publishers: 1}}}
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	evs := []Event{fullEvent(t), {T: 1, Type: EvPub, Client: "p", Seq: 1}, {T: 2, Type: EvNote, Level: LevelWarn, Msg: "x"}}
	for i := range evs {
		if err := w.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(Footer{T: 3, Status: StatusOK}); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(&buf, "mem")
	if err != nil {
		t.Fatal(err)
	}
	h.Type, h.Schema = "header", Schema
	h.BrokerSettings = ResolveBroker("", nil) // recorded by the writer: a bundled broker's defaults
	if !reflect.DeepEqual(r.Header, h) {
		t.Errorf("header %+v, want %+v", r.Header, h)
	}
	var got []Event
	for e := r.Next(); e != nil; e = r.Next() {
		got = append(got, *e)
	}
	if !reflect.DeepEqual(got, evs) {
		t.Errorf("events %+v, want %+v", got, evs)
	}
	if r.Footer == nil || r.Footer.Status != StatusOK || r.Footer.Type != "footer" || r.Tail != "" {
		t.Errorf("footer %+v tail %q", r.Footer, r.Tail)
	}
}

// TestReaderCutShort: a record cut mid-line ends with a Tail, not an error;
// a bad header is an error naming the input.
func TestReaderCutShort(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{RunID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Write(&Event{T: 1, Type: EvPub, Client: "p", Seq: 1})
	_ = w.Write(&Event{T: 2, Type: EvPub, Client: "p", Seq: 2})
	cut := buf.Bytes()[:buf.Len()-5]
	r, err := NewReader(bytes.NewReader(cut), "cut")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for e := r.Next(); e != nil; e = r.Next() {
		n++
	}
	if n != 1 || r.Footer != nil || !strings.Contains(r.Tail, "incomplete last line") {
		t.Errorf("read %d events, footer %v, tail %q", n, r.Footer, r.Tail)
	}
	for _, bad := range []string{"", "{\"type\":\"pub\",\"schema\":1}\n", "{\"type\":\"header\",\"schema\":99}\n"} {
		if _, err := NewReader(io.MultiReader(strings.NewReader(bad)), "bad.jsonl"); err == nil || !strings.Contains(err.Error(), "bad.jsonl") {
			t.Errorf("header %q: error %v", bad, err)
		}
	}
}
