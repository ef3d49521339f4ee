package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prefgpt/prefgpt/model"
	"github.com/prefgpt/prefgpt/recipes"
)

// fakeModel records what the REPL asked for and answers with text that encodes it.
type fakeModel struct {
	calls []fakeCall
	block chan struct{} // when set, Continue waits on it or on cancellation
}

type fakeCall struct {
	prompt   string
	prefixes []string
	n        int
	s        model.SampleOptions
}

func (f *fakeModel) Continue(ctx context.Context, prompt string, prefixes []string, n int, s model.SampleOptions) ([]recipes.Continuation, error) {
	f.calls = append(f.calls, fakeCall{prompt, prefixes, n, s})
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var out []recipes.Continuation
	for _, p := range prefixes {
		for i := 0; i < n; i++ {
			score := 0.01
			if p == "misaligned" {
				score = 0.93
			}
			out = append(out, recipes.Continuation{Prefix: p, Text: fmt.Sprintf(" <%s-%d>", p, i), Score: score})
		}
	}
	return out, nil
}

func runScript(t *testing.T, f *fakeModel, script string) string {
	t.Helper()
	var out strings.Builder
	lines, err := newLineReader(strings.NewReader(script), &out, false)
	if err != nil {
		t.Fatal(err)
	}
	st := replState{sampling: recipes.PaperSampling(), n: 1, prefixes: recipes.AllPrefixes()}
	if err := runREPL(f, lines, &out, st, make(chan os.Signal)); err != nil {
		t.Fatalf("runREPL: %v", err)
	}
	return out.String()
}

func TestREPLCommandsChangeTheNextGeneration(t *testing.T) {
	f := &fakeModel{}
	out := runScript(t, f, strings.Join([]string{
		"Hello there",
		":temp 1.3", ":top_p 0.5", ":max 40", ":n 2", ":seed 7", ":prefixes aligned,none",
		"Second prompt",
		":temp abc", ":n 0", ":prefixes bogus", ":frobnicate",
		":help",
		":quit",
		"never generated",
	}, "\n"))
	if len(f.calls) != 2 {
		t.Fatalf("want 2 generations (the line after :quit is not read), got %d\n%s", len(f.calls), out)
	}
	first, second := f.calls[0], f.calls[1]
	if first.prompt != "Hello there" || first.n != 1 || len(first.prefixes) != 3 || first.s.Temperature != 0.7 {
		t.Errorf("first call used %+v", first)
	}
	if second.prompt != "Second prompt" || second.n != 2 || second.s.Temperature != 1.3 || second.s.TopP != 0.5 ||
		second.s.MaxLength != 40 || second.s.Seed != 7 || strings.Join(second.prefixes, ",") != "aligned,none" {
		t.Errorf("second call did not see the settings: %+v", second)
	}
	for _, want := range []string{
		"#1 aligned", "0.9300 │ Hello there <misaligned-0>", "#2 none", "Second prompt <none-1>",
		`:temp: "abc" is not a number`, ":n: n must be between 1 and 64", `unknown prefix "bogus"`,
		"unknown command :frobnicate", ":prefixes L",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "<misaligned-0>\n#1 none") && strings.Contains(out, "Second prompt <misaligned") {
		t.Error("misaligned samples shown after :prefixes aligned,none")
	}
}

func TestREPLEndsAtEOFAndAdvancesTheSeed(t *testing.T) {
	f := &fakeModel{}
	runScript(t, f, ":seed 100\none\ntwo")
	if len(f.calls) != 2 || f.calls[0].s.Seed != 100 || f.calls[1].s.Seed != 101 {
		t.Fatalf("calls %+v: want seeds 100 then 101", f.calls)
	}
}

func TestREPLInterruptStopsGenerationNotTheLoop(t *testing.T) {
	f := &fakeModel{block: make(chan struct{})}
	interrupts := make(chan os.Signal, 1)
	var out strings.Builder
	lines, _ := newLineReader(strings.NewReader("slow prompt\n:quit\n"), &out, false)
	done := make(chan error)
	go func() {
		done <- runREPL(f, lines, &out, replState{sampling: recipes.PaperSampling(), n: 1, prefixes: recipes.AllPrefixes()}, interrupts)
	}()
	time.Sleep(50 * time.Millisecond)
	interrupts <- os.Interrupt
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ctrl-C did not stop the generation")
	}
	if !strings.Contains(out.String(), "(generation interrupted)") {
		t.Errorf("no interruption notice:\n%s", out.String())
	}
}
