#!/bin/sh
# TLS echo ping-pong: each server in turn, pinned to core 0, answers CONNS TLS connections doing
# ping-pong (one 6-byte message in flight on each) from the TLS load generator pinned to core 1.
# Every handshake is done before the clock starts. Prints, per server and trial: msgs/s, the
# server's CPU (user+system, from /proc/PID/stat over the timed seconds), its CPU time per message,
# and the load generator's own CPU (at 90% or more the figure is the load generator's limit).
#
#   sh bench/tls-pingpong.sh [DURATION=5] [CONNS=100] [TRIALS=2] [SERVERS="c gevent-native gevent-portable node bun"]
#
# Servers: c (bench/c/tls_echo.c, epoll + OpenSSL: the reference), gevent-native and
# gevent-portable (the echo example with --tls-cert/--tls-key: TLS in the native core over Node's
# OpenSSL, and TLS on node:tls), node (bench/servers/node-tls-echo.mjs) and
# bun (bench/servers/bun-echo.ts --tls, Bun.listen with tls; skipped when Bun is not installed).
# The certificate is a fresh ECDSA P-256 one; the protocol is what the server picks (TLS 1.3).
# Needs `npm run build` (dist/), gcc, the OpenSSL headers (Debian: libssl-dev) and the openssl binary.
set -eu
duration=${1:-5}
conns=${2:-100}
trials=${3:-2}
servers=${4:-c gevent-native gevent-portable node bun}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bench/bin"
bun="$root/node_modules/@oven/bun-linux-x64/bin/bun"
hz=$(getconf CLK_TCK)
warmup=1

mkdir -p "$bin"
for prog in tls_echo tls_loadgen; do
  if [ ! -x "$bin/$prog" ] || [ "$root/bench/c/$prog.c" -nt "$bin/$prog" ]; then
    gcc -O2 -Wall -Wextra -o "$bin/$prog" "$root/bench/c/$prog.c" -lssl -lcrypto ||
      { echo "tls-pingpong: building $prog needs the OpenSSL headers (Debian: apt-get install libssl-dev)" >&2; exit 1; }
  fi
done
[ -f "$root/dist/examples/echo/main.js" ] || { echo "tls-pingpong: run npm run build first" >&2; exit 1; }

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

# Ticks of user+system CPU the process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

port=19300
echo "server           trial     msgs/s  server CPU  server µs/msg  loadgen CPU  protocol"
for name in $servers; do
  case "$name" in
    c) set -- "$bin/tls_echo" PORT "$tmp/cert.pem" "$tmp/key.pem" ;;
    gevent-native | gevent-portable)
      set -- node "$root/dist/examples/echo/main.js" --port PORT --loops 1 --backend "${name#gevent-}" \
        --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" ;;
    node) set -- node "$root/bench/servers/node-tls-echo.mjs" PORT "$tmp/cert.pem" "$tmp/key.pem" ;;
    bun)
      [ -x "$bun" ] || { echo "bun              (not installed: node_modules/@oven/bun-linux-x64)"; continue; }
      set -- "$bun" "$root/bench/servers/bun-echo.ts" PORT --tls "$tmp/cert.pem" "$tmp/key.pem" ;;
    *) echo "tls-pingpong: unknown server $name" >&2; exit 2 ;;
  esac
  t=1
  while [ "$t" -le "$trials" ]; do
    port=$((port + 1))
    args=""
    for a in "$@"; do [ "$a" = PORT ] && a=$port; args="$args '$a'"; done
    eval "exec taskset -c 0 $args" > "$tmp/server.log" 2>&1 &
    server_pid=$!
    n=0
    until grep -q -e ready -e started "$tmp/server.log" 2>/dev/null; do
      n=$((n + 1))
      [ "$n" -lt 100 ] || { echo "tls-pingpong: $name did not start:" >&2; cat "$tmp/server.log" >&2; exit 1; }
      sleep 0.1
    done
    taskset -c 1 "$bin/tls_loadgen" --port "$port" --conns "$conns" --duration "$duration" --warmup "$warmup" \
      > "$tmp/lg.json" &
    lg=$!
    # The handshakes and the warm-up come first; the CPU window covers the timed seconds.
    until grep -q connected "$tmp/lg.json" 2>/dev/null; do sleep 0.02; done
    sleep "$warmup"
    c0=$(ticks "$server_pid")
    wait "$lg"
    c1=$(ticks "$server_pid")
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop());
      const [name, trial, ticks, hz, secs] = process.argv.slice(2);
      const cpu = Number(ticks) / Number(hz);
      const pct = (100 * cpu) / Number(secs);
      const us = r.msgs > 0 ? (1e6 * cpu) / r.msgs : NaN;
      const note = r.errors > 0 ? `  ${r.errors} errors` : "";
      console.log(`${name.padEnd(16)} ${trial.padStart(5)} ${r.msgsPerSec.toLocaleString("en-US").padStart(10)}` +
        `  ${pct.toFixed(0).padStart(9)}%  ${us.toFixed(2).padStart(13)}  ${r.loadgenCpuPct.toFixed(0).padStart(10)}%` +
        `  ${r.protocol} ${r.cipher}${note}`);
    ' "$tmp/lg.json" "$name" "$t" "$((c1 - c0))" "$hz" "$duration"
    t=$((t + 1))
  done
done
