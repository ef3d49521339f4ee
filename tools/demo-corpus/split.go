package main

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// splitSentences cuts a paragraph into sentences the way spaCy's sentencizer leaves them for the
// detoxify-pile data: every sentence keeps its trailing whitespace, so strings.Join(result, "") == text.
//
// A sentence ends after a run of . ! ? (plus closing quotes or brackets) that is followed by whitespace
// and then by something that can start a sentence (an upper-case letter, a digit, an opening quote or
// bracket). It does not end after a known abbreviation ("Mr.", "e.g."), a single initial ("J. R. R."),
// or an ellipsis followed by a lower-case word. A line break after which a new line starts with "--"
// (a fortune's attribution) or a blank line also ends a sentence.
func splitSentences(text string) []string {
	var out []string
	start := 0
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == '\n' {
			// A paragraph break or an attribution line ends the sentence before it.
			j := skipSpace(text, i)
			if j < len(text) && (strings.Count(text[i:j], "\n") >= 2 || strings.HasPrefix(text[j:], "--")) {
				if strings.TrimSpace(text[start:i]) != "" {
					out = append(out, text[start:j])
					start = j
				}
			}
			i = j
			continue
		}
		if !isTerminal(r) {
			i += size
			continue
		}
		// Take the whole run of terminal punctuation and closing quotes/brackets.
		end := i
		for end < len(text) {
			r2, s2 := utf8.DecodeRuneInString(text[end:])
			if !isTerminal(r2) && !isCloser(r2) {
				break
			}
			end += s2
		}
		next := skipSpace(text, end)
		if next == end || next >= len(text) {
			// No whitespace after the punctuation (e.g. "3.14", "U.S.A.") or end of text.
			i = end
			continue
		}
		if sentenceBreak(text, start, i, end, next) {
			out = append(out, text[start:next])
			start = next
		}
		i = next
	}
	if start < len(text) {
		if strings.TrimSpace(text[start:]) == "" && len(out) > 0 {
			out[len(out)-1] += text[start:] // trailing whitespace belongs to the last sentence
		} else {
			out = append(out, text[start:])
		}
	}
	return out
}

// sentenceBreak decides whether the punctuation text[punct:end], followed by whitespace up to next,
// ends the sentence that began at start.
func sentenceBreak(text string, start, punct, end, next int) bool {
	following, _ := utf8.DecodeRuneInString(text[next:])
	if !canStartSentence(following) {
		return false
	}
	marks := text[punct:end]
	if strings.ContainsAny(marks, "!?") {
		return true
	}
	// Only periods from here on.
	if strings.HasPrefix(marks, "..") || strings.HasPrefix(marks, "…") {
		// An ellipsis ends a sentence only before a capitalised word that is not "I".
		return unicode.IsUpper(following) && !strings.HasPrefix(text[next:], "I ")
	}
	word := lastWord(text[start:punct])
	if isAbbreviation(word) {
		return false
	}
	return true
}

// lastWord is the word just before the period: letters, digits, inner periods and apostrophes.
func lastWord(s string) string {
	i := len(s)
	for i > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '\'') {
			break
		}
		i -= size
	}
	return s[i:]
}

// abbreviations that are followed by a period and usually by a capitalised word in the same sentence.
var abbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "st": true, "jr": true, "sr": true,
	"gen": true, "col": true, "lt": true, "capt": true, "sgt": true, "gov": true, "sen": true, "rep": true,
	"rev": true, "hon": true, "pres": true, "messrs": true, "mme": true, "mt": true, "ft": true,
	"vs": true, "v": true, "no": true, "nos": true, "vol": true, "fig": true, "ch": true, "pp": true,
	"inc": true, "co": true, "corp": true, "ltd": true, "bros": true, "dept": true, "univ": true,
	"jan": true, "feb": true, "mar": true, "apr": true, "jun": true, "jul": true, "aug": true,
	"sep": true, "sept": true, "oct": true, "nov": true, "dec": true,
	"e.g": true, "i.e": true, "cf": true, "viz": true, "approx": true, "ca": true, "al": true,
	"atty": true, "reps": true, "supt": true, "pfc": true, "cpl": true, "pvt": true, "adm": true, "ave": true,
	"blvd": true, "rd": true, "op": true, "p": true, "pl": true,
}

// isAbbreviation says whether word (the text before a period) is an abbreviation or an initial.
func isAbbreviation(word string) bool {
	if word == "" {
		return false
	}
	lower := strings.ToLower(word)
	if abbreviations[lower] {
		return true
	}
	// A single capital letter is an initial ("J. Edgar"); dotted forms are acronyms ("U.S", "a.m").
	if utf8.RuneCountInString(word) == 1 {
		r, _ := utf8.DecodeRuneInString(word)
		return unicode.IsUpper(r)
	}
	return strings.Contains(word, ".") && !strings.Contains(word, "..")
}

func isTerminal(r rune) bool { return r == '.' || r == '!' || r == '?' || r == '…' }

func isCloser(r rune) bool { return strings.ContainsRune(`"')]}’”»`, r) }

func canStartSentence(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsDigit(r) || strings.ContainsRune(`"'([{‘“«-`, r)
}

func skipSpace(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += size
	}
	return i
}
