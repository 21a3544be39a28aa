#!/bin/sh
# Builds one program of test/c against the core's sources (every native/*.c but addon.c, which is
# the only one that needs Node-API). usage: build.sh <name> <output>. Extra compiler flags come from
# GEVENT_TEST_CFLAGS (test:asan passes the sanitizers). nomem.c gets its allocator wrapped at link
# time (-Wl,--wrap), so every malloc, calloc and realloc of native/ can be made to fail. Only tls.c
# gets native/tls.c, and libssl and libcrypto linked in even though nothing of the core references
# them (tls.c finds OpenSSL with dlsym at run time, as it does in the node binary), so the other
# programs need no OpenSSL at all.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
native="$here/../../native"
sources=""
for f in "$native"/*.c; do
  case "$(basename "$f")" in
    addon.c) ;;
    tls.c) if [ "$1" = tls ]; then sources="$sources $f"; fi ;;
    *) sources="$sources $f" ;;
  esac
done
link=""
case "$1" in
  nomem) link="-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc" ;;
  tls) link="-Wl,--no-as-needed -lssl -lcrypto" ;;
esac
# shellcheck disable=SC2086
exec "${CC:-gcc}" -std=gnu11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Wno-unused-parameter \
  ${GEVENT_TEST_CFLAGS:-} -I"$native" -o "$2" "$here/$1.c" $sources $link
