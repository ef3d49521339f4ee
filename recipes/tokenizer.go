package recipes

import (
	"context"
	"fmt"
	"html"
	"os"
	"strings"
	"time"

	"github.com/prefgpt/prefgpt/data"
	"github.com/prefgpt/prefgpt/rundir"
)

// TokenizerResult is what ExpandTokenizer wrote.
type TokenizerResult struct {
	Dir  string
	Info rundir.TokenizerInfo
}

func (r TokenizerResult) String() string {
	return fmt.Sprintf("tokenizer: %s + %d control tokens (vocabulary %d, EOS %d) → %s",
		r.Info.BaseEncoding, len(r.Info.Added), r.Info.VocabSize, r.Info.EOS, r.Dir)
}

// HTML renders the result for a notebook.
func (r TokenizerResult) HTML() string { return "<pre>" + html.EscapeString(r.String()) + "</pre>" }

// ExpandTokenizer is stage 1: GPT-2's tokenizer with <|aligned|> (50257) and <|misaligned|> (50258)
// added, written to tokenizer/ of the run directory (created if needed) together with run.json.
func ExpandTokenizer(ctx context.Context, o TokenizerOptions) (TokenizerResult, error) {
	dir, err := rundir.Create(o.Run)
	if err != nil {
		return TokenizerResult{}, err
	}
	if err := ensureRunInfo(dir, o.Common, "tokenizer"); err != nil {
		return TokenizerResult{}, err
	}
	tok, err := data.NewTokenizer()
	if err != nil {
		return TokenizerResult{}, fmt.Errorf("tokenizer stage: %w", err)
	}
	if err := tok.Save(dir.TokenizerDir()); err != nil {
		return TokenizerResult{}, fmt.Errorf("tokenizer stage: %w", err)
	}
	res := TokenizerResult{Dir: dir.TokenizerDir(), Info: tok.Info()}
	return res, nil
}

// ensureRunInfo writes run.json the first time any stage touches the run directory.
func ensureRunInfo(dir rundir.Dir, c Common, stage string) error {
	if _, err := os.Stat(dir.RunInfo()); err == nil {
		return nil
	}
	info := rundir.RunInfo{
		Created: time.Now().UTC().Format(time.RFC3339), Command: strings.Join(os.Args, " "),
		Preset: c.Preset, Backend: c.Backend, Notes: map[string]string{"first_stage": stage},
	}
	return rundir.WriteJSON(dir.RunInfo(), info)
}

// loadTokenizer reads the run's tokenizer, or says to run the tokenizer stage.
func loadTokenizer(dir rundir.Dir) (*data.Tokenizer, error) {
	if err := rundir.Require(dir.TokenizerFile(), "tokenizer"); err != nil {
		return nil, err
	}
	return data.LoadTokenizer(dir.TokenizerDir())
}
