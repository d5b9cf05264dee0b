#!/usr/bin/env bash
# The one command that sets up a fresh Debian bookworm machine, builds ropewire and runs every
# test. CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
(
  cd "${BUILD_DIR:-build}"
  # Two cores: the kernels use both, so tests run one at a time.
  ctest --output-on-failure --timeout 900 -j 1
)
# The second build: the scheduler, server and tokenizer tests under ASan and UBSan, and every
# fuzz target for ROPEWIRE_FUZZ_SECONDS (10) each. ROPEWIRE_SKIP_SANITIZE=1 leaves it out.
if [ "${ROPEWIRE_SKIP_SANITIZE:-0}" != 1 ]; then ./scripts/sanitize.sh; fi
