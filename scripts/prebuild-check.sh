#!/bin/sh
# Says whether the committed prebuilt addon was built from the current sources: compares the
# SHA-256 of binding.gyp and every file under native/ with the one prebuilds/manifest.json
# recorded when `npm run build:prebuild` made it. Exits 0 when they match, 1 when the prebuild is
# stale or missing. With --print-hash, prints the current sources' hash and nothing else.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# shellcheck disable=SC2046
hash=$(sha256sum binding.gyp $(find native -type f | LC_ALL=C sort) | sha256sum | cut -c1-64)
if [ "${1:-}" = "--print-hash" ]; then
  echo "$hash"
  exit 0
fi

if [ ! -f prebuilds/manifest.json ]; then
  echo "prebuild-check: no prebuilds/manifest.json; run npm run build:prebuild" >&2
  exit 1
fi
recorded=$(node -p 'require("./prebuilds/manifest.json").sources.sha256')
commit=$(node -p 'require("./prebuilds/manifest.json").sources.commit')
if [ "$recorded" != "$hash" ]; then
  echo "prebuild-check: STALE: prebuilds/ was built from native/ at $commit, and binding.gyp or native/ changed since; run npm run build:prebuild and commit prebuilds/" >&2
  exit 1
fi
echo "prebuild-check: prebuilds/ matches binding.gyp and native/ (built from $commit)"
