package reports

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"html/template"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/bench"
	"gonum.org/v1/plot"
)

// rewriteFixture lets a test change a fixture run after writeFixture wrote
// it: edit may change the header and returns the events to keep, which are
// written back in time order before the footer.
func rewriteFixture(t testing.TB, dir string, edit func(h *bench.Header, evs []bench.Event) []bench.Event) {
	t.Helper()
	path := filepath.Join(dir, bench.EventsFile)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var h bench.Header
	var evs []bench.Event
	var footer []byte
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for first := true; sc.Scan(); first = false {
		line := append([]byte(nil), sc.Bytes()...)
		switch {
		case first:
			if err := json.Unmarshal(line, &h); err != nil {
				t.Fatal(err)
			}
		case strings.Contains(string(line), `"type":"footer"`):
			footer = line
		default:
			var e bench.Event
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, e)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	evs = edit(&h, evs)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].T < evs[j].T })
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(out)
	enc := json.NewEncoder(zw)
	if err := enc.Encode(h); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	if footer != nil {
		if _, err := zw.Write(append(footer, '\n')); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// crashFixture is the default fixture with a kill and a restart of the broker
// and a description that must be escaped, so the marks and the escaping show.
func crashFixture(t testing.TB, dir string) string {
	t.Helper()
	writeFixture(t, dir, defaultFixture())
	ms := int64(time.Millisecond)
	rewriteFixture(t, dir, func(h *bench.Header, evs []bench.Event) []bench.Event {
		var sc map[string]any
		if err := json.Unmarshal(h.Scenario, &sc); err != nil {
			t.Fatal(err)
		}
		sc["description"] = `A <script>alert("x")</script> & "quoted" run.`
		b, err := json.Marshal(sc)
		if err != nil {
			t.Fatal(err)
		}
		h.Scenario = b
		return append(evs,
			bench.Event{T: 2500 * ms, Type: bench.EvAction, Action: "kill"},
			bench.Event{T: 3200 * ms, Type: bench.EvAction, Action: "start"})
	})
	return dir
}

// networkRef matches anything a browser would fetch from elsewhere: a src or
// href attribute, a CSS url() or @import with an absolute or protocol-relative
// address.
var networkRef = regexp.MustCompile(`(?i)(\b(src|href)\s*=\s*["']?\s*(https?:)?//)|(url\(\s*["']?\s*(https?:)?//)|(@import)`)

func TestReportHTML(t *testing.T) {
	dir := crashFixture(t, t.TempDir())
	s, err := Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ReportHTML))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if m := networkRef.FindString(page); m != "" {
		t.Errorf("report.html references the network: %q", m)
	}
	if strings.Contains(page, "<script>alert") || !strings.Contains(page, "A &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;quoted&#34; run.") {
		t.Error("the scenario description is not escaped")
	}
	// Every finding of report.md, escaped as html/template escapes text.
	run, err := bench.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	esc := template.Must(template.New("").Parse("<li>{{.}}</li>"))
	fs := findings(run, s, bench.RunExperiments(run))
	if len(fs) == 0 {
		t.Fatal("the fixture has no findings")
	}
	for _, f := range fs {
		var b strings.Builder
		if err := esc.Execute(&b, f); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(page, b.String()) {
			t.Errorf("report.html lacks the finding %s", b.String())
		}
	}
	for _, want := range []string{
		"<h2>Findings</h2>",
		"<td>max file size</td>", "<code>persist.max_bytes</code>", // the summary table
		`<td><code>slowsub</code></td>`, // per subscriber
		`data-chart="persistence"`, `data-chart="backlog"`, `data-chart="latency"`,
		`id="mqbench-status"`, "uPlot " + uplotVersion,
		`content="default-src 'none';`,                            // the browser itself refuses any fetch
		"<p>" + configTitle(s) + ":</p>\n<pre>persistence true\n", // settings, as in report.md
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if len(b) > 400_000 {
		t.Errorf("report.html is %d bytes for a 2,000-message run", len(b))
	}
	data := pageJSON(t, page)
	if len(data.Charts) != 4 {
		t.Fatalf("%d charts inlined, want 4", len(data.Charts))
	}
	persist := data.Charts[0]
	if persist.Y != axisBytes || len(persist.Series) != 2 || len(persist.Marks.Saves) != s.Persist.Saves {
		t.Errorf("persistence chart: y %s, %d series, %d saves (summary %d)", persist.Y, len(persist.Series), len(persist.Marks.Saves), s.Persist.Saves)
	}
	var labels []string
	for _, l := range persist.Marks.Lines {
		labels = append(labels, l.Label)
	}
	if strings.Join(labels, ",") != "kill,restart" {
		t.Errorf("action lines %q, want kill,restart", labels)
	}
	var phases []string
	for _, b := range persist.Marks.Bands {
		phases = append(phases, b.Label)
	}
	if strings.Join(phases, ",") != "observation,drain,publishing" {
		t.Errorf("phases %q", phases)
	}
}

// pageJSON decodes the data inlined in a page.
func pageJSON(t *testing.T, page string) pageData {
	t.Helper()
	const open = `<script id="mqbench-data" type="application/json">`
	i := strings.Index(page, open)
	j := strings.Index(page[i+len(open):], "</script>")
	if i < 0 || j < 0 {
		t.Fatal("no inlined data")
	}
	var d pageData
	if err := json.Unmarshal([]byte(page[i+len(open):i+len(open)+j]), &d); err != nil {
		t.Fatalf("inlined data: %v", err)
	}
	return d
}

func TestReportHTMLDownsamples(t *testing.T) {
	f := defaultFixture()
	f.messages = 20000
	dir := writeFixture(t, t.TempDir(), f)
	// The page alone: Render with its PNGs is covered by TestReportHTML.
	run, err := bench.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := bench.Summarize(run)
	if err := writeReportHTML(filepath.Join(dir, ReportHTML), run, plotsOf(run), &s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ReportHTML))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range pageJSON(t, string(b)).Charts {
		for _, s := range ch.Series {
			if len(s.X) > maxPlotPoints || len(s.X) != len(s.Y) {
				t.Errorf("%s/%s: %d x and %d y values, want at most %d", ch.ID, s.Label, len(s.X), len(s.Y), maxPlotPoints)
			}
		}
	}
	if len(b) > 600_000 {
		t.Errorf("report.html of a 20,000-message run is %d bytes", len(b))
	}
}

func TestCompareHTML(t *testing.T) {
	root := t.TempDir()
	a, b := defaultFixture(), defaultFixture()
	b.name, b.autosave, b.saveEvery = "persist-fixture-2s", "2", 2*time.Second
	dirs := []string{writeFixture(t, filepath.Join(root, "a"), a), writeFixture(t, filepath.Join(root, "b"), b)}
	out := filepath.Join(root, "cmp")
	if _, err := Compare(dirs, out); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(out, CompareHTML))
	if err != nil {
		t.Fatal(err)
	}
	if m := networkRef.FindString(string(page)); m != "" {
		t.Errorf("compare.html references the network: %q", m)
	}
	for _, want := range []string{"<td>persist-fixture-2s</td>", "DROPPED 976", `data-chart="compare-persistence"`, "<h2>Autosave trade-off</h2>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("compare.html lacks %q", want)
		}
	}
	d := pageJSON(t, string(page))
	if len(d.Charts) != 3 || len(d.Charts[0].Series) != 2 || d.Charts[1].ID != "compare-tradeoff-disk" || d.Charts[2].ID != "compare-tradeoff-exposure" {
		t.Fatalf("compare.html charts %+v, want the overlay with two series and the two trade-off charts", d.Charts)
	}
	if tr := d.Charts[2].Series[0]; len(tr.X) != 2 || tr.X[0] != 0.5 || tr.X[1] != 2 {
		t.Errorf("exposure chart x = %v, want the autosave intervals 0.5 and 2", tr.X)
	}
	s0, s1 := d.Charts[0].Series[0], d.Charts[0].Series[1]
	if s0.Color == s1.Color || len(s1.Dash) == 0 || s0.Width <= s1.Width {
		t.Errorf("overlaid runs are not told apart: %v/%v/%v against %v/%v/%v", s0.Color, s0.Dash, s0.Width, s1.Color, s1.Dash, s1.Width)
	}
	checkPNG(t, filepath.Join(out, ComparePersistencePNG))
	checkPNG(t, filepath.Join(out, CompareTradeoffDiskPNG))
	checkPNG(t, filepath.Join(out, CompareTradeoffExposurePNG))
}

func TestRunMarksWithoutDrain(t *testing.T) {
	dir := writeFixture(t, t.TempDir(), defaultFixture())
	rewriteFixture(t, dir, func(_ *bench.Header, evs []bench.Event) []bench.Event {
		var keep []bench.Event
		for _, e := range evs {
			if e.Type != bench.EvPhase || e.Msg != "drain" {
				keep = append(keep, e)
			}
		}
		return keep
	})
	run, err := bench.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := runMarks(plotsOf(run))
	// Without a drain phase the observation ends at the scenario's duration (5 s).
	if len(m.Bands) != 2 || m.Bands[0].Label != "observation" || m.Bands[0].To != 5 || m.Bands[1].Label != "publishing" {
		t.Fatalf("bands %+v", m.Bands)
	}
	if m.Bands[1].From != 0.001 || m.Bands[1].To != 2 {
		t.Errorf("publishing %v..%v, want 0.001..2 (first and last publish)", m.Bands[1].From, m.Bands[1].To)
	}
}

func TestAxisTicks(t *testing.T) {
	labels := func(ticks []plot.Tick) []string {
		var out []string
		for _, tk := range ticks {
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		return out
	}
	if got := strings.Join(labels(valueTicks{kind: axisBytes}.Ticks(0, 2.4e6)), ","); got != "0 B,500.0 kB,1.00 MB,1.50 MB,2.00 MB" {
		t.Errorf("byte ticks %q", got)
	}
	if got := strings.Join(labels(valueTicks{kind: axisCount}.Ticks(0, 12000)), ","); got != "0,2,000,4,000,6,000,8,000,10,000,12,000" {
		t.Errorf("count ticks %q", got)
	}
	if got := strings.Join(labels(log10Ticks{}.Ticks(-1, 2)), ","); got != "0.1,1,10,100" {
		t.Errorf("log ticks %q", got)
	}
	if got := strings.Join(labels(ninesTicks{}.Ticks(0, 3)), ","); got != "0,90,99,99.9" {
		t.Errorf("nines ticks %q", got)
	}
}

func TestInline(t *testing.T) {
	got := string(inline("1 × `pub<1>`: **bold & <b>** end"))
	want := "1 × <code>pub&lt;1&gt;</code>: <strong>bold &amp; &lt;b&gt;</strong> end"
	if got != want {
		t.Errorf("inline = %q, want %q", got, want)
	}
}

// TestSlideGeometry pins the PNG size: a full 16:9 slide.
func TestSlideGeometry(t *testing.T) {
	if w, h := plotWidth.Dots(plotDPI), plotHeight.Dots(plotDPI); w != 1600 || h != 900 {
		t.Fatalf("plots are %vx%v, want 1600x900", w, h)
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   string
	}{
		{0, 6, "0,1,2,3,4,5,6"},
		{-0.5, 6, "0,1,2,3,4,5,6"},
		{0, 6.05, "0,1,2,3,4,5,6"},
		{0, 1.3, "0.0,0.2,0.4,0.6,0.8,1.0,1.2"},
		{0, 12, "0,2,4,6,8,10,12"},
		{0, 290000, "0,50000,100000,150000,200000,250000"},
		{0, 14, "0,2,4,6,8,10,12,14"},
		{0, 17, "0.0,2.5,5.0,7.5,10.0,12.5,15.0"},
	} {
		var got []string
		for _, tk := range niceTicks(tc.lo, tc.hi, 6) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("niceTicks(%v, %v) = %q, want %q", tc.lo, tc.hi, strings.Join(got, ","), tc.want)
		}
	}
}

// TestReportHTMLRecorded renders the recorded runs in testdata (real
// Mosquitto runs, one without a sampled persistence file) into report.html.
func TestReportHTMLRecorded(t *testing.T) {
	for _, name := range []string{"external-mosquitto", "external-mosquitto-stale"} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join("testdata", name, bench.EventsFile)
			if _, err := os.Stat(src); err != nil {
				t.Skipf("no recorded run %s: %v", src, err)
			}
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, bench.EventsFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
			run, err := bench.ReadRun(dir)
			if err != nil {
				t.Fatal(err)
			}
			s := bench.Summarize(run)
			path := filepath.Join(dir, ReportHTML)
			if err := writeReportHTML(path, run, plotsOf(run), &s); err != nil {
				t.Fatal(err)
			}
			page, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if m := networkRef.FindString(string(page)); m != "" {
				t.Errorf("report.html references the network: %q", m)
			}
			d := pageJSON(t, string(page))
			if len(d.Charts) != 4 || len(d.Charts[1].Series) == 0 || len(d.Charts[2].Series) == 0 {
				t.Fatalf("charts %d, backlog or latency empty", len(d.Charts))
			}
			persist := d.Charts[0]
			if sampled := len(persist.Series) > 0; sampled == strings.Contains(persist.Title, "no file size sampled") {
				t.Errorf("persistence chart %q with %d series", persist.Title, len(persist.Series))
			}
			if len(persist.Marks.Bands) == 0 {
				t.Error("no phases marked")
			}
		})
	}
}
