#!/usr/bin/env bash
# The one command that sets up a fresh Debian bookworm machine, builds ropewire and serves the
# demo model shipped in models/demo on port 50051. Extra arguments go to ropewire-server
# (e.g. --port 6000, --max-num-seqs 32); MODEL=DIR serves another model directory.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --build-only
TARGETS="ropewire-server ropewire-cli" ./scripts/build.sh >&2
exec ./build/server/ropewire-server --model "${MODEL:-models/demo}" --port "${PORT:-50051}" "$@"
