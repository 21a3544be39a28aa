#!/bin/sh
# Formats the C sources (native/, test/c/, bench/c/) with the clang-format pinned in devDependencies.
# `--check` reports the files that differ from the format and fails; without it, rewrites them.
set -eu
cd "$(dirname "$0")/.."
bin=node_modules/.bin/clang-format
files=$(ls native/*.c native/*.h test/c/*.c test/c/*.h bench/c/*.c bench/c/*.h 2>/dev/null)
if [ "${1:-}" = "--check" ]; then
  bad=0
  out=$(mktemp)
  for f in $files; do
    "$bin" --style=file "$f" >"$out"
    if ! cmp -s "$out" "$f"; then echo "clang-format: $f is not formatted (npm run format)"; bad=1; fi
  done
  rm -f "$out"
  exit $bad
fi
"$bin" --style=file -i $files
