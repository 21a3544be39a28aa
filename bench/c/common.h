/*
 * What the C servers and load generators of bench/ share: fatal errors, the open-file limit and
 * the listening socket.
 * Each program includes this once (static functions: every program is one translation unit).
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* Prints what failed with errno's text and exits 1. */
static inline void die(const char *what) {
  perror(what);
  exit(1);
}

/* Raises the soft open-file limit to the hard one; returns the soft limit then in force. */
static inline size_t raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return (size_t)rl.rlim_cur;
}

/*
 * A nonblocking TCP listener on 0.0.0.0:port (SO_REUSEADDR, backlog SOMAXCONN), or exit 1; and
 * the open-file cap for a per-fd table: the soft limit raised to the hard one, at most 2^20.
 */
static inline int listen_tcp4(const char *port) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {
      .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)), .sin_addr.s_addr = htonl(INADDR_ANY)};
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0) die("bind");
  if (listen(lfd, SOMAXCONN) != 0) die("listen");
  return lfd;
}

static inline size_t fd_table_size(void) {
  size_t limit = raise_fd_limit();
  return limit > 1048576 ? 1048576 : limit;
}

#ifdef OPENSSL_VERSION_NUMBER
#include <openssl/err.h>

/* Prints what failed with OpenSSL's error queue and exits 1. */
static inline void die_ssl(const char *what) {
  fprintf(stderr, "%s failed\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}
#endif

#endif
