#!/bin/sh
# Builds one program of test/c against the core's sources (every native/*.c but addon.c, which is
# the only one that needs Node-API). usage: build.sh <name> <output>. Extra compiler flags come from
# GEVENT_TEST_CFLAGS (test:asan passes the sanitizers). nomem.c gets its allocator wrapped at link
# time (-Wl,--wrap), so every malloc, calloc and realloc of native/ can be made to fail.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
native="$here/../../native"
sources=""
for f in "$native"/*.c; do
  [ "$(basename "$f")" = addon.c ] || sources="$sources $f"
done
link=""
case "$1" in
  nomem) link="-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc" ;;
esac
# shellcheck disable=SC2086
exec "${CC:-gcc}" -std=gnu11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Wno-unused-parameter \
  ${GEVENT_TEST_CFLAGS:-} -I"$native" -o "$2" "$here/$1.c" $sources $link
