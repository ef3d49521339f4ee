#!/usr/bin/env bash
# Executes every notebook headlessly and checks what they draw, on a fresh machine or here:
#
#   bash scripts/notebooks.sh                 # all notebooks, smoke settings (CI)
#   bash scripts/notebooks.sh 03_training     # only the notebooks whose names contain these words
#
#   1. installs what notebooks need (kernel/install.sh: Jupyter, GoNB, the "Go (prefgpt)" kernel)
#      and Chromium for the checks;
#   2. runs each notebooks/NN_*.ipynb in order with `jupyter nbconvert --execute`, in a temporary
#      folder (outputs never touch the repository); the notebooks share run directories under
#      $PREFGPT_RUNS (a temporary folder too) and use the recipes' smoke settings (PREFGPT_SMOKE=1);
#      a notebook fails on any error output, on a chart that reports a problem instead of drawing,
#      or on a cell running longer than CELL_TIMEOUT seconds;
#   3. exports the toxicity notebook to HTML and opens it, and the run's report.html, in headless
#      Chromium: the loss and toxicity charts must be drawn (ECharts initialised, a canvas in each
#      chart) with no JavaScript error (kernel/internal/browsercheck).
#
# Environment: CELL_TIMEOUT (default 900 s; 3600 s with the demo settings), PREFGPT_SMOKE (default
# 1; 0 runs the demo settings, most of an hour), KEEP=1 keeps the temporary folder, SCREENSHOT=PATH
# writes a screenshot of the toxicity notebook's export there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PREFGPT_SMOKE=${PREFGPT_SMOKE:-1}
# A demo-settings training cell runs for many minutes; a smoke cell for well under one.
if [ "$PREFGPT_SMOKE" = 0 ]; then CELL_TIMEOUT=${CELL_TIMEOUT:-3600}; else CELL_TIMEOUT=${CELL_TIMEOUT:-900}; fi
start=$(date +%s)
say() { printf '[notebooks %4ss] %s\n' "$(($(date +%s) - start))" "$*"; }

# --- 1. Install ----------------------------------------------------------------------------
bash kernel/install.sh
GOBIN=$(go env GOBIN)
[ -n "$GOBIN" ] || GOBIN="$(go env GOPATH)/bin"
export PATH="$GOBIN:$PATH"
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
	if command -v apt-get >/dev/null && [ "${PREFGPT_SKIP_APT:-}" != 1 ]; then
		SUDO=""
		[ "$(id -u)" = 0 ] || SUDO="sudo"
		say "installing chromium (for the chart checks)"
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium >/dev/null ||
			{ $SUDO apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium >/dev/null; }
	else
		echo "[notebooks] chromium is missing and apt-get is unavailable: cannot check the charts" >&2
		exit 1
	fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/prefgpt-notebooks.XXXXXX")
if [ "${KEEP:-}" = 1 ]; then
	say "keeping $WORK"
else
	trap 'rm -rf "$WORK"' EXIT
fi
export PREFGPT_RUNS="$WORK/runs"
mkdir -p "$WORK/executed" "$WORK/html" "$PREFGPT_RUNS"

# The checker is built once (go run would rebuild it for each page).
go build -o "$WORK/browsercheck" ./kernel/internal/browsercheck

# --- 2. Execute ----------------------------------------------------------------------------
# check_outputs NOTEBOOK: error outputs, stderr that reports an error, or a chart problem fail it.
check_outputs() {
	/usr/bin/python3 - "$1" <<'EOF'
import json, sys
nb = json.load(open(sys.argv[1]))
bad = []
for i, cell in enumerate(nb["cells"]):
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "error":
            bad.append("cell %d: %s: %s" % (i, out.get("ename"), out.get("evalue", "")[:300]))
        elif kind == "stream" and out.get("name") == "stderr":
            text = "".join(out.get("text", ""))
            if "error:" in text or "panic:" in text:
                bad.append("cell %d stderr: ...%s" % (i, text.strip()[-600:]))
        html = "".join(out.get("data", {}).get("text/html", ""))
        if "prefgpt-problem" in html:
            start = html.find("prefgpt-problem")
            bad.append("cell %d: a chart could not be drawn: %s" % (i, html[start:start + 300]))
for b in bad:
    print("  FAIL " + b)
sys.exit(1 if bad else 0)
EOF
}

# The stage notebooks first, the quickstart last: they share one run directory, so whichever runs
# first does the work (training, evaluation) and the other reuses it; the stage cells are the ones
# worth exercising.
selected=()
for nb in $(ls notebooks/[0-9][0-9]_*.ipynb | grep -v /00_) notebooks/00_*.ipynb; do
	if [ $# -eq 0 ]; then
		selected+=("$nb")
	else
		for want in "$@"; do
			case "$nb" in *"$want"*) selected+=("$nb") ;; esac
		done
	fi
done
[ ${#selected[@]} -gt 0 ] || { echo "[notebooks] no notebook matches: $*" >&2; exit 1; }

failed=0
for nb in "${selected[@]}"; do
	name=$(basename "$nb")
	t0=$(date +%s)
	say "executing $name"
	# allow_errors: a failing cell is recorded in the executed notebook (with its stderr, which says
	# what went wrong) instead of aborting the export; check_outputs then fails on it.
	if ! (cd notebooks && /usr/bin/jupyter nbconvert --to notebook --execute \
		--ExecutePreprocessor.kernel_name=gonb-prefgpt --ExecutePreprocessor.timeout="$CELL_TIMEOUT" \
		--ExecutePreprocessor.allow_errors=True \
		--output-dir "$WORK/executed" "$name") >"$WORK/$name.log" 2>&1; then
		say "FAIL $name (nbconvert):"
		grep -v '^\[NbConvertApp\]' "$WORK/$name.log" | tail -40
		failed=1
		break # later notebooks build on this one's run directory
	fi
	if ! check_outputs "$WORK/executed/$name"; then
		say "FAIL $name (outputs above)"
		failed=1
		break
	fi
	say "ok   $name ($(($(date +%s) - t0))s)"
done
[ $failed = 0 ] || exit 1

# --- 3. Charts in a browser ----------------------------------------------------------------
pages=()
if [ -f "$WORK/executed/05_toxicity_plots.ipynb" ]; then
	/usr/bin/jupyter nbconvert --to html --output-dir "$WORK/html" "$WORK/executed/05_toxicity_plots.ipynb" >/dev/null 2>&1
	pages+=("$WORK/html/05_toxicity_plots.html")
fi
for report in "$PREFGPT_RUNS"/*/report.html; do
	[ -f "$report" ] && pages+=("$report")
done
if [ ${#pages[@]} -gt 0 ]; then
	say "checking ${#pages[@]} page(s) in headless Chromium"
	shot=()
	[ -n "${SCREENSHOT:-}" ] && shot=(-screenshot "$SCREENSHOT")
	"$WORK/browsercheck" -min 2 -want "training loss" -want "toxicity" "${shot[@]}" "${pages[@]}"
else
	say "no page to check (the selected notebooks draw no report)"
fi
say "all notebooks passed"
