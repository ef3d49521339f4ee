package data

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"
)

// robertaTokenizer is the byte-level BPE tokenizer of RoBERTa (and so of Detoxify's `unbiased` model),
// read from the vocab.json + merges.txt that HF's tokenizer.save_pretrained writes.
//
// Encoding, as HF's RobertaTokenizer with add_prefix_space=False:
//  1. cut the text into pieces with GPT-2's pattern (same as GPT-2; nextPieceEnd in tokenizer.go);
//  2. map each byte of a piece to a printable character (GPT-2's bytes_to_unicode, so " " is "Ġ");
//  3. merge adjacent symbols, always the pair with the lowest rank in merges.txt first;
//  4. look the symbols up in vocab.json, then wrap the ids as <s> … </s>, truncated to maxLen.
//
// Unlike HF, the strings "<s>", "</s>", "<pad>" and "<mask>" inside a text are encoded as ordinary text,
// not as their special ids (scored text is generated text, where they should not occur).
type robertaTokenizer struct {
	vocab    map[string]int
	ranks    map[[2]string]int // merge pair → priority (line number in merges.txt)
	byteRune [256]rune         // bytes_to_unicode
	bos, eos int               // <s>, </s>
	pad, unk int               // <pad>, <unk>
	maxLen   int               // longest input, specials included (512 for RoBERTa)

	mu    sync.Mutex
	cache map[string][]int // piece → ids, bounded
}

// maxRobertaCache bounds the piece cache of the RoBERTa tokenizer.
const maxRobertaCache = 1 << 16

// loadRobertaTokenizer reads vocab.json, merges.txt and, when present, tokenizer_config.json
// (for model_max_length) from dir.
func loadRobertaTokenizer(dir string) (*robertaTokenizer, error) {
	t := &robertaTokenizer{ranks: map[[2]string]int{}, maxLen: 512, cache: map[string][]int{}}
	vocabPath := filepath.Join(dir, "vocab.json")
	raw, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("RoBERTa tokenizer: %w (save it with tokenizer.save_pretrained, see tools/onnx-export)", err)
	}
	if err := json.Unmarshal(raw, &t.vocab); err != nil {
		return nil, fmt.Errorf("RoBERTa tokenizer: %s is not a JSON object of token → id: %w", vocabPath, err)
	}
	special := map[string]*int{"<s>": &t.bos, "</s>": &t.eos, "<pad>": &t.pad, "<unk>": &t.unk}
	for tok, id := range special {
		v, ok := t.vocab[tok]
		if !ok {
			return nil, fmt.Errorf("RoBERTa tokenizer: %s has no %q token", vocabPath, tok)
		}
		*id = v
	}

	mergesPath := filepath.Join(dir, "merges.txt")
	f, err := os.Open(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("RoBERTa tokenizer: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || (line == 1 && strings.HasPrefix(text, "#version")) {
			continue
		}
		parts := strings.Split(text, " ")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("RoBERTa tokenizer: %s:%d: want two symbols separated by a space, got %q", mergesPath, line, text)
		}
		pair := [2]string{parts[0], parts[1]}
		if _, dup := t.ranks[pair]; !dup {
			t.ranks[pair] = len(t.ranks)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("RoBERTa tokenizer: reading %s: %w", mergesPath, err)
	}

	if raw, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json")); err == nil {
		var cfg struct {
			ModelMaxLength float64 `json:"model_max_length"`
		}
		if json.Unmarshal(raw, &cfg) == nil && cfg.ModelMaxLength >= 3 && cfg.ModelMaxLength <= 1<<20 {
			t.maxLen = int(cfg.ModelMaxLength) // HF writes a huge sentinel when unset: ignored above
		}
	}

	// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others (control
	// characters, space, 127–160, 173) take the code points 256, 257, … in byte order.
	next := rune(256)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t.byteRune[b] = rune(b)
		} else {
			t.byteRune[b] = next
			next++
		}
	}
	return t, nil
}

// encode returns the model input ids of text: <s>, the BPE ids (at most maxLen-2 of them), </s>.
func (t *robertaTokenizer) encode(text string) []int {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	ids := []int{t.bos}
	for i := 0; i < len(text) && len(ids) < t.maxLen-1; {
		j := nextPieceEnd(text, i)
		ids = append(ids, t.encodePiece(text[i:j])...)
		i = j
	}
	// Truncate like HF (truncation=True): keep the first maxLen-2 tokens, then </s>.
	if len(ids) > t.maxLen-1 {
		ids = ids[:t.maxLen-1]
	}
	return append(ids, t.eos)
}

// encodePiece byte-pair-encodes one pre-tokenized piece.
func (t *robertaTokenizer) encodePiece(piece string) []int {
	t.mu.Lock()
	ids, ok := t.cache[piece]
	t.mu.Unlock()
	if ok {
		return ids
	}
	symbols := t.symbolsAfterBPE(piece)
	ids = make([]int, len(symbols))
	for i, s := range symbols {
		id, ok := t.vocab[s]
		if !ok {
			id = t.unk // cannot happen with a byte-level vocabulary that has all 256 byte symbols
		}
		ids[i] = id
	}
	t.mu.Lock()
	if len(t.cache) < maxRobertaCache {
		t.cache[piece] = ids
	}
	t.mu.Unlock()
	return ids
}

// symbolsAfterBPE maps the bytes of piece to symbols and applies the merges.
func (t *robertaTokenizer) symbolsAfterBPE(piece string) []string {
	// One symbol per byte, in the printable alphabet of the vocabulary.
	symbols := make([]string, 0, len(piece))
	for i := 0; i < len(piece); i++ {
		symbols = append(symbols, string(t.byteRune[piece[i]]))
	}
	// Repeatedly merge the adjacent pair that merges.txt lists first, until no listed pair is left.
	for len(symbols) > 1 {
		best, bestRank := -1, -1
		for i := 0; i+1 < len(symbols); i++ {
			if r, ok := t.ranks[[2]string{symbols[i], symbols[i+1]}]; ok && (bestRank < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		// Merge every occurrence of that pair, left to right (as HF's bpe does).
		a, b := symbols[best], symbols[best+1]
		merged := symbols[:0:0]
		for i := 0; i < len(symbols); i++ {
			if i+1 < len(symbols) && symbols[i] == a && symbols[i+1] == b {
				merged = append(merged, a+b)
				i++
			} else {
				merged = append(merged, symbols[i])
			}
		}
		symbols = merged
	}
	return symbols
}
