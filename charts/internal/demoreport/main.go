// Command demoreport writes the synthetic fixture run and its report.html, for checking the
// report in a headless browser without training anything:
//
//	go run ./charts/internal/demoreport /tmp/demo-run   # writes /tmp/demo-run/report.html
package main

import (
	"fmt"
	"os"

	"github.com/prefgpt/prefgpt/charts"
	"github.com/prefgpt/prefgpt/charts/internal/fixture"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: demoreport RUN_DIR")
		os.Exit(2)
	}
	dir, err := fixture.Write(os.Args[1], fixture.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demoreport:", err)
		os.Exit(1)
	}
	page, err := charts.Report(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demoreport:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(dir.Report(), page, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "demoreport:", err)
		os.Exit(1)
	}
	fmt.Println(dir.Report())
}
