#!/bin/sh
# Says whether the committed prebuilt addons were built from the current sources: for every
# prebuilds/*/*.node, compares the SHA-256 of binding.gyp and every file under native/ with the one
# prebuilds/manifest.json recorded when `npm run build:prebuild` made that file. Exits 0 when all
# match, 1 when one is stale or has no entry. With --print-hash, prints the current sources' hash
# and nothing else.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# shellcheck disable=SC2046
hash=$(sha256sum binding.gyp $(find native -type f | LC_ALL=C sort) | sha256sum | cut -c1-64)
if [ "${1:-}" = "--print-hash" ]; then
  echo "$hash"
  exit 0
fi

node -e '
  const fs = require("node:fs");
  const path = require("node:path");
  const hash = process.argv[1];
  let builds = {};
  try { builds = JSON.parse(fs.readFileSync("prebuilds/manifest.json", "utf8")).builds ?? {}; } catch {}
  const files = [];
  for (const dir of fs.existsSync("prebuilds") ? fs.readdirSync("prebuilds") : []) {
    if (!fs.statSync(path.join("prebuilds", dir)).isDirectory()) continue;
    for (const f of fs.readdirSync(path.join("prebuilds", dir))) if (f.endsWith(".node")) files.push(`${dir}/${f}`);
  }
  let stale = 0;
  if (files.length === 0) {
    console.error("prebuild-check: no prebuilt addon under prebuilds/; run npm run build:prebuild");
    stale++;
  }
  for (const f of files) {
    const b = builds[f];
    if (!b) {
      console.error(`prebuild-check: prebuilds/${f} has no entry in prebuilds/manifest.json; run npm run build:prebuild`);
      stale++;
    } else if (b.sources.sha256 !== hash) {
      console.error(`prebuild-check: STALE: prebuilds/${f} was built from native/ at ${b.sources.commit}, and binding.gyp or native/ changed since; run npm run build:prebuild and commit prebuilds/`);
      stale++;
    } else {
      console.log(`prebuild-check: prebuilds/${f} matches binding.gyp and native/ (built from ${b.sources.commit})`);
    }
  }
  process.exit(stale ? 1 : 0);
' "$hash"
