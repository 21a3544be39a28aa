/*
 * Shared plumbing of the test/c programs: a core loop (native/, no Node-API, its internals seen
 * through internal.h) over arenas on the C heap, a loopback TCP pair, and helpers to run commands through gev_flush and find records. Each
 * program includes this once; failures print what broke and exit 1.
 */
#ifndef GEV_HARNESS_H
#define GEV_HARNESS_H

#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H_IN_RECS   4096u
#define H_IN_BYTES  (1u << 20)
#define H_OUT_CMDS  4096u
#define H_OUT_BYTES (4u << 20)

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

/* A loop with both arenas allocated here; free with h_loop_free. */
static inline gev_loop *h_loop_new(void) {
  gev_loop *loop = NULL;
  int rc = gev_loop_create(&loop);
  CHECK(rc == 0, "gev_loop_create: %s", strerror(-rc));
  size_t in_len = ((size_t)GEV_HDR_U32 + H_IN_RECS * GEV_SLOT_U32) * 4u + H_IN_BYTES;
  size_t out_len = ((size_t)GEV_HDR_U32 + H_OUT_CMDS * GEV_SLOT_U32) * 4u + H_OUT_BYTES;
  void *in = calloc(1, in_len);
  void *out = calloc(1, out_len);
  CHECK(in != NULL && out != NULL, "arenas");
  gev_loop_bind_arenas(loop, in, in_len, H_IN_RECS, out, out_len, H_OUT_CMDS);
  gev_loop_configure(loop, 1, GEV_UDP_SLOT, 5000);
  return loop;
}

static inline void h_loop_free(gev_loop *loop) {
  void *in = loop->in8;
  void *out = loop->out8;
  gev_loop_free(loop);
  free(in);
  free(out);
}

/* A connected loopback TCP pair: *mine non-blocking (for the core), *peer blocking. A positive
 * sndbuf (mine) or rcvbuf (peer) is set before the handshake, so the window and its scale are
 * chosen from it: a receive buffer shrunk after the handshake leaves a window larger than the
 * buffer, and the kernel drops segments and stalls on retransmits and zero-window probes. */
static inline void h_tcp_pair(int *mine, int *peer, int sndbuf, int rcvbuf) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(l >= 0, "socket: %s", strerror(errno));
  if (rcvbuf > 0) sys_set_int(l, SOL_SOCKET, SO_RCVBUF, rcvbuf);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(l, (struct sockaddr *)&sa, sizeof sa) == 0, "bind: %s", strerror(errno));
  CHECK(listen(l, 4) == 0, "listen: %s", strerror(errno));
  CHECK(getsockname(l, (struct sockaddr *)&sa, &len) == 0, "getsockname");
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(c >= 0, "socket: %s", strerror(errno));
  if (sndbuf > 0) sys_set_int(c, SOL_SOCKET, SO_SNDBUF, sndbuf);
  CHECK(connect(c, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s", strerror(errno));
  int p = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  CHECK(p >= 0, "accept: %s", strerror(errno));
  close(l);
  int fl = fcntl(c, F_GETFL);
  CHECK(fcntl(c, F_SETFL, fl | O_NONBLOCK) == 0, "fcntl");
  *mine = c;
  *peer = p;
}

/* Closes `fd` with SO_LINGER 0, so its peer gets a RST. */
static inline void h_reset(int fd) {
  struct linger lg = {1, 0};
  CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0, "SO_LINGER");
  close(fd);
}

/* Appends a command to the out arena; `data` (if any) is copied into its payload region. */
static inline void h_command(gev_loop *loop, uint32_t op, uint32_t id, const void *data, uint32_t len, uint32_t arg) {
  static size_t pos;
  uint32_t n = loop->out32[0];
  size_t start = ((size_t)GEV_HDR_U32 + H_OUT_CMDS * GEV_SLOT_U32) * 4u;
  if (n == 0) pos = start;
  CHECK(n < H_OUT_CMDS && pos + len <= loop->out_size, "out arena full");
  uint32_t *k = loop->out32 + GEV_HDR_U32 + (size_t)n * GEV_SLOT_U32;
  k[0] = op;
  k[1] = id;
  k[2] = arg;
  k[3] = len;
  if (op == GEV_OP_WRITE) {
    memcpy(loop->out8 + pos, data, len);
    k[2] = (uint32_t)pos;
    pos += len;
  }
  loop->out32[0] = n + 1;
}

/* Calls `fn` for each record in `slots` (n record slots: the in arena's or the pending list's). */
static inline void h_each_record(const uint32_t *slots, uint32_t n, void (*fn)(const uint32_t *rec, void *arg),
                                 void *arg) {
  for (uint32_t i = 0; i < n;) {
    const uint32_t *r = slots + (size_t)i * GEV_SLOT_U32;
    fn(r, arg);
    i += gev_rec_slots(r[0]);
  }
}

static inline const uint32_t *h_arena_records(gev_loop *loop) { return loop->in32 + GEV_HDR_U32; }

#endif
