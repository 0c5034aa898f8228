package broker

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
)

// TestAutosaveTimer drives the timer check with a fake clock in 100 ms steps, as
// the loop does, and checks Mosquitto 2.0's period of N+1 whole seconds.
func TestAutosaveTimer(t *testing.T) {
	cases := []struct {
		interval time.Duration
		onChange bool
		persist  bool
		start    time.Duration // phase of the start within its second
		want     []float64     // save times in seconds since start, first 12 s
	}{
		{interval: time.Second, persist: true, want: []float64{2, 4, 6, 8, 10, 12}},
		{interval: time.Second, persist: true, start: 900 * time.Millisecond, want: []float64{1.1, 3.1, 5.1, 7.1, 9.1, 11.1}},
		{interval: 3 * time.Second, persist: true, want: []float64{4, 8, 12}},
		{interval: 0, persist: true},
		{interval: time.Second, persist: false},
		{interval: time.Second, persist: true, onChange: true},
		{interval: 1500 * time.Millisecond, persist: true}, // fractional: its own ticker
	}
	for _, tc := range cases {
		cfg := conf.Default()
		cfg.Persistence = tc.persist
		cfg.AutosaveInterval = tc.interval
		cfg.AutosaveOnChanges = tc.onChange
		b := &Broker{cfg: cfg}
		st := newState(b)
		base := time.Unix(1700000000, 0).Add(tc.start)
		st.lastSaveS = base.Unix()
		var got []float64
		for step := 1; step <= 120; step++ {
			now := base.Add(time.Duration(step) * 100 * time.Millisecond)
			if st.timerDue(now) {
				got = append(got, float64(step)/10)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%+v: saves at %v, want %v", tc, got, tc.want)
			continue
		}
		for i := range got {
			if d := got[i] - tc.want[i]; d > 0.01 || d < -0.01 {
				t.Errorf("%+v: saves at %v, want %v", tc, got, tc.want)
				break
			}
		}
	}
}

// TestStopSkipsPendingSave: when the loop stops (Close or Abort) during a save
// with another one requested, the running save is recorded and answered but the
// pending one is not started: an abort must write nothing more, and a clean
// shutdown writes its own final save.
func TestStopSkipsPendingSave(t *testing.T) {
	cfg := conf.Default()
	cfg.Persistence = true
	path := filepath.Join(t.TempDir(), "mosquitto.db")
	b := &Broker{cfg: cfg, persistPath: path, saveDone: make(chan saveResult, 1)}
	st := newState(b)
	st.saving, st.savePending = true, true
	waiter := make(chan error, 1)
	b.saveDone <- saveResult{size: 42, waiters: []chan error{waiter}}
	st.finishRunningSave()
	b.saveWG.Wait()
	if st.saving || st.savesStarted != 0 {
		t.Errorf("saving=%v savesStarted=%d after stop, want no new save", st.saving, st.savesStarted)
	}
	if st.saves != 1 || st.lastSaveBytes != 42 {
		t.Errorf("running save recorded as saves=%d bytes=%d, want 1 and 42", st.saves, st.lastSaveBytes)
	}
	select {
	case err := <-waiter:
		if err != nil {
			t.Errorf("waiter got %v", err)
		}
	default:
		t.Error("waiter of the running save not answered")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a snapshot was written after stop (stat: %v)", err)
	}
}

// TestReadPacketLimits covers the decoder's own checks, which run before the
// paho codec sees a body.
func TestReadPacketLimits(t *testing.T) {
	cases := []struct {
		name  string
		in    []byte
		limit int
		want  error // nil: a packet; errMalformed: any *malformedError
	}{
		{"pingreq", []byte{0xc0, 0x00}, 0, nil},
		{"publish within limit", []byte{0x30, 0x05, 0x00, 0x01, 'a', 'x', 'y'}, 2, nil},
		{"publish over limit", []byte{0x30, 0x05, 0x00, 0x01, 'a', 'x', 'y'}, 1, errOversize},
		{"qos1 publish over limit", []byte{0x32, 0x07, 0x00, 0x01, 'a', 0x00, 0x01, 'x', 'y'}, 1, errOversize},
		// Announced but never sent: the reader skips without buffering and
		// meets the end of the stream.
		{"huge length over limit", []byte{0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 'a'}, 1000, io.ErrUnexpectedEOF},
		{"five length bytes", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, 0, errMalformed},
		{"type 0", []byte{0x00, 0x00}, 0, errMalformed},
		{"trailing bytes", []byte{0x40, 0x03, 0x00, 0x01, 0x02}, 0, errMalformed},
		{"truncated body", []byte{0x30, 0x05, 0x00}, 0, io.ErrUnexpectedEOF},
		{"short field", []byte{0x82, 0x05, 0x00, 0x01, 0x00, 0x05, 'a'}, 0, errMalformed},
		{"empty", nil, 0, io.EOF},
	}
	for _, tc := range cases {
		p, err := readPacket(bufio.NewReader(bytes.NewReader(tc.in)), tc.limit)
		var me *malformedError
		if tc.want == errOversize {
			if _, ok := p.(*oversizePublish); !ok || err != nil {
				t.Errorf("%s: got %v, %v, want the oversize PUBLISH skipped", tc.name, p, err)
			}
			continue
		}
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.want == errMalformed && !errors.As(err, &me):
			t.Errorf("%s: got %v, want a malformed packet error", tc.name, err)
		case tc.want != nil && tc.want != errMalformed && !errors.Is(err, tc.want):
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

var (
	errMalformed = errors.New("any malformed packet")
	errOversize  = errors.New("an oversize PUBLISH, skipped")
)

// FuzzPacketReader feeds arbitrary bytes to the connection's packet reader: it
// must never panic, and whatever it accepts must re-encode to a packet that
// reads back the same.
func FuzzPacketReader(f *testing.F) {
	seeds := [][]byte{
		{0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00},
		{0x30, 0x05, 0x00, 0x01, 'a', 'x', 'y'},
		{0x34, 0x07, 0x00, 0x01, 'a', 0x00, 0x01, 'x', 'y'},
		{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, '#', 0x02},
		{0xa2, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'},
		{0x62, 0x02, 0x00, 0x01},
		{0xc0, 0x00},
		{0xe0, 0x00},
		{0x30, 0xff, 0xff, 0xff, 0x7f},
	}
	for _, s := range seeds {
		f.Add(s, uint16(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		p, err := readPacket(bufio.NewReader(bytes.NewReader(data)), int(limit))
		if err != nil {
			return
		}
		if _, ok := p.(*oversizePublish); ok {
			return // its payload was skipped, so it cannot round-trip
		}
		if _, ok := p.(*v5Connect); ok {
			return // MQTT 5: the 3.1.1 codec cannot re-encode it
		}
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			return // e.g. strings the codec cannot re-encode
		}
		q, err := readPacket(bufio.NewReader(&buf), 0)
		if err != nil {
			t.Fatalf("accepted %x (%v) but its re-encoding %x fails: %v", data, p, buf.Bytes(), err)
		}
		if p.String() != q.String() {
			t.Fatalf("round trip changed %v into %v", p, q)
		}
	})
}
