package data

import (
	"bytes"
	_ "embed"
	"fmt"

	"github.com/klauspost/compress/gzip"
)

// The embedded demo corpus: ~2.2k short documents of English (Debian fortunes and the Brown Corpus)
// in the detoxify-pile schema, every sentence scored by the lexicon scorer: every document of the
// sources with a clearly toxic sentence (score > 0.5) and a sample of clean ones, so that about 15% of
// sentences score above the paper's 0.00056 threshold. docs: data/demo/README.md; rebuild with
// tools/demo-corpus.
//
//go:embed demo/corpus.jsonl.gz
var demoCorpus []byte

// DemoName is how the embedded corpus is named in manifests and error messages.
const DemoName = "embedded:demo"

// OpenDemo returns a reader over the embedded demo corpus, the default input of the data stage.
// Every record is validated like a file's would be (strict mode).
func OpenDemo() (RecordReader, error) {
	gz, err := gzip.NewReader(bytes.NewReader(demoCorpus))
	if err != nil {
		return nil, fmt.Errorf("opening the embedded demo corpus: %w", err)
	}
	return NewJSONLReader(gz, DemoName, ReadOptions{}), nil
}
