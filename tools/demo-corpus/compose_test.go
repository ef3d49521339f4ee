package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// wordScorer flags every sentence containing "BAD" with 0.9; the rest score 1e-4.
type wordScorer struct{}

func (wordScorer) Name() string { return "word" }
func (wordScorer) Score(texts []string) ([]float64, error) {
	out := make([]float64, len(texts))
	for i, t := range texts {
		out[i] = 1e-4
		if strings.Contains(t, "BAD") {
			out[i] = 0.9
		}
	}
	return out, nil
}

// syntheticUnits makes n units of 1–5 sentences; every 10th sentence is toxic.
func syntheticUnits(n int) []unit {
	var units []unit
	k := 0
	for i := 0; i < n; i++ {
		u := unit{Source: fmt.Sprintf("test/%d", i%7), Index: i}
		for j := 0; j <= i%5; j++ {
			s := fmt.Sprintf("Sentence %d. ", k)
			if k%10 == 0 {
				s = fmt.Sprintf("BAD sentence %d. ", k)
			}
			u.Sentences = append(u.Sentences, s)
			k++
		}
		units = append(units, u)
	}
	return units
}

func TestComposeHitsShareAndKeepsEveryToxicSentence(t *testing.T) {
	units := syntheticUnits(6000)
	docs, err := chunkAndScore(units, wordScorer{}, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	var allToxic int
	for _, d := range docs {
		if len(d.texts) < 1 || len(d.texts) > 3 {
			t.Fatalf("document of %d sentences, want 1–3", len(d.texts))
		}
		allToxic += d.misaligned
	}
	for _, share := range []float64{0.2, 0.25, 0.3} {
		kept, q := compose(docs, share, 1)
		var sents, toxic int
		for i, d := range kept {
			sents += len(d.texts)
			toxic += d.misaligned
			if i > 0 && orderKey(kept[i-1].key) > orderKey(d.key) {
				t.Fatalf("kept documents are not ordered by orderKey")
			}
		}
		if toxic != allToxic {
			t.Errorf("share %.2f: kept %d of %d toxic sentences, want all", share, toxic, allToxic)
		}
		if got := float64(toxic) / float64(sents); math.Abs(got-share) > 0.02 {
			t.Errorf("share %.2f: got %.3f misaligned (q = %.3f)", share, got, q)
		}
		// Toxic documents are spread through the file, not gathered at one end: each tenth of the
		// documents holds close to the overall share of misaligned sentences.
		for part := 0; part < 10; part++ {
			var ps, pt int
			for _, d := range kept[part*len(kept)/10 : (part+1)*len(kept)/10] {
				ps += len(d.texts)
				pt += d.misaligned
			}
			if got := float64(pt) / float64(ps); math.Abs(got-share) > 0.08 {
				t.Errorf("share %.2f: tenth %d of the file is %.2f misaligned: clean and toxic documents are not interleaved", share, part, got)
			}
		}
	}
	// A share above what the toxic documents alone reach keeps no clean document.
	if kept, q := compose(docs, 0.9, 1); q != 0 || len(kept) != countToxic(docs) {
		t.Errorf("share 0.9: q = %v, kept %d documents; want 0 and only the %d toxic ones", q, len(kept), countToxic(docs))
	}
	// Deterministic for a seed, different for another seed.
	again, _ := chunkAndScore(units, wordScorer{}, 3, 1)
	other, _ := chunkAndScore(units, wordScorer{}, 3, 2)
	k1, _ := compose(docs, 0.3, 1)
	k2, _ := compose(again, 0.3, 1)
	k3, _ := compose(other, 0.3, 1)
	if len(k1) != len(k2) || k1[0].key != k2[0].key || k1[len(k1)-1].texts[0] != k2[len(k2)-1].texts[0] {
		t.Error("the same seed composed a different corpus")
	}
	if k1[0].texts[0] == k3[0].texts[0] && k1[1].texts[0] == k3[1].texts[0] {
		t.Error("another seed gave the same order")
	}
}

func TestComposeKeepsEverythingWhenShareIsLow(t *testing.T) {
	docs, err := chunkAndScore(syntheticUnits(500), wordScorer{}, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	// 10% of sentences are toxic: a target of 5% would need fewer clean sentences than exist; q caps at 1.
	kept, q := compose(docs, 0.05, 1)
	if q != 1 || len(kept) != len(docs) {
		t.Errorf("q = %v, kept %d of %d; want 1 and all", q, len(kept), len(docs))
	}
}

// mildScorer: "BAD" sentences are clearly toxic (0.9), "MEH" ones only cross the threshold (1e-3).
type mildScorer struct{}

func (mildScorer) Name() string { return "mild" }
func (mildScorer) Score(texts []string) ([]float64, error) {
	out := make([]float64, len(texts))
	for i, t := range texts {
		switch {
		case strings.Contains(t, "BAD"):
			out[i] = 0.9
		case strings.Contains(t, "MEH"):
			out[i] = 1e-3
		default:
			out[i] = 1e-4
		}
	}
	return out, nil
}

func TestComposeMildRateKeepsEveryStrongDocument(t *testing.T) {
	var units []unit
	for i := 0; i < 3000; i++ {
		s := fmt.Sprintf("Sentence %d. ", i)
		switch i % 10 {
		case 0:
			s = fmt.Sprintf("BAD sentence %d. ", i)
		case 1, 2, 3:
			s = fmt.Sprintf("MEH sentence %d. ", i)
		}
		units = append(units, unit{Source: "test/x", Index: i, Sentences: []string{s}})
	}
	docs, err := chunkAndScore(units, mildScorer{}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	count := func(kept []doc) (strong, mild, clean int) {
		for _, d := range kept {
			switch {
			case d.strong:
				strong++
			case d.misaligned > 0:
				mild++
			default:
				clean++
			}
		}
		return
	}
	for _, rate := range []float64{0, 0.25, 1} {
		kept, _ := compose(docs, 0.3, rate)
		strong, mild, clean := count(kept)
		if strong != 300 {
			t.Fatalf("mild=%v: kept %d strong documents, want all 300", rate, strong)
		}
		// 900 mild documents kept at the rate, within 5 binomial standard deviations.
		want := 900 * rate
		if sd := math.Sqrt(900 * rate * (1 - rate)); math.Abs(float64(mild)-want) > 5*sd+0.5 {
			t.Fatalf("mild=%v: kept %d mild documents, want about %.0f", rate, mild, want)
		}
		// At rate 1 the 1200 misaligned documents are 40% of all: every clean one is kept (q = 1).
		wantShare := 0.3
		if rate == 1 {
			wantShare = 0.4
		}
		if share := float64(strong+mild) / float64(strong+mild+clean); math.Abs(share-wantShare) > 0.03 {
			t.Fatalf("mild=%v: misaligned share %.3f, want %.2f", rate, share, wantShare)
		}
	}
}
