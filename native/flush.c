/*
 * The write path: one walk over the command list JS built in the out arena since the last flush.
 *
 * Consecutive writes to one connection are gathered into one send/sendmsg (at most 64 buffers),
 * except on a dialled UDP connection (GEV_C_DGRAM), where each write is one datagram (dgramconn.c);
 * close, end, keep-alive, pause and watch commands act in order after the writes before them.
 * Commands naming a stale id are ignored. A dial still connecting takes CLOSE only, which cancels
 * it at once (errno 0, whatever the flush word); its writes and other commands are dropped (gev.h).
 * A connection whose PROXY header is pending takes no command at all: JS has not heard of it. One
 * in its layer's handshake (GEV_C_HANDSHAKE) takes CLOSE only, as a dial still connecting does. What this call causes (a CLOSE after EPIPE or a close
 * request, a QUEUED report for each connection left with output queued) reaches JS through the
 * pending list, never from inside this call.
 */
#include "internal.h"

#include <string.h>

#define GEV_RUN_IOV 64

typedef struct run {
  uint32_t id;
  int n;
  size_t total;
  struct iovec iov[GEV_RUN_IOV];
} run;

static void run_send(gev_loop *loop, run *r) {
  if (r->n == 0) return;
  gev_conn *c = gev_conn_get(loop, r->id);
  if (c != NULL && (c->flags & GEV_C_DGRAM)) gev_dgram_send(loop, c, r->iov, r->n); /* one datagram per write */
  else if (c != NULL && !(c->flags & (GEV_C_CONNECTING | GEV_C_PROXY_WAIT | GEV_C_HANDSHAKE)))
    gev_conn_send(loop, c, r->iov, r->n, r->total);
  r->n = 0;
  r->total = 0;
}

/* Resolves a payload reference: bytes in the out arena, or ext[index]. NULL when out of range. */
static const void *payload(gev_loop *loop, int ext_op, uint32_t where, uint32_t *len, const struct iovec *ext,
                           uint32_t next) {
  if (ext_op) {
    if (where >= next) return NULL;
    if (*len > ext[where].iov_len) *len = (uint32_t)ext[where].iov_len;
    return ext[where].iov_base;
  }
  if ((size_t)where + *len > loop->out_size) return NULL;
  return loop->out8 + where;
}

void gev_flush(gev_loop *loop, const struct iovec *ext, uint32_t next) {
  uint32_t n = loop->out32[0];
  const uint32_t *cmds = loop->out32 + GEV_HDR_U32;
  run r;
  r.n = 0;
  r.total = 0;
  r.id = 0;
  if (n > loop->out_cmd_cap) n = loop->out_cmd_cap;
  for (uint32_t i = 0; i < n;) {
    const uint32_t *k = cmds + (size_t)i * GEV_SLOT_U32;
    uint32_t op = k[0];
    uint32_t len = k[3];
    if (op == GEV_OP_WRITE || op == GEV_OP_WRITE_EXT) {
      const void *p = payload(loop, op == GEV_OP_WRITE_EXT, k[2], &len, ext, next);
      i++;
      if (p == NULL || len == 0) continue;
      if (r.n > 0 && (r.id != k[1] || r.n == GEV_RUN_IOV)) run_send(loop, &r);
      r.id = k[1];
      r.iov[r.n].iov_base = (void *)p;
      r.iov[r.n].iov_len = len;
      r.total += len;
      r.n++;
      continue;
    }
    run_send(loop, &r);
    if (op == GEV_OP_SENDTO || op == GEV_OP_SENDTO_EXT) {
      if (i + 1u + GEV_ADDR_SLOTS > n) break;
      const void *p = payload(loop, op == GEV_OP_SENDTO_EXT, k[2], &len, ext, next);
      if (p != NULL) gev_udp_queue(loop, k[1], p, len, k + 4);
      i += 1u + GEV_ADDR_SLOTS;
      continue;
    }
    i++;
    gev_conn *c = gev_conn_get(loop, k[1]);
    if (c == NULL || (c->flags & GEV_C_PROXY_WAIT)) continue;
    if (c->flags & (GEV_C_CONNECTING | GEV_C_HANDSHAKE)) {
      if (op == GEV_OP_CLOSE) gev_conn_close(loop, c, 0);
      continue;
    }
    switch (op) {
      case GEV_OP_CLOSE: gev_conn_request_close(loop, c, k[2] != 0); break;
      case GEV_OP_END:
        if (c->flags & GEV_C_DGRAM) gev_conn_request_close(loop, c, 0); /* no half-close for datagrams */
        else gev_conn_end(loop, c);
        break;
      case GEV_OP_KEEPALIVE: gev_conn_keepalive(c, k[2]); break;
      case GEV_OP_PAUSE: gev_conn_pause(loop, c, k[2] != 0); break;
      case GEV_OP_WATCH: gev_conn_watch(loop, c); break;
      case GEV_OP_RELAY: gev_relay_set(loop, c, k[2], k[3]); break;
      default: break;
    }
  }
  run_send(loop, &r);
  gev_udp_flush(loop);
  gev_conn_report_queued(loop);
  loop->out32[0] = 0;
}
