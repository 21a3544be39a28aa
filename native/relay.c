/*
 * Relays: a connection whose input goes straight to another connection's output, read and sent
 * inside the core with no record per read, so a proxy's bytes never cross into JavaScript.
 *
 *   RELAY command  [RELAY, id, to, hw] makes `id`'s input go to `to` (0 stops it). The destination
 *                  takes one source at a time: a second source replaces the first. A source may
 *                  relay to itself (an echo).
 *   reads          gev_relay_read: up to GEV_READ_BUDGET bytes per wake-up through the loop's one
 *                  relay buffer, each read sent to the destination at once (gev_conn_send: what its
 *                  socket does not take is queued, and JS hears of the queue in a QUEUED record).
 *   backpressure   while the destination holds more than hw bytes unsent the source is held
 *                  (GEV_C_RELAY_HELD: no EPOLLIN); once the destination's queue falls to hw / 4
 *                  (gev_relay_drained, after its EPOLLOUT writes) the source is read again.
 *   ends           END and CLOSE records still go to JS for both sides, which decides what a FIN or
 *                  a close means for the other side. A relay stops when either side closes, or when
 *                  the destination no longer takes output: at once when a close or an end is asked
 *                  for it (gev_relay_dest_ending, also for a held source), else at the source's next
 *                  read. The source's input then reaches JS in DATA records again, its hold lifted.
 *   counts         rx (read from a source and relayed) and tx (relayed into a destination), kept
 *                  per connection; JS reads them while the connection is open (gev_conn_relayed)
 *                  and hears them in a RELAYED record just before its CLOSE.
 *
 * Nothing here allocates per read: the relay state is made once per connection, the buffer once
 * per loop. When either cannot be allocated the relay is not set up, and the input keeps reaching
 * JS in DATA records (which JS relays itself).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

static gev_relay *relay_of(gev_conn *c) {
  if (c->relay == NULL) c->relay = calloc(1, sizeof *c->relay);
  return c->relay;
}

/* Lifts `src`'s hold, if any, so that it is read again. */
static void unhold(gev_loop *loop, gev_conn *src) {
  if (!(src->flags & GEV_C_RELAY_HELD)) return;
  src->flags &= (uint16_t)~GEV_C_RELAY_HELD;
  gev_conn_interest(loop, src);
}

/* Stops `c` relaying out: its destination forgets it, and it is no longer held. */
static void stop_out(gev_loop *loop, gev_conn *c) {
  gev_relay *r = c->relay;
  if (r == NULL || r->to == 0) return;
  gev_conn *d = gev_conn_get(loop, r->to);
  uint32_t id = gev_conn_id(loop, c);
  if (d != NULL && d->relay != NULL && d->relay->from == id) d->relay->from = 0;
  r->to = 0;
  unhold(loop, c);
}

void gev_relay_set(gev_loop *loop, gev_conn *c, uint32_t to, uint32_t hw) {
  stop_out(loop, c);
  if (to == 0) return;
  gev_conn *d = gev_conn_get(loop, to);
  if (d == NULL || (d->flags & (GEV_C_CONNECTING | GEV_C_PROXY_WAIT | GEV_C_HANDSHAKE))) return;
  if (loop->relay_buf == NULL) loop->relay_buf = malloc(GEV_READ_BUDGET);
  if (loop->relay_buf == NULL || relay_of(c) == NULL || relay_of(d) == NULL) return;
  if (d->relay->from != 0) {
    gev_conn *old = gev_conn_get(loop, d->relay->from);
    if (old != NULL) stop_out(loop, old);
  }
  c->relay->to = to;
  c->relay->hw = hw > 0 ? hw : 1;
  d->relay->from = gev_conn_id(loop, c);
  if (d->qbytes > c->relay->hw) {
    c->flags |= GEV_C_RELAY_HELD;
    gev_conn_interest(loop, c);
  }
}

/* The connection `c` relays to, if it can still take output; else the relay stops and NULL. */
gev_conn *gev_relay_dest(gev_loop *loop, gev_conn *c) {
  gev_relay *r = c->relay;
  if (r == NULL || r->to == 0) return NULL;
  gev_conn *d = gev_conn_get(loop, r->to);
  if (d != NULL && !(d->flags & (GEV_C_CLOSING | GEV_C_ENDING | GEV_C_WR_SHUT))) return d;
  stop_out(loop, c);
  return NULL;
}

/*
 * Reads `c` (id `id`) and sends what it reads to `dst`, until EAGAIN, FIN, an error, the budget, or
 * `dst` holding more than the mark. Returns -1 when `c` closed.
 */
int gev_relay_read(gev_loop *loop, gev_conn *c, uint32_t id, gev_conn *dst) {
  if (c->read_epoch != loop->epoch) {
    c->read_epoch = loop->epoch;
    c->read_used = 0;
  }
  uint32_t hw = c->relay->hw;
  int got = 0;
  for (;;) {
    size_t want = GEV_READ_BUDGET - c->read_used;
    if (want == 0) {
      if (got && c->io->buffered != NULL && c->io->buffered(c)) gev_conn_ready_push(loop, c);
      return 0;
    }
    ssize_t n = c->io->recv(c, loop->relay_buf, want);
    if (n > 0) {
      struct iovec iov = {loop->relay_buf, (size_t)n};
      got = 1;
      c->read_used += (uint32_t)n;
      c->relay->rx += (uint64_t)n;
      dst->relay->tx += (uint64_t)n;
      gev_conn_send(loop, dst, &iov, 1, (size_t)n);
      if (!(dst->flags & GEV_C_OPEN)) return (c->flags & GEV_C_OPEN) ? 0 : -1; /* a send error closed it */
      if (dst->qbytes != dst->reported && gev_conn_report(loop, dst) != 0) return (c->flags & GEV_C_OPEN) ? 0 : -1;
      if (dst->qbytes > hw) {
        c->flags |= GEV_C_RELAY_HELD;
        gev_conn_interest(loop, c);
        return 0;
      }
      if ((size_t)n < want && (c->io->buffered == NULL || !c->io->buffered(c))) return 0;
      continue;
    }
    if (n == 0) {
      gev_conn_read_eof(loop, c, id);
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    gev_conn_close(loop, c, errno);
    return -1;
  }
}

/* `dst`'s queue shrank: its source is read again once the queue is down to a quarter of the mark. */
void gev_relay_drained(gev_loop *loop, gev_conn *dst) {
  if (dst->relay == NULL || dst->relay->from == 0) return;
  gev_conn *src = gev_conn_get(loop, dst->relay->from);
  if (src == NULL || src->relay == NULL) return;
  if (dst->qbytes <= src->relay->hw / 4u) unhold(loop, src);
}

/* `dst` takes no more output (a close that flushes, or an end, was asked for): the relay into it
 * stops, and its source, held or not, is read again (its input as DATA). */
void gev_relay_dest_ending(gev_loop *loop, gev_conn *dst) {
  gev_relay *r = dst->relay;
  if (r == NULL || r->from == 0) return;
  gev_conn *src = gev_conn_get(loop, r->from);
  r->from = 0;
  if (src != NULL) stop_out(loop, src);
}

/* `c` is closing: both of its relays stop (a source relaying into it is read again). */
void gev_relay_unlink(gev_loop *loop, gev_conn *c) {
  gev_relay *r = c->relay;
  if (r == NULL) return;
  stop_out(loop, c);
  if (r->from != 0) {
    gev_conn *src = gev_conn_get(loop, r->from);
    r->from = 0;
    if (src != NULL && src != c) stop_out(loop, src);
  }
}

int gev_conn_relayed(gev_loop *loop, uint32_t id, uint64_t *rx, uint64_t *tx) {
  gev_conn *c = gev_conn_get(loop, id);
  if (c == NULL) return -EBADF;
  *rx = c->relay != NULL ? c->relay->rx : 0;
  *tx = c->relay != NULL ? c->relay->tx : 0;
  return 0;
}
