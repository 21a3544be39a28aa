#!/bin/sh
# More connections than one process's open-file limit: N echo servers share one port with
# SO_REUSEPORT (`npm start -- --reuseport`), the kernel spreads new connections over them, and two
# load generators (from 127.0.0.1 and 127.0.0.2, so that each source address has its own range of
# ephemeral ports) hold CONNS connections each and run ping-pong on all of them. Prints each
# server's open fds while the connections are held, then each load generator's result line.
#
#   sh bench/reuseport-processes.sh [SERVERS=2] [CONNS=15000] [PORT=19100]
#
# Needs `npm run build` (dist/) and the load generator (`npm run bench` compiles bench/bin/loadgen).
# Each process runs with an open-file limit of 20000 (prlimit), below what all the connections need.
set -eu
servers=${1:-2}
conns=${2:-15000}
port=${3:-19100}
root=$(cd "$(dirname "$0")/.." && pwd)
loadgen="$root/bench/bin/loadgen"
[ -x "$loadgen" ] || { echo "reuseport-processes: build $loadgen first (npm run bench compiles it)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

i=0
while [ "$i" -lt "$servers" ]; do
  prlimit --nofile=20000 node "$root/dist/examples/echo/main.js" --port "$port" --reuseport > "$tmp/server$i.log" 2>&1 &
  pids="$pids $!"
  i=$((i + 1))
done
sleep 2

# Each load generator waits for a line on stdin once all its connections are open.
mkfifo "$tmp/go1" "$tmp/go2"
prlimit --nofile=20000 "$loadgen" tcp-held --port "$port" --host 127.0.0.1 --conns "$conns" --duration 6 \
  --pause-when-connected < "$tmp/go1" > "$tmp/lg1.json" 2>&1 &
lg1=$!
prlimit --nofile=20000 "$loadgen" tcp-held --port "$port" --host 127.0.0.2 --conns "$conns" --duration 6 \
  --pause-when-connected < "$tmp/go2" > "$tmp/lg2.json" 2>&1 &
lg2=$!
exec 3> "$tmp/go1" 4> "$tmp/go2"
until grep -q connected "$tmp/lg1.json" 2>/dev/null && grep -q connected "$tmp/lg2.json" 2>/dev/null; do sleep 0.5; done

total=0
for p in $pids; do
  fds=$(ls "/proc/$p/fd" | wc -l)
  echo "server pid $p: $fds open fds, $(grep VmRSS "/proc/$p/status" | tr -s ' ')"
  total=$((total + fds))
done
echo "all servers: $total open fds for $((2 * conns)) connections"

echo go >&3
echo go >&4
wait "$lg1" "$lg2" || true
grep -v connected "$tmp/lg1.json" "$tmp/lg2.json"
