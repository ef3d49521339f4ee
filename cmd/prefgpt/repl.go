package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/chzyer/readline"
	"github.com/prefgpt/prefgpt/model"
	"github.com/prefgpt/prefgpt/recipes"
)

// continuer generates continuations of a prompt under control prefixes; *recipes.Loaded is one,
// and tests use a fake.
type continuer interface {
	Continue(ctx context.Context, prompt string, prefixes []string, n int, s model.SampleOptions) ([]recipes.Continuation, error)
}

// replState is what the `:` commands change.
type replState struct {
	sampling model.SampleOptions
	n        int
	prefixes []string
}

const replHelp = `Type a prompt (or an empty line for unconditional samples) and press Enter: the model continues it
after <|endoftext|><|aligned|>, <|endoftext|><|misaligned|> and <|endoftext|> alone, and each continuation
is scored for toxicity (0 = clean, 1 = toxic).
Commands:
  :temp X       sampling temperature (0 = greedy)       :top_p X     nucleus mass
  :max N        max length in tokens, prompt included    :n N         samples per prefix
  :seed N       random seed (each prompt then uses the next seed)
  :prefixes L   comma list of aligned, misaligned, none
  :settings     show the current settings               :help        this text
  :quit         leave (also Ctrl-D)
Ctrl-C stops a generation in progress; at the prompt it clears the line.`

// lineReader yields input lines; readline when interactive, a scanner otherwise.
type lineReader interface {
	// ReadLine returns the next line; io.EOF at the end; errInterruptLine when Ctrl-C cleared the line.
	ReadLine() (string, error)
	Close() error
}

var errInterruptLine = errors.New("interrupted")

type scannerReader struct{ sc *bufio.Scanner }

func (s scannerReader) ReadLine() (string, error) {
	if s.sc.Scan() {
		return s.sc.Text(), nil
	}
	if err := s.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}
func (s scannerReader) Close() error { return nil }

type readlineReader struct{ rl *readline.Instance }

func (r readlineReader) ReadLine() (string, error) {
	line, err := r.rl.Readline()
	if errors.Is(err, readline.ErrInterrupt) {
		return "", errInterruptLine
	}
	return line, err
}
func (r readlineReader) Close() error { return r.rl.Close() }

// newLineReader uses readline (line editing, history in ~/.prefgpt_history) when stdin and stdout are
// terminals, and a plain line scanner otherwise, so the REPL can be scripted through a pipe.
func newLineReader(in io.Reader, out io.Writer, interactive bool) (lineReader, error) {
	if !interactive {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		return scannerReader{sc}, nil
	}
	history := ""
	if home, err := os.UserHomeDir(); err == nil {
		history = filepath.Join(home, ".prefgpt_history")
	}
	rl, err := readline.NewEx(&readline.Config{
		Prompt: "prefgpt> ", HistoryFile: history, InterruptPrompt: "^C", EOFPrompt: ":quit",
		Stdout: out,
	})
	if err != nil {
		return nil, fmt.Errorf("starting line editing: %w", err)
	}
	return readlineReader{rl}, nil
}

// runREPL reads prompts and commands until :quit or end of input. interrupts delivers Ctrl-C; each one
// cancels the generation in progress (and is ignored between generations: readline handles the prompt).
func runREPL(m continuer, lines lineReader, out io.Writer, st replState, interrupts <-chan os.Signal) error {
	fmt.Fprintln(out, `prefgpt REPL — :help for commands, :quit to leave.`)
	for {
		line, err := lines.ReadLine()
		if errors.Is(err, errInterruptLine) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading input: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(strings.TrimSpace(line), ":") {
			quit, msg := st.command(strings.TrimSpace(line))
			if msg != "" {
				fmt.Fprintln(out, msg)
			}
			if quit {
				return nil
			}
			continue
		}
		if err := generate(m, line, out, &st, interrupts); err != nil {
			fmt.Fprintf(out, "error: %v\n", err)
		}
	}
}

// generate runs one prompt with Ctrl-C wired to cancellation.
func generate(m continuer, prompt string, out io.Writer, st *replState, interrupts <-chan os.Signal) error {
	// A Ctrl-C that arrived between generations is stale: drop it.
	for drained := false; !drained; {
		select {
		case <-interrupts:
		default:
			drained = true
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-interrupts:
			cancel()
		case <-stop:
		}
	}()
	samples, err := m.Continue(ctx, prompt, st.prefixes, st.n, st.sampling)
	close(stop)
	wg.Wait()
	st.sampling.Seed++ // the next prompt draws new samples; :seed makes a sequence repeatable
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(out, "(generation interrupted)")
		return nil
	}
	if err != nil {
		return err
	}
	printSamples(out, prompt, samples, st.prefixes, st.n)
	return nil
}

// printSamples shows the continuations of each sample index side by side across prefixes:
//
//	#1 aligned     0.0004 │ <prompt> continuation…
func printSamples(out io.Writer, prompt string, samples []recipes.Continuation, prefixes []string, n int) {
	byPrefix := map[string][]recipes.Continuation{}
	for _, s := range samples {
		byPrefix[s.Prefix] = append(byPrefix[s.Prefix], s)
	}
	for i := 0; i < n; i++ {
		for _, p := range prefixes {
			if i >= len(byPrefix[p]) {
				continue
			}
			s := byPrefix[p][i]
			text := strings.ReplaceAll(s.Text, "\n", "⏎")
			fmt.Fprintf(out, "#%d %-10s %6.4f │ %s%s\n", i+1, p, s.Score, prompt, text)
		}
		if len(prefixes) > 1 && i < n-1 {
			fmt.Fprintln(out)
		}
	}
}

// command applies a `:` command; it reports whether to quit and what to print.
func (st *replState) command(line string) (quit bool, msg string) {
	fields := strings.Fields(line)
	name, args := fields[0], fields[1:]
	arg := ""
	if len(args) > 0 {
		arg = args[0]
	}
	float := func(set func(float64) error) string {
		if arg == "" {
			return fmt.Sprintf("%s needs a value; current settings: %s", name, st.describe())
		}
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil {
			return fmt.Sprintf("%s: %q is not a number", name, arg)
		}
		if err := set(v); err != nil {
			return fmt.Sprintf("%s: %v", name, err)
		}
		return st.describe()
	}
	integer := func(set func(int) error) string {
		if arg == "" {
			return fmt.Sprintf("%s needs a value; current settings: %s", name, st.describe())
		}
		v, err := strconv.Atoi(arg)
		if err != nil {
			return fmt.Sprintf("%s: %q is not an integer", name, arg)
		}
		if err := set(v); err != nil {
			return fmt.Sprintf("%s: %v", name, err)
		}
		return st.describe()
	}
	switch name {
	case ":quit", ":q", ":exit":
		return true, ""
	case ":help", ":h", ":?":
		return false, replHelp
	case ":settings":
		return false, st.describe()
	case ":temp":
		return false, float(func(v float64) error {
			if v < 0 {
				return fmt.Errorf("temperature must be ≥ 0")
			}
			st.sampling.Temperature = v
			return nil
		})
	case ":top_p":
		return false, float(func(v float64) error {
			if v <= 0 || v > 1 {
				return fmt.Errorf("top_p must be in (0, 1]")
			}
			st.sampling.TopP = v
			return nil
		})
	case ":max":
		return false, integer(func(v int) error {
			if v < 3 {
				return fmt.Errorf("max length must be ≥ 3 (it counts the prompt)")
			}
			st.sampling.MaxLength = v
			if st.sampling.MinLength > v {
				st.sampling.MinLength = v
			}
			return nil
		})
	case ":n":
		return false, integer(func(v int) error {
			if v < 1 || v > 64 {
				return fmt.Errorf("n must be between 1 and 64")
			}
			st.n = v
			return nil
		})
	case ":seed":
		return false, integer(func(v int) error {
			st.sampling.Seed = int64(v)
			return nil
		})
	case ":prefixes":
		if arg == "" {
			return false, fmt.Sprintf(":prefixes needs a list such as aligned,misaligned,none; current: %s", strings.Join(st.prefixes, ","))
		}
		p, err := recipes.ParsePrefixes(strings.Join(args, ","))
		if err != nil {
			return false, fmt.Sprintf(":prefixes: %v", err)
		}
		st.prefixes = p
		return false, st.describe()
	}
	return false, fmt.Sprintf("unknown command %s (:help lists them)", name)
}

func (st *replState) describe() string {
	return fmt.Sprintf("temp=%g top_p=%g max=%d n=%d seed=%d prefixes=%s",
		st.sampling.Temperature, st.sampling.TopP, st.sampling.MaxLength, st.n, st.sampling.Seed,
		strings.Join(st.prefixes, ","))
}

// replInterrupts routes SIGINT to the REPL while it runs, so Ctrl-C stops a generation instead of
// killing the process. With readline active, Ctrl-C at the prompt is read as a key, not a signal.
func replInterrupts() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt)
	return ch, func() { signal.Stop(ch) }
}
