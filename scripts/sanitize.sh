#!/usr/bin/env bash
# The second CI build: clang with AddressSanitizer and UndefinedBehaviorSanitizer (any undefined
# behaviour fatal) into ${SANITIZE_BUILD_DIR:-build-sanitize}, CPU only. It builds the tests
# labelled `sanitize` (scheduler, server, tokenizer) and the libFuzzer targets (tests/fuzz), then
# runs both: the tests under the sanitizers, and each fuzz target for ROPEWIRE_FUZZ_SECONDS after
# replaying its regression inputs. Only the targets those tests need are built, to keep CI short.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${SANITIZE_BUILD_DIR:-build-sanitize}
JOBS=${JOBS:-2}
FUZZ_SECONDS=${ROPEWIRE_FUZZ_SECONDS:-10}
launcher=()
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# Debug info for readable reports, -O1 so the tests still run at a useful speed.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DROPEWIRE_SANITIZE=ON -DROPEWIRE_ENABLE_CUDA=OFF -DROPEWIRE_BUILD_BENCH=OFF \
  -DROPEWIRE_WERROR=OFF -DROPEWIRE_FUZZ_SECONDS="$FUZZ_SECONDS" \
  "${launcher[@]}"
targets=(scheduler_test engine_test server_unit_test server_e2e_test server_ops_test
         tokenizer_test ropewire-server ropewire-tokenize
         config_json_fuzzer safetensors_fuzzer safetensors_index_fuzzer tokenizer_json_fuzzer
         tokenizer_encode_fuzzer request_fuzzer gguf_fuzzer)
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${targets[@]}"
# The first report fails the test that caused it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j 1 -L 'sanitize|fuzz'
