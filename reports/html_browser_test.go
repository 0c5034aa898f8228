package reports

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromiumPath finds a headless-capable Chromium. Without one the browser test
// skips, except in CI (CI=true) or with MQBENCH_REQUIRE_CHROMIUM=1, where a
// missing browser must fail rather than let the pages go untested.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("MQBENCH_REQUIRE_CHROMIUM") == "1" || os.Getenv("CI") == "true" {
		t.Fatal("chromium not found (apt-get install chromium); required in CI and with MQBENCH_REQUIRE_CHROMIUM=1")
	}
	t.Skip("chromium not installed; set MQBENCH_REQUIRE_CHROMIUM=1 to require it")
	return ""
}

// browserTimeout bounds one headless Chromium run.
const browserTimeout = 60 * time.Second

// runChromium runs headless Chromium on a local page with its own profile
// directory. Chromium starts helper processes, so it runs in its own process
// group, and on timeout that group (the process we started, by its id) is killed.
func runChromium(t *testing.T, bin, page string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	all := append([]string{
		"--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--disable-background-networking", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
	}, args...)
	all = append(all, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("chromium did not finish %s within %s; killed.\nstderr:\n%s", page, browserTimeout, tail(errb.String(), 2000))
	}
	if err != nil {
		t.Fatalf("chromium on %s: %v\nstderr:\n%s", page, err, tail(errb.String(), 2000))
	}
	return out.String(), errb.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

var (
	statusRe = regexp.MustCompile(`id="mqbench-status" data-state="([a-z]+)">([^<]*)<`)
	canvasRe = regexp.MustCompile(`<canvas[^>]*\bwidth="(\d+)"[^>]*\bheight="(\d+)"`)
	// Chromium logs page console messages, CSP violations included, as INFO:CONSOLE lines.
	consoleErrRe = regexp.MustCompile(`(?i):CONSOLE[^\n]*(uncaught|error|content security policy)`)
)

// TestHTMLInBrowser opens report.html and compare.html in headless Chromium
// and checks what a reader would see: the page script ran without errors
// (its own #mqbench-status and Chromium's console log), nothing was fetched
// (the page's Content-Security-Policy blocks and reports any fetch), every
// chart drew a canvas, and a screenshot of the page is not blank.
func TestHTMLInBrowser(t *testing.T) {
	bin := chromiumPath(t)
	root := t.TempDir()
	dir := crashFixture(t, filepath.Join(root, "run"))
	if _, err := Render(dir); err != nil {
		t.Fatal(err)
	}
	b := defaultFixture()
	b.name, b.autosave, b.saveEvery = "persist-fixture-2s", "2", 2*time.Second
	cmpDir := filepath.Join(root, "cmp")
	if _, err := Compare([]string{dir, writeFixture(t, filepath.Join(root, "b"), b)}, cmpDir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		page   string
		charts int
	}{
		{filepath.Join(dir, ReportHTML), 3},
		// The runs overlaid, and the two autosave trade-off charts (both
		// runs have a timed autosave and a sampled file).
		{filepath.Join(cmpDir, CompareHTML), 3},
	} {
		t.Run(filepath.Base(tc.page), func(t *testing.T) {
			dom, logs := runChromium(t, bin, tc.page, "--dump-dom")
			if m := consoleErrRe.FindString(logs); m != "" {
				t.Errorf("console error: %s", m)
			}
			st := statusRe.FindStringSubmatch(dom)
			if st == nil {
				t.Fatalf("no #mqbench-status in the rendered page:\n%s", tail(dom, 1500))
			}
			if want := "charts-ok " + strconv.Itoa(tc.charts); st[1] != "ok" || st[2] != want {
				t.Errorf("page status %s %q, want ok %q", st[1], st[2], want)
			}
			drawn := 0
			for _, m := range canvasRe.FindAllStringSubmatch(dom, -1) {
				if m[1] != "0" && m[2] != "0" {
					drawn++
				}
			}
			if drawn < tc.charts {
				t.Errorf("%d canvases with a size, want %d", drawn, tc.charts)
			}

			shot := filepath.Join(t.TempDir(), "shot.png")
			runChromium(t, bin, tc.page, "--window-size=1600,2400", "--screenshot="+shot)
			checkScreenshot(t, shot)
		})
	}
}

// checkScreenshot decodes the page screenshot and checks it shows drawn
// charts: enough non-white pixels, and coloured ones (series are coloured,
// text and axes are not).
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding the screenshot: %v", err)
	}
	bd := img.Bounds()
	if bd.Dx() != 1600 || bd.Dy() != 2400 {
		t.Errorf("screenshot is %dx%d, want 1600x2400", bd.Dx(), bd.Dy())
	}
	var ink, colour int
	for y := bd.Min.Y; y < bd.Max.Y; y += 2 {
		for x := bd.Min.X; x < bd.Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || b < 0xf000 {
				ink++
			}
			if max(r, g, b)-min(r, g, b) > 0x5000 {
				colour++
			}
		}
	}
	total := (bd.Dx() / 2) * (bd.Dy() / 2)
	if ink < total/50 {
		t.Errorf("screenshot nearly blank: %d of %d sampled pixels are not white", ink, total)
	}
	if colour < 500 {
		t.Errorf("screenshot has %d coloured pixels: no series drawn", colour)
	}
	if testing.Verbose() {
		t.Logf("screenshot %s: %d of %d sampled pixels inked, %d coloured", strings.TrimSuffix(filepath.Base(path), ".png"), ink, total, colour)
	}
}
