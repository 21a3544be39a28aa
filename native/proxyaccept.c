/*
 * Connections of PROXY protocol listeners (GEV_LISTEN_PROXY) until their header is read: the
 * header a load balancer sends first carries the client's real addresses (proxyproto.h parses it).
 *
 *   accept, or adopt with GEV_LISTEN_PROXY
 *     └► header-pending: GEV_C_PROXY_WAIT, EPOLLIN alone, in the loop's FIFO, no record, no command
 *          each read: gev_pp_parse over every byte so far
 *            INCOMPLETE              wait for more (EPOLLIN stays)
 *            a header                PROXY [id, ...] + destination, OPEN [id, origin] + source (the
 *                                    socket's own addresses for LOCAL/UNKNOWN), then DATA with the
 *                                    bytes read past the header; from then on a plain connection
 *            a refusal, FIN, reset   PROXY_REFUSED [listener, PROXY_E_*] + the socket's peer; closed
 *          the deadline (timer)      PROXY_REFUSED TIMEOUT; closed
 *          gev_loop_stop_all         closed with no record at all (JS never heard of it)
 *
 * A refused connection's slot is free at once (gev_conn_release): no CLOSE has to reach JS first.
 *
 * Deadlines: every header has the same timeout (gev_loop_configure), so the pending connections
 * form one FIFO in accept order (an intrusive list through their slots, O(1) to add and remove)
 * whose head has the earliest deadline; the loop's timerfd is armed for it (gev_loop_timer_want,
 * shared with parked listeners). An adopted connection's deadline counts from its adoption.
 *
 * Memory: the small gev_proxy state is allocated at accept, the GEV_PROXY_HEADER_MAX buffer on the
 * first read, and the buffer is freed when the header is done; a connection opened with a PROXY
 * command keeps the state for its destination address (gev_conn_sockname). When either allocation
 * fails the connection is closed and refused as PROXY_E_CLOSED ('closed': the contract has no
 * out-of-memory reason, and to the balancer it is a close); an adopt whose state cannot be
 * allocated returns -ENOMEM instead. Nothing aborts.
 */
#include "internal.h"
#include "proxyproto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GEV_NO_SLOT UINT32_MAX

_Static_assert(GEV_PROXY_E_SIGNATURE == -GEV_PP_E_SIGNATURE && GEV_PROXY_E_VERSION == -GEV_PP_E_VERSION &&
                   GEV_PROXY_E_COMMAND == -GEV_PP_E_COMMAND && GEV_PROXY_E_FAMILY == -GEV_PP_E_FAMILY &&
                   GEV_PROXY_E_V1_SYNTAX == -GEV_PP_E_V1_SYNTAX && GEV_PROXY_E_TOO_LONG == -GEV_PP_E_TOO_LONG &&
                   GEV_PROXY_E_ADDRESS_LEN == -GEV_PP_E_ADDRESS_LEN && GEV_PROXY_E_TLV == -GEV_PP_E_TLV,
               "PROXY_E_* are the parser's refusals, negated");

/* Record slots a completed header may emit in one go: PROXY + address, OPEN + address, DATA. */
#define GEV_PROXY_OPEN_SLOTS (2u * (1u + GEV_ADDR_SLOTS) + 1u)

static void fifo_push(gev_loop *loop, gev_conn *c) {
  uint32_t slot = (uint32_t)(c - loop->conns);
  c->proxy->prev = loop->proxy_tail;
  c->proxy->next = GEV_NO_SLOT;
  if (loop->proxy_tail != GEV_NO_SLOT) loop->conns[loop->proxy_tail].proxy->next = slot;
  else loop->proxy_head = slot;
  loop->proxy_tail = slot;
  loop->proxy_pending++;
}

static void fifo_remove(gev_loop *loop, gev_conn *c) {
  gev_proxy *p = c->proxy;
  if (p->prev != GEV_NO_SLOT) loop->conns[p->prev].proxy->next = p->next;
  else loop->proxy_head = p->next;
  if (p->next != GEV_NO_SLOT) loop->conns[p->next].proxy->prev = p->prev;
  else loop->proxy_tail = p->prev;
  p->prev = p->next = GEV_NO_SLOT;
  loop->proxy_pending--;
}

/* Frees c's PROXY state (taking it out of the FIFO while its header is pending). */
void gev_proxy_free(gev_loop *loop, gev_conn *c) {
  gev_proxy *p = c->proxy;
  if (p == NULL) return;
  if (c->flags & GEV_C_PROXY_WAIT) fifo_remove(loop, c);
  free(p->buf);
  free(p);
  c->proxy = NULL;
}

/* The header's destination, when the connection opened with a PROXY command. 0 or -ENOENT. */
int gev_proxy_sockname(const gev_conn *c, uint32_t *addr8) {
  if (c->proxy == NULL || !c->proxy->has_local) return -ENOENT;
  memcpy(addr8, c->proxy->local, sizeof c->proxy->local);
  return 0;
}

/* Starts the header-pending state of the registered connection `id` with state `p`. */
static void attach(gev_loop *loop, uint32_t id, gev_proxy *p, const uint32_t *peer8) {
  gev_conn *c = gev_conn_get(loop, id);
  p->deadline_ms = sys_now_ms() + loop->proxy_timeout_ms;
  memcpy(p->peer, peer8, sizeof p->peer);
  c->proxy = p;
  fifo_push(loop, c);
  gev_loop_timer_want(loop, loop->conns[loop->proxy_head].proxy->deadline_ms);
}

static void refused_record(gev_loop *loop, uint32_t origin, uint32_t reason, const uint32_t *peer8) {
  gev_loop_emit(loop, GEV_REC_PROXY_REFUSED, origin, reason, 0, peer8);
}

/* Closes a header-pending connection and tells JS why (`reason`, GEV_PROXY_E_*). */
static void refuse(gev_loop *loop, gev_conn *c, uint32_t reason) {
  uint32_t peer[GEV_ADDR_U32];
  uint32_t origin = c->origin;
  memcpy(peer, c->proxy->peer, sizeof peer);
  gev_conn_release(loop, c);
  refused_record(loop, origin, reason, peer);
}

/* A fresh fd of a PROXY listener (peer8 from accept4). 0, or -errno from the table (the fd is then
 * not closed, and the caller reports an accept error). */
int gev_proxy_accept(gev_loop *loop, int fd, uint32_t origin, int is_tcp, const uint32_t *peer8) {
  gev_proxy *p = calloc(1, sizeof *p);
  if (p == NULL) {
    sys_close(fd);
    refused_record(loop, origin, GEV_PROXY_E_CLOSED, peer8);
    return 0;
  }
  uint32_t id;
  int rc = gev_conn_add_pending(loop, fd, origin, is_tcp, &id);
  if (rc != 0) {
    free(p);
    return rc;
  }
  attach(loop, id, p, peer8);
  return 0;
}

int gev_proxy_adopt(gev_loop *loop, int fd, uint32_t origin, int is_tcp, const uint32_t *peer8, uint32_t *id_out) {
  gev_proxy *p = calloc(1, sizeof *p);
  if (p == NULL) return -ENOMEM;
  int rc = gev_conn_add_pending(loop, fd, origin, is_tcp, id_out);
  if (rc != 0) {
    free(p);
    return rc;
  }
  attach(loop, *id_out, p, peer8);
  return 0;
}

/* Copies `len` bytes into the arena's payload region; returns their offset. The caller checked the
 * room. */
static uint32_t arena_copy(gev_loop *loop, const uint8_t *src, size_t len) {
  size_t pos = loop->in_byte_pos;
  memcpy(loop->in8 + pos, src, len);
  loop->in_byte_pos = pos + len;
  return (uint32_t)pos;
}

/* The header `h` (hlen bytes of the buffer) is complete: the connection opens. */
static void open_conn(gev_loop *loop, gev_conn *c, const gev_pp_header *h, size_t hlen) {
  gev_proxy *p = c->proxy;
  uint32_t id = gev_conn_id(loop, c);
  uint32_t src[GEV_ADDR_U32], dst[GEV_ADDR_U32];
  fifo_remove(loop, c);
  c->flags &= (uint16_t)~GEV_C_PROXY_WAIT;
  if (h->local) {
    memcpy(src, p->peer, sizeof src);
    memset(dst, 0, sizeof dst);
  } else {
    gev_addr_encode(src, (const struct sockaddr *)&h->src, h->src_len);
    gev_addr_encode(dst, (const struct sockaddr *)&h->dst, h->dst_len);
    memcpy(p->local, dst, sizeof dst);
    p->has_local = 1;
  }
  uint32_t tlv_len = h->local ? 0 : h->tlv_len;
  uint32_t info = (uint32_t)h->version | (h->local ? (uint32_t)GEV_PROXY_LOCAL : 0u) | tlv_len << GEV_PROXY_TLV_SHIFT;
  uint32_t tlv_off = 0;
  if (!h->local && h->src.ss_family == AF_UNIX) {
    /* The paths do not fit an address slot: the v2 address block goes to the arena, TLVs after it. */
    tlv_off = arena_copy(loop, p->buf + GEV_PP_V2_FIXED, 2 * GEV_PP_V2_UNIX_PATH);
    info |= GEV_PROXY_UNIX;
  }
  if (tlv_len > 0) {
    uint32_t at = arena_copy(loop, p->buf + h->tlv_off, tlv_len);
    if (!(info & GEV_PROXY_UNIX)) tlv_off = at;
  }
  gev_loop_emit(loop, GEV_REC_PROXY, id, info, tlv_off, dst);
  gev_loop_emit(loop, GEV_REC_OPEN, id, c->origin, 0, src);
  size_t rest = p->len - hlen;
  if (rest > 0) gev_loop_emit(loop, GEV_REC_DATA, id, arena_copy(loop, p->buf + hlen, rest), (uint32_t)rest, NULL);
  free(p->buf);
  p->buf = NULL;
  p->len = 0;
  if (!p->has_local) {
    free(p);
    c->proxy = NULL;
  }
}

/* The socket of a header-pending connection is readable (or hung up): read, then parse. Waits for
 * a later fill while the arena lacks room for everything a complete header emits. */
void gev_proxy_on_event(gev_loop *loop, gev_conn *c) {
  gev_proxy *p = c->proxy;
  if (!gev_loop_room(loop, GEV_PROXY_OPEN_SLOTS) || loop->in_size - loop->in_byte_pos < GEV_PROXY_HEADER_MAX) return;
  if (p->buf == NULL) {
    p->buf = malloc(GEV_PROXY_HEADER_MAX);
    if (p->buf == NULL) {
      refuse(loop, c, GEV_PROXY_E_CLOSED);
      return;
    }
  }
  for (;;) {
    ssize_t n = c->io->recv(c, p->buf + p->len, GEV_PROXY_HEADER_MAX - p->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      refuse(loop, c, GEV_PROXY_E_CLOSED);
      return;
    }
    p->len += (uint32_t)n;
    gev_pp_header h;
    ssize_t r = gev_pp_parse(p->buf, p->len, GEV_PROXY_HEADER_MAX, &h);
    if (r == GEV_PP_INCOMPLETE) {
      if (p->len < GEV_PROXY_HEADER_MAX) continue;
      r = GEV_PP_E_TOO_LONG; /* not reached: a full buffer always decides */
    }
    if (r < 0) {
      refuse(loop, c, (uint32_t)-r);
      return;
    }
    open_conn(loop, c, &h, (size_t)r);
    return;
  }
}

/* The timer fired at `now`: refuses every header past its deadline (as many as the arena takes,
 * the rest at once in the next fill) and arms the timer for the next deadline. */
void gev_proxy_expire(gev_loop *loop, uint64_t now) {
  while (loop->proxy_head != GEV_NO_SLOT) {
    gev_conn *c = &loop->conns[loop->proxy_head];
    if (c->proxy->deadline_ms > now) {
      gev_loop_timer_want(loop, c->proxy->deadline_ms);
      return;
    }
    if (!gev_loop_room(loop, 1u + GEV_ADDR_SLOTS)) {
      gev_loop_timer_want(loop, now);
      return;
    }
    refuse(loop, c, GEV_PROXY_E_TIMEOUT);
  }
}

/* Closes every header-pending connection with no record (the loop is stopping). */
void gev_proxy_drop_all(gev_loop *loop) {
  while (loop->proxy_head != GEV_NO_SLOT) gev_conn_release(loop, &loop->conns[loop->proxy_head]);
}
