/*
 * Relays (relay.c: the RELAY command, [RELAY, id, to, hw]) through the core alone, on loopback,
 * with plain blocking client sockets (driven with MSG_DONTWAIT so one thread can pump the loop
 * in between). Exits 0 only if every case behaves as relay.c's header says:
 *   1. A -> B: 1 MiB written by client A arrives at client B byte-exact, and no fill after the
 *      RELAY command has a DATA record for A;
 *   2. backpressure: B does not read while A writes 32 MiB; B's queue (qbytes and its QUEUED
 *      records) never exceeds hw + GEV_READ_BUDGET, A is held (GEV_C_RELAY_HELD, no EPOLLIN) and
 *      reads nothing more while held; then B reads everything, in order, and the hold is lifted;
 *   3. stop: RELAY with to = 0, and A's later input arrives in DATA records again;
 *   4. the destination closing stops the relay and A's input arrives as DATA again: a CLOSE
 *      command for B, a reset of client B while A's bytes are on their way, and a CLOSE (flush)
 *      or END for B while A is held behind B's queue (A is released once that queue is written);
 *   5. self-relay (to == id): an echo;
 *   6. RELAYED records: the rx/tx totals of each side, right before that side's CLOSE, matching
 *      gev_conn_relayed while open;
 *   7. a second source relaying into the same destination replaces the first, whose input arrives
 *      as DATA again (a held first source is released);
 *   8. half-close: client A's shutdown(SHUT_WR) gives END for A (B is not ended: JS decides),
 *      after every byte A sent before it has reached B;
 *   9. a held source that closes leaves its destination draining on; a destination closed at once
 *      under a held source releases it (EPOLLIN back, input as DATA);
 *  10. A <-> B both ways at once, as a proxy pipes, with both clients writing and reading.
 * Run it under the sanitizers too (test/c/build.sh with GEVENT_TEST_CFLAGS): closes in the middle of
 * a relay must not touch freed relay state.
 */
#include "harness.h"

#include <poll.h>
#include <time.h>

#define ORIGIN   5u
#define MAX_PEER 32
#define MIB      (1u << 20)

typedef struct {
  int fd;   /* the client socket, blocking; -1 once closed */
  int port; /* its local port, which its OPEN record carries */
  uint32_t id;
  int opened, ended, closed, close_err;
  int relaying; /* a DATA record for the id is a failure */
  int relayed;  /* RELAYED records */
  uint64_t rx, tx;
  int queued_n;
  uint64_t queued, queued_max;
  uint8_t *data; /* bytes of its DATA records */
  size_t data_len, data_cap;
  uint64_t sent, got; /* pattern offsets: written by the client, read by the client */
} peer;

static peer g_peers[MAX_PEER];
static int g_npeers;
static uint32_t g_prev_type, g_prev_id; /* the record before the current one */
static peer *g_bounded;                 /* a destination whose queue must stay under g_bound */
static uint64_t g_bound;

static uint8_t pat(uint64_t i) { return (uint8_t)((i * 131u + (i >> 9) * 7u + 3u) % 253u); }

static void fill_pat(uint8_t *b, uint64_t off, size_t n) {
  for (size_t i = 0; i < n; i++) b[i] = pat(off + i);
}

static peer *by_id(uint32_t id) {
  for (int i = 0; i < g_npeers; i++)
    if (g_peers[i].opened && g_peers[i].id == id) return &g_peers[i];
  return NULL;
}

static void on_record(const uint32_t *r, void *arg) {
  const uint8_t *in8 = arg;
  if (r[0] == GEV_REC_OPEN) {
    int port = (int)r[GEV_SLOT_U32 + 1];
    peer *p = NULL;
    for (int i = 0; i < g_npeers; i++)
      if (!g_peers[i].opened && g_peers[i].port == port) p = &g_peers[i];
    CHECK(p != NULL, "OPEN for a client of this test (port %d)", port);
    CHECK(r[2] == ORIGIN, "OPEN carries the listener's origin");
    p->opened = 1;
    p->id = r[1];
  } else {
    peer *p = by_id(r[1]);
    CHECK(p != NULL, "record %u for a known id (%u)", r[0], r[1]);
    CHECK(!p->closed, "record %u after CLOSE", r[0]);
    switch (r[0]) {
      case GEV_REC_DATA:
        CHECK(!p->relaying, "no DATA record (%u bytes) for relayed id %u", r[3], r[1]);
        if (p->data_len + r[3] > p->data_cap) {
          p->data_cap = (p->data_len + r[3]) * 2;
          p->data = realloc(p->data, p->data_cap);
          CHECK(p->data != NULL, "realloc");
        }
        memcpy(p->data + p->data_len, in8 + r[2], r[3]);
        p->data_len += r[3];
        break;
      case GEV_REC_END: p->ended++; break;
      case GEV_REC_QUEUED:
        p->queued = (uint64_t)r[2] | ((uint64_t)r[3] << 32);
        if (p->queued > p->queued_max) p->queued_max = p->queued;
        p->queued_n++;
        if (p == g_bounded)
          CHECK(p->queued <= g_bound, "QUEUED %llu within %llu", (unsigned long long)p->queued,
                (unsigned long long)g_bound);
        break;
      case GEV_REC_RELAYED: {
        const uint32_t *w = r + GEV_SLOT_U32;
        CHECK(r[2] == 0 && r[3] == 0, "RELAYED words b, c are 0");
        p->relayed++;
        p->rx = (uint64_t)w[0] | ((uint64_t)w[1] << 32);
        p->tx = (uint64_t)w[2] | ((uint64_t)w[3] << 32);
        break;
      }
      case GEV_REC_CLOSE:
        p->closed = 1;
        p->close_err = (int)r[2];
        if (p->relayed) CHECK(g_prev_type == GEV_REC_RELAYED && g_prev_id == r[1], "RELAYED right before CLOSE");
        break;
      default: CHECK(0, "unexpected record %u", r[0]);
    }
  }
  g_prev_type = r[0];
  g_prev_id = r[1];
}

static void check_bound(gev_loop *loop) {
  if (g_bounded == NULL) return;
  gev_conn *c = gev_conn_get(loop, g_bounded->id);
  if (c == NULL) return;
  CHECK(c->qbytes <= g_bound, "destination queue %zu within hw + budget %llu", c->qbytes, (unsigned long long)g_bound);
}

/* Waits for the loop's fd (up to `ms`) and runs one fill, handing its records to on_record. */
static void pump(gev_loop *loop, int ms) {
  struct pollfd p = {gev_loop_fd(loop), POLLIN, 0};
  (void)poll(&p, 1, ms);
  uint32_t n = gev_loop_fill(loop);
  h_each_record(h_arena_records(loop), n, on_record, loop->in8);
  check_bound(loop);
}

/* Pumps until `done` holds, for at most 5 s. */
#define PUMP_UNTIL(loop, done)                                  \
  do {                                                          \
    for (int i_ = 0; i_ < 50 && !(done); i_++) pump(loop, 100); \
    CHECK((done), "timed out waiting for %s", #done);           \
  } while (0)

static void flush(gev_loop *loop) {
  gev_flush(loop, NULL, 0);
  check_bound(loop);
}

static void cmd(gev_loop *loop, uint32_t op, uint32_t id, uint32_t a, uint32_t b) {
  uint32_t n = loop->out32[0];
  CHECK(n < H_OUT_CMDS, "out arena full");
  uint32_t *k = loop->out32 + GEV_HDR_U32 + (size_t)n * GEV_SLOT_U32;
  k[0] = op;
  k[1] = id;
  k[2] = a;
  k[3] = b;
  loop->out32[0] = n + 1;
}

static void relay(gev_loop *loop, peer *src, peer *dst, uint32_t hw) {
  cmd(loop, GEV_OP_RELAY, src->id, dst != NULL ? dst->id : 0, hw);
  flush(loop);
  src->relaying = dst != NULL;
}

/* A client of the listener at `port` (rcvbuf set before the handshake when > 0), opened in the loop. */
static peer *connect_peer(gev_loop *loop, int port, int rcvbuf) {
  CHECK(g_npeers < MAX_PEER, "peers");
  peer *p = &g_peers[g_npeers++];
  memset(p, 0, sizeof *p);
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(p->fd >= 0, "socket");
  if (rcvbuf > 0) sys_set_int(p->fd, SOL_SOCKET, SO_RCVBUF, rcvbuf);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(p->fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s", strerror(errno));
  struct timeval tv = {5, 0};
  setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  CHECK(getsockname(p->fd, (struct sockaddr *)&sa, &len) == 0, "getsockname");
  p->port = ntohs(sa.sin_port);
  PUMP_UNTIL(loop, p->opened);
  return p;
}

static gev_conn *conn_of(gev_loop *loop, peer *p) {
  gev_conn *c = gev_conn_get(loop, p->id);
  CHECK(c != NULL, "id %u open", p->id);
  return c;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes what it can of the pattern (src->sent up to `upto`) without blocking. */
static void write_some(peer *src, uint64_t upto) {
  static uint8_t buf[256 * 1024];
  while (src->sent < upto) {
    size_t n = upto - src->sent < sizeof buf ? (size_t)(upto - src->sent) : sizeof buf;
    fill_pat(buf, src->sent, n);
    ssize_t w = send(src->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    CHECK(w > 0, "client send: %s", strerror(errno));
    src->sent += (uint64_t)w;
  }
}

/* Reads what has arrived at client `dst` without blocking, checking it against the pattern of the
 * stream it comes from (offset dst->got). */
static void read_some(peer *dst) {
  static uint8_t buf[256 * 1024];
  for (;;) {
    ssize_t r = recv(dst->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    CHECK(r > 0, "client recv: %zd %s", r, r < 0 ? strerror(errno) : "EOF");
    for (ssize_t i = 0; i < r; i++)
      CHECK(buf[i] == pat(dst->got + (uint64_t)i), "byte %llu at the destination is the source's",
            (unsigned long long)(dst->got + (uint64_t)i));
    dst->got += (uint64_t)r;
  }
}

/*
 * Client `src` writes pattern bytes up to offset `upto` while the loop runs and client `dst` (when
 * not NULL) reads, until dst has received up to `expect`, for at most 30 s.
 */
static void shuttle(gev_loop *loop, peer *src, uint64_t upto, peer *dst, uint64_t expect) {
  double end = now_s() + 30;
  while (src->sent < upto || (dst != NULL && dst->got < expect)) {
    CHECK(now_s() < end, "shuttle: sent %llu of %llu, received %llu of %llu", (unsigned long long)src->sent,
          (unsigned long long)upto, dst ? (unsigned long long)dst->got : 0ull, (unsigned long long)expect);
    struct pollfd p[3] = {{gev_loop_fd(loop), POLLIN, 0},
                          {src->fd, src->sent < upto ? POLLOUT : 0, 0},
                          {dst != NULL ? dst->fd : -1, POLLIN, 0}};
    (void)poll(p, 3, 50);
    write_some(src, upto);
    pump(loop, 0);
    if (dst != NULL) read_some(dst);
  }
}

/* Nothing arrives at client `p` for a few fills. */
static void expect_silent(gev_loop *loop, peer *p) {
  for (int i = 0; i < 3; i++) pump(loop, 20);
  char b;
  ssize_t r = recv(p->fd, &b, 1, MSG_DONTWAIT);
  CHECK(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "client sees nothing (%zd)", r);
}

/* Client `p` writes `s`; it reaches the loop in DATA records for p's id, ending with it. */
static void expect_data(gev_loop *loop, peer *p, const char *s) {
  size_t n = strlen(s);
  CHECK(send(p->fd, s, n, MSG_NOSIGNAL) == (ssize_t)n, "client send");
  PUMP_UNTIL(loop, p->data_len >= n && memcmp(p->data + p->data_len - n, s, n) == 0);
}

static void close_peer(gev_loop *loop, peer *p) {
  if (!p->closed) {
    cmd(loop, GEV_OP_CLOSE, p->id, 0, 0);
    flush(loop);
    PUMP_UNTIL(loop, p->closed);
  }
  if (p->fd >= 0) close(p->fd);
  p->fd = -1;
  free(p->data);
  p->data = NULL;
}

static void check_relayed_live(gev_loop *loop, peer *p, uint64_t rx, uint64_t tx) {
  uint64_t r = ~0ull, t = ~0ull;
  CHECK(gev_conn_relayed(loop, p->id, &r, &t) == 0, "gev_conn_relayed");
  CHECK(r == rx && t == tx, "id %u relayed rx %llu tx %llu, expected %llu %llu", p->id, (unsigned long long)r,
        (unsigned long long)t, (unsigned long long)rx, (unsigned long long)tx);
}

static void check_relayed_closed(peer *p, uint64_t rx, uint64_t tx) {
  CHECK(p->closed && p->relayed == 1, "one RELAYED before CLOSE (%d)", p->relayed);
  CHECK(p->rx == rx && p->tx == tx, "RELAYED rx %llu tx %llu, expected %llu %llu", (unsigned long long)p->rx,
        (unsigned long long)p->tx, (unsigned long long)rx, (unsigned long long)tx);
}

static void a_to_b(gev_loop *loop, int port) {
  peer *a = connect_peer(loop, port, 0);
  peer *b = connect_peer(loop, port, 0);
  relay(loop, a, b, 1 * MIB);
  CHECK(conn_of(loop, a)->relay->to == b->id && conn_of(loop, b)->relay->from == a->id, "linked");
  shuttle(loop, a, MIB, b, MIB);
  CHECK(a->data_len == 0, "no DATA for A");
  expect_silent(loop, b);
  printf("relay: 1 MiB from A arrived at B byte-exact, no DATA for A\n");

  /* 6: the counts, live and in RELAYED right before each CLOSE. */
  check_relayed_live(loop, a, MIB, 0);
  check_relayed_live(loop, b, 0, MIB);
  cmd(loop, GEV_OP_CLOSE, a->id, 0, 0);
  cmd(loop, GEV_OP_CLOSE, b->id, 0, 0);
  flush(loop);
  PUMP_UNTIL(loop, a->closed && b->closed);
  CHECK(a->close_err == 0 && b->close_err == 0, "closes JS asked for");
  check_relayed_closed(a, MIB, 0);
  check_relayed_closed(b, 0, MIB);
  uint64_t rx, tx;
  CHECK(gev_conn_relayed(loop, a->id, &rx, &tx) == -EBADF, "closed: EBADF");
  close_peer(loop, a);
  close_peer(loop, b);
  printf("counts: RELAYED A rx %u tx 0, B rx 0 tx %u, each right before its CLOSE\n", MIB, MIB);
}

static void backpressure(gev_loop *loop, int port) {
  const uint32_t hw = 256u * 1024u;
  const uint64_t total = 32ull * MIB;
  peer *a = connect_peer(loop, port, 0);
  peer *b = connect_peer(loop, port, 64 * 1024);
  g_bounded = b;
  g_bound = hw + GEV_READ_BUDGET;
  relay(loop, a, b, hw);
  /* B reads nothing: A writes until the core holds it and the kernel's buffers are full. */
  double end = now_s() + 30;
  for (;;) {
    CHECK(now_s() < end, "A held (sent %llu)", (unsigned long long)a->sent);
    write_some(a, total);
    pump(loop, 10);
    gev_conn *ca = conn_of(loop, a);
    if (ca->flags & GEV_C_RELAY_HELD) {
      uint64_t before = a->sent;
      write_some(a, total);
      if (a->sent == before) break; /* the client cannot write any more (or wrote it all) */
    }
  }
  gev_conn *ca = conn_of(loop, a), *cb = conn_of(loop, b);
  CHECK(!(ca->events & EPOLLIN), "a held source has no EPOLLIN (events %#x)", ca->events);
  /* The hold came with a report past the mark; the queue may have drained a little since, while
   * client B's window was still open, but not to the release point. */
  CHECK(b->queued_max > hw && cb->qbytes > hw / 4u && cb->qbytes <= g_bound,
        "B's queue %zu (at most %llu) past hw, within hw + budget", cb->qbytes, (unsigned long long)b->queued_max);
  CHECK(b->queued_n > 0 && b->queued == cb->qbytes, "QUEUED reports B's queue (%llu)", (unsigned long long)b->queued);
  uint64_t rx, tx, rx2, tx2;
  gev_conn_relayed(loop, a->id, &rx, &tx);
  for (int i = 0; i < 3; i++) pump(loop, 20);
  gev_conn_relayed(loop, a->id, &rx2, &tx2);
  CHECK(rx2 == rx && (conn_of(loop, a)->flags & GEV_C_RELAY_HELD), "nothing read while held");
  uint64_t held_queue = b->queued_max;
  /* B reads everything. */
  shuttle(loop, a, total, b, total);
  PUMP_UNTIL(loop, conn_of(loop, b)->qbytes == 0);
  ca = conn_of(loop, a);
  CHECK(!(ca->flags & GEV_C_RELAY_HELD) && (ca->events & EPOLLIN), "the hold is lifted (flags %#x events %#x)",
        ca->flags, ca->events);
  CHECK(b->queued == 0, "the last QUEUED for B is 0");
  CHECK(b->queued_max <= g_bound, "every QUEUED within the bound");
  CHECK(a->data_len == 0, "no DATA for A");
  check_relayed_live(loop, a, total, 0);
  check_relayed_live(loop, b, 0, total);
  g_bounded = NULL;
  close_peer(loop, a);
  close_peer(loop, b);
  check_relayed_closed(a, total, 0);
  check_relayed_closed(b, 0, total);
  printf("backpressure: A held with B's queue at most %llu (hw %u + budget %u), 32 MiB in order, hold lifted\n",
         (unsigned long long)held_queue, hw, GEV_READ_BUDGET);
}

static void stop(gev_loop *loop, int port) {
  peer *a = connect_peer(loop, port, 0);
  peer *b = connect_peer(loop, port, 0);
  relay(loop, a, b, MIB);
  shuttle(loop, a, 100000, b, 100000);
  relay(loop, a, NULL, 0);
  CHECK(conn_of(loop, a)->relay->to == 0 && conn_of(loop, b)->relay->from == 0, "unlinked");
  expect_data(loop, a, "after the stop");
  expect_silent(loop, b);
  CHECK(a->data_len == strlen("after the stop"), "only the later input came as DATA");
  close_peer(loop, a);
  close_peer(loop, b);
  check_relayed_closed(a, 100000, 0);
  check_relayed_closed(b, 0, 100000);
  printf("stop: RELAY to 0, later input arrives as DATA\n");
}

static void dest_closes(gev_loop *loop, int port) {
  /* a. A CLOSE command for B. */
  peer *a = connect_peer(loop, port, 0);
  peer *b = connect_peer(loop, port, 0);
  relay(loop, a, b, MIB);
  shuttle(loop, a, 50000, b, 50000);
  cmd(loop, GEV_OP_CLOSE, b->id, 0, 0);
  flush(loop);
  a->relaying = 0;
  PUMP_UNTIL(loop, b->closed);
  check_relayed_closed(b, 0, 50000);
  CHECK(conn_of(loop, a)->relay->to == 0, "A's relay stopped");
  expect_data(loop, a, "after B closed");
  close_peer(loop, b);

  /* b. Client B resets while A's bytes are on their way: B closes in the middle of the relay. */
  peer *c = connect_peer(loop, port, 0);
  relay(loop, a, c, MIB);
  a->sent = 0;
  shuttle(loop, a, 50000, c, 50000);
  write_some(a, 50000 + 65536);
  h_reset(c->fd);
  c->fd = -1;
  a->relaying = 0;
  PUMP_UNTIL(loop, c->closed);
  CHECK(c->close_err != 0, "B's CLOSE carries the reset (%d)", c->close_err);
  CHECK(conn_of(loop, a)->relay->to == 0 && !(conn_of(loop, a)->flags & GEV_C_RELAY_HELD), "A's relay stopped");
  expect_data(loop, a, "after B reset");
  close_peer(loop, c);

  /* c. B closes with flush, or ends, while A is held behind B's queue: once client B has read that
   * queue (B closed, or shut for writing), A is released and its input arrives as DATA. */
  for (int k = 0; k < 2; k++) {
    peer *d = connect_peer(loop, port, 64 * 1024);
    relay(loop, a, d, 64u * 1024u);
    double end = now_s() + 30;
    while (!(conn_of(loop, a)->flags & GEV_C_RELAY_HELD)) {
      CHECK(now_s() < end, "A held");
      write_some(a, a->sent + 64ull * MIB);
      pump(loop, 10);
    }
    if (k == 0) cmd(loop, GEV_OP_CLOSE, d->id, 1, 0);
    else cmd(loop, GEV_OP_END, d->id, 0, 0);
    flush(loop);
    a->relaying = 0;
    size_t before = a->data_len;
    int eof = 0;
    while (a->data_len == before || (k == 0 && !d->closed)) {
      CHECK(now_s() < end, "%s: A's input arrives as DATA (B closed %d, client EOF %d)", k ? "END" : "CLOSE flush",
            d->closed, eof);
      pump(loop, 10);
      static uint8_t sink[65536];
      ssize_t r = -1;
      while (!eof && (r = recv(d->fd, sink, sizeof sink, MSG_DONTWAIT)) != 0) {
        if (r < 0) {
          CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "client B recv: %s", strerror(errno));
          break;
        }
      }
      if (r == 0) eof = 1;
    }
    gev_conn *ca = conn_of(loop, a);
    CHECK(!(ca->flags & GEV_C_RELAY_HELD) && ca->relay->to == 0, "A released, its relay stopped");
    close_peer(loop, d);
    CHECK(d->relayed == 1 && d->tx > 0 && d->rx == 0, "B's RELAYED: tx %llu", (unsigned long long)d->tx);
    /* A's backlog comes as DATA: let it all arrive, then forget it. */
    for (size_t last = ~(size_t)0; last != a->data_len;) {
      last = a->data_len;
      for (int i = 0; i < 5; i++) pump(loop, 10);
    }
    a->data_len = 0;
  }
  close_peer(loop, a);
  printf("destination closing: the relay stops, A's input arrives as DATA\n");
}

static void self_relay(gev_loop *loop, int port) {
  peer *a = connect_peer(loop, port, 0);
  relay(loop, a, a, 256 * 1024);
  CHECK(conn_of(loop, a)->relay->to == a->id && conn_of(loop, a)->relay->from == a->id, "linked to itself");
  shuttle(loop, a, 4 * MIB, a, 4 * MIB);
  CHECK(a->data_len == 0, "no DATA");
  check_relayed_live(loop, a, 4 * MIB, 4 * MIB);
  close_peer(loop, a);
  check_relayed_closed(a, 4 * MIB, 4 * MIB);
  printf("self-relay: 4 MiB echoed\n");
}

static void replace(gev_loop *loop, int port) {
  peer *a = connect_peer(loop, port, 0);
  peer *b = connect_peer(loop, port, 64 * 1024);
  peer *c = connect_peer(loop, port, 0);
  relay(loop, a, b, 64 * 1024);
  shuttle(loop, a, 10000, b, 10000);
  /* Hold A behind B's queue, then C replaces it. */
  double end = now_s() + 30;
  while (!(conn_of(loop, a)->flags & GEV_C_RELAY_HELD)) {
    CHECK(now_s() < end, "A held");
    write_some(a, 64ull * MIB);
    pump(loop, 10);
  }
  relay(loop, c, b, MIB);
  a->relaying = 0;
  gev_conn *ca = conn_of(loop, a);
  CHECK(ca->relay->to == 0 && !(ca->flags & GEV_C_RELAY_HELD) && (ca->events & EPOLLIN), "A unlinked, released");
  CHECK(conn_of(loop, b)->relay->from == c->id && conn_of(loop, c)->relay->to == b->id, "C -> B");
  PUMP_UNTIL(loop, a->data_len > 0);
  /* B takes A's bytes relayed so far, then C's. */
  uint64_t a_relayed, tx;
  gev_conn_relayed(loop, a->id, &a_relayed, &tx);
  shuttle(loop, c, 0, b, a_relayed);
  b->got = 0;
  shuttle(loop, c, 200000, b, 200000);
  CHECK(c->data_len == 0, "no DATA for C");
  check_relayed_live(loop, b, 0, a_relayed + 200000);
  check_relayed_live(loop, c, 200000, 0);
  close_peer(loop, a);
  close_peer(loop, b);
  close_peer(loop, c);
  printf("replace: a second source takes the destination, the first's input arrives as DATA\n");
}

static void half_close(gev_loop *loop, int port) {
  peer *a = connect_peer(loop, port, 0);
  peer *b = connect_peer(loop, port, 64 * 1024);
  relay(loop, a, b, 128 * 1024);
  /* B reads nothing until A is held and its client can write no more: the FIN waits behind it. */
  double end = now_s() + 30;
  for (;;) {
    CHECK(now_s() < end, "A held");
    write_some(a, 64ull * MIB);
    pump(loop, 10);
    if (conn_of(loop, a)->flags & GEV_C_RELAY_HELD) {
      uint64_t before = a->sent;
      write_some(a, 64ull * MIB);
      if (a->sent == before) break;
    }
  }
  const uint64_t total = a->sent;
  CHECK(shutdown(a->fd, SHUT_WR) == 0, "shutdown");
  for (int i = 0; i < 3; i++) pump(loop, 20);
  CHECK(a->ended == 0, "no END while A is held with input unread");
  shuttle(loop, a, total, b, total);
  PUMP_UNTIL(loop, a->ended == 1);
  CHECK(b->got == total && a->data_len == 0, "every byte before the FIN reached B");
  CHECK(b->ended == 0 && !(conn_of(loop, b)->flags & (GEV_C_ENDING | GEV_C_WR_SHUT)), "B is not ended by the core");
  expect_silent(loop, b);
  check_relayed_live(loop, a, total, 0);
  close_peer(loop, a);
  close_peer(loop, b);
  check_relayed_closed(a, total, 0);
  printf("half-close: END for A after all %llu bytes before the FIN reached B\n", (unsigned long long)total);
}

/* Client `a` writes until its connection is held behind its destination's queue. */
static void hold(gev_loop *loop, peer *a) {
  double end = now_s() + 30;
  while (!(conn_of(loop, a)->flags & GEV_C_RELAY_HELD)) {
    CHECK(now_s() < end, "held");
    write_some(a, a->sent + 64ull * MIB);
    pump(loop, 10);
  }
}

static void held_closes(gev_loop *loop, int port) {
  /* The held source closes: the destination forgets it and drains on. */
  peer *a = connect_peer(loop, port, 0);
  peer *b = connect_peer(loop, port, 64 * 1024);
  relay(loop, a, b, 64u * 1024u);
  hold(loop, a);
  uint64_t rx, tx;
  gev_conn_relayed(loop, a->id, &rx, &tx);
  close_peer(loop, a);
  check_relayed_closed(a, rx, 0);
  CHECK(conn_of(loop, b)->relay->from == 0, "B forgot its source");
  while (b->got < rx) {
    pump(loop, 10);
    read_some(b);
  }
  PUMP_UNTIL(loop, conn_of(loop, b)->qbytes == 0);
  CHECK(b->got == rx, "B got what A relayed (%llu)", (unsigned long long)rx);

  /* The destination closes at once under a held source: released, input as DATA. */
  peer *c = connect_peer(loop, port, 0);
  relay(loop, c, b, 64u * 1024u);
  hold(loop, c);
  cmd(loop, GEV_OP_CLOSE, b->id, 0, 0);
  flush(loop);
  c->relaying = 0;
  gev_conn *cc = conn_of(loop, c);
  CHECK(!(cc->flags & GEV_C_RELAY_HELD) && (cc->events & EPOLLIN) && cc->relay->to == 0, "C released at once");
  PUMP_UNTIL(loop, b->closed && c->data_len > 0);
  close_peer(loop, b);
  close_peer(loop, c);
  printf("held: closing either side of a held relay releases the other\n");
}

/* A <-> B, as a proxy pipes: both ways at once, both clients reading and writing. */
static void both_ways(gev_loop *loop, int port) {
  peer *a = connect_peer(loop, port, 64 * 1024);
  peer *b = connect_peer(loop, port, 64 * 1024);
  relay(loop, a, b, 64u * 1024u);
  relay(loop, b, a, 64u * 1024u);
  const uint64_t total = 8ull * MIB;
  double end = now_s() + 30;
  while (a->got < total || b->got < total) {
    CHECK(now_s() < end, "both ways: A got %llu, B got %llu", (unsigned long long)a->got, (unsigned long long)b->got);
    write_some(a, total);
    write_some(b, total);
    pump(loop, 1);
    read_some(a);
    read_some(b);
  }
  CHECK(a->data_len == 0 && b->data_len == 0, "no DATA either way");
  close_peer(loop, a);
  close_peer(loop, b);
  check_relayed_closed(a, total, total);
  check_relayed_closed(b, total, total);
  printf("both ways: 8 MiB each way at once, RELAYED rx = tx on both\n");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  gev_loop *loop = h_loop_new();
  int slot = gev_listen_tcp(loop, 4, "127.0.0.1", 0, 0, ORIGIN);
  CHECK(slot >= 0, "gev_listen_tcp: %s", strerror(-slot));
  uint32_t addr[GEV_ADDR_U32];
  CHECK(gev_listener_sockname(loop, (uint32_t)slot, addr) == 0, "sockname");
  int port = (int)addr[1];
  a_to_b(loop, port);
  backpressure(loop, port);
  stop(loop, port);
  dest_closes(loop, port);
  self_relay(loop, port);
  replace(loop, port);
  half_close(loop, port);
  held_closes(loop, port);
  both_ways(loop, port);
  CHECK(loop->live == 0, "no connection left live (%u)", loop->live);
  h_loop_free(loop);
  printf("all relay cases passed\n");
  return 0;
}
