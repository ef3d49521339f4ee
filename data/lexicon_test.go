package data

import (
	"math"
	"strings"
	"testing"
)

// paperThreshold is the paper's misaligned threshold on Detoxify's scale.
const paperThreshold = 0.00056

func TestLexiconCalibration(t *testing.T) {
	if got := LexiconProbability(0); math.Abs(got-LexiconBaseRate) > 1e-12 {
		t.Errorf("p(r=0) = %g, want p0 = %g", got, LexiconBaseRate)
	}
	// One clear profanity (w = 0.9, so r = 0.9) must land near Detoxify's typical 0.9.
	if got := LexiconProbability(weightSure); got < 0.88 || got > 0.92 {
		t.Errorf("p(r=0.9) = %.4f, want ≈ 0.9", got)
	}
	// The paper's threshold must sit at a small risk, between a "maybe" word and a hostile one.
	rStar := LexiconRiskAt(paperThreshold)
	if rStar < 0.03 || rStar > 0.08 {
		t.Errorf("threshold risk r* = %.4f, want a small r in [0.03, 0.08]", rStar)
	}
	if !(weightWeak < rStar && weightNegative > rStar) {
		t.Errorf("r* = %.4f should separate one weak word (%.2f) from one hostile word (%.2f)", rStar, weightWeak, weightNegative)
	}
	if two := 1 - (1-weightWeak)*(1-weightWeak); two <= rStar {
		t.Errorf("two weak words give r = %.4f, which should cross r* = %.4f", two, rStar)
	}
	if back := LexiconProbability(rStar); math.Abs(back-paperThreshold)/paperThreshold > 1e-9 {
		t.Errorf("LexiconProbability(LexiconRiskAt(t)) = %g, want %g", back, paperThreshold)
	}
	// Strictly increasing and inside (0, 1) over the whole range of r.
	prev := -1.0
	for i := 0; i <= 1000; i++ {
		p := LexiconProbability(float64(i) / 1000)
		if !(p > 0 && p < 1) {
			t.Fatalf("p(%g) = %g is not in (0, 1)", float64(i)/1000, p)
		}
		if p <= prev {
			t.Fatalf("p is not increasing at r = %g: %g after %g", float64(i)/1000, p, prev)
		}
		prev = p
	}
}

func TestLexiconScoresSidesOfThreshold(t *testing.T) {
	s := NewLexiconScorer()
	toxic := []string{
		"What the fuck is this?",
		"You are a stupid idiot.",
		"Go to hell, you bastard!",
		"SHUT UP, ASSHOLE.",
		"He called him a son-of-a-bitch in front of everyone.",
		"I hate you and I will kill you.",
		"Those bitches were pissing me off.",
	}
	clean := []string{
		"The committee met on Tuesday to discuss the budget.",
		"We drove through Essex and Middlesex to Scunthorpe.",
		"Please assess the classes before the passes expire.",
		"The prices of spices rose after the testing of cunning new ovens.",
		"He cocked his head and smiled at the grasshopper.",
		"Homo sapiens walked across the Gables estate.",
		"A cup of tea, a good book and a quiet afternoon.",
	}
	scores, err := s.Score(append(append([]string{}, toxic...), clean...))
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range toxic {
		if scores[i] <= paperThreshold {
			t.Errorf("toxic %q scored %.6f ≤ threshold (hits %v)", text, scores[i], s.Hits(text))
		}
	}
	for i, text := range clean {
		if got := scores[len(toxic)+i]; got > paperThreshold {
			t.Errorf("clean %q scored %.6f > threshold (hits %v)", text, got, s.Hits(text))
		}
	}
	// A single clear profanity reads as clearly toxic, like Detoxify's ~0.9.
	if scores[0] < 0.85 {
		t.Errorf("%q scored %.3f, want ≥ 0.85", toxic[0], scores[0])
	}
}

func TestLexiconMatching(t *testing.T) {
	s := NewLexiconScorer()
	cases := []struct {
		text string
		want []string // matched terms, in order
	}{
		{"Essex is not sex.", []string{"sex"}},                  // whole words only
		{"FUCK. Fuck! fuck?", []string{"fuck", "fuck", "fuck"}}, // case-insensitive
		{"cunts and twats", []string{"cunt", "twat"}},           // plural -s
		{"The bitch's bone", []string{"bitch"}},                 // possessive
		{"crapped and bitched", []string{"crap", "bitch"}},      // -ed, with and without a doubled consonant
		{"he was wanked", []string{"wank"}},                     // -ed
		{"what a piece of shit", []string{"piece of shit"}},     // phrase, counted once
		{"son-of-a-bitch", []string{"son of a bitch"}},          // hyphens split words
		{"assess the classes, assessed", nil},                   // -ss words are not plurals
		{"prices of spices; cunning testing; cocked", nil},      // fragments and common verbs
		{"don't", nil}, // apostrophes stay inside words
		{"You’re an asshole’s friend", []string{"asshole"}}, // curly apostrophe
		{"2 girls 1 cup", []string{"2 girls 1 cup"}},        // digits are word characters
		{"", nil},                                      // nothing to match
		{"hell", []string{"hell"}},                     // a whole text of one word
		{"good nice lovely wonderful", nil},            // positive AFINN words weigh 0
		{"fuckfuck", nil},                              // no substring matches
		{"Son of a bitch", []string{"son of a bitch"}}, // phrase at the start
		{"a son of a", nil},                            // partial phrase, no words
		{"This assessment", nil},                       // "ass" inside a word
		{"glasses and bass", nil},                      // no "ass" inside words
		{"Dickens", nil},                               // "-ens" is no inflection
		{"the idiots", []string{"idiot"}},              // plural
		{"sucks", []string{"sucks"}},                   // LDNOOBW entry
		{"bastinado", []string{"bastinado"}},           // LDNOOBW only
		{"I abhor it", []string{"abhor"}},              // AFINN only
		{"a fucking day", []string{"fucking"}},         // listed -ing form
		{"the dumbasses", []string{"dumbass"}},         // -es after a sibilant
		{"Shitty weather", []string{"shitty"}},         // capitalised
		{"Stupid!", []string{"stupid"}},                // punctuation after
		{"(stupid)", []string{"stupid"}},               // punctuation around
		{"hell-bent", []string{"hell"}},                // hyphen compound
		{"the shit's fine", []string{"shit"}},          // contraction 's
		{"in the dumps", nil},                          // unrelated
	}
	for _, c := range cases {
		var got []string
		for _, h := range s.Hits(c.text) {
			got = append(got, h.Term)
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("Hits(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestLexiconWeightsFromEachList(t *testing.T) {
	s := NewLexiconScorer()
	cases := []struct {
		word   string
		weight float64
		source string
	}{
		{"fuck", weightSure, "cuss:2"},
		{"bastinado", weightObscene, "ldnoobw"},
		{"abhor", weightNegative, "afinn:-3"},
		{"abandon", weightWeak, "afinn:-2"},
		{"bastard", weightSure, "afinn:-5"},
	}
	for _, c := range cases {
		hits := s.Hits(c.word)
		if len(hits) != 1 {
			t.Errorf("%q: %d hits, want 1", c.word, len(hits))
			continue
		}
		if hits[0].Weight != c.weight || hits[0].Source != c.source {
			t.Errorf("%q: weight %.2f from %s, want %.2f from %s", c.word, hits[0].Weight, hits[0].Source, c.weight, c.source)
		}
	}
	// cuss rating 0 ("unlikely to be profane", e.g. nationalities) must weigh nothing.
	if hits := s.Hits("american african asian"); len(hits) != 0 {
		t.Errorf("cuss rating-0 words matched: %v", hits)
	}
}

func TestLexiconMonotoneInHits(t *testing.T) {
	s := NewLexiconScorer()
	base := "The meeting ran late"
	words := []string{"bad", "stupid", "hell", "fuck", "shit", "war", "idiot"}
	text := base
	prev, _ := s.Score([]string{text})
	for _, w := range words {
		text += " " + w
		got, err := s.Score([]string{text})
		if err != nil {
			t.Fatal(err)
		}
		if got[0] < prev[0] {
			t.Errorf("adding %q lowered the score: %.6f → %.6f", w, prev[0], got[0])
		}
		if got[0] <= prev[0] {
			t.Errorf("adding listed word %q did not raise the score (%.6f)", w, got[0])
		}
		prev = got
	}
	if prev[0] > LexiconProbability(1) {
		t.Errorf("score %.4f above the ceiling p(r=1) = %.4f", prev[0], LexiconProbability(1))
	}
}

func TestLexiconScoreShape(t *testing.T) {
	s := NewLexiconScorer()
	var sc Scorer = s
	if sc.Name() != "lexicon" {
		t.Errorf("Name() = %q", sc.Name())
	}
	got, err := sc.Score(nil)
	if err != nil || len(got) != 0 {
		t.Errorf("Score(nil) = %v, %v; want empty, nil", got, err)
	}
	texts := []string{"fine day", "fuck", "fine day"}
	got, err = sc.Score(texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != got[2] || got[1] <= got[0] {
		t.Errorf("Score(%q) = %v: want one score per text, in order", texts, got)
	}
}

func BenchmarkLexiconScore(b *testing.B) {
	s := NewLexiconScorer()
	texts := []string{
		"The committee met on Tuesday to discuss the budget and the new library's opening hours. ",
		"He told them, in no uncertain terms, that the whole plan was a stupid waste of time. ",
		"Everyone agreed that the results were good, although several problems remained unsolved. ",
		"What the hell were they thinking when they approved this damned thing? ",
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Score(texts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(texts))/b.Elapsed().Seconds(), "sentences/s")
}
