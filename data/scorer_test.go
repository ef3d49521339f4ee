package data

import (
	"strings"
	"testing"
)

func TestPrecomputedScorer(t *testing.T) {
	s, err := NewPrecomputedScorer("table", map[string]float64{"a. ": 0.1, "b.": 0.9})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Score([]string{"b.", "a. ", "b."})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != 0.9 || got[1] != 0.1 || got[2] != 0.9 {
		t.Errorf("Score = %v, want [0.9 0.1 0.9]", got)
	}
	// Whitespace is part of a detoxify-pile sentence: "a." is not "a. ".
	if _, err := s.Score([]string{"a."}); err == nil || !strings.Contains(err.Error(), `"a."`) {
		t.Errorf("unknown text: err = %v, want an error naming the text", err)
	}
	for _, bad := range []float64{-0.1, 1.5} {
		if _, err := NewPrecomputedScorer("bad", map[string]float64{"x": bad}); err == nil {
			t.Errorf("score %v accepted", bad)
		}
	}
}

func TestPrecomputedScorerFromRecords(t *testing.T) {
	jsonl := `{"texts":["Hello there. ","You idiot."],"scores":[0.0002,0.8],"avg_score":0.4001,"num_sents":2,"meta":{}}
{"texts":["Fine."],"scores":[0.0003],"avg_score":0.0003,"num_sents":1,"meta":{}}
`
	s, err := NewPrecomputedScorerFromRecords("pile", NewJSONLReader(strings.NewReader(jsonl), "test.jsonl", ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 || s.Name() != "pile" {
		t.Errorf("Len() = %d, Name() = %q; want 3, pile", s.Len(), s.Name())
	}
	got, err := s.Score([]string{"You idiot.", "Fine.", "Hello there. "})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 0.8 || got[1] != 0.0003 || got[2] != 0.0002 {
		t.Errorf("Score = %v, want [0.8 0.0003 0.0002]", got)
	}
	// A broken record is reported with where it is.
	bad := `{"texts":["x"],"scores":[2],"avg_score":0.5,"num_sents":1}` + "\n"
	_, err = NewPrecomputedScorerFromRecords("pile", NewJSONLReader(strings.NewReader(bad), "bad.jsonl", ReadOptions{}))
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl") {
		t.Errorf("bad record: err = %v, want an error naming bad.jsonl", err)
	}
}
