package charts

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prefgpt/prefgpt/charts/internal/fixture"
)

// chromium finds a headless-capable browser, or "" when there is none.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestReportDrawsInHeadlessChromium opens the report in a real browser and reads back the DOM
// after the scripts ran: every chart div must hold a canvas and carry data-prefgpt-chart="ok"
// (set by the init script after setOption succeeded). Skipped without Chromium or with -short.
func TestReportDrawsInHeadlessChromium(t *testing.T) {
	browser := chromium()
	if browser == "" || testing.Short() {
		t.Skip("needs chromium (and not -short)")
	}
	tmp := t.TempDir()
	dir, err := fixture.Write(filepath.Join(tmp, "run"), fixture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	page, err := Report(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir.Report(), page, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+filepath.Join(tmp, "profile"),
		"--virtual-time-budget=5000", "--dump-dom", "file://"+dir.Report())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	charts := regexp.MustCompile(`<div id="prefgpt-chart-[0-9a-f]+" class="prefgpt-chart"[^>]*data-prefgpt-chart="([a-z-]+)"`).FindAllStringSubmatch(dom, -1)
	if len(charts) != 7 {
		t.Fatalf("found %d initialised charts in the DOM, want 7", len(charts))
	}
	for _, m := range charts {
		if m[1] != "ok" {
			t.Errorf("chart state %q, want ok", m[1])
		}
	}
	if n := strings.Count(dom, "<canvas"); n < 7 {
		t.Errorf("%d canvases, want one per chart", n)
	}
}
