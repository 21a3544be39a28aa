/*
 * One loop: an epoll instance, an eventfd and a timerfd. A wake-up drains ready events with
 * epoll_wait(0) into the in arena (a "fill"); the caller (addon.c, from a uv_poll) then crosses into
 * JavaScript once. Records that cannot go into the arena right now (closes and queue reports caused
 * by a flush, connections adopted between wake-ups) wait in the pending list, and the loop notifies
 * itself through its eventfd (gev_loop_notify) so that a wake-up comes to deliver them; the list keeps a reserve so that no record
 * that must reach JS ever waits on an allocation (see pending_grow). The one timerfd serves two
 * deadlines, armed (absolute, CLOCK_MONOTONIC ms) for the earlier: the retry of listeners parked
 * after an accept error, and the oldest pending PROXY header (proxyaccept.c). A fill reads the
 * ready list first (connections whose gev_io layer holds input their fd will not announce, conn.c),
 * then the epoll events. Nothing here knows about Node-API or libuv.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static void release_fds(gev_loop *loop) {
  sys_close(loop->efd);
  sys_close(loop->tfd);
  sys_close(loop->epfd);
  sys_close(loop->spare_fd);
  loop->spare_fd = -1;
  loop->efd = -1;
  loop->tfd = -1;
  loop->epfd = -1;
}

/* Opens the loop's fds (epoll, eventfd, timerfd, the spare fd) and allocates the pending list's
 * spare. 0 or -errno, with nothing left open. */
static int loop_init(gev_loop *loop) {
  loop->free_head = UINT32_MAX;
  loop->proxy_head = UINT32_MAX;
  loop->proxy_tail = UINT32_MAX;
  loop->proxy_timeout_ms = 5000;
  loop->epfd = -1;
  loop->efd = -1;
  loop->tfd = -1;
  loop->spare_fd = -1;
  for (uint32_t i = 0; i < GEV_MAX_LISTENERS; i++) loop->ls[i].fd = -1;
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (loop->epfd < 0) return -errno;
  loop->spare_fd = sys_open_spare();
  loop->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  loop->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  int rc = loop->efd < 0 || loop->tfd < 0 ? -errno : 0;
  if (rc == 0) rc = sys_epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->efd, EPOLLIN, GEV_TAG_EVENTFD << 32);
  if (rc == 0) rc = sys_epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->tfd, EPOLLIN, GEV_TAG_TIMER << 32);
  if (rc == 0) rc = gev_loop_reserve(loop, 0);
  if (rc != 0) {
    release_fds(loop);
    return rc;
  }
  return 0;
}

int gev_loop_create(gev_loop **out) {
  gev_loop *loop = calloc(1, sizeof *loop);
  if (loop == NULL) return -ENOMEM;
  int rc = loop_init(loop);
  if (rc != 0) {
    free(loop->pending.slots);
    free(loop);
    return rc;
  }
  loop->udp_slot = GEV_UDP_SLOT;
  *out = loop;
  return 0;
}

void gev_loop_bind_arenas(gev_loop *loop, void *in, size_t in_len, uint32_t in_recs, void *out, size_t out_len,
                          uint32_t out_cmds) {
  loop->in32 = in;
  loop->in8 = in;
  loop->in_size = in_len;
  loop->in_rec_cap = in_recs;
  loop->in_byte_start = ((size_t)GEV_HDR_U32 + (size_t)in_recs * GEV_SLOT_U32) * sizeof(uint32_t);
  loop->in_byte_pos = loop->in_byte_start;
  loop->out32 = out;
  loop->out8 = out;
  loop->out_size = out_len;
  loop->out_cmd_cap = out_cmds;
}

void gev_loop_configure(gev_loop *loop, int tcp_nodelay, size_t udp_slot, uint32_t proxy_timeout_ms) {
  loop->tcp_nodelay = tcp_nodelay != 0;
  loop->udp_slot = udp_slot;
  loop->proxy_timeout_ms = proxy_timeout_ms;
}

int gev_loop_fd(const gev_loop *loop) { return loop->epfd; }

int gev_loop_has_commands(const gev_loop *loop) { return loop->out32 != NULL && loop->out32[0] != 0; }

void gev_loop_stats(const gev_loop *loop, gev_stats *out) {
  out->live = loop->live;
  out->dgram_truncated = loop->dgram_truncated;
  out->dgram_send_dropped = loop->dgram_send_dropped;
  out->pending_slots = loop->pending.n;
  out->listeners_parked = loop->parked;
}

/* True when `slots` more record slots fit during a fill, keeping the reserve free. */
int gev_loop_room(gev_loop *loop, uint32_t slots) {
  return loop->filling && loop->in_nrec + slots + GEV_REC_RESERVE <= loop->in_rec_cap;
}

/* Reserves `slots` record slots in the arena during a fill; NULL when they do not fit. */
uint32_t *gev_loop_record(gev_loop *loop, uint32_t slots) {
  if (!loop->filling || loop->in_nrec + slots > loop->in_rec_cap) return NULL;
  uint32_t *r = loop->in32 + GEV_HDR_U32 + (size_t)loop->in_nrec * GEV_SLOT_U32;
  loop->in_nrec += slots;
  return r;
}

/*
 * The pending list never has to allocate for a record that must not be lost. Its capacity stays at
 * least n + live + GEV_PENDING_SPARE slots:
 *   - live: one slot for each open connection's CLOSE. A connection emits one CLOSE, after taking
 *     itself out of `live`, so a CLOSE always finds its slot;
 *   - gev_conn_add grows the list for the new connection's CLOSE and OPEN before taking a slot, and
 *     fails with ENOMEM when it cannot (accept reports that as an ACCEPT_ERROR, adopt returns it);
 *   - the spare: END and ACCEPT_ERROR come only from a fill's events, and once one of them
 *     lands here the fill stops (arena_full) and later fills handle no event until the list is empty
 *     again, so at most one event's worth (a slot or two) is ever taken from the spare;
 *   - QUEUED, the one record that can pile up (a report per flush per connection), may not dip into
 *     the reserve: when the list cannot grow it is refused, and its caller closes that connection
 *     with ENOMEM instead (conn.c), whose CLOSE has its slot. RELAYED (a relayed connection's
 *     byte counts, before its CLOSE) may not either: when it cannot be kept it is dropped, and
 *     only the counters JS keeps miss those bytes.
 */
static int pending_grow(gev_pending *p, size_t need) {
  size_t cap = p->cap ? p->cap : GEV_PENDING_INIT;
  while (cap < need) cap *= 2u;
  if (cap > UINT32_MAX / GEV_SLOT_U32) return -ENOMEM;
  uint32_t *s = realloc(p->slots, cap * GEV_SLOT_U32 * sizeof(uint32_t));
  if (s == NULL) return -ENOMEM;
  p->slots = s;
  p->cap = (uint32_t)cap;
  return 0;
}

/* Makes room for `slots` more pending slots on top of the reserve above. 0 or -ENOMEM. */
int gev_loop_reserve(gev_loop *loop, uint32_t slots) {
  gev_pending *p = &loop->pending;
  size_t need = (size_t)p->n + loop->live + GEV_PENDING_SPARE + slots;
  return need <= p->cap ? 0 : pending_grow(p, need);
}

/* Appends a record to the pending list. Fails (-ENOMEM) only for a QUEUED record, see above; the
 * bound check after it is the reserve's invariant, kept as a check so memory stays safe. */
static int pending_push(gev_loop *loop, const uint32_t *rec, uint32_t slots) {
  gev_pending *p = &loop->pending;
  if (gev_loop_reserve(loop, slots) != 0 &&
      (rec[0] == GEV_REC_QUEUED || rec[0] == GEV_REC_RELAYED || p->n + slots > p->cap))
    return -ENOMEM;
  memcpy(p->slots + (size_t)p->n * GEV_SLOT_U32, rec, (size_t)slots * GEV_SLOT_U32 * sizeof(uint32_t));
  p->n += slots;
  return 0;
}

/* The slots a record of `type` takes: those followed by an address take GEV_ADDR_SLOTS more. */
uint32_t gev_rec_slots(uint32_t type) {
  int addr = type == GEV_REC_OPEN || type == GEV_REC_DGRAM || type == GEV_REC_ACCEPTED || type == GEV_REC_PROXY ||
             type == GEV_REC_PROXY_REFUSED || type == GEV_REC_RELAYED || type == GEV_REC_TLS_REFUSED;
  return addr ? 1u + GEV_ADDR_SLOTS : 1u;
}

/* A CLOSE record reached JavaScript's view: only now may its slot be reused. */
static void on_written(gev_loop *loop, const uint32_t *r) {
  if (r[0] == GEV_REC_CLOSE) {
    uint32_t slot = r[1] & GEV_SLOT_MASK;
    if (slot < loop->nconns) {
      loop->conns[slot].next_free = loop->free_head;
      loop->free_head = slot;
    }
  }
}

/* Emits a record: into the arena during a fill (in order), else into the pending list. 0, or
 * -ENOMEM for a QUEUED record the pending list has no room for (nothing was emitted). */
int gev_loop_emit(gev_loop *loop, uint32_t type, uint32_t a, uint32_t b, uint32_t c, const uint32_t *addr8) {
  uint32_t rec[GEV_SLOT_U32 * (1 + GEV_ADDR_SLOTS)];
  uint32_t slots = gev_rec_slots(type);
  rec[0] = type;
  rec[1] = a;
  rec[2] = b;
  rec[3] = c;
  if (slots > 1) {
    if (addr8) memcpy(rec + GEV_SLOT_U32, addr8, GEV_ADDR_U32 * sizeof(uint32_t));
    else memset(rec + GEV_SLOT_U32, 0, GEV_ADDR_U32 * sizeof(uint32_t));
  }
  if (loop->pending.n == 0) {
    uint32_t *r = gev_loop_record(loop, slots);
    if (r != NULL) {
      memcpy(r, rec, (size_t)slots * GEV_SLOT_U32 * sizeof(uint32_t));
      on_written(loop, r);
      return 0;
    }
  }
  if (pending_push(loop, rec, slots) != 0) return -ENOMEM;
  if (!loop->filling) gev_loop_notify(loop);
  return 0;
}

/* Moves pending records into the arena, in order, as far as they fit. Returns slots moved. */
static uint32_t drain_pending(gev_loop *loop) {
  gev_pending *p = &loop->pending;
  uint32_t i = 0;
  while (i < p->n) {
    uint32_t *src = p->slots + (size_t)i * GEV_SLOT_U32;
    uint32_t slots = gev_rec_slots(src[0]);
    uint32_t *r = gev_loop_record(loop, slots);
    if (r == NULL) break;
    memcpy(r, src, (size_t)slots * GEV_SLOT_U32 * sizeof(uint32_t));
    on_written(loop, r);
    i += slots;
  }
  if (i > 0) {
    memmove(p->slots, p->slots + (size_t)i * GEV_SLOT_U32, (size_t)(p->n - i) * GEV_SLOT_U32 * sizeof(uint32_t));
    p->n -= i;
  }
  if (p->n > 0) gev_loop_notify(loop);
  return i;
}

/* Makes the loop's fd readable (once until the next fill reads it), so that records waiting in
 * the pending list get a wake-up to deliver them. */
void gev_loop_notify(gev_loop *loop) {
  if (loop->notified || loop->efd < 0) return;
  uint64_t one = 1;
  if (write(loop->efd, &one, sizeof one) == (ssize_t)sizeof one) loop->notified = 1;
}

static void on_eventfd(gev_loop *loop) {
  uint64_t v = 0;
  if (read(loop->efd, &v, sizeof v) != (ssize_t)sizeof v) return;
  loop->notified = 0;
  if (loop->pending.n > 0) gev_loop_notify(loop);
}

/* Makes the timer fire by `at_ms` (CLOCK_MONOTONIC ms): re-armed only when it is disarmed or armed
 * for later. A timer that fires early finds nothing due and is armed again (on_timer). */
void gev_loop_timer_want(gev_loop *loop, uint64_t at_ms) {
  if (loop->tfd < 0 || (loop->timer_at != 0 && loop->timer_at <= at_ms)) return;
  if (sys_timer_arm_at(loop->tfd, at_ms) == 0) loop->timer_at = at_ms ? at_ms : 1;
}

/* The timer fired: retry parked listeners when their time came, expire PROXY headers and TLS
 * handshakes past their deadline (as many as the arena takes), and arm again for whatever is left. */
static void on_timer(gev_loop *loop) {
  uint64_t v = 0;
  if (read(loop->tfd, &v, sizeof v) != (ssize_t)sizeof v) return;
  loop->timer_at = 0;
  uint64_t now = sys_now_ms();
  if (loop->unpark_at != 0 && loop->unpark_at <= now) {
    loop->unpark_at = 0;
    gev_listener_unpark_all(loop);
  }
  if (loop->unpark_at != 0) gev_loop_timer_want(loop, loop->unpark_at);
  gev_proxy_expire(loop, now);
  if (loop->tls_expire != NULL) loop->tls_expire(loop, now);
}

static void begin_fill(gev_loop *loop) {
  loop->filling = 1;
  loop->in_nrec = 0;
  loop->in_byte_pos = loop->in_byte_start;
  loop->epoch++;
}

static uint32_t end_fill(gev_loop *loop) {
  loop->filling = 0;
  if (loop->pending.n > 0) gev_loop_notify(loop);
  loop->in32[0] = loop->in_nrec;
  loop->in32[1] = (uint32_t)loop->in_byte_pos;
  return loop->in_nrec;
}

static int arena_full(gev_loop *loop) {
  return loop->in_nrec + 1u + GEV_ADDR_SLOTS + GEV_REC_RESERVE > loop->in_rec_cap ||
         loop->in_byte_pos >= loop->in_size || loop->pending.n > 0;
}

/* Drains ready events into the arena; events left when it fills stay ready (level-triggered).
 * Returns the record slots written (the in arena's header says the same). */
uint32_t gev_loop_fill(gev_loop *loop) {
  begin_fill(loop);
  drain_pending(loop);
  if (loop->ready.n > 0 || loop->ready.overflow) gev_conn_run_ready(loop);
  for (int round = 0; round < GEV_EPOLL_ROUNDS && !arena_full(loop); round++) {
    int n = epoll_wait(loop->epfd, loop->evs, GEV_EPOLL_EVENTS, 0);
    if (n <= 0) break;
    for (int i = 0; i < n && !arena_full(loop); i++) {
      uint64_t tag = loop->evs[i].data.u64;
      uint32_t what = (uint32_t)tag;
      switch (tag >> 32) {
        case GEV_TAG_CONN: gev_conn_on_event(loop, what, loop->evs[i].events); break;
        case GEV_TAG_LISTENER: gev_listener_on_event(loop, what); break;
        case GEV_TAG_EVENTFD: on_eventfd(loop); break;
        case GEV_TAG_TIMER: on_timer(loop); break;
        default: break;
      }
    }
    if (n < GEV_EPOLL_EVENTS) break;
  }
  return end_fill(loop);
}

void gev_loop_close_listeners(gev_loop *loop) {
  for (uint32_t i = 0; i < GEV_MAX_LISTENERS; i++) {
    if (loop->ls[i].kind != GEV_L_FREE) gev_listener_close(loop, i);
  }
}

uint32_t gev_loop_stop_all(gev_loop *loop) {
  gev_loop_close_listeners(loop);
  begin_fill(loop);
  drain_pending(loop);
  gev_proxy_drop_all(loop);
  for (uint32_t s = 0; s < loop->nconns; s++) {
    gev_conn *c = &loop->conns[s];
    /* An accepted connection still in its handshake was never heard of by JS: no CLOSE. */
    if ((c->flags & GEV_C_HANDSHAKE) && !(c->origin & GEV_ORIGIN_DIAL)) gev_conn_release(loop, c);
    else if (c->flags & GEV_C_OPEN) gev_conn_close(loop, c, 0);
  }
  return end_fill(loop);
}

void gev_loop_free(gev_loop *loop) {
  if (loop == NULL) return;
  gev_loop_close_listeners(loop);
  gev_conn_free_all(loop);
  release_fds(loop);
  free(loop->pending.slots);
  free(loop->dirty.ids);
  free(loop->ready.ids);
  free(loop->relay_buf);
  free(loop->tls_scratch);
  if (loop->tls_free != NULL) loop->tls_free(loop->tls_ctx);
  free(loop);
}
