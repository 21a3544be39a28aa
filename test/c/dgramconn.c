/*
 * Dialled UDP connections (gev_conn_connect_udp, native/dgramconn.c) through the core alone, with a
 * loop over arenas on the C heap and a plain UDP socket as the far end. Exits 0 only if every case
 * behaves as the contract in gev.h says:
 *   1. a dial opens at once (OPEN in the pending list, GEV_ORIGIN_DIAL, the peer's address, the
 *      GEV_C_DGRAM flag, EPOLLIN alone); three WRITE commands of one flush leave as three
 *      datagrams; three datagrams from the peer, an empty one among them, come in as three DATA
 *      records holding exactly one datagram each; a 60 KiB write is one datagram; END closes it
 *      (CLOSE, errno 0);
 *   2. a datagram to a port nobody listens on: the ICMP port unreachable closes the connection with
 *      ECONNREFUSED;
 *   3. a paused connection reads nothing, and after resume reads what waited;
 *   4. a bad address fails at once with nothing left open; gev_loop_stop_all closes an open one
 *      with one CLOSE, errno 0.
 * At the end every fd the cases opened is closed again.
 */
#include "harness.h"

#include <poll.h>

#define ORIGIN (GEV_ORIGIN_DIAL | 1u)

typedef struct {
  uint32_t id;
  int opened;
  int closed;
  int err;
  uint32_t origin;
  uint32_t addr[GEV_ADDR_U32];
  int ndata;
  uint32_t lens[16];
  char data[16][64];
  const uint8_t *in8;
} watch;

static void on_record(const uint32_t *r, void *arg) {
  watch *w = arg;
  if (r[1] != w->id) return;
  if (r[0] == GEV_REC_OPEN) {
    w->opened++;
    w->origin = r[2];
    memcpy(w->addr, r + GEV_SLOT_U32, sizeof w->addr);
  } else if (r[0] == GEV_REC_CLOSE) {
    w->closed++;
    w->err = (int)r[2];
  } else if (r[0] == GEV_REC_DATA) {
    CHECK(w->ndata < 16, "at most 16 DATA records");
    w->lens[w->ndata] = r[3];
    memcpy(w->data[w->ndata], w->in8 + r[2], r[3] < 64 ? r[3] : 64);
    w->ndata++;
  } else {
    CHECK(r[0] == GEV_REC_QUEUED, "no record but OPEN, DATA, CLOSE (and QUEUED when watched), got %u", r[0]);
  }
}

/* Waits for the loop's fd (up to 100 ms) and runs one fill, handing its records to `w`. */
static void pump(gev_loop *loop, watch *w) {
  struct pollfd p = {gev_loop_fd(loop), POLLIN, 0};
  (void)poll(&p, 1, 100);
  gev_loop_fill(loop);
  w->in8 = loop->in8;
  h_each_record(h_arena_records(loop), loop->in_nrec, on_record, w);
}

/* Pumps until `done` holds, for at most 5 s. */
#define PUMP_UNTIL(loop, w, done)                                 \
  do {                                                            \
    for (int i_ = 0; i_ < 50 && !(done); i_++) pump((loop), (w)); \
    CHECK((done), "timed out waiting for %s", #done);             \
  } while (0)

/* A loopback UDP socket on an ephemeral port; its port into *port. */
static int udp_peer(int *port) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  CHECK(s >= 0, "socket: %s", strerror(errno));
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(s, (struct sockaddr *)&sa, sizeof sa) == 0, "bind: %s", strerror(errno));
  CHECK(getsockname(s, (struct sockaddr *)&sa, &len) == 0, "getsockname");
  *port = ntohs(sa.sin_port);
  return s;
}

/* Sends `len` bytes from the peer socket to the connection's local address. */
static void peer_send(gev_loop *loop, int peer, uint32_t id, const void *data, size_t len) {
  uint32_t local[GEV_ADDR_U32];
  struct sockaddr_storage ss;
  CHECK(gev_conn_sockname(loop, id, local) == 0, "sockname");
  socklen_t sl = gev_addr_decode(local, &ss);
  CHECK(sendto(peer, data, len, 0, (struct sockaddr *)&ss, sl) == (ssize_t)len, "peer sendto: %s", strerror(errno));
}

static int lowest_free_fd(void) {
  int fd = dup(0);
  CHECK(fd >= 0, "dup: %s", strerror(errno));
  close(fd);
  return fd;
}

static void dgram_echo(void) {
  gev_loop *loop = h_loop_new();
  int port;
  int peer = udp_peer(&port);
  watch w = {0};
  int rc = gev_conn_connect_udp(loop, 4, "127.0.0.1", port, "127.0.0.1", 0, 1, &w.id);
  CHECK(rc == 0, "dial: %s", strerror(-rc));
  gev_conn *c = gev_conn_get(loop, w.id);
  CHECK(c != NULL && (c->flags & GEV_C_DGRAM) && !(c->flags & (GEV_C_CONNECTING | GEV_C_TCP)),
        "a UDP dial is open at once, flagged GEV_C_DGRAM");
  CHECK(c->events == EPOLLIN, "it watches EPOLLIN alone");
  CHECK(loop->pending.n == 1u + GEV_ADDR_SLOTS, "its OPEN waits in the pending list");
  PUMP_UNTIL(loop, &w, w.opened == 1);
  CHECK(w.origin == ORIGIN, "OPEN carries the dial origin (%#x)", w.origin);
  CHECK(w.addr[0] == GEV_ADDR_INET4 && w.addr[1] == (uint32_t)port, "OPEN carries the peer's address");

  /* Three writes of one flush: three datagrams, not one joined one. */
  h_command(loop, GEV_OP_WRITE, w.id, "one", 3, 0);
  h_command(loop, GEV_OP_WRITE, w.id, "two!", 4, 0);
  h_command(loop, GEV_OP_WRITE, w.id, "three", 5, 0);
  gev_flush(loop, NULL, 0);
  char buf[65536];
  const char *want[] = {"one", "two!", "three"};
  for (int i = 0; i < 3; i++) {
    ssize_t n = recv(peer, buf, sizeof buf, 0);
    CHECK(n == (ssize_t)strlen(want[i]) && memcmp(buf, want[i], (size_t)n) == 0, "datagram %d is write %d alone", i, i);
  }
  CHECK(c->qhead == NULL && c->events == EPOLLIN, "nothing queued, no EPOLLOUT");

  /* Three datagrams from the peer, an empty one among them: three DATA records. */
  peer_send(loop, peer, w.id, "abc", 3);
  peer_send(loop, peer, w.id, "", 0);
  peer_send(loop, peer, w.id, "de", 2);
  PUMP_UNTIL(loop, &w, w.ndata == 3);
  CHECK(w.lens[0] == 3 && memcmp(w.data[0], "abc", 3) == 0, "DATA 0 is the first datagram");
  CHECK(w.lens[1] == 0, "DATA 1 is the empty datagram");
  CHECK(w.lens[2] == 2 && memcmp(w.data[2], "de", 2) == 0, "DATA 2 is the third datagram");

  /* A 60 KiB write is one datagram. */
  static char big[60 * 1024];
  memset(big, 'x', sizeof big);
  h_command(loop, GEV_OP_WRITE, w.id, big, sizeof big, 0);
  gev_flush(loop, NULL, 0);
  ssize_t n = recv(peer, buf, sizeof buf, 0);
  CHECK(n == (ssize_t)sizeof big, "the 60 KiB write arrives as one datagram (%zd)", n);

  /* END: no half-close for a datagram socket, it closes. */
  h_command(loop, GEV_OP_END, w.id, NULL, 0, 0);
  gev_flush(loop, NULL, 0);
  PUMP_UNTIL(loop, &w, w.closed == 1);
  CHECK(w.err == 0 && loop->live == 0, "END closed it, errno 0");
  close(peer);
  h_loop_free(loop);
  printf("udp dial: opened, datagrams kept apart both ways, closed\n");
}

static void dgram_refused(void) {
  gev_loop *loop = h_loop_new();
  int port;
  close(udp_peer(&port)); /* nobody listens there now */
  watch w = {0};
  int rc = gev_conn_connect_udp(loop, 4, "127.0.0.1", port, "", 0, 1, &w.id);
  CHECK(rc == 0, "dial: %s", strerror(-rc));
  PUMP_UNTIL(loop, &w, w.opened == 1);
  h_command(loop, GEV_OP_WRITE, w.id, "anyone?", 7, 0);
  gev_flush(loop, NULL, 0);
  /* Each pump sends one more: the first ICMP error may be taken by this very send. */
  for (int i = 0; i < 50 && w.closed == 0; i++) {
    pump(loop, &w);
    if (w.closed == 0) {
      h_command(loop, GEV_OP_WRITE, w.id, "anyone?", 7, 0);
      gev_flush(loop, NULL, 0);
      pump(loop, &w);
    }
  }
  CHECK(w.closed == 1 && w.err == ECONNREFUSED, "closed once with ECONNREFUSED, not %s", strerror(w.err));
  CHECK(loop->live == 0, "nothing live");
  h_loop_free(loop);
  printf("udp dial to a closed port: ECONNREFUSED\n");
}

static void dgram_pause(void) {
  gev_loop *loop = h_loop_new();
  int port;
  int peer = udp_peer(&port);
  watch w = {0};
  int rc = gev_conn_connect_udp(loop, 4, "127.0.0.1", port, "", 0, 1, &w.id);
  CHECK(rc == 0, "dial: %s", strerror(-rc));
  PUMP_UNTIL(loop, &w, w.opened == 1);
  h_command(loop, GEV_OP_PAUSE, w.id, NULL, 0, 1);
  gev_flush(loop, NULL, 0);
  CHECK(gev_conn_get(loop, w.id)->events == 0, "paused: no interest");
  peer_send(loop, peer, w.id, "held", 4);
  for (int i = 0; i < 3; i++) pump(loop, &w);
  CHECK(w.ndata == 0, "nothing read while paused");
  h_command(loop, GEV_OP_PAUSE, w.id, NULL, 0, 0);
  gev_flush(loop, NULL, 0);
  PUMP_UNTIL(loop, &w, w.ndata == 1);
  CHECK(w.lens[0] == 4 && memcmp(w.data[0], "held", 4) == 0, "the waiting datagram after resume");
  close(peer);
  h_loop_free(loop);
  printf("paused udp dial: read after resume\n");
}

static void dgram_errors_and_stop(void) {
  gev_loop *loop = h_loop_new();
  int before = lowest_free_fd();
  uint32_t id = 0;
  int rc = gev_conn_connect_udp(loop, 4, "not-an-address", 53, "", 0, 0, &id);
  CHECK(rc == -EINVAL, "a host that does not parse is -EINVAL, not %s", strerror(-rc));
  rc = gev_conn_connect_udp(loop, 4, "127.0.0.1", 53, "::1", 0, 0, &id);
  CHECK(rc == -EINVAL, "a source of the other family is -EINVAL, not %s", strerror(-rc));
  rc = gev_conn_connect_udp(loop, 4, "127.0.0.1", 53, "192.0.2.1", 0, 0, &id);
  CHECK(rc == -EADDRNOTAVAIL, "a source address not on this host is -EADDRNOTAVAIL, not %s", strerror(-rc));
  CHECK(loop->live == 0 && loop->nconns == 0 && loop->pending.n == 0, "no slot taken, no record");
  CHECK(lowest_free_fd() == before, "nothing left open");

  int port;
  int peer = udp_peer(&port);
  watch w = {0};
  rc = gev_conn_connect_udp(loop, 4, "127.0.0.1", port, "", 0, 1, &w.id);
  CHECK(rc == 0, "dial: %s", strerror(-rc));
  PUMP_UNTIL(loop, &w, w.opened == 1);
  while (gev_loop_stop_all(loop) > 0) {
    w.in8 = loop->in8;
    h_each_record(h_arena_records(loop), loop->in_nrec, on_record, &w);
  }
  CHECK(w.closed == 1 && w.err == 0, "stop_all closes it once, errno 0");
  CHECK(loop->live == 0, "nothing live after stop_all");
  close(peer);
  CHECK(lowest_free_fd() == before, "its socket was closed");
  h_loop_free(loop);
  printf("udp dial errors and stop: as the contract says\n");
}

int main(void) {
  int before = lowest_free_fd();
  dgram_echo();
  dgram_refused();
  dgram_pause();
  dgram_errors_and_stop();
  CHECK(lowest_free_fd() == before, "every fd closed");
  printf("all udp dial cases passed\n");
  return 0;
}
