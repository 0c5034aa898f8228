package bench

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"github.com/mqbench/mqbench/runfile"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// testHeader is a header as the run engine would write it.
func testHeader() Header {
	return Header{
		RunID:         "run-1",
		ScenarioName:  "unit",
		Scenario:      json.RawMessage(`{"name":"unit"}`),
		BrokerKind:    "bundled",
		BrokerVersion: "test",
		BrokerAddr:    "tcp://127.0.0.1:1",
		PersistPath:   "/tmp/x/mosquitto.db",
		BrokerConfig:  []string{"persistence true", "autosave_interval 3"},
		MQBench:       "dev",
		GoVersion:     "go",
		Host:          "h",
		Start:         time.Now(),
		TimeScale:     1,
	}
}

// testEvents returns n varied events.
func testEvents(n int) []Event {
	evs := make([]Event, 0, n)
	for i := 0; i < n; i++ {
		seq := int64(i/3 + 1)
		switch i % 5 {
		case 0:
			evs = append(evs, Event{T: int64(i) * 1000, Type: EvPub, Client: "pub", Seq: seq, QoS: 2, Size: 150})
		case 1:
			evs = append(evs, Event{T: int64(i) * 1000, Type: EvAck, Client: "pub", Seq: seq, QoS: 2})
		case 2:
			evs = append(evs, Event{T: int64(i) * 1000, Type: EvRecv, Client: "slowsub", Pub: "pub", Seq: seq, QoS: 2, PubT: int64(i) * 900, Dup: i%7 == 0})
		case 3:
			evs = append(evs, Event{T: int64(i) * 1000, Type: EvGauge, Name: GaugePersistBytes, Value: float64(47 + 228*i)})
		case 4:
			evs = append(evs, Event{T: int64(i) * 1000, Type: EvNote, Level: "info", Msg: fmt.Sprintf("note %d with \"quotes\"", i)})
		}
	}
	return evs
}

func recordRun(t testing.TB, dir string, h Header, evs []Event, footer Footer) string {
	t.Helper()
	r, err := NewRecorder(dir, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		r.Emit(e)
	}
	if err := r.Close(footer); err != nil {
		t.Fatal(err)
	}
	return r.Path()
}

func TestRecorderRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{"empty", 0},
		{"few", 7},
		{"several batches", 6000}, // well over recordBatchBytes, so batches rotate
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h := testHeader()
			evs := testEvents(tt.n)
			ft := Footer{T: 42, Status: "ok", Tainted: true, Reasons: []string{"a", "b"}, End: time.Unix(1700000000, 5).UTC()}
			path := recordRun(t, dir, h, evs, ft)
			if path != filepath.Join(dir, EventsFile) {
				t.Errorf("recorder wrote %s, want %s", path, filepath.Join(dir, EventsFile))
			}
			for _, p := range []string{dir, path} {
				run, err := ReadRun(p)
				if err != nil {
					t.Fatalf("ReadRun(%s): %v", p, err)
				}
				if run.Dir != dir {
					t.Errorf("Dir = %s, want %s", run.Dir, dir)
				}
				if run.Header.Type != "header" || run.Header.Schema != EventSchema || !run.Header.Start.Equal(h.Start) {
					t.Errorf("header type/schema/start = %q/%d/%v", run.Header.Type, run.Header.Schema, run.Header.Start)
				}
				gotH, wantH := run.Header, h
				gotH.Type, gotH.Schema, gotH.Start, wantH.Start = "", 0, time.Time{}, time.Time{}
				// The recorder records the settings the lines resolve to.
				if b := gotH.BrokerSettings; b == nil || !b.Persistence || b.AutosaveInterval != 3*time.Second {
					t.Errorf("recorded broker settings %+v", b)
				}
				wantH.BrokerSettings = wantH.ResolvedBroker()
				if !reflect.DeepEqual(gotH, wantH) {
					t.Errorf("header:\n got %+v\nwant %+v", gotH, wantH)
				}
				if len(run.Events) != len(evs) {
					t.Fatalf("read %d events, wrote %d", len(run.Events), len(evs))
				}
				for i := range evs {
					if run.Events[i] != evs[i] {
						t.Fatalf("event %d:\n got %+v\nwant %+v", i, run.Events[i], evs[i])
					}
				}
				ft.Type = "footer"
				if run.Footer == nil || !reflect.DeepEqual(*run.Footer, ft) {
					t.Errorf("footer = %+v, want %+v", run.Footer, ft)
				}
				if run.Tail != "" {
					t.Errorf("Tail = %q for a complete file", run.Tail)
				}
			}
		})
	}
}

func TestRecorderConcurrentEmit(t *testing.T) {
	dir := t.TempDir()
	r, err := NewRecorder(dir, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 3000
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			id := fmt.Sprintf("pub-%d", w)
			for i := 1; i <= each; i++ {
				r.Emit(Event{T: r.Since(), Type: EvPub, Client: id, Seq: int64(i)})
			}
		}(w)
	}
	wg.Wait()
	if err := r.Close(Footer{Status: "ok"}); err != nil {
		t.Fatal(err)
	}
	r.Emit(Event{Type: EvPub, Client: "late"}) // after Close: dropped, no panic
	if err := r.Close(Footer{}); err == nil {
		t.Error("second Close returned no error")
	}
	run, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Events) != writers*each {
		t.Fatalf("read %d events, want %d", len(run.Events), writers*each)
	}
	next := map[string]int64{}
	for _, e := range run.Events {
		if e.Seq != next[e.Client]+1 {
			t.Fatalf("%s: seq %d after %d: events of one goroutine out of order", e.Client, e.Seq, next[e.Client])
		}
		next[e.Client] = e.Seq
	}
}

func TestRecorderNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, EventsFile)
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, path} {
		if r, err := NewRecorder(p, testHeader()); err == nil {
			r.Close(Footer{})
			t.Fatalf("NewRecorder(%s) over an existing event file succeeded", p)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("existing file changed to %q", b)
	}
}

// TestRecorderFlushesWhileRunning checks that a recorder that is never closed
// (the process was killed) has flushed a readable prefix within its flush
// period.
func TestRecorderFlushesWhileRunning(t *testing.T) {
	dir := t.TempDir()
	r, err := NewRecorder(dir, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(Footer{Status: "ok"})
	evs := testEvents(20)
	for _, e := range evs {
		r.Emit(e)
	}
	// Poll (bounded) for the periodic flush; the period is one second.
	deadline := time.Now().Add(10 * recordFlushEvery)
	var run *Run
	for time.Now().Before(deadline) {
		time.Sleep(recordTick)
		b, err := os.ReadFile(r.Path())
		if err != nil {
			t.Fatal(err)
		}
		snap := filepath.Join(t.TempDir(), EventsFile)
		if err := os.WriteFile(snap, b, 0o644); err != nil {
			t.Fatal(err)
		}
		run, err = ReadRun(snap)
		if err != nil {
			t.Fatalf("reading a live event file: %v", err)
		}
		if len(run.Events) == len(evs) {
			break
		}
	}
	if len(run.Events) != len(evs) {
		t.Fatalf("after %v the live file holds %d of %d events", 10*recordFlushEvery, len(run.Events), len(evs))
	}
	if run.Footer != nil {
		t.Error("live file has a footer")
	}
}

func TestReadRunTruncated(t *testing.T) {
	dir := t.TempDir()
	h := testHeader()
	r, err := NewRecorder(dir, h)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	headerBytes := int(fi.Size()) // the header is flushed at once
	evs := testEvents(4000)
	for _, e := range evs {
		r.Emit(e)
	}
	if err := r.Close(Footer{Status: "ok"}); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	cuts := []int{headerBytes, headerBytes + 1, headerBytes + 50, len(full) / 4, len(full) / 2, len(full) * 3 / 4, len(full) - 30, len(full) - 8, len(full) - 1}
	prev := -1
	for _, cut := range cuts {
		t.Run(fmt.Sprintf("cut %d of %d", cut, len(full)), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), EventsFile)
			if err := os.WriteFile(p, full[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			run, err := ReadRun(p)
			if err != nil {
				t.Fatalf("ReadRun on a file cut at %d: %v", cut, err)
			}
			if run.Footer != nil && len(run.Events) != len(evs) {
				// Only a cut in the gzip trailer leaves the footer line whole.
				t.Errorf("footer read from a file cut before the last event")
			}
			if run.Header.RunID != h.RunID {
				t.Errorf("header run id %q", run.Header.RunID)
			}
			if len(run.Events) > len(evs) {
				t.Fatalf("read %d events from a prefix of %d", len(run.Events), len(evs))
			}
			for i := range run.Events {
				if run.Events[i] != evs[i] {
					t.Fatalf("event %d differs: not a prefix:\n got %+v\nwant %+v", i, run.Events[i], evs[i])
				}
			}
			if len(run.Events) < prev {
				t.Errorf("a longer prefix gave fewer events (%d < %d)", len(run.Events), prev)
			}
			prev = len(run.Events)
			t.Logf("%d events, tail %q", len(run.Events), run.Tail)
			if run.Tail == "" && len(run.Events) < len(evs) {
				t.Errorf("Tail empty although the file was cut")
			}
		})
	}
	if prev < len(evs)/2 {
		t.Errorf("a file cut 1 byte short gave only %d of %d events", prev, len(evs))
	}
}

func gzipBytes(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

func TestReadRunErrors(t *testing.T) {
	header := `{"type":"header","schema":1,"run_id":"r"}` + "\n"
	tests := []struct {
		name    string
		content []byte // nil: no file
		want    string // in the error
	}{
		{"missing file", nil, "no such file"},
		{"not gzip", []byte("hello world, not gzip"), "not a gzip"},
		{"empty gzip", gzipBytes(t, ""), "no header"},
		{"first line not header", gzipBytes(t, `{"type":"pub","t_ns":1}`+"\n"), `want "header"`},
		{"bad json header", gzipBytes(t, `{"type":"header",`+"\n"), "line 1: bad header"},
		{"no schema", gzipBytes(t, `{"type":"header","run_id":"r"}`+"\n"), "no schema"},
		{"newer schema", gzipBytes(t, `{"type":"header","schema":99}`+"\n"), "schema 99 is newer"},
		{"header cut", gzipBytes(t, header[:20]), "header is incomplete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "events.jsonl.gz")
			if tt.content != nil {
				if err := os.WriteFile(p, tt.content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := ReadRun(p)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestReadRunLines(t *testing.T) {
	header := `{"type":"header","schema":1,"run_id":"r"}` + "\n"
	long := strings.Repeat("x", 300<<10) // longer than the reader's buffer
	tests := []struct {
		name       string
		body       string
		wantTypes  []string
		wantFooter bool
		wantTail   string
	}{
		{"footer", `{"t_ns":1,"type":"pub"}` + "\n" + `{"type":"footer","status":"ok","t_ns":5}` + "\n", []string{"pub"}, true, ""},
		{"unknown type kept", `{"t_ns":1,"type":"future","extra":{"a":1}}` + "\n", []string{"future"}, false, ""},
		{"blank lines skipped", "\n  \n" + `{"t_ns":1,"type":"ack"}` + "\n", []string{"ack"}, false, ""},
		{"half line", `{"t_ns":1,"type":"pub"}` + "\n" + `{"t_ns":2,"ty`, []string{"pub"}, false, "line 3 at byte"},
		{"corrupt line", `{"t_ns":1,"type":"pub"}` + "\n" + "garbage\n" + `{"t_ns":3,"type":"ack"}` + "\n", []string{"pub"}, false, "line 3 at byte"},
		{"long line", `{"t_ns":1,"type":"note","msg":"` + long + `"}` + "\n", []string{"note"}, false, ""},
		{"after footer ignored", `{"type":"footer","status":"ok"}` + "\n" + `{"t_ns":3,"type":"ack"}` + "\n", nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), EventsFile)
			if err := os.WriteFile(p, gzipBytes(t, header+tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			run, err := ReadRun(p)
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, e := range run.Events {
				types = append(types, e.Type)
			}
			if !reflect.DeepEqual(types, tt.wantTypes) {
				t.Errorf("types %v, want %v", types, tt.wantTypes)
			}
			if (run.Footer != nil) != tt.wantFooter {
				t.Errorf("footer %+v, want present=%v", run.Footer, tt.wantFooter)
			}
			if !strings.Contains(run.Tail, tt.wantTail) || (tt.wantTail == "") != (run.Tail == "") {
				t.Errorf("Tail %q, want %q", run.Tail, tt.wantTail)
			}
		})
	}
}

func BenchmarkEmit(b *testing.B) {
	r, err := NewRecorder(b.TempDir(), testHeader())
	if err != nil {
		b.Fatal(err)
	}
	e := Event{Type: EvRecv, Client: "slowsub", Pub: "pub-1", QoS: 2, Size: 150}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.T = r.Since()
		e.Seq = int64(i)
		e.PubT = e.T - 1500
		r.Emit(e)
	}
	b.StopTimer()
	if err := r.Close(Footer{Status: "ok"}); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkEmitParallel(b *testing.B) {
	r, err := NewRecorder(b.TempDir(), testHeader())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		e := Event{Type: EvAck, Client: "pub-1", QoS: 2}
		for pb.Next() {
			e.T = r.Since()
			e.Seq++
			r.Emit(e)
		}
	})
	b.StopTimer()
	if err := r.Close(Footer{Status: "ok"}); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkReadRun(b *testing.B) {
	dir := b.TempDir()
	recordRun(b, dir, testHeader(), testEvents(100000), Footer{Status: "ok"})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ReadRun(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendEvent is the part of Emit spent under the lock: encoding one
// delivery event. BenchmarkEmit adds compression, which a saturating loop
// makes the bottleneck.
func BenchmarkAppendEvent(b *testing.B) {
	e := Event{T: 123456789, Type: EvRecv, Client: "slowsub", Pub: "pub-1", QoS: 2, Size: 150, PubT: 123450000}
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.Seq = int64(i)
		buf = runfile.AppendEvent(buf[:0], &e)
	}
}
