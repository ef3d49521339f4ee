#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). On a fresh machine it installs what the tests
# need, then runs, in order: go vet, every Go test (pure-Go backend), and every notebook headlessly
# with the rendered charts checked in headless Chromium.
#
#   bash scripts/test.sh            # everything
#   SKIP_NOTEBOOKS=1 bash scripts/test.sh   # Go tests only
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=1
# Tests never download anything; pure Go is the backend that runs everywhere.
export GOMLX_NO_AUTO_INSTALL=1
export GOMLX_BACKEND="${GOMLX_BACKEND:-go}"

start=$(date +%s)
echo "== go vet"
go vet ./...
echo "== go test"
go test -count=1 -timeout 20m ./... 2>&1 | tee /tmp/prefgpt-gotest.log
echo "go tests took $(( $(date +%s) - start ))s"

if [ "${SKIP_NOTEBOOKS:-}" != "1" ]; then
  echo "== notebooks"
  bash scripts/notebooks.sh
fi
echo "all tests took $(( $(date +%s) - start ))s"
