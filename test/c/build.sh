#!/bin/sh
# Builds one program of test/c against the core's sources (every native/*.c but addon.c, which is
# the only one that needs Node-API). usage: build.sh <name> <output>. Extra compiler flags come from
# GEVENT_TEST_CFLAGS (test:asan passes the sanitizers).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
native="$here/../../native"
sources=""
for f in "$native"/*.c; do
  [ "$(basename "$f")" = addon.c ] || sources="$sources $f"
done
# shellcheck disable=SC2086
exec "${CC:-gcc}" -std=gnu11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Wno-unused-parameter \
  ${GEVENT_TEST_CFLAGS:-} -I"$native" -o "$2" "$here/$1.c" $sources
