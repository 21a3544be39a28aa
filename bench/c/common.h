/*
 * What the C servers and load generators of bench/ share: fatal errors and the open-file limit.
 * Each program includes this once (static functions: every program is one translation unit).
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

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
