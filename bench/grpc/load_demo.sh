#!/usr/bin/env bash
# Serving throughput and latency through the whole stack: starts ropewire-server on the demo
# model (models/demo, or the llama_gqa test fixture when the demo model is absent) and runs
# `ropewire-cli load` at 1, 8 and 32 concurrent streams. Each run's JSON report goes to
# bench/results/; a markdown table of the figures is printed at the end.
#
#   bench/grpc/load_demo.sh                    # defaults below
#   MODEL=DIR STREAMS="1 8 32" PROMPT_LEN=64 OUTPUT_LEN=64 SERVER_ARGS="--threads 1" bench/grpc/load_demo.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD_DIR=${BUILD_DIR:-build}
if [[ -z ${MODEL:-} ]]; then
  if [[ -f models/demo/config.json ]]; then MODEL=models/demo; else MODEL=tests/fixtures/models/llama_gqa; fi
fi
PORT=${PORT:-50071}
STREAMS=${STREAMS:-"1 8 32"}
PROMPT_LEN=${PROMPT_LEN:-64}
OUTPUT_LEN=${OUTPUT_LEN:-64}
REQUESTS_PER_STREAM=${REQUESTS_PER_STREAM:-4}
MIN_REQUESTS=${MIN_REQUESTS:-16}
OUT_DIR=${OUT_DIR:-bench/results}
SERVER_ARGS=${SERVER_ARGS:-}  # extra ropewire-server flags, e.g. "--threads 1" on a shared machine
SERVER=$BUILD_DIR/server/ropewire-server
CLI=$BUILD_DIR/client/ropewire-cli
TARGET=127.0.0.1:$PORT
model_name=$(basename "$MODEL")

for binary in "$SERVER" "$CLI"; do
  [[ -x $binary ]] || { echo "missing $binary: build first (./scripts/build.sh)" >&2; exit 1; }
done
mkdir -p "$OUT_DIR"

# shellcheck disable=SC2086  # SERVER_ARGS is a list of flags
"$SERVER" --model "$MODEL" --host 127.0.0.1 --port "$PORT" --log-level warn $SERVER_ARGS \
  >"$OUT_DIR/load_${model_name}_server.log" 2>&1 &
server_pid=$!
trap 'kill -TERM $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true' EXIT

# The port opens before the model is loaded; health turns SERVING when it is.
for _ in $(seq 1 600); do
  if "$CLI" health --target "$TARGET" --timeout 1 >/dev/null 2>&1; then break; fi
  kill -0 $server_pid 2>/dev/null || { echo "server exited; see $OUT_DIR/load_${model_name}_server.log" >&2; exit 1; }
  sleep 0.2
done
"$CLI" health --target "$TARGET" >/dev/null

reports=()
for streams in $STREAMS; do
  requests=$(( streams * REQUESTS_PER_STREAM > MIN_REQUESTS ? streams * REQUESTS_PER_STREAM : MIN_REQUESTS ))
  report=$OUT_DIR/load_${model_name}_c${streams}.json
  echo "== $model_name: $streams concurrent streams, $requests requests, prompt $PROMPT_LEN, output $OUTPUT_LEN" >&2
  "$CLI" load --target "$TARGET" --concurrency "$streams" --requests "$requests" \
    --connections $(( streams < 4 ? streams : 4 )) --prompt-len "$PROMPT_LEN" --output-len "$OUTPUT_LEN" \
    --seed 1 --json "$report" >&2
  reports+=("$report")
done

python3 - "${reports[@]}" <<'PY'
import json, sys
print("| streams | requests OK | req/s | output tok/s | TTFT p50 / p99 ms | TPOT p50 / p99 ms "
      "| ITL p50 / p99 ms | e2e p50 / p99 ms |")
print("|---|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    r = json.load(open(path))
    pair = lambda k: f"{r[k]['p50_ms']:.1f} / {r[k]['p99_ms']:.1f}"
    print(f"| {r['config']['concurrency']} | {r['ok']}/{r['requests']} | {r['request_throughput']:.2f} "
          f"| {r['output_token_throughput']:.1f} | {pair('ttft')} | {pair('tpot')} "
          f"| {pair('itl_token')} | {pair('e2e')} |")
PY
