#!/bin/sh
# Regenerates the prebuilt addon shipped in the package (npm run build:prebuild):
# prebuilds/<platform>-<arch>/node-gevent.<libc>.node, built with prebuildify from the current
# native/ sources, and prebuilds/manifest.json, which records what it was built from.
#
# Run it whenever native/ or binding.gyp changes, and commit both files: the installer uses the
# prebuild instead of compiling, so a stale one ships old C code. scripts/prebuild-check.sh says
# whether the committed one matches the sources.
#
#   - Node-API (--napi), so one build serves every Node version (the addon asks for NAPI_VERSION 8);
#   - stripped (--strip) and tagged with its C library (--tag-libc), so node-gyp-build and the
#     loader skip it on a musl system;
#   - built in a copy of binding.gyp and native/ under build/prebuild, so build/Release (a build
#     from source, which the loader prefers) is left alone;
#   - against the headers installed beside node when there are any, so nothing is downloaded.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
stage="$root/build/prebuild"
cd "$root"

gyp=${npm_config_node_gyp:-}
if [ -z "$gyp" ] || [ ! -f "$gyp" ]; then
  gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
fi
prefix=$(dirname "$(dirname "$(command -v node)")")
if [ -f "$prefix/include/node/node_api.h" ]; then
  npm_config_nodedir=$prefix
  export npm_config_nodedir
fi

rm -rf "$stage"
mkdir -p "$stage"
cp -R binding.gyp native "$stage/"
name=$(node -p 'require("./package.json").name')
printf '{ "name": "%s", "private": true }\n' "$name" > "$stage/package.json"

echo "build:prebuild: building $name with prebuildify in $stage"
node node_modules/prebuildify/bin.js --napi --strip --tag-libc \
  --target "$(node -p process.versions.node)" --node-gyp "$gyp" --cwd "$stage" --out "$root"

platform=$(node -p 'process.platform + "-" + process.arch')
file=$(cd "prebuilds/$platform" && ls -t -- *.node | head -n 1)
out="prebuilds/$platform/$file"

# Load it, to catch a binary that builds but does not load.
node -e '
  const addon = require(process.argv[1]);
  for (const f of ["loopCreate", "flush", "close"]) if (typeof addon[f] !== "function") throw new Error("missing " + f);
' "$root/$out"

glibc=$(objdump -T "$out" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -t. -k1,1 -k2,2n -k3,3n -u | tail -n 1 || true)
sources=$(sh scripts/prebuild-check.sh --print-hash)
commit=$(git log -1 --format=%H -- native binding.gyp 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- native binding.gyp 2>/dev/null | head -n 1)
[ -z "$dirty" ] || commit="$commit+uncommitted"
bytes=$(wc -c < "$out" | tr -d ' ')
cc=$(${CC:-cc} --version 2>/dev/null | head -n 1 || echo unknown)

node -e '
  const fs = require("node:fs");
  const [file, sources, commit, node, cc, glibc, bytes] = process.argv.slice(1);
  const manifest = {
    sources: { files: "binding.gyp native/**", sha256: sources, commit },
    builds: { [file]: { node, cc, needsGlibc: glibc || null, bytes: Number(bytes) } },
  };
  fs.writeFileSync("prebuilds/manifest.json", JSON.stringify(manifest, null, 2) + "\n");
' "$platform/$file" "$sources" "$commit" "$(node --version)" "$cc" "$glibc" "$bytes"

echo "build:prebuild: $out ($bytes bytes, needs ${glibc:-no versioned glibc}); native/ at $commit"
