package reports

import (
	"bytes"
	"encoding/json"
	"flag"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/scenarios"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden (run go test -update): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from golden (go test ./reports -run %s -update to accept):\n--- got\n%s\n--- want\n%s", name, t.Name(), got, want)
	}
}

// checkPNG decodes a plot and checks its size and that something was drawn:
// a blank or single-colour image means the plot failed silently.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	b := img.Bounds()
	wantW, wantH := int(plotWidth.Dots(plotDPI)), int(plotHeight.Dots(plotDPI))
	if b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("%s is %dx%d, want %dx%d", path, b.Dx(), b.Dy(), wantW, wantH)
	}
	if n := distinctColours(img, 16); n < 3 {
		t.Errorf("%s has %d distinct colours: nothing drawn", path, n)
	}
	// Data lines are coloured: a plot with only black axes and text on white
	// has drawn no series.
	if !hasColour(img) {
		t.Errorf("%s has no coloured pixel: no series drawn", path)
	}
}

func distinctColours(img image.Image, limit int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}

func hasColour(img image.Image) bool {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			lo, hi := min(r, g, bl), max(r, g, bl)
			if hi-lo > 0x4000 {
				return true
			}
		}
	}
	return false
}

func TestRenderGolden(t *testing.T) {
	dir := writeFixture(t, t.TempDir(), defaultFixture())
	s, err := Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "summary_table.golden", SummaryTable(s))
	md, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "report_md.golden", string(md))
	for _, p := range []string{PersistencePNG, BacklogPNG, LatencyPNG} {
		checkPNG(t, filepath.Join(dir, p))
	}
	// summary.json round-trips to the summary Render returned.
	b, err := os.ReadFile(filepath.Join(dir, bench.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var back bench.Summary
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Persist.MaxBytes != s.Persist.MaxBytes || back.DroppedByBroker != s.DroppedByBroker || !bytes.Contains(b, []byte("\n  \"")) {
		t.Errorf("summary.json does not hold the indented summary: %s", b[:min(len(b), 200)])
	}
	// Only generated files are in the directory; the event file is untouched.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestRenderFindings(t *testing.T) {
	tests := []struct {
		name    string
		fix     func(*fixture)
		want    []string
		notWant []string
	}{
		{
			name: "drops by default limit and linear size",
			fix:  func(*fixture) {},
			want: []string{
				"The broker dropped 976 of 2,000 messages (48.8%, $SYS) because of max_queued_messages 1000 (Mosquitto's default)",
				"at most 1,020 messages (20 in flight + 1,000 queued)",
				"Each save rewrote the whole file: the size tracks the backlog (228 bytes per held delivery",
				"Autosave trade-off: the saves wrote ",
				"no message was stored twice",
			},
			notWant: []string{"disturbed", "stored 3 messages twice"},
		},
		{
			name:    "duplicated stores suppress the snapshot claim",
			fix:     func(f *fixture) { f.dupStores = 3 },
			want:    []string{"A save stored 3 messages twice"},
			notWant: []string{"no message was stored twice"},
		},
		{
			name: "no drops",
			fix:  func(f *fixture) { f.messages = 500 },
			want: []string{"The broker dropped no message (its $SYS counter).", "Of 500 messages expected by subscribers"},
		},
		{
			// An external broker's settings are not the scenario's: the
			// report must not claim the scenario's autosave or a default
			// queue limit, and the drops are the broker's own $SYS count.
			name: "external broker",
			fix:  func(f *fixture) { f.kind = "external" },
			want: []string{
				"its real configuration (autosave, queue limits) is **unknown**",
				"The scenario's broker section (not applied to this broker)",
				"The broker dropped 976 of 2,000 messages (48.8%, $SYS), because of its queue limits, whose values are unknown",
				"976 were dropped by it ($SYS) and 0 were lost",
				"(autosave_interval unknown)",
			},
			notWant: []string{"Mosquitto's default", "autosave_interval 0.5 s", "LOST"},
		},
		{
			name:    "external broker without --db",
			fix:     func(f *fixture) { f.kind, f.noDB = "external", true },
			want:    []string{"The persistence file was not sampled", "`persist.sampled`"},
			notWant: []string{"No save was detected", "saves detected"},
		},
		{
			// The $SYS counter stopped arriving 1 s into the run: the drops
			// after it are not a measured zero.
			name:    "stale drop counter",
			fix:     func(f *fixture) { f.sysUntil = time.Second },
			want:    []string{"$SYS, may be stale: last update", "are unaccounted for (lost, or dropped after the counter's last update)", "may have been dropped by its queue limits rather than lost"},
			notWant: []string{" LOST"},
		},
		{
			name: "tainted",
			fix:  func(f *fixture) { f.tainted = true },
			want: []string{"The run was disturbed: ", "slowsub disconnected"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := defaultFixture()
			tc.fix(&f)
			// The Markdown alone: Render (with plots) is covered by TestRenderGolden.
			run, err := bench.ReadRun(writeFixture(t, t.TempDir(), f))
			if err != nil {
				t.Fatal(err)
			}
			s := bench.Summarize(run)
			md, err := reportMarkdown(run, bench.RunExperiments(run), &s)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(md), w) {
					t.Errorf("report.md lacks %q:\n%s", w, md)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(string(md), w) {
					t.Errorf("report.md says %q but should not", w)
				}
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Render(dir); err == nil {
		t.Fatal("Render of an empty directory succeeded")
	}
	bad := filepath.Join(dir, bench.EventsFile)
	if err := os.WriteFile(bad, []byte("not gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Render(dir)
	if err == nil || !strings.Contains(err.Error(), bench.EventsFile) {
		t.Fatalf("Render of a corrupt event file: err %v, want one naming the file", err)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		s    bench.Summary
		want []string
	}{
		{"clean", bench.Summary{Status: "ok", Acked: 10, Delivered: 10}, nil},
		{"dropped", bench.Summary{Status: "ok", Acked: 10000, DroppedByBroker: 8980}, []string{"DROPPED 8,980 of 10,000"}},
		{"lost and dups", bench.Summary{Status: "ok", Lost: 1, Duplicates: 2}, []string{"1 message LOST", "2 duplicate deliveries"}},
		{"tainted incomplete", bench.Summary{Status: "incomplete", Tainted: true, TaintReasons: []string{"stall"}}, []string{`run status "incomplete"`, "TAINTED: stall"}},
		{"crash and stored twice", bench.Summary{Status: "ok", LostInCrash: 5, Persist: bench.Persist{DuplicateStoresSeen: 1}}, []string{"5 messages acknowledged before the broker was killed", "stored 1 message twice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Warnings(&tc.s)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d warnings %q, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestGroupInt(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {8980, "8,980"}, {2280117, "2,280,117"}, {-1234567, "-1,234,567"}}
	for _, tc := range tests {
		if got := groupInt(tc.n); got != tc.want {
			t.Errorf("groupInt(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := groupFloat(1234.567, 1); got != "1,234.6" {
		t.Errorf("groupFloat = %q", got)
	}
}

// TestPercentileCurve draws 1..1000 ms by percentile: the values come from
// the analysis's histogram, so they are within its 0.1 % of the exact ones.
func TestPercentileCurve(t *testing.T) {
	d := &bench.Distribution{}
	for i := int64(1); i <= 1000; i++ {
		d.Add(i * 1e6) // 1..1000 ms
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= want*1e-3 }
	xy := percentileCurve(d)
	if xy[0].X != 0 || !near(xy[0].Y, 1) {
		t.Errorf("first point %v, want p0 = 1 ms", xy[0])
	}
	last := xy[len(xy)-1]
	if last.X < 2.9 || last.X > 3.0001 || last.Y < 999 {
		t.Errorf("last point %v, want x≈3 (p99.9) and y≈1000 ms", last)
	}
	for i := 1; i < len(xy); i++ {
		if xy[i].Y < xy[i-1].Y {
			t.Fatalf("curve not monotonic at %d: %v < %v", i, xy[i], xy[i-1])
		}
	}
	if got := d.Quantile(0.99); !near(float64(got), 990e6) {
		t.Errorf("p99 = %d, want 990ms", got)
	}
	if (&bench.Distribution{}).Quantile(0.5) != 0 || percentileCurve(&bench.Distribution{}) != nil {
		t.Error("an empty distribution has values")
	}
}

// BenchmarkRender measures re-rendering a 20,000-message run (about 100,000
// events): summary, report and three plots.
func BenchmarkRender(b *testing.B) {
	f := defaultFixture()
	f.messages = 20000
	dir := writeFixture(b, b.TempDir(), f)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Render(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPersistFindingsFirstMinute(t *testing.T) {
	tests := []struct {
		name   string
		growth int64
		want   string // "" = no first-minute finding
	}{
		{"run shorter than a minute", -1, ""},
		{"backlog held", 2348779, "grew by 2,348,779 B"},
		{"nothing saved in the minute", 0, "grew by 0 B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &bench.Summary{}
			s.Persist.Saves = 3
			s.Persist.MaxBytes = 2348779
			s.Persist.FirstMinuteGrowthBytes = tt.growth
			var got string
			for _, f := range persistFindings(s) {
				if strings.Contains(f, "first minute") {
					got = f
				}
			}
			if tt.want == "" {
				if got != "" {
					t.Fatalf("unexpected finding %q", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("finding %q does not contain %q", got, tt.want)
			}
		})
	}
}

func TestPublishersLineClient(t *testing.T) {
	tests := []struct {
		name, scenario, want string
	}{
		{"lean", `{"publishers":[{"client_id":"pub","count":1,"messages":10000,"qos":2,"topic":"test","inflight":20,"client":"lean"}]}`,
			"1 × `pub`: 10,000 messages each, QoS 2, topic `test`, as fast as acknowledged, 20 in flight, lean client"},
		{"recorded before the option", `{"publishers":[{"client_id":"pub","count":1,"messages":5,"qos":1,"topic":"t"}]}`,
			"1 × `pub`: 5 messages each, QoS 1, topic `t`, as fast as acknowledged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var si scenarios.Scenario
			if err := json.Unmarshal([]byte(tt.scenario), &si); err != nil {
				t.Fatal(err)
			}
			got := publishersLine(&si)
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    float64
		want string
	}{
		{0, "0 B"},
		{999, "999 B"},
		{1000, "1.0 kB"},
		{228117, "228.1 kB"},
		{1 << 20, "1.05 MB"},
		{3e9, "3.00 GB"},
	}
	for _, tc := range tests {
		if got := HumanBytes(tc.n); got != tc.want {
			t.Errorf("HumanBytes(%v) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
