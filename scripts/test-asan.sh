#!/bin/sh
# Runs the integration suite against an AddressSanitizer + UndefinedBehaviorSanitizer build of the
# native addon (npm run test:asan). Linux and gcc only.
#
#   1. builds the addon with -fsanitize=address,undefined into build/asan/ (a gyp project of its own
#      whose sources are native/*.c), leaving build/Release alone;
#   2. compiles the TypeScript (tsc -p tsconfig.json);
#   3. runs node --test --test-concurrency=1 on dist/test/*.test.js, or on the files
#      GEVENT_ASAN_TESTS names (e.g. "dist/test/conn-pipe.test.js"), (naming the files: given the
#      directory, node --test also runs every fixture and helper under test/ as a test file) with
#      GEVENT_NATIVE_ADDON pointing at the sanitized addon and libasan preloaded (node itself is
#      not instrumented, so the runtime must come first); the test/c programs are built with the
#      same sanitizers (GEVENT_TEST_CFLAGS);
#   4. fails if the suite fails or if any process wrote a sanitizer report (in build/asan/reports or
#      on the suite's output, kept in build/asan/suite.log).
#
# Leak detection is off (ASAN_OPTIONS=detect_leaks=0): Node does not free everything it allocates
# before exiting, by design, so LeakSanitizer would report Node itself on every run (the test/c
# programs are leak-checked on their own: run them by hand with the sanitizers). The quarantine of
# freed memory is cut to 16 MiB (default 256) because the preloaded allocator serves all of Node's
# mallocs, and a full-size quarantine makes the RSS checks of the churn tests fail; a use of
# recently freed memory is still caught. Use-after-free, overflows, double frees and undefined
# behaviour in the addon are fatal and reported.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build/asan"
reports="$out/reports"
cd "$root"

cc=${CC:-gcc}
libasan=$("$cc" -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
  echo "test:asan: $cc has no libasan.so ($libasan)" >&2
  exit 1
fi

gyp=${npm_config_node_gyp:-}
if [ -z "$gyp" ] || [ ! -f "$gyp" ]; then
  gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
fi
# Use the headers installed beside node when there are any, so no download is needed.
prefix=$(dirname "$(dirname "$(command -v node)")")
nodedir=""
if [ -f "$prefix/include/node/node_api.h" ]; then nodedir="--nodedir=$prefix"; fi

sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
start=$(date +%s)

echo "test:asan: building the addon into $out"
rm -rf "$out"
mkdir -p "$out" "$reports"
SANITIZE="$sanitize" node -e '
  const fs = require("node:fs");
  const path = require("node:path");
  const [root, out] = process.argv.slice(1);
  const gyp = JSON.parse(fs.readFileSync(path.join(root, "binding.gyp"), "utf8"));
  const flags = process.env.SANITIZE.split(" ");
  for (const t of gyp.targets) {
    t.sources = t.sources.map((s) => path.relative(out, path.join(root, s)));
    t.cflags_c = t.cflags_c.filter((f) => !/^-O/.test(f)).concat(["-O1", "-g"], flags);
    t.ldflags = (t.ldflags || []).concat(flags);
  }
  fs.writeFileSync(path.join(out, "binding.gyp"), JSON.stringify(gyp, null, 2));
' "$root" "$out"
# shellcheck disable=SC2086
node "$gyp" rebuild --directory "$out" $nodedir > "$out/build.log" 2>&1 || {
  cat "$out/build.log" >&2
  exit 1
}
addon="$out/build/Release/gevent.node"

echo "test:asan: compiling TypeScript"
npx tsc -p tsconfig.json

tests=${GEVENT_ASAN_TESTS:-dist/test/*.test.js}
echo "test:asan: running $tests with $addon"
{
  GEVENT_NATIVE_ADDON="$addon" \
    GEVENT_TEST_CFLAGS="$sanitize" \
    LD_PRELOAD="$libasan" \
    ASAN_OPTIONS="detect_leaks=0:quarantine_size_mb=16:abort_on_error=1:log_path=$reports/asan" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan" \
    # shellcheck disable=SC2086
    node --test --test-concurrency=1 --test-timeout=300000 $tests || rc=$?
  echo "${rc:-0}" > "$out/status"
} 2>&1 | tee "$out/suite.log"
status=$(cat "$out/status")
elapsed=$(($(date +%s) - start))

# Reports land in $reports, except UBSan's own runtime, which writes to stderr: look in both.
found=$(find "$reports" -type f | sort)
for f in $found; do
  echo "---- $f" >&2
  cat "$f" >&2
done
pattern='runtime error:|ERROR: AddressSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer'
if [ -n "$found" ] || grep -Eq "$pattern" "$out/suite.log"; then
  grep -E "$pattern" "$out/suite.log" >&2 || true
  echo "test:asan: FAILED: sanitizer reports above, full log in $out/suite.log ($elapsed s)" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "test:asan: FAILED: the suite failed under the sanitizers, log in $out/suite.log ($elapsed s)" >&2
  exit "$status"
fi
echo "test:asan: passed with no sanitizer report ($elapsed s)"
