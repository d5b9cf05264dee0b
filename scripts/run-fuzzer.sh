#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time (ctest's fuzz_* tests call this):
#   run-fuzzer.sh FUZZER SECONDS WORK_DIR REGRESSION_DIR SEED...
# First every input in REGRESSION_DIR (inputs that once crashed, leaked or hung) is replayed and
# must pass; then the fuzzer runs for SECONDS from the seeds (files or directories) plus the
# corpus it kept from earlier runs in WORK_DIR/corpus. A crash, leak, timeout or out-of-memory
# fails the run, leaves the input in WORK_DIR/ and prints how to reproduce it.
set -euo pipefail
fuzzer=$1 seconds=$2 work=$3 regressions=$4
shift 4
name=$(basename "$fuzzer")
mkdir -p "$work/corpus" "$work/seeds"
rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*
i=0
for seed in "$@"; do
  if [ -d "$seed" ]; then
    for file in "$seed"/*; do
      [ -f "$file" ] && cp "$file" "$work/seeds/$i-$(basename "$file")" && i=$((i + 1))
    done
  elif [ -f "$seed" ]; then
    cp "$seed" "$work/seeds/$i-$(basename "$seed")"
    i=$((i + 1))
  fi
done
common=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -artifact_prefix="$work/")
if compgen -G "$regressions/*" > /dev/null; then
  echo "$name: replaying $(ls "$regressions" | wc -l) regression inputs"
  "$fuzzer" "${common[@]}" "$regressions"/*
fi
echo "$name: fuzzing for $seconds s from $i seeds"
set +e
"$fuzzer" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 \
  "$work/corpus" "$work/seeds" > "$work/last-run.log" 2>&1
status=$?
set -e
grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$work/last-run.log" || true
if [ "$status" -ne 0 ]; then
  echo "$name: FAILED (exit $status); the end of $work/last-run.log:" >&2
  tail -n 60 "$work/last-run.log" >&2
  for artifact in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
    if [ -f "$artifact" ]; then echo "reproduce: $fuzzer $artifact" >&2; fi
  done
  exit 1
fi
