/*
 * The connection table, reads into the arena, and each connection's output queue.
 *
 *   conns[slot]  fd, generation, flags, output queue (qhead .. qtail, oldest first)
 *   free list    slots whose CLOSE record JS has seen (loop.c pushes them), newest first
 *   [nconns, conns_cap)  allocated, never used, never touched: taken in order once the free
 *                list is empty
 *
 * Invariants: EPOLLOUT is in a connection's interest exactly while its queue is non-empty;
 * EPOLLIN exactly while no FIN was read, no close was requested, JS has not paused reading and no
 * relay holds the connection back (relay.c).
 * A dial still connecting (GEV_C_CONNECTING) is the exception: EPOLLOUT alone, an empty queue, no
 * record but its OPEN or CLOSE (see gev.h); flush.c gives it no command but CLOSE. So is a PROXY
 * listener's connection whose header is pending (GEV_C_PROXY_WAIT, proxyaccept.c): EPOLLIN alone, no
 * record at all until its OPEN, and no command (JS has not heard of it).
 * Bytes leave in the order they were written; qbytes is exactly the bytes queued. A slot is reused
 * only after JS saw its CLOSE, with the next generation.
 *
 * Queue reports: `reported` is the qbytes JS last heard of. A QUEUED record goes out when they
 * differ, at two points only: after a flush (for the connections whose queue grew during it, or
 * that JS asked to watch) and after EPOLLOUT writes during a fill. A send the kernel takes whole
 * touches neither the queue nor the report, so the fast path emits nothing.
 *
 * Out of memory: no allocation failure aborts. A connection whose output cannot be copied into
 * its queue, or whose QUEUED report finds no room in the pending list, is closed at once with
 * ENOMEM, and its CLOSE record names what failed (GEV_NOMEM_*). A new connection that cannot
 * get a table slot or its pending reserve is refused with ENOMEM. The dirty list falls back to a
 * table scan (mark_dirty). Every other connection is served on.
 *
 * Bytes move only through the connection's gev_io pair (c->io: recv in conn_read, sendv in
 * gev_conn_send and conn_drain); every other socket call goes through sys.c. A layered connection
 * (tls.c) adds three states to the above, see gev_io in internal.h: GEV_C_HANDSHAKE (EPOLLIN, and
 * EPOLLOUT while held, no record until its OPEN, no command), GEV_C_IO_HELD (EPOLLOUT with an empty
 * queue; an END or a flushed CLOSE waits for the held bytes too) and the loop's ready list (input
 * the layer holds, read by the next fill).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t conn_tag(uint32_t id) { return (GEV_TAG_CONN << 32) | id; }

static uint32_t conn_id(gev_loop *loop, gev_conn *c) {
  return ((uint32_t)c->gen << GEV_SLOT_BITS) | (uint32_t)(c - loop->conns);
}

uint32_t gev_conn_id(gev_loop *loop, gev_conn *c) { return conn_id(loop, c); }

/* The open connection `id` names, or NULL when the id is stale or was never issued. */
gev_conn *gev_conn_get(gev_loop *loop, uint32_t id) {
  uint32_t slot = id & GEV_SLOT_MASK;
  if (slot >= loop->nconns) return NULL;
  gev_conn *c = &loop->conns[slot];
  if (c->gen != (id >> GEV_SLOT_BITS) || !(c->flags & GEV_C_OPEN)) return NULL;
  return c;
}

/*
 * A slot for a new connection: the newest freed one, else the next never used one, growing the
 * table when it is full. Growth leaves the new slots untouched, so a table sized for a burst of
 * connections costs resident memory only for the slots that were used.
 */
static int slot_take(gev_loop *loop, uint32_t *slot_out) {
  if (loop->free_head != UINT32_MAX) {
    *slot_out = loop->free_head;
    loop->free_head = loop->conns[*slot_out].next_free;
    return 0;
  }
  if (loop->nconns == loop->conns_cap) {
    uint32_t old = loop->conns_cap;
    if (old >= GEV_MAX_SLOTS) return -EMFILE;
    uint32_t n = old ? old * 2u : 1024u;
    if (n > GEV_MAX_SLOTS) n = GEV_MAX_SLOTS;
    gev_conn *t = realloc(loop->conns, (size_t)n * sizeof *t);
    if (t == NULL) return -ENOMEM;
    loop->conns = t;
    loop->conns_cap = n;
  }
  *slot_out = loop->nconns++;
  memset(&loop->conns[*slot_out], 0, sizeof(gev_conn));
  return 0;
}

/* Registers `fd` of `origin` over the plain transport with `flags` (GEV_C_CONNECTING or 0) and
 * epoll interest `events`, TCP_NODELAY set on a TCP socket when the loop asks for it (this is the
 * one place: a dialled socket keeps the option set before its handshake). On failure (-EMFILE for
 * a full table, -ENOMEM, an epoll_ctl error) the fd is not closed. */
static int conn_add(gev_loop *loop, int fd, uint32_t origin, int is_tcp, uint16_t flags, uint32_t events,
                    const gev_io *io, void *state, uint32_t *id_out) {
  uint32_t slot;
  /* The pending list's reserve for this connection's CLOSE and OPEN records (loop.c). */
  int rc = gev_loop_reserve(loop, 1u + 1u + GEV_ADDR_SLOTS);
  if (rc == 0) rc = slot_take(loop, &slot);
  if (rc != 0) return rc;
  gev_conn *c = &loop->conns[slot];
  uint32_t id;
  c->gen = (uint16_t)(c->gen >= GEV_GEN_MAX ? 1u : c->gen + 1u);
  c->fd = fd;
  c->flags = (uint16_t)(GEV_C_OPEN | flags | (is_tcp ? GEV_C_TCP : 0));
  c->origin = origin;
  c->io = io;
  c->io_state = state;
  c->events = events;
  c->read_epoch = 0;
  c->read_used = 0;
  c->qhead = c->qtail = NULL;
  c->qbytes = 0;
  c->reported = 0;
  c->proxy = NULL;
  c->relay = NULL;
  id = conn_id(loop, c);
  rc = sys_epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, events, conn_tag(id));
  if (rc != 0) {
    c->fd = -1;
    c->flags = 0;
    c->io_state = NULL;
    c->next_free = loop->free_head;
    loop->free_head = slot;
    return rc;
  }
  if (is_tcp && loop->tcp_nodelay) sys_tcp_nodelay(fd);
  loop->live++;
  *id_out = id;
  return 0;
}

/* Registers an accepted or adopted fd of `origin`; the caller emits OPEN. On failure the fd is not
 * closed (see conn_add). */
int gev_conn_add(gev_loop *loop, int fd, uint32_t origin, int is_tcp, uint32_t *id_out) {
  return conn_add(loop, fd, origin, is_tcp, 0, EPOLLIN, &gev_io_plain, NULL, id_out);
}

/* Registers a PROXY listener's fd as header-pending (GEV_C_PROXY_WAIT, EPOLLIN): no OPEN until
 * proxyaccept.c has read its header. On failure the fd is not closed. */
int gev_conn_add_pending(gev_loop *loop, int fd, uint32_t origin, int is_tcp, uint32_t *id_out) {
  return conn_add(loop, fd, origin, is_tcp, GEV_C_PROXY_WAIT, EPOLLIN, &gev_io_plain, NULL, id_out);
}

/* Registers `fd` over the layer `io` with its state (the connection's from then on, released
 * through io->release) in its handshake (GEV_C_HANDSHAKE, EPOLLIN): no OPEN until it completes.
 * On failure neither the fd nor the state is touched. */
int gev_conn_add_layered(gev_loop *loop, int fd, uint32_t origin, int is_tcp, const gev_io *io, void *state,
                         uint32_t *id_out) {
  return conn_add(loop, fd, origin, is_tcp, GEV_C_HANDSHAKE, EPOLLIN, io, state, id_out);
}

int gev_conn_adopt(gev_loop *loop, int fd, uint32_t origin, uint32_t flags, uint32_t *id_out) {
  uint32_t addr[GEV_ADDR_U32];
  int rc = sys_local_addr(fd, addr);
  if (rc != 0) return rc;
  int is_tcp = addr[0] == GEV_ADDR_INET4 || addr[0] == GEV_ADDR_INET6;
  sys_peer_addr(fd, addr);
  if (flags & GEV_LISTEN_PROXY) return gev_proxy_adopt(loop, fd, origin, is_tcp, addr, id_out);
  rc = gev_conn_add(loop, fd, origin, is_tcp, id_out);
  if (rc != 0) return rc;
  gev_loop_emit(loop, GEV_REC_OPEN, *id_out, origin, 0, addr);
  return 0;
}

int gev_conn_sockname(gev_loop *loop, uint32_t id, uint32_t *addr8) {
  gev_conn *c = gev_conn_get(loop, id);
  if (c == NULL) return -EBADF;
  if (c->proxy != NULL && gev_proxy_sockname(c, addr8) == 0) return 0;
  return sys_local_addr(c->fd, addr8);
}

/*
 * A dial (see gev.h): a non-blocking socket of sa's family, bound to `local` first when it is not
 * NULL, then connect. In progress, the connection waits in its slot as GEV_C_CONNECTING with
 * EPOLLOUT interest alone (conn_connected finishes it); connected at once, it opens now and its
 * OPEN waits in the pending list (or the arena, during a fill). On failure the fd is closed and no
 * slot is taken; the slot is taken after the connect starts, so a dial refused for want of memory
 * or table room may have sent its SYN (the peer then sees a reset or a close).
 */
int gev_conn_connect(gev_loop *loop, const struct sockaddr *sa, socklen_t len, const struct sockaddr *local,
                     socklen_t local_len, uint32_t origin, uint32_t *id_out) {
  int is_tcp = sa->sa_family == AF_INET || sa->sa_family == AF_INET6;
  int fd = sys_socket(sa->sa_family, SOCK_STREAM);
  if (fd < 0) return fd;
  int rc = 0;
  if (local != NULL) {
    sys_dial_options(fd, local);
    rc = sys_bind(fd, local, local_len);
  }
  if (rc == 0) rc = sys_connect(fd, sa, len);
  origin |= GEV_ORIGIN_DIAL;
  if (rc == -EINPROGRESS) {
    rc = conn_add(loop, fd, origin, is_tcp, GEV_C_CONNECTING, EPOLLOUT, &gev_io_plain, NULL, id_out);
  } else if (rc == 0) {
    uint32_t addr[GEV_ADDR_U32];
    sys_peer_addr(fd, addr);
    rc = conn_add(loop, fd, origin, is_tcp, 0, EPOLLIN, &gev_io_plain, NULL, id_out);
    if (rc == 0) gev_loop_emit(loop, GEV_REC_OPEN, *id_out, origin, 0, addr);
  }
  if (rc != 0) sys_close(fd);
  return rc;
}

int gev_conn_connect_inet(gev_loop *loop, int family, const char *host, int port, const char *local_host,
                          int local_port, uint32_t origin, uint32_t *id_out) {
  struct sockaddr_storage ss, ls;
  socklen_t len = 0, local_len = 0;
  int rc = gev_addr_parse(family, host, port, &ss, &len);
  if (rc != 0) return rc;
  if (local_host[0] == '\0' && local_port == 0) {
    return gev_conn_connect(loop, (struct sockaddr *)&ss, len, NULL, 0, origin, id_out);
  }
  rc = gev_addr_parse(family, local_host, local_port, &ls, &local_len);
  if (rc != 0) return rc;
  return gev_conn_connect(loop, (struct sockaddr *)&ss, len, (struct sockaddr *)&ls, local_len, origin, id_out);
}

int gev_conn_connect_unix(gev_loop *loop, const char *path, uint32_t origin, uint32_t *id_out) {
  struct sockaddr_un sa;
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof sa.sun_path) return -ENAMETOOLONG;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, n + 1);
  return gev_conn_connect(loop, (struct sockaddr *)&sa, sizeof sa, NULL, 0, origin, id_out);
}

static void conn_interest(gev_loop *loop, gev_conn *c) {
  uint32_t ev = 0;
  if (!(c->flags & (GEV_C_RD_EOF | GEV_C_CLOSING | GEV_C_PAUSED | GEV_C_RELAY_HELD))) ev |= EPOLLIN;
  if (c->qhead != NULL || (c->flags & GEV_C_IO_HELD)) ev |= EPOLLOUT;
  if ((ev & EPOLLIN) && !(c->events & EPOLLIN) && c->io->buffered != NULL && c->io->buffered(c))
    gev_conn_ready_push(loop, c);
  if (c->flags & GEV_C_HUP_PARKED) {
    /* Back into the epoll set once reading resumes (or output waits): the hang-up is reported
     * again at once, with whatever is still unread. */
    if (ev == 0) return;
    c->flags &= (uint16_t)~GEV_C_HUP_PARKED;
    c->events = ev;
    sys_epoll_ctl(loop->epfd, EPOLL_CTL_ADD, c->fd, ev, conn_tag(conn_id(loop, c)));
    return;
  }
  if (ev == c->events) return;
  c->events = ev;
  sys_epoll_ctl(loop->epfd, EPOLL_CTL_MOD, c->fd, ev, conn_tag(conn_id(loop, c)));
}

void gev_conn_interest(gev_loop *loop, gev_conn *c) { conn_interest(loop, c); }

static void queue_free(gev_conn *c) {
  gev_chunk *ch = c->qhead;
  while (ch != NULL) {
    gev_chunk *next = ch->next;
    free(ch);
    ch = next;
  }
  c->qhead = c->qtail = NULL;
  c->qbytes = 0;
}

/* Copies what the kernel did not take (iov minus its first `skip` bytes) to the queue's tail.
 * 0, or -ENOMEM with the queue unchanged. */
static int queue_append(gev_conn *c, const struct iovec *iov, int iovcnt, size_t total, size_t skip) {
  size_t n = total - skip;
  if (n > SIZE_MAX - sizeof(gev_chunk)) return -ENOMEM;
  gev_chunk *ch = malloc(sizeof *ch + n);
  if (ch == NULL) return -ENOMEM;
  if (n >= GEV_HUGE_COPY) sys_advise_huge(ch->data, n);
  ch->next = NULL;
  ch->off = 0;
  ch->len = n;
  char *dst = ch->data;
  for (int i = 0; i < iovcnt; i++) {
    size_t len = iov[i].iov_len;
    const char *src = iov[i].iov_base;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    memcpy(dst, src + skip, len - skip);
    dst += len - skip;
    skip = 0;
  }
  if (c->qtail) c->qtail->next = ch;
  else c->qhead = ch;
  c->qtail = ch;
  c->qbytes += n;
  return 0;
}

static void conn_close(gev_loop *loop, gev_conn *c, int err, uint32_t what);

/* Tells JS how much output is queued. With no room left for the record, the connection is closed
 * with ENOMEM instead (see pending_grow in loop.c). Returns -1 when it closed. */
static int queue_report(gev_loop *loop, gev_conn *c) {
  uint64_t q = c->qbytes;
  c->reported = c->qbytes;
  if (gev_loop_emit(loop, GEV_REC_QUEUED, conn_id(loop, c), (uint32_t)q, (uint32_t)(q >> 32), NULL) == 0) return 0;
  conn_close(loop, c, ENOMEM, GEV_NOMEM_REPORT);
  return -1;
}

int gev_conn_report(gev_loop *loop, gev_conn *c) { return queue_report(loop, c); }

/*
 * Remembers that `c` must be looked at when the current flush ends. Nothing is lost when the list
 * cannot grow: the flag on the connection is what counts, and an overflowed list makes the end of
 * the flush scan the table for it instead (gev_conn_report_queued).
 */
static void mark_dirty(gev_loop *loop, gev_conn *c) {
  gev_idlist *d = &loop->dirty;
  if (c->flags & GEV_C_QDIRTY) return;
  c->flags |= GEV_C_QDIRTY;
  if (d->overflow) return;
  if (d->n == d->cap) {
    uint32_t cap = d->cap ? d->cap * 2u : 64u;
    uint32_t *ids = realloc(d->ids, (size_t)cap * sizeof *ids);
    if (ids == NULL) {
      d->overflow = 1;
      return;
    }
    d->ids = ids;
    d->cap = cap;
  }
  d->ids[d->n++] = conn_id(loop, c);
}

static void report_dirty(gev_loop *loop, gev_conn *c) {
  if (!(c->flags & GEV_C_QDIRTY)) return;
  int watched = (c->flags & GEV_C_QWATCH) != 0;
  c->flags &= (uint16_t) ~(GEV_C_QDIRTY | GEV_C_QWATCH);
  if (watched || c->qbytes != c->reported) queue_report(loop, c);
}

/* End of a flush: one QUEUED record per connection whose queue changed or that JS watched. */
void gev_conn_report_queued(gev_loop *loop) {
  gev_idlist *d = &loop->dirty;
  if (d->overflow) {
    for (uint32_t s = 0; s < loop->nconns; s++) {
      if (loop->conns[s].flags & GEV_C_OPEN) report_dirty(loop, &loop->conns[s]);
    }
  } else {
    for (uint32_t i = 0; i < d->n; i++) {
      gev_conn *c = gev_conn_get(loop, d->ids[i]);
      if (c != NULL) report_dirty(loop, c);
    }
  }
  d->n = 0;
  d->overflow = 0;
}

void gev_conn_watch(gev_loop *loop, gev_conn *c) {
  c->flags |= GEV_C_QWATCH;
  mark_dirty(loop, c);
}

void gev_conn_pause(gev_loop *loop, gev_conn *c, int paused) {
  if (paused) c->flags |= GEV_C_PAUSED;
  else c->flags &= (uint16_t)~GEV_C_PAUSED;
  conn_interest(loop, c);
}

/* Takes `c`'s fd out of epoll and closes it, stops its relays, frees its queue, PROXY and relay
 * state, and marks the slot closed; what the slot does next (a CLOSE record, or the free list) is
 * the caller's. */
static void conn_teardown(gev_loop *loop, gev_conn *c) {
  gev_relay_unlink(loop, c);
  free(c->relay);
  c->relay = NULL;
  sys_epoll_ctl(loop->epfd, EPOLL_CTL_DEL, c->fd, 0, 0);
  sys_close(c->fd);
  queue_free(c);
  gev_proxy_free(loop, c);
  if (c->io->release != NULL) c->io->release(c);
  c->io = &gev_io_plain;
  c->io_state = NULL;
  c->fd = -1;
  c->flags = 0;
  c->events = 0;
  loop->live--;
}

/* Closes `c` now, dropping its queue; its CLOSE record carries `err` and, for ENOMEM from the
 * core, `what` (GEV_NOMEM_*). A connection that took part in a relay reports its counts first. */
static void conn_close(gev_loop *loop, gev_conn *c, int err, uint32_t what) {
  if (!(c->flags & GEV_C_OPEN)) return;
  uint32_t id = conn_id(loop, c);
  if (c->relay != NULL && (c->relay->rx | c->relay->tx) != 0) {
    uint64_t rx = c->relay->rx, tx = c->relay->tx;
    uint32_t counts[GEV_ADDR_U32] = {(uint32_t)rx, (uint32_t)(rx >> 32), (uint32_t)tx, (uint32_t)(tx >> 32)};
    gev_loop_emit(loop, GEV_REC_RELAYED, id, 0, 0, counts);
  }
  conn_teardown(loop, c);
  gev_loop_emit(loop, GEV_REC_CLOSE, id, (uint32_t)err, what, NULL);
  if (loop->parked) gev_listener_unpark_all(loop);
}

void gev_conn_close(gev_loop *loop, gev_conn *c, int err) { conn_close(loop, c, err, GEV_NOMEM_KERNEL); }

/* Closes `c`, which JS never heard of (a PROXY header refused or dropped), with no record: its slot
 * goes back on the free list at once, as no CLOSE has to reach JS first. */
void gev_conn_release(gev_loop *loop, gev_conn *c) {
  if (!(c->flags & GEV_C_OPEN)) return;
  conn_teardown(loop, c);
  uint32_t slot = (uint32_t)(c - loop->conns);
  c->next_free = loop->free_head;
  loop->free_head = slot;
  if (loop->parked) gev_listener_unpark_all(loop);
}

/* Closes accepted connection `c` in its layer's handshake, which JS never heard of: TLS_REFUSED
 * [origin, err, why] + its peer (when getpeername still knows it), and its slot free at once. */
void gev_conn_refuse(gev_loop *loop, gev_conn *c, int err, uint32_t why) {
  uint32_t addr[GEV_ADDR_U32], origin = c->origin;
  sys_peer_addr(c->fd, addr);
  gev_conn_release(loop, c);
  gev_loop_emit(loop, GEV_REC_TLS_REFUSED, origin, (uint32_t)err, why, addr);
}

/* The queue drained: carry out a requested close or half-close, once the layer's end of stream
 * (if any) is written too. Returns 0 if still open. */
static int after_drain(gev_loop *loop, gev_conn *c) {
  if (!(c->flags & (GEV_C_CLOSING | GEV_C_ENDING))) return 0;
  if (c->io->end != NULL && c->io->end(c) != 0) {
    gev_conn_close(loop, c, errno);
    return -1;
  }
  if (c->flags & GEV_C_IO_HELD) return 0;
  if (c->flags & GEV_C_CLOSING) {
    gev_conn_close(loop, c, 0);
    return -1;
  }
  if (c->flags & GEV_C_ENDING) {
    sys_shutdown_wr(c->fd);
    c->flags = (uint16_t)((c->flags & ~GEV_C_ENDING) | GEV_C_WR_SHUT);
  }
  return 0;
}

/* Writes the queue out until EAGAIN (the layer's held output first). Returns -1 when the
 * connection closed. */
static int conn_drain(gev_loop *loop, gev_conn *c) {
  struct iovec iov[64];
  if (c->qhead == NULL && (c->flags & GEV_C_IO_HELD)) {
    ssize_t w;
    do w = c->io->sendv(c, iov, 0);
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      gev_conn_close(loop, c, errno);
      return -1;
    }
  }
  while (c->qhead != NULL) {
    int n = 0;
    size_t total = 0;
    for (gev_chunk *ch = c->qhead; ch != NULL && n < 64; ch = ch->next, n++) {
      iov[n].iov_base = ch->data + ch->off;
      iov[n].iov_len = ch->len - ch->off;
      total += iov[n].iov_len;
    }
    ssize_t w = c->io->sendv(c, iov, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      gev_conn_close(loop, c, errno);
      return -1;
    }
    size_t left = (size_t)w;
    c->qbytes -= left;
    while (left > 0) {
      gev_chunk *ch = c->qhead;
      size_t avail = ch->len - ch->off;
      if (left < avail) {
        ch->off += left;
        break;
      }
      left -= avail;
      c->qhead = ch->next;
      if (c->qhead == NULL) c->qtail = NULL;
      free(ch);
    }
    if ((size_t)w < total) break;
  }
  if (c->qhead == NULL && after_drain(loop, c) != 0) return -1;
  conn_interest(loop, c);
  if (c->relay != NULL) gev_relay_drained(loop, c);
  return 0;
}

/* Sends iov now if nothing is queued; what the kernel does not take is queued, in order. */
void gev_conn_send(gev_loop *loop, gev_conn *c, struct iovec *iov, int iovcnt, size_t total) {
  size_t sent = 0;
  if (c->flags & (GEV_C_CLOSING | GEV_C_ENDING | GEV_C_WR_SHUT)) return;
  if (c->qhead == NULL) {
    ssize_t w;
    do w = c->io->sendv(c, iov, iovcnt);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        gev_conn_close(loop, c, errno);
        return;
      }
      w = 0;
    }
    sent = (size_t)w;
    if (sent == total) {
      if (c->flags & GEV_C_IO_HELD) conn_interest(loop, c);
      return;
    }
  }
  if (queue_append(c, iov, iovcnt, total, sent) != 0) {
    conn_close(loop, c, ENOMEM, GEV_NOMEM_QUEUE);
    return;
  }
  mark_dirty(loop, c);
  conn_interest(loop, c);
}

void gev_conn_request_close(gev_loop *loop, gev_conn *c, int flush) {
  if (c->relay != NULL) gev_relay_dest_ending(loop, c);
  if (!flush) {
    gev_conn_close(loop, c, 0);
    return;
  }
  c->flags |= GEV_C_CLOSING;
  if (c->qhead == NULL && after_drain(loop, c) != 0) return;
  conn_interest(loop, c);
}

void gev_conn_end(gev_loop *loop, gev_conn *c) {
  if (c->relay != NULL) gev_relay_dest_ending(loop, c);
  if (c->flags & (GEV_C_WR_SHUT | GEV_C_ENDING | GEV_C_CLOSING)) return;
  c->flags |= GEV_C_ENDING;
  if (c->qhead == NULL && after_drain(loop, c) != 0) return;
  conn_interest(loop, c);
}

void gev_conn_keepalive(gev_conn *c, uint32_t seconds) {
  if (!(c->flags & GEV_C_TCP)) return;
  if (seconds > GEV_KEEPALIVE_MAX_S) seconds = GEV_KEEPALIVE_MAX_S;
  sys_keepalive(c->fd, seconds);
}

/* The peer sent FIN: no more reading, and JS hears END. */
void gev_conn_read_eof(gev_loop *loop, gev_conn *c, uint32_t id) {
  c->flags |= GEV_C_RD_EOF;
  conn_interest(loop, c);
  gev_loop_emit(loop, GEV_REC_END, id, 0, 0, NULL);
}

/* Reads until EAGAIN, FIN, an error, the budget or a full arena. Returns -1 when it closed. */
static int conn_read(gev_loop *loop, gev_conn *c, uint32_t id) {
  uint32_t *rec = NULL;
  if (c->read_epoch != loop->epoch) {
    c->read_epoch = loop->epoch;
    c->read_used = 0;
  }
  for (;;) {
    size_t pos = loop->in_byte_pos;
    size_t space = loop->in_size - pos;
    size_t want = GEV_READ_BUDGET - c->read_used;
    if (want > space) want = space;
    int fresh = rec == NULL;
    if (want == 0 || (fresh && !gev_loop_room(loop, 1))) {
      if (rec != NULL && c->io->buffered != NULL && c->io->buffered(c)) gev_conn_ready_push(loop, c);
      return 0;
    }
    if (fresh) rec = gev_loop_record(loop, 1);
    ssize_t n = c->io->recv(c, loop->in8 + pos, want);
    if (n > 0) {
      if (fresh) {
        rec[0] = GEV_REC_DATA;
        rec[1] = id;
        rec[2] = (uint32_t)pos;
        rec[3] = (uint32_t)n;
      } else {
        rec[3] += (uint32_t)n;
      }
      loop->in_byte_pos = pos + (size_t)n;
      c->read_used += (uint32_t)n;
      if ((size_t)n < want && (c->io->buffered == NULL || !c->io->buffered(c))) return 0;
      continue;
    }
    if (fresh) loop->in_nrec--;
    if (n == 0) {
      gev_conn_read_eof(loop, c, id);
      return 0;
    }
    if (errno == EINTR) {
      if (fresh) rec = NULL;
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    gev_conn_close(loop, c, errno);
    return -1;
  }
}

/*
 * A connecting connection polled writable, or hung up or failed: the handshake is over, and
 * SO_ERROR says how. 0 opens it (read interest, OPEN with the peer it reached; the fill checked
 * that the record fits in the arena); anything else closes it with that errno, and it never opens.
 */
static void conn_connected(gev_loop *loop, gev_conn *c, uint32_t id) {
  int err = sys_so_error(c->fd);
  if (err != 0) {
    gev_conn_close(loop, c, err);
    return;
  }
  uint32_t addr[GEV_ADDR_U32];
  sys_peer_addr(c->fd, addr);
  c->flags &= (uint16_t)~GEV_C_CONNECTING;
  conn_interest(loop, c);
  gev_loop_emit(loop, GEV_REC_OPEN, id, c->origin, 0, addr);
}

/*
 * One step of a layer's handshake (see gev_io), at most GEV_HANDSHAKE_CAP a wake-up: the rest stay
 * ready and wait for the next. Done, the connection opens (OPEN with its peer) and 0 tells the
 * caller to read it at once; -1 when it is still under way, deferred or closed (failed: a dial's
 * CLOSE, an accepted connection's TLS_REFUSED with its peer, when getpeername still knows it).
 */
static int conn_handshake(gev_loop *loop, gev_conn *c, uint32_t id) {
  if (loop->hs_epoch != loop->epoch) {
    loop->hs_epoch = loop->epoch;
    loop->hs_used = 0;
  }
  if (loop->hs_used >= GEV_HANDSHAKE_CAP) return -1;
  loop->hs_used++;
  int r = c->io->handshake(c);
  if (r < 0 && (c->origin & GEV_ORIGIN_DIAL)) {
    gev_conn_close(loop, c, errno);
    return -1;
  }
  if (r < 0) {
    int err = errno;
    gev_conn_refuse(loop, c, err, c->io->failure != NULL ? c->io->failure(c) : 0);
    return -1;
  }
  if (r > 0) {
    uint32_t addr[GEV_ADDR_U32];
    sys_peer_addr(c->fd, addr);
    c->flags &= (uint16_t)~GEV_C_HANDSHAKE;
    gev_loop_emit(loop, GEV_REC_OPEN, id, c->origin, 0, addr);
  }
  conn_interest(loop, c);
  return r > 0 ? 0 : -1;
}

/* Reads what the loop's ready list names (gev_conn_ready_push): connections whose layer holds
 * input, as far as the arena takes. The ones a read leaves with input push themselves again. */
void gev_conn_run_ready(gev_loop *loop) {
  gev_idlist *r = &loop->ready;
  if (r->overflow) {
    r->overflow = 0;
    r->n = 0;
    for (uint32_t s = 0; s < loop->nconns; s++) {
      gev_conn *c = &loop->conns[s];
      if ((c->flags & GEV_C_OPEN) && c->io->buffered != NULL && c->io->buffered(c)) gev_conn_ready_push(loop, c);
    }
  }
  uint32_t n = r->n, i = 0;
  /* The same room a fill keeps for each event (arena_full in loop.c). */
  for (; i < n && loop->in_nrec + 1u + GEV_ADDR_SLOTS + GEV_REC_RESERVE <= loop->in_rec_cap &&
         loop->in_byte_pos < loop->in_size && loop->pending.n == 0;
       i++)
    gev_conn_on_event(loop, r->ids[i], EPOLLIN);
  memmove(r->ids, r->ids + i, (size_t)(r->n - i) * sizeof *r->ids);
  r->n -= i;
  if (r->n > 0 || r->overflow) gev_loop_notify(loop);
}

/* Puts `c` on the ready list: its layer holds input that c->fd will not announce. When the list
 * cannot grow, the next fill scans the table instead. */
void gev_conn_ready_push(gev_loop *loop, gev_conn *c) {
  gev_idlist *r = &loop->ready;
  if (!r->overflow && r->n == r->cap) {
    uint32_t cap = r->cap ? r->cap * 2u : 64u;
    uint32_t *ids = realloc(r->ids, (size_t)cap * sizeof *ids);
    if (ids == NULL) r->overflow = 1;
    else {
      r->ids = ids;
      r->cap = cap;
    }
  }
  if (!r->overflow) r->ids[r->n++] = conn_id(loop, c);
  if (!loop->filling) gev_loop_notify(loop);
}

void gev_conn_on_event(gev_loop *loop, uint32_t id, uint32_t ev) {
  gev_conn *c = gev_conn_get(loop, id);
  if (c == NULL) return;
  if (c->flags & GEV_C_DGRAM) { /* a dialled UDP socket: dgramconn.c */
    gev_dgram_on_event(loop, c, id, ev);
    return;
  }
  if (c->flags & GEV_C_CONNECTING) {
    conn_connected(loop, c, id);
    return;
  }
  if (c->flags & GEV_C_PROXY_WAIT) {
    gev_proxy_on_event(loop, c);
    return;
  }
  if (c->flags & GEV_C_HANDSHAKE) {
    if (conn_handshake(loop, c, id) != 0) return;
    ev |= EPOLLIN;
  }
  if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
      !(c->flags & (GEV_C_RD_EOF | GEV_C_CLOSING | GEV_C_PAUSED | GEV_C_RELAY_HELD))) {
    gev_conn *dst = c->relay != NULL ? gev_relay_dest(loop, c) : NULL;
    if ((dst != NULL ? gev_relay_read(loop, c, id, dst) : conn_read(loop, c, id)) != 0) return;
    if ((c->flags & GEV_C_IO_HELD) && !(c->events & EPOLLOUT)) conn_interest(loop, c);
  }
  if ((ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && (c->qhead != NULL || (c->flags & GEV_C_IO_HELD))) {
    if (conn_drain(loop, c) != 0) return;
    if (c->qbytes != c->reported && queue_report(loop, c) != 0) return;
  }
  if (ev & EPOLLERR) {
    int err = sys_so_error(c->fd);
    if (err != 0) {
      gev_conn_close(loop, c, err);
      return;
    }
  }
  if (!(ev & EPOLLHUP)) return;
  /* A hang-up stays ready and cannot be masked. Once the FIN has been read there is nothing left:
   * close. A paused connection may still hold unread input (a unix peer that wrote and closed
   * hangs us up at once): take it out of the epoll set until resumed, so the input and the end
   * reach JS after resume(), as they do when a TCP peer sends FIN. */
  if (c->flags & GEV_C_RD_EOF) {
    gev_conn_close(loop, c, 0);
  } else if ((c->flags & (GEV_C_PAUSED | GEV_C_RELAY_HELD)) && !(c->flags & GEV_C_HUP_PARKED)) {
    sys_epoll_ctl(loop->epfd, EPOLL_CTL_DEL, c->fd, 0, 0);
    c->flags |= GEV_C_HUP_PARKED;
  }
}

/* Closes every fd without telling JS (the loop is being torn down) and frees the table. */
void gev_conn_free_all(gev_loop *loop) {
  for (uint32_t s = 0; s < loop->nconns; s++) {
    gev_conn *c = &loop->conns[s];
    if (c->flags & GEV_C_OPEN) sys_close(c->fd);
    queue_free(c);
    if (c->flags & GEV_C_OPEN) gev_proxy_free(loop, c);
    if ((c->flags & GEV_C_OPEN) && c->io->release != NULL) c->io->release(c);
    free(c->relay);
    c->relay = NULL;
  }
  loop->proxy_head = loop->proxy_tail = UINT32_MAX;
  loop->proxy_pending = 0;
  free(loop->conns);
  loop->conns = NULL;
  loop->nconns = 0;
  loop->conns_cap = 0;
  loop->free_head = UINT32_MAX;
  loop->live = 0;
}
