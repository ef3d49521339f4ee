#!/usr/bin/env bash
# Installs everything the prefgpt notebooks need, here or on your machine, in one command:
#
#   kernel/install.sh            # from anywhere inside the repository
#
#   1. Jupyter (Notebook, nbconvert, nbclient, console) from Debian packages, when apt-get is
#      available and they are missing (they run on /usr/bin/python3);
#   2. GoNB v0.11.5, goimports v0.52.0 and gopls v0.23.0 into $(go env GOPATH)/bin;
#   3. the Jupyter kernel "Go (prefgpt)" (name gonb-prefgpt): GoNB with plain-text compile
#      errors (--raw_error), logs in files instead of the notebook, PREFGPT_ROOT pointing at this
#      repository and PATH holding go and the tools above. GOMLX_BACKEND is left to your
#      environment (unset = auto: XLA when a PJRT plugin is present, else pure Go).
#
# Idempotent: what is already there at the right version is kept, so a second run takes a second.
# Environment: PREFGPT_KERNEL_NAME (default gonb-prefgpt), JUPYTER_DATA_DIR (default
# ~/.local/share/jupyter), PREFGPT_SKIP_APT=1 to never call apt-get.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KERNEL_NAME=${PREFGPT_KERNEL_NAME:-gonb-prefgpt}
GONB_VERSION=v0.11.5
TOOLS_VERSION=v0.52.0 # golang.org/x/tools (goimports)
GOPLS_VERSION=v0.23.0 # the last gopls that builds with Go 1.26

say() { printf '[install] %s\n' "$*"; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH (install Go 1.26 first: https://go.dev/dl/)"
GOBIN=$(go env GOBIN)
[ -n "$GOBIN" ] || GOBIN="$(go env GOPATH)/bin"
GOROOT_BIN="$(go env GOROOT)/bin"
export PATH="$GOBIN:$GOROOT_BIN:$PATH"

# --- 1. Jupyter ---------------------------------------------------------------------------
# Debian's Jupyter lives on /usr/bin/python3 (a pyenv or venv python3 first on PATH cannot see it).
jupyter_ok() {
	[ -x /usr/bin/jupyter ] && /usr/bin/python3 -c 'import notebook, nbconvert, nbclient, nbformat, jupyter_console, jupyter_client' 2>/dev/null
}
if jupyter_ok; then
	say "Jupyter: present"
elif [ "${PREFGPT_SKIP_APT:-}" != 1 ] && command -v apt-get >/dev/null; then
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO="sudo"
	PKGS="jupyter-notebook jupyter-nbconvert python3-nbclient jupyter-console jupyter-client"
	say "Jupyter: installing Debian packages: $PKGS"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	if ! $SUDO apt-get install -y --no-install-recommends $PKGS >/dev/null; then
		say "apt-get install failed; updating the package lists and retrying"
		$SUDO apt-get update >/dev/null
		# shellcheck disable=SC2086
		$SUDO apt-get install -y --no-install-recommends $PKGS >/dev/null
	fi
	jupyter_ok || die "Jupyter packages installed but /usr/bin/python3 cannot import them"
else
	say "Jupyter: not found and apt-get unavailable (or PREFGPT_SKIP_APT=1)."
	say "  Install it yourself, e.g. 'pip install notebook nbconvert nbclient jupyter-console'; the kernel is installed anyway."
fi

# --- 2. GoNB, goimports, gopls ------------------------------------------------------------
# has_version BIN MODULE VERSION: BIN exists and was built from MODULE at VERSION.
has_version() {
	[ -x "$GOBIN/$1" ] && go version -m "$GOBIN/$1" 2>/dev/null | grep -Eq "^\s+mod\s+$2\s+$3(\s|$)"
}

if has_version gonb github.com/janpfeifer/gonb "$GONB_VERSION"; then
	say "GoNB $GONB_VERSION: present"
else
	# 'go install github.com/janpfeifer/gonb@v0.11.5' fails on the module proxy (it asks for a version
	# list the proxy refuses); building from a throwaway module resolves the same version.
	say "GoNB $GONB_VERSION: building (a minute or two)"
	scratch=$(mktemp -d)
	trap 'rm -rf "$scratch"' EXIT
	(
		cd "$scratch"
		export GOWORK=off GOFLAGS=-mod=mod
		go mod init prefgpt-tools >/dev/null 2>&1
		go get "github.com/janpfeifer/gonb@$GONB_VERSION" >/dev/null 2>&1 || go get "github.com/janpfeifer/gonb@$GONB_VERSION"
		GOBIN="$GOBIN" go install github.com/janpfeifer/gonb
	)
	has_version gonb github.com/janpfeifer/gonb "$GONB_VERSION" || die "GoNB build did not produce $GOBIN/gonb"
fi

if has_version goimports golang.org/x/tools "$TOOLS_VERSION"; then
	say "goimports $TOOLS_VERSION: present"
else
	say "goimports $TOOLS_VERSION: building"
	GOWORK=off GOBIN="$GOBIN" go install "golang.org/x/tools/cmd/goimports@$TOOLS_VERSION"
fi

if has_version gopls golang.org/x/tools/gopls "$GOPLS_VERSION"; then
	say "gopls $GOPLS_VERSION: present"
else
	say "gopls $GOPLS_VERSION: building (a minute or two)"
	GOWORK=off GOBIN="$GOBIN" go install "golang.org/x/tools/gopls@$GOPLS_VERSION"
fi

# --- 3. Kernelspec ------------------------------------------------------------------------
DATA_DIR=${JUPYTER_DATA_DIR:-$HOME/.local/share/jupyter}
KERNEL_DIR="$DATA_DIR/kernels/$KERNEL_NAME"
mkdir -p "$KERNEL_DIR/logs"
# json_str: a JSON string literal (paths with quotes or backslashes stay valid JSON).
json_str() { /usr/bin/env python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1" 2>/dev/null ||
	printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
KERNEL_PATH="$GOBIN:$GOROOT_BIN:/usr/local/bin:/usr/bin:/bin"
cat >"$KERNEL_DIR/kernel.json.tmp" <<EOF
{
  "argv": [$(json_str "$GOBIN/gonb"), "--kernel", "{connection_file}", "--raw_error",
           "--logtostderr=false", "--stderrthreshold=FATAL", $(json_str "--log_dir=$KERNEL_DIR/logs")],
  "display_name": "Go (prefgpt)",
  "language": "go",
  "interrupt_mode": "message",
  "env": {
    "PREFGPT_ROOT": $(json_str "$ROOT"),
    "PATH": $(json_str "$KERNEL_PATH")
  }
}
EOF
if cmp -s "$KERNEL_DIR/kernel.json.tmp" "$KERNEL_DIR/kernel.json"; then
	rm "$KERNEL_DIR/kernel.json.tmp"
	say "kernel $KERNEL_NAME: present ($KERNEL_DIR)"
else
	mv "$KERNEL_DIR/kernel.json.tmp" "$KERNEL_DIR/kernel.json"
	say "kernel $KERNEL_NAME (\"Go (prefgpt)\"): installed in $KERNEL_DIR"
fi
# Old kernel log files are of no use; keep the folder small.
find "$KERNEL_DIR/logs" -type f -mtime +7 -delete 2>/dev/null || true

say "done: open a notebook with 'jupyter notebook $ROOT/notebooks' and pick the \"Go (prefgpt)\" kernel"
