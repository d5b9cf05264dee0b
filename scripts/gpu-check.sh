#!/usr/bin/env bash
# The CUDA backend's checks on a machine with an NVIDIA GPU (an H200 in mind), in two halves:
#
#   ./scripts/gpu-check.sh pack   on the build machine (Debian, no GPU needed): builds the CUDA
#                                 tests, the kernel benchmark and ropewire-generate for sm_90 and
#                                 packs them with the shared libraries they need into .gpu/
#                                 (ignored by git, about 15 MB).
#   ./scripts/gpu-check.sh run    on the GPU machine, from a copy of this tree that includes
#                                 .gpu/: needs only a CUDA 13 driver and runtime (cuBLAS), no
#                                 Debian packages. Runs every CUDA op against the CPU reference,
#                                 the fixture models end to end on the GPU against the CPU path
#                                 and transformers' goldens, and the attention benchmark; writes
#                                 a summary table and the logs to $OUT (default ./gpu-check-out).
#
# `run` fits in about 8 minutes on an H200: each test binary gets at most 180 s, the benchmark
# at most 240 s.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TEST_BINARIES=(
  tests/kernels/kernels_cuda_dense_test
  tests/kernels/kernels_cuda_attention_test
  tests/model/model_cuda_test
)
BENCH_BINARY=bench/cuda/ropewire-bench-cuda-attention
TOOL_BINARIES=(model/ropewire-generate)

pack() {
  set -e
  local build=${BUILD_DIR:-build}
  local targets=()
  for b in "${TEST_BINARIES[@]}" "$BENCH_BINARY" "${TOOL_BINARIES[@]}"; do targets+=("$(basename "$b")"); done
  TARGETS="${targets[*]}" ./scripts/build.sh
  rm -rf .gpu && mkdir -p .gpu/stage/bin .gpu/stage/lib
  for b in "${TEST_BINARIES[@]}" "$BENCH_BINARY" "${TOOL_BINARIES[@]}"; do
    strip --strip-debug -o ".gpu/stage/bin/$(basename "$b")" "$build/$b"
  done
  # Every shared library the binaries load, except the C and C++ runtimes (the GPU machine has
  # newer, backward-compatible ones, which its CUDA libraries may need) and the CUDA driver,
  # cuBLAS and cuBLASLt (taken from its CUDA installation; cuBLAS alone is larger than what may
  # travel).
  ldd .gpu/stage/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libstdc\+\+|libgcc_s|libcuda|libcublas|libcublasLt)\.so' |
    while read -r lib; do cp -L "$lib" .gpu/stage/lib/; done
  tar -C .gpu/stage -cJf .gpu/payload.tar.xz bin lib
  rm -rf .gpu/stage
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
  echo "packed: $(du -h .gpu/payload.tar.xz | cut -f1) in .gpu/payload.tar.xz"
}

# Runs one binary with a time limit, appending its output to the log; prints PASS/FAIL/SKIP.
run_logged() {
  local name=$1 limit=$2
  shift 2
  echo "===== $name" >>"$OUT/tests.log"
  local start=$SECONDS
  timeout "$limit" "$@" >>"$OUT/tests.log" 2>&1
  local rc=$?
  local verdict=PASS
  if [ $rc -ne 0 ]; then verdict="FAIL (exit $rc)"; fi
  if [ $rc -eq 124 ]; then verdict="FAIL (over ${limit} s)"; fi
  echo "| $name | $verdict | $((SECONDS - start)) s |" >>"$OUT/summary.md"
}

run() {
  OUT=${OUT:-$ROOT/gpu-check-out}
  mkdir -p "$OUT"
  : >"$OUT/tests.log"
  local stage=/tmp/ropewire-gpu
  rm -rf "$stage" && mkdir -p "$stage"
  tar -C "$stage" -xJf .gpu/payload.tar.xz || { echo "no .gpu/payload.tar.xz: run 'pack' first"; exit 2; }
  local cuda_libs=""
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && cuda_libs="$cuda_libs:$d"
  done
  export LD_LIBRARY_PATH="$stage/lib$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export ROPEWIRE_SOURCE_DIR=$ROOT
  nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
  {
    echo "# gpu-check $(date -u +%FT%TZ)"
    echo
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader 2>&1 | sed 's/^/GPU: /'
    echo
    echo "| check | result | time |"
    echo "|---|---|---|"
  } >"$OUT/summary.md"
  for b in "$stage"/bin/*; do
    if ldd "$b" | grep -q "not found"; then
      echo "missing libraries for $(basename "$b"):" | tee -a "$OUT/tests.log"
      ldd "$b" | grep "not found" | tee -a "$OUT/tests.log"
    fi
  done
  for t in "${TEST_BINARIES[@]}"; do
    local name
    name=$(basename "$t")
    run_logged "$name" 180 "$stage/bin/$name" --gtest_color=no
  done
  # The end-to-end path a user takes: greedy ids on the GPU for one fixture, printed as JSON.
  run_logged "ropewire-generate --device cuda" 60 "$stage/bin/ropewire-generate" --device cuda \
    --model "$ROOT/tests/fixtures/models/llama_gqa" --prompt-token-ids 1,2,3,4 --max-tokens 16
  echo "===== ropewire-bench-cuda-attention" >>"$OUT/tests.log"
  local start=$SECONDS
  timeout 240 "$stage/bin/$(basename "$BENCH_BINARY")" --json "$OUT/bench.json" >"$OUT/bench.txt" 2>&1
  local rc=$?
  echo "| attention benchmark | $([ $rc -eq 0 ] && echo done || echo "FAIL (exit $rc)") | $((SECONDS - start)) s |" >>"$OUT/summary.md"
  {
    echo
    echo '```'
    cat "$OUT/bench.txt"
    echo '```'
    echo
    echo "Failed tests:"
    grep -E '^\[  FAILED  \]' "$OUT/tests.log" | sort -u || true
  } >>"$OUT/summary.md"
  cat "$OUT/summary.md"
  ! grep -q "FAIL" "$OUT/summary.md"
}

case "${1:-}" in
  pack) pack ;;
  run) run ;;
  *) echo "usage: $0 pack|run" >&2; exit 2 ;;
esac
