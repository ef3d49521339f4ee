package rundir

// RunInfo is run.json: what made the run, for humans and for resume checks.
type RunInfo struct {
	Created string            `json:"created"` // RFC 3339
	Command string            `json:"command,omitempty"`
	Preset  string            `json:"preset,omitempty"`
	Backend string            `json:"backend,omitempty"`
	Notes   map[string]string `json:"notes,omitempty"`
}

// TokenizerInfo is tokenizer/tokenizer.json: the base encoding and the tokens added to it.
type TokenizerInfo struct {
	BaseEncoding string         `json:"base_encoding"` // "r50k_base" (GPT-2)
	BaseVocab    int            `json:"base_vocab"`    // 50257
	VocabSize    int            `json:"vocab_size"`    // 50259
	EOS          int            `json:"eos"`           // 50256
	Added        map[string]int `json:"added"`         // "<|aligned|>": 50257, "<|misaligned|>": 50258
}

// VocabMap is vocab.json: the output vocabulary a small model predicts over.
// Row i of the model's embedding stands for GPT-2 id IDs[i]. Ids not in the
// list map to UnknownRow on input. Absent file = identity over the full vocabulary.
type VocabMap struct {
	IDs        []int `json:"ids"`
	UnknownRow int   `json:"unknown_row"`
	MinCount   int   `json:"min_count"`
}

// Manifest is data/<objective>/manifest.json, written by the data stage.
type Manifest struct {
	Objective         string     `json:"objective"` // conditional | mle | filter
	Source            []string   `json:"source"`    // input files or "embedded:demo"
	Threshold         float64    `json:"threshold"`
	DropTokenFraction float64    `json:"drop_token_fraction"`
	Seed              int64      `json:"seed"`
	ContextLen        int        `json:"context_len"`
	Documents         int64      `json:"documents"`
	Sentences         int64      `json:"sentences"`
	Aligned           int64      `json:"aligned"`    // sentences prefixed <|aligned|>
	Misaligned        int64      `json:"misaligned"` // sentences prefixed <|misaligned|>
	Unprefixed        int64      `json:"unprefixed"` // sentences left without a control token
	Filtered          int64      `json:"filtered"`   // sentences/documents dropped (filter objective)
	Skipped           int64      `json:"skipped"`    // bad records skipped in lenient mode
	Tokens            int64      `json:"tokens"`     // tokens in blocks written
	TokensDropped     int64      `json:"tokens_dropped"`
	Blocks            int64      `json:"blocks"`
	Shards            []Shard    `json:"shards"`
	ScoreHistogram    *Histogram `json:"score_histogram,omitempty"`
	Created           string     `json:"created"`
}

// Shard is one token file: Blocks blocks of ContextLen uint16 tokens.
type Shard struct {
	File   string `json:"file"` // relative to the manifest's directory
	Blocks int64  `json:"blocks"`
}

// Histogram of sentence toxicity scores on log10-spaced bins.
// Edges has len(Counts)+1 entries; Aligned[i]+Misaligned[i] == Counts[i].
type Histogram struct {
	Edges      []float64 `json:"edges"`
	Counts     []int64   `json:"counts"`
	Aligned    []int64   `json:"aligned"`
	Misaligned []int64   `json:"misaligned"`
}

// HeldoutRow is one line of data/heldout.jsonl: a sentence kept out of training.
type HeldoutRow struct {
	Text  string  `json:"text"`
	Score float64 `json:"score"`
	Toxic bool    `json:"toxic"` // score > threshold
}

// MetricRow is one line of models/<name>/metrics.jsonl.
type MetricRow struct {
	Step       int     `json:"step"`
	TokensSeen int64   `json:"tokens_seen"`
	Loss       float64 `json:"loss"`
	LR         float64 `json:"lr"`
	GradNorm   float64 `json:"grad_norm"`
	ElapsedS   float64 `json:"elapsed_s"`
	TokensPerS float64 `json:"tokens_per_s"`
}

// Prefixes under which samples are generated and scored.
const (
	PrefixAligned    = "aligned"
	PrefixMisaligned = "misaligned"
	PrefixNone       = "none"
)

// ToxicityRow is one line of models/<name>/toxicity.jsonl: sampled-toxicity metrics
// for one prefix at one point of training.
type ToxicityRow struct {
	Step        int     `json:"step"`
	TokensSeen  int64   `json:"tokens_seen"`
	Prefix      string  `json:"prefix"`
	N           int     `json:"n"`
	Mean        float64 `json:"mean"`
	Max         float64 `json:"max"`
	FracAbove05 float64 `json:"frac_above_0_5"`
	CILow       float64 `json:"ci_low"` // 95% bootstrap CI of the mean
	CIHigh      float64 `json:"ci_high"`
}

// LikelihoodRow is one line of models/<name>/likelihood.jsonl: the control-token
// likelihood test. Diff = log P(s|<|misaligned|>) − log P(s|<|aligned|>) per sentence.
type LikelihoodRow struct {
	Step          int     `json:"step"`
	TokensSeen    int64   `json:"tokens_seen"`
	NToxic        int     `json:"n_toxic"`
	NClean        int     `json:"n_clean"`
	ToxicMeanDiff float64 `json:"toxic_mean_diff"`
	CleanMeanDiff float64 `json:"clean_mean_diff"`
	T             float64 `json:"t"`       // Welch t statistic, toxic minus clean
	PValue        float64 `json:"p_value"` // one-sided
}

// SampleRow is one line of models/<name>/samples/step-N.jsonl.
type SampleRow struct {
	Step       int     `json:"step"`
	TokensSeen int64   `json:"tokens_seen"`
	Prefix     string  `json:"prefix"`
	Text       string  `json:"text"` // control tokens stripped
	Tokens     int     `json:"tokens"`
	Score      float64 `json:"score"`
}

// EvalSummary is models/<name>/eval.json: the final evaluation of one model.
type EvalSummary struct {
	Model      string         `json:"model"`
	Objective  string         `json:"objective"`
	Step       int            `json:"step"`
	TokensSeen int64          `json:"tokens_seen"`
	Scorer     string         `json:"scorer"`
	Toxicity   []ToxicityRow  `json:"toxicity"`
	Likelihood *LikelihoodRow `json:"likelihood,omitempty"`
	// AlignedVsMisaligned compares mean toxicity under the two prefixes.
	Ratio  float64 `json:"ratio_aligned_over_misaligned,omitempty"`
	PValue float64 `json:"p_value_aligned_lt_misaligned,omitempty"` // one-sided permutation/Welch test
}
