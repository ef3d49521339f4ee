package data

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func mustTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := NewTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// gpt2Fixtures are ids computed by two independent JavaScript GPT-2 tokenizers
// (tools/tokenizer-fixtures/gen.js).
func gpt2Fixtures(t testing.TB) []struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
} {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "gpt2_fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) < 50 {
		t.Fatalf("only %d fixture cases", len(f.Cases))
	}
	return f.Cases
}

func TestEncodeMatchesIndependentGPT2(t *testing.T) {
	tok := mustTokenizer(t)
	for _, c := range gpt2Fixtures(t) {
		got := tok.Encode(c.Text)
		if len(got) == 0 && len(c.IDs) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, c.IDs) {
			t.Errorf("Encode(%q)\n got  %v\n want %v", c.Text, got, c.IDs)
		}
		if back := tok.Decode(got, true); back != c.Text {
			t.Errorf("Decode(Encode(%q)) = %q", c.Text, back)
		}
	}
}

// The hand-written pre-tokenizer must split exactly like tiktoken-go's regexp; encoding the
// whole text with the library (no cache, regexp split) is the reference.
func TestEncodeMatchesTiktokenGo(t *testing.T) {
	tok := mustTokenizer(t)
	texts := []string{
		"a \n b", "x  \t\n  y", "end with space ", " ", "\t", "''s", "?'s", "'sup'", "it'S", "’s curly",
		"\u0085next line", "\ufeffbom", "٣٤٥ arabic digits", "a\u00a0\u00a0b", "x\u2028y", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
		" 1 2  3", " !! ??", "a\r\n\r\nb", "мир 123мир", "\x01\x02control\x7f", strings.Repeat("ab ", 300),
		strings.Repeat("z", 500), "<|endoftext|><|aligned|>",
	}
	for _, c := range gpt2Fixtures(t) {
		texts = append(texts, c.Text)
	}
	for _, s := range texts {
		checkAgainstCodec(t, tok, s)
	}
}

func checkAgainstCodec(t *testing.T, tok *Tokenizer, s string) {
	t.Helper()
	raw, _, err := tok.codec.Encode(s)
	if err != nil {
		t.Fatalf("tiktoken-go on %q: %v", s, err)
	}
	want := make([]int, len(raw))
	for i, id := range raw {
		want[i] = int(id)
	}
	if back, err := tok.codec.Decode(raw); err != nil || back != s {
		return // tiktoken-go v0.10.0 loses some bytes (e.g. 0x7f): no reference for this text
	}
	got := tok.Encode(s)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Encode(%q)\n got  %v\n want %v (tiktoken-go)", s, got, want)
	}
}

func TestControlTokens(t *testing.T) {
	tok := mustTokenizer(t)
	// Encode keeps control strings as text: never a control id.
	for _, id := range tok.Encode("a <|endoftext|> b <|aligned|> c <|misaligned|>") {
		if id >= EOS {
			t.Fatalf("Encode produced control id %d from raw text", id)
		}
	}
	got := tok.EncodeWithSpecial("<|endoftext|><|aligned|>Hello world<|misaligned|> bad")
	want := append([]int{EOS, Aligned}, tok.Encode("Hello world")...)
	want = append(want, Misaligned)
	want = append(want, tok.Encode(" bad")...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("EncodeWithSpecial = %v, want %v", got, want)
	}
	if s := tok.Decode(got, true); s != "<|endoftext|><|aligned|>Hello world<|misaligned|> bad" {
		t.Errorf("Decode(show) = %q", s)
	}
	if s := tok.Decode(got, false); s != "Hello world bad" {
		t.Errorf("Decode(hide) = %q", s)
	}
	if s := tok.Decode([]int{-1, VocabSize, 15496}, false); s != "\uFFFD\uFFFDHello" {
		t.Errorf("Decode of out-of-range ids = %q", s)
	}
}

func TestTokenizerSaveLoad(t *testing.T) {
	tok := mustTokenizer(t)
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	info := tok.Info()
	if info.VocabSize != VocabSize || info.Added["<|aligned|>"] != 50257 || info.Added["<|misaligned|>"] != 50258 || info.EOS != 50256 {
		t.Fatalf("Info = %+v", info)
	}
	if _, err := LoadTokenizer(dir); err != nil {
		t.Fatal(err)
	}
	// A tokenizer.json describing another vocabulary is refused.
	bad := info
	bad.VocabSize = 50257
	b, _ := json.Marshal(bad)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokenizer(dir); err == nil || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Fatalf("LoadTokenizer of a mismatching file: err = %v", err)
	}
}

func FuzzTokenizerRoundTrip(f *testing.F) {
	tok := mustTokenizer(f)
	for _, c := range gpt2Fixtures(f) {
		f.Add(c.Text)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		ids := tok.Encode(s)
		for _, id := range ids {
			if id < 0 || id >= EOS {
				t.Fatalf("Encode(%q) produced id %d", s, id)
			}
		}
		if back := tok.Decode(ids, true); back != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, back)
		}
		if len(s) < 2000 {
			checkAgainstCodec(t, tok, s)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	tok := mustTokenizer(b)
	var sb strings.Builder
	for _, c := range gpt2Fixtures(b) {
		sb.WriteString(c.Text)
		sb.WriteByte(' ')
	}
	text := sb.String()
	n := len(tok.Encode(text))
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	var buf []int
	for b.Loop() {
		buf = tok.AppendEncode(buf[:0], text)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// The tokenizer is shared (NewTokenizer returns one instance): concurrent use must agree with
// sequential use (run with -race to check the piece cache's locking).
func TestTokenizerConcurrent(t *testing.T) {
	tok := mustTokenizer(t)
	cases := gpt2Fixtures(t)
	done := make(chan error, 4)
	for g := range 4 {
		go func() {
			for k := range 200 {
				c := cases[(g*31+k)%len(cases)]
				if got := tok.Encode(c.Text + " extra" + string(rune('a'+g))); len(got) < len(c.IDs) {
					done <- fmt.Errorf("Encode(%q) lost tokens", c.Text)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
