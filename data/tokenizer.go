package data

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/prefgpt/prefgpt/rundir"
	"github.com/tiktoken-go/tokenizer"
)

// Token ids of the expanded GPT-2 vocabulary: GPT-2's 50257 tokens (the last one is
// <|endoftext|>) plus the two control tokens of conditional training.
const (
	EOS        = 50256 // <|endoftext|>: separates documents; also GPT-2's pad token
	Aligned    = 50257 // <|aligned|>: the sentence that follows scores <= threshold
	Misaligned = 50258 // <|misaligned|>: the sentence that follows scores > threshold
	VocabSize  = 50259 // GPT-2's 50257 + the two control tokens
)

// Strings of the special tokens.
const (
	EOSText        = "<|endoftext|>"
	AlignedText    = "<|aligned|>"
	MisalignedText = "<|misaligned|>"
)

// baseEncoding is tiktoken's name for GPT-2's byte-level BPE (same ranks, same split regex).
const baseEncoding = "r50k_base"

// maxCachedPieces bounds the piece → ids cache. Word frequencies are Zipfian, so the first
// few hundred thousand distinct pieces cover nearly every piece of a large corpus.
const maxCachedPieces = 1 << 18

// Tokenizer is GPT-2's byte-level BPE tokenizer expanded with <|aligned|> and <|misaligned|>,
// as in the paper (HF GPT2Tokenizer + add_special_tokens). It is safe for concurrent use.
//
// Encoding splits text into pieces with GPT-2's pattern
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (implemented by hand below: the regexp engine is the slow part), then byte-pair-encodes
// each piece with the r50k_base ranks embedded in tiktoken-go, caching the ids of frequent
// pieces. (tiktoken-go's own Encode is not used: v0.10.0 silently drops some bytes, e.g. 0x7f.)
type Tokenizer struct {
	codec tokenizer.Codec // tiktoken-go r50k_base: where the GPT-2 vocabulary comes from

	pieces []string       // id → the bytes of the token (ids < EOS)
	ranks  map[string]int // the bytes of a token → its id (= its BPE merge rank)

	mu    sync.RWMutex
	cache map[string][]int // piece → ids
}

var (
	sharedTokenizer    *Tokenizer
	sharedTokenizerErr error
	sharedTokenizerMu  sync.Once
)

// NewTokenizer returns the expanded GPT-2 tokenizer. The vocabulary is embedded (no download);
// all calls share one instance, built on first use.
func NewTokenizer() (*Tokenizer, error) {
	sharedTokenizerMu.Do(func() { sharedTokenizer, sharedTokenizerErr = buildTokenizer() })
	return sharedTokenizer, sharedTokenizerErr
}

func buildTokenizer() (*Tokenizer, error) {
	codec, err := tokenizer.Get(tokenizer.R50kBase)
	if err != nil {
		return nil, fmt.Errorf("loading GPT-2 (%s) vocabulary: %w", baseEncoding, err)
	}
	t := &Tokenizer{codec: codec, pieces: make([]string, EOS), ranks: make(map[string]int, EOS),
		cache: make(map[string][]int, 1<<14)}
	for id := range EOS {
		s, err := codec.Decode([]uint{uint(id)})
		if err != nil {
			return nil, fmt.Errorf("loading GPT-2 vocabulary: token %d: %w", id, err)
		}
		t.pieces[id] = s
		t.ranks[s] = id
	}
	if len(t.ranks) != EOS {
		return nil, fmt.Errorf("loading GPT-2 vocabulary: %d distinct tokens, want %d", len(t.ranks), EOS)
	}
	return t, nil
}

// Encode tokenizes text with GPT-2's BPE. Control-token strings such as "<|endoftext|>" in
// the text are encoded as ordinary text ("<", "|", "end", ...), so raw documents can never
// inject control tokens. (HF's GPT2Tokenizer would split them out as special tokens; use
// EncodeWithSpecial for that.) Invalid UTF-8 bytes are encoded as U+FFFD, one per byte,
// as tiktoken-go does.
func (t *Tokenizer) Encode(text string) []int {
	return t.AppendEncode(nil, text)
}

// AppendEncode appends the ids of text (as Encode) to dst and returns the extended slice.
func (t *Tokenizer) AppendEncode(dst []int, text string) []int {
	if !utf8.ValidString(text) {
		text = replaceInvalidBytes(text)
	}
	for i := 0; i < len(text); {
		j := nextPieceEnd(text, i)
		dst = t.appendPiece(dst, text[i:j])
		i = j
	}
	return dst
}

// EncodeWithSpecial is Encode, except that <|endoftext|>, <|aligned|> and <|misaligned|> in
// the text become their single control ids (the text between them is encoded separately).
func (t *Tokenizer) EncodeWithSpecial(text string) []int {
	var ids []int
	for len(text) > 0 {
		at, id, n := findSpecial(text)
		if at < 0 {
			return t.AppendEncode(ids, text)
		}
		ids = t.AppendEncode(ids, text[:at])
		ids = append(ids, id)
		text = text[at+n:]
	}
	return ids
}

// findSpecial returns the position, id and length of the first control-token string in s,
// or -1.
func findSpecial(s string) (at, id, n int) {
	at = -1
	for _, sp := range [...]struct {
		text string
		id   int
	}{{EOSText, EOS}, {AlignedText, Aligned}, {MisalignedText, Misaligned}} {
		if k := strings.Index(s, sp.text); k >= 0 && (at < 0 || k < at) {
			at, id, n = k, sp.id, len(sp.text)
		}
	}
	return at, id, n
}

// Decode turns ids back into text. Control tokens (EOS included) are written as their strings
// when showControl is true and dropped otherwise. Ids outside the vocabulary become U+FFFD.
// The bytes are returned as they are: a cut in the middle of a multi-byte character leaves
// invalid UTF-8 (so decoding ids one by one and concatenating gives the same text).
func (t *Tokenizer) Decode(ids []int, showControl bool) string {
	var sb strings.Builder
	for _, id := range ids {
		switch {
		case id >= 0 && id < EOS:
			sb.WriteString(t.pieces[id])
		case id == EOS || id == Aligned || id == Misaligned:
			if showControl {
				sb.WriteString(ControlText(id))
			}
		default:
			sb.WriteRune(utf8.RuneError)
		}
	}
	return sb.String()
}

// ControlText is the string of a control id (EOS, Aligned, Misaligned), or "" for other ids.
func ControlText(id int) string {
	switch id {
	case EOS:
		return EOSText
	case Aligned:
		return AlignedText
	case Misaligned:
		return MisalignedText
	}
	return ""
}

// Info describes the expanded tokenizer for tokenizer/tokenizer.json.
func (t *Tokenizer) Info() rundir.TokenizerInfo {
	return rundir.TokenizerInfo{
		BaseEncoding: baseEncoding,
		BaseVocab:    EOS + 1,
		VocabSize:    VocabSize,
		EOS:          EOS,
		Added:        map[string]int{AlignedText: Aligned, MisalignedText: Misaligned},
	}
}

// Save writes the expanded tokenizer's description (rundir.TokenizerInfo) to dir/tokenizer.json.
// The BPE ranks themselves are GPT-2's, embedded in the binary, so they are not copied.
func (t *Tokenizer) Save(dir string) error {
	if err := rundir.WriteJSON(filepath.Join(dir, "tokenizer.json"), t.Info()); err != nil {
		return fmt.Errorf("saving tokenizer: %w", err)
	}
	return nil
}

// LoadTokenizer reads dir/tokenizer.json and returns the tokenizer it describes, or an error
// if the file describes a different tokenizer than this program's.
func LoadTokenizer(dir string) (*Tokenizer, error) {
	path := filepath.Join(dir, "tokenizer.json")
	var info rundir.TokenizerInfo
	if err := rundir.ReadJSON(path, &info); err != nil {
		return nil, fmt.Errorf("loading tokenizer: %w", err)
	}
	t, err := NewTokenizer()
	if err != nil {
		return nil, err
	}
	want := t.Info()
	if info.BaseEncoding != want.BaseEncoding || info.BaseVocab != want.BaseVocab || info.VocabSize != want.VocabSize ||
		info.EOS != want.EOS || len(info.Added) != len(want.Added) ||
		info.Added[AlignedText] != Aligned || info.Added[MisalignedText] != Misaligned {
		return nil, fmt.Errorf("loading tokenizer: %s describes %+v, but this program's tokenizer is %+v", path, info, want)
	}
	return t, nil
}

// appendPiece appends the BPE ids of one pre-tokenized piece, from the cache when possible.
func (t *Tokenizer) appendPiece(dst []int, piece string) []int {
	if id, ok := t.ranks[piece]; ok { // most pieces are whole tokens
		return append(dst, id)
	}
	t.mu.RLock()
	ids, ok := t.cache[piece]
	t.mu.RUnlock()
	if ok {
		return append(dst, ids...)
	}
	ids = t.bytePairEncode(piece)
	t.mu.Lock()
	if len(t.cache) < maxCachedPieces {
		t.cache[strings.Clone(piece)] = ids
	}
	t.mu.Unlock()
	return append(dst, ids...)
}

// bytePairEncode merges the bytes of piece into GPT-2 tokens: start from single bytes and
// repeatedly merge the adjacent pair whose concatenation has the lowest rank (leftmost on
// ties) until no adjacent pair is a token. In GPT-2's vocabulary a token's rank is its id,
// and this rank order reproduces GPT-2's merges.txt order. A heap keeps long pieces (e.g. a
// base64 blob of letters) at O(n log n).
func (t *Tokenizer) bytePairEncode(piece string) []int {
	n := len(piece)
	// Parts form a linked list over byte offsets: part i covers piece[i:next[i]].
	next := make([]int32, n)
	prev := make([]int32, n)
	for i := range n {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	// pairRank is the rank of part i merged with the part after it, or -1.
	pairRank := func(i int32) int {
		j := next[i]
		if j >= int32(n) {
			return -1
		}
		if r, ok := t.ranks[piece[i:next[j]]]; ok {
			return r
		}
		return -1
	}
	rankOf := make([]int, n) // current pair rank at each live part start; stale heap entries are skipped
	h := mergeHeap{}
	for i := int32(0); i < int32(n); i++ {
		rankOf[i] = pairRank(i)
		if rankOf[i] >= 0 {
			h.push(mergeCandidate{rankOf[i], i})
		}
	}
	alive := make([]bool, n)
	for i := range alive {
		alive[i] = true
	}
	for len(h) > 0 {
		c := h.pop()
		if !alive[c.at] || rankOf[c.at] != c.rank {
			continue // superseded by an earlier merge
		}
		// Merge part c.at with the part after it.
		j := next[c.at]
		alive[j] = false
		next[c.at] = next[j]
		if next[j] < int32(n) {
			prev[next[j]] = c.at
		}
		for _, k := range [2]int32{c.at, prev[c.at]} {
			if k < 0 {
				continue
			}
			rankOf[k] = pairRank(k)
			if rankOf[k] >= 0 {
				h.push(mergeCandidate{rankOf[k], k})
			}
		}
	}
	var ids []int
	for i := int32(0); i < int32(n); i = next[i] {
		id, ok := t.ranks[piece[i:next[i]]]
		if !ok { // cannot happen: every single byte is a token
			id = int(utf8.RuneError)
		}
		ids = append(ids, id)
	}
	return ids
}

// mergeCandidate is a possible merge of the part starting at byte at with its successor.
type mergeCandidate struct {
	rank int
	at   int32
}

// mergeHeap is a min-heap of candidates by rank, then by position (leftmost merges first).
type mergeHeap []mergeCandidate

func (h mergeHeap) less(a, b int) bool {
	return h[a].rank < h[b].rank || h[a].rank == h[b].rank && h[a].at < h[b].at
}

func (h *mergeHeap) push(c mergeCandidate) {
	*h = append(*h, c)
	for i := len(*h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		(*h)[i], (*h)[parent] = (*h)[parent], (*h)[i]
		i = parent
	}
}

func (h *mergeHeap) pop() mergeCandidate {
	old := *h
	top := old[0]
	last := len(old) - 1
	old[0] = old[last]
	*h = old[:last]
	for i := 0; ; {
		child := 2*i + 1
		if child >= last {
			break
		}
		if child+1 < last && h.less(child+1, child) {
			child++
		}
		if !h.less(child, i) {
			break
		}
		(*h)[i], (*h)[child] = (*h)[child], (*h)[i]
		i = child
	}
	return top
}

// replaceInvalidBytes turns each byte of invalid UTF-8 into U+FFFD, which is what converting
// the string to runes (as the tiktoken-go regexp engine does) makes of it.
func replaceInvalidBytes(s string) string {
	var sb strings.Builder
	sb.Grow(len(s) + 8)
	for _, r := range s { // range yields RuneError once per invalid byte
		sb.WriteRune(r)
	}
	return sb.String()
}

// Character classes of GPT-2's split pattern.
const (
	classLetter = iota // \p{L}
	classNumber        // \p{N}
	classSpace         // \s
	classOther         // [^\s\p{L}\p{N}]
)

// asciiClass caches the class of each ASCII byte (the common case).
var asciiClass = func() (c [utf8.RuneSelf]uint8) {
	for b := range utf8.RuneSelf {
		c[b] = runeClassSlow(rune(b))
	}
	return c
}()

func runeClassSlow(r rune) uint8 {
	switch {
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r): // what the tiktoken-go regexp engine (regexp2) means by \s
		return classSpace
	}
	return classOther
}

// runeAt decodes the rune at s[i] and returns it with its class and width.
func runeAt(s string, i int) (r rune, class uint8, width int) {
	if b := s[i]; b < utf8.RuneSelf {
		return rune(b), asciiClass[b], 1
	}
	r, width = utf8.DecodeRuneInString(s[i:])
	return r, runeClassSlow(r), width
}

// runEnd returns the end of the run of runes of class c starting at i.
func runEnd(s string, i int, c uint8) int {
	for i < len(s) {
		_, ci, w := runeAt(s, i)
		if ci != c {
			break
		}
		i += w
	}
	return i
}

// nextPieceEnd returns the end of the piece of GPT-2's pattern that starts at s[i] (i < len(s)),
// trying the alternatives in the pattern's order, as a backtracking regexp engine does.
func nextPieceEnd(s string, i int) int {
	r, c, w := runeAt(s, i)

	// 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, checked before anything else)
	if r == '\'' && i+1 < len(s) {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return i + 3
			}
		}
	}

	// ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': one optional space, then a run of one class.
	if r == ' ' && i+1 < len(s) {
		if _, c2, w2 := runeAt(s, i+1); c2 != classSpace {
			return runEnd(s, i+1+w2, c2)
		}
	}
	if c != classSpace {
		return runEnd(s, i+w, c)
	}

	// '\s+(?!\S)': the whitespace run minus its last character when a non-space follows
	// (that character then starts the next piece, e.g. the space of " word").
	end, lastStart := i, i
	for end < len(s) {
		_, ce, we := runeAt(s, end)
		if ce != classSpace {
			break
		}
		lastStart = end
		end += we
	}
	if end == len(s) || lastStart == i {
		// At the end of the text the whole run matches; a single whitespace character
		// before a non-space falls through to '\s+'.
		return end
	}
	return lastStart
}
