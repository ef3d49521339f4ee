// Writes data/testdata/gpt2_fixtures.json: GPT-2 token ids of varied strings, computed by two
// independent JavaScript GPT-2 tokenizers (gpt-3-encoder: a port of OpenAI's encoder.py with
// GPT-2's encoder.json + vocab.bpe merges; gpt-tokenizer: r50k_base ranks). The script stops
// if they disagree. See README.md for how to run it.
'use strict';
const fs = require('fs');
const path = require('path');
const gpt3 = require('gpt-3-encoder');
const r50k = require('gpt-tokenizer/cjs/encoding/r50k_base');

const strings = [
  // plain prose, punctuation, capitals
  'Hello world',
  'Hello, world! How are you today?',
  'The quick brown fox jumps over the lazy dog.',
  'GPT-2 was trained on WebText.',
  'ALL CAPS SENTENCE WITH SHOUTING!!!',
  'e.g. i.e. etc. Mr. Smith went to Washington.',
  // contractions (case-sensitive in GPT-2's pattern)
  "I'm sure you're right, it's what we'd've done.",
  "They'll say we've won, don't they?",
  "DON'T SHOUT, IT'S LOUD",
  "rock 'n' roll and 'quoted' words''",
  "'s 't 're 've 'm 'll 'd",
  // whitespace runs
  '  two leading spaces',
  'trailing spaces   ',
  'a  b   c    d',
  'tab\tseparated\tvalues',
  'line one\nline two\n\nline four',
  'windows\r\nline endings\r\n',
  ' \n \n  mixed   \t whitespace \n',
  '\n\n\n',
  '   ',
  'non\u00a0breaking\u00a0space and ideographic\u3000space',
  // numbers
  '1234567890',
  'Pi is 3.14159265358979 and e is 2.71828.',
  'Call 555-0123 or +1 (800) 123-4567 before 12/31/2023.',
  '$1,000,000.00 is 1e6 dollars; 50% off!',
  'Roman numerals Ⅻ and superscripts ² ³ and fractions ½',
  // unicode letters and accents
  'café naïve résumé façade',
  'Ünïcödé wïth dïäcrïtïcs',
  'Привет, мир! Как дела?',
  'Γειά σου Κόσμε',
  'שלום עולם',
  'مرحبا بالعالم',
  'नमस्ते दुनिया',
  'สวัสดีชาวโลก',
  // CJK
  '你好，世界！',
  '日本語のテキストです。',
  '한국어 문장입니다.',
  '中文和English混合text',
  // emoji and symbols
  'I love it 😀😀 so much 🎉',
  'Family: 👨‍👩‍👧‍👦 and flags 🇫🇷🇯🇵',
  'Arrows → ← ↑ ↓ and math ∑ ∫ √ ∞ ≠ ≤',
  '♥♦♣♠ ©®™ §¶ †‡',
  // literal control-token strings are ordinary text for Encode
  '<|endoftext|>',
  'before<|endoftext|>after',
  'text <|aligned|> and <|misaligned|> markers',
  // code
  'func main() {\n\tfmt.Println("hi")\n}\n',
  'def f(x):\n    return x**2 + 1  # square\n',
  'if (a && b || !c) { x += 1; } else { y -= 2; }',
  '<html><body class="main">Hi</body></html>',
  '{"key": [1, 2, 3], "nested": {"a": null}}',
  'SELECT * FROM users WHERE id = 42;',
  'https://example.com/path?query=1&other=two#frag',
  'user@example.org',
  // long words and repeats
  'supercalifragilisticexpialidocious',
  'pneumonoultramicroscopicsilicovolcanoconiosis',
  'Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
  '----------------------------------------------------------------',
  '............',
  'hahahahahahahahahahahahahahahahaha',
  // mixed classes glued together
  'abc123def456',
  'v1.2.3-beta+build.7',
  'snake_case_name and camelCaseName and SCREAMING_CASE',
  '#hashtag @mention $TICKER',
  '(parenthesised) [bracketed] {braced}',
  'She said: "Don\'t!" — and left…',
  'Some toxic-sounding words like idiot and stupid are just text too.',
  // ASCII control bytes (tiktoken-go v0.10.0 drops 0x7f; GPT-2 has a token for every byte)
  '\x7f',
  'del\x7fchar\x00nul\x01\x1b[0m',
  '',
];

function check(s) {
  const a = gpt3.encode(s);
  const b = r50k.encode(s, { allowedSpecial: new Set(), disallowedSpecial: new Set() });
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new Error(`tokenizers disagree on ${JSON.stringify(s)}:\n  gpt-3-encoder ${a}\n  gpt-tokenizer ${b}`);
  }
  return a;
}

const out = strings.map((text) => ({ text, ids: check(text) }));
const file = path.join(__dirname, '..', '..', 'data', 'testdata', 'gpt2_fixtures.json');
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, JSON.stringify({
  generator: 'tools/tokenizer-fixtures/gen.js',
  tokenizers: ['gpt-3-encoder@1.1.4', 'gpt-tokenizer@4.0.0 (r50k_base)'],
  cases: out,
}, null, 1) + '\n');
console.log(`wrote ${out.length} cases to ${file}`);
