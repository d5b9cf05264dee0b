#!/usr/bin/env bash
# Configures and builds ropewire into ${BUILD_DIR:-build} (Ninja, ccache when present).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-2}
launcher=()
if command -v ccache >/dev/null 2>&1; then
  # Paths relative to the checkout, so clones in other folders (CI) share the cache.
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
# ROPEWIRE_WERROR=ON (CI) turns warnings in ropewire's own code into errors.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} \
  -DROPEWIRE_WERROR="${ROPEWIRE_WERROR:-OFF}" "${launcher[@]}" "$@"
# TARGETS="a b" builds only those targets (scripts/run.sh builds just the server and client).
targets=()
for t in ${TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j "$JOBS" "${targets[@]}"
