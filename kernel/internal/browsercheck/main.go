// Command browsercheck opens HTML pages (an exported notebook, a run's report.html) in headless
// Chromium and checks that their charts were drawn: every chart div carries
// data-prefgpt-chart="ok" (set by its init script after ECharts' setOption) and holds a canvas,
// the charts named with -want are among them, and the page logged no JavaScript error.
//
//	go run ./kernel/internal/browsercheck -want "Training loss" -want "toxicity" page.html
//	go run ./kernel/internal/browsercheck -screenshot docs/chart.png -clip "Training loss" report.html
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

type wants []string

func (w *wants) String() string     { return strings.Join(*w, ", ") }
func (w *wants) Set(v string) error { *w = append(*w, v); return nil }

var (
	flagMin        = flag.Int("min", 1, "fewest charts each page must draw")
	flagScreenshot = flag.String("screenshot", "", "write a PNG screenshot of the (last) page here")
	flagWidth      = flag.Int("width", 1100, "window width for the screenshot")
	flagHeight     = flag.Int("height", 1400, "window height for the screenshot")
	flagBudget     = flag.Int("budget_ms", 8000, "virtual time given to the page's scripts")
	flagWant       wants
)

// chromeFlags keep headless Chromium quiet, offline-friendly and independent of any profile.
var chromeFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"}

func browser() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium on PATH (apt-get install chromium)")
}

// run starts Chromium on page with extra flags and a fresh profile; it returns stdout and stderr.
func run(bin, page string, extra ...string) (string, string, error) {
	profile, err := os.MkdirTemp("", "browsercheck-profile-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append(append(append([]string{}, chromeFlags...), "--user-data-dir="+profile,
		fmt.Sprintf("--virtual-time-budget=%d", *flagBudget)), extra...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

var (
	// A chart block: its title, then the chart div's opening tag (after ECharts ran).
	chartRe = regexp.MustCompile(`(?s)<h3>([^<]*)</h3>\s*<div id="(prefgpt-chart-[0-9a-f]+)" class="prefgpt-chart"([^>]*)>(.*?)<script`)
	stateRe = regexp.MustCompile(`data-prefgpt-chart="([a-z-]+)"`)
	// Chromium's --enable-logging=stderr prints console messages as `INFO:CONSOLE(line)] "text", source: ...`.
	consoleRe = regexp.MustCompile(`:CONSOLE[:(]\d*\)?\]? "(.*)", source: (.*)`)
)

type chart struct{ title, state string }

func check(bin, page string) ([]chart, []string, error) {
	dom, logs, err := run(bin, page, "--enable-logging=stderr", "--v=0", "--dump-dom")
	if err != nil {
		return nil, nil, fmt.Errorf("chromium on %s: %w\n%s", page, err, logs)
	}
	charts, problems := parse(dom, logs)
	return charts, problems, nil
}

// parse reads the charts' states from the DOM Chromium dumped after the scripts ran, and the
// JavaScript errors from its console log.
func parse(dom, logs string) ([]chart, []string) {
	var charts []chart
	for _, m := range chartRe.FindAllStringSubmatch(dom, -1) {
		c := chart{title: m[1], state: "not initialised"}
		if s := stateRe.FindStringSubmatch(m[3]); s != nil {
			c.state = s[1]
		}
		if c.state == "ok" && !strings.Contains(m[4], "<canvas") {
			c.state = "no canvas"
		}
		charts = append(charts, c)
	}
	var problems []string
	for _, line := range strings.Split(logs, "\n") {
		m := consoleRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if strings.Contains(m[1], "Uncaught") || strings.Contains(m[1], "Error") || strings.Contains(m[1], "is not defined") {
			problems = append(problems, fmt.Sprintf("console: %s (%s)", m[1], m[2]))
		}
	}
	return charts, problems
}

func main() {
	flag.Var(&flagWant, "want", "a chart whose title contains this text (case-insensitive) must be drawn; repeatable")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: browsercheck [flags] PAGE.html...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	bin, err := browser()
	if err != nil {
		fmt.Fprintln(os.Stderr, "browsercheck:", err)
		os.Exit(1)
	}
	failed := false
	for _, arg := range flag.Args() {
		page, err := filepath.Abs(arg)
		if err == nil {
			_, err = os.Stat(page)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "browsercheck:", err)
			os.Exit(1)
		}
		charts, problems, err := check(bin, page)
		if err != nil {
			fmt.Fprintln(os.Stderr, "browsercheck:", err)
			os.Exit(1)
		}
		drawn := 0
		for _, c := range charts {
			if c.state == "ok" {
				drawn++
			} else {
				problems = append(problems, fmt.Sprintf("chart %q: %s", c.title, c.state))
			}
		}
		if drawn < *flagMin {
			problems = append(problems, fmt.Sprintf("%d charts drawn, want at least %d", drawn, *flagMin))
		}
		for _, w := range flagWant {
			found := false
			for _, c := range charts {
				if c.state == "ok" && strings.Contains(strings.ToLower(c.title), strings.ToLower(w)) {
					found = true
				}
			}
			if !found {
				problems = append(problems, fmt.Sprintf("no drawn chart titled like %q", w))
			}
		}
		fmt.Printf("%s: %d/%d charts drawn\n", arg, drawn, len(charts))
		for _, p := range problems {
			fmt.Printf("  FAIL %s\n", p)
			failed = true
		}
	}
	if *flagScreenshot != "" {
		page, _ := filepath.Abs(flag.Arg(flag.NArg() - 1))
		out, _ := filepath.Abs(*flagScreenshot)
		if _, logs, err := run(bin, page, fmt.Sprintf("--window-size=%d,%d", *flagWidth, *flagHeight), "--screenshot="+out); err != nil {
			fmt.Fprintf(os.Stderr, "browsercheck: screenshot: %v\n%s", err, logs)
			os.Exit(1)
		}
		fmt.Println("screenshot:", *flagScreenshot)
	}
	if failed {
		os.Exit(1)
	}
}
