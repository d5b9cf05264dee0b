#!/usr/bin/env bash
# Fails when a C++ or CUDA source of ropewire differs from what clang-format makes of it under
# the repository's .clang-format (run by ctest as format_check). `--fix` rewrites them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=(--dry-run --Werror)
if [ "${1:-}" = "--fix" ]; then mode=(-i); fi
if ! command -v clang-format >/dev/null 2>&1; then
  echo "check-format: clang-format is not installed (scripts/setup.sh installs it)" >&2
  exit 1
fi
# The tracked sources when this is a git checkout, else every source under the project folders.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cc' '*.h' '*.cu' '*.cuh')
else
  mapfile -t files < <(find base bench client kernels model proto scheduler server tests tokenizer \
                         -name '*.cc' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh')
fi
clang-format "${mode[@]}" "${files[@]}"
echo "check-format: ${#files[@]} files follow .clang-format"
