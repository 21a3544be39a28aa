/*
 * Dials (gev_conn_connect*, see gev.h) through the core alone, with a loop over arenas on the C heap
 * and plain sockets as the far end. Exits 0 only if every case behaves as the contract says:
 *   1. a TCP dial to a loopback listener, bound to a source host first: OPEN with GEV_ORIGIN_DIAL
 *      and the listener's address, commands sent while connecting dropped, bytes echoed both ways
 *      through the core, then a close requested by JS (CLOSE, errno 0);
 *   2. a TCP dial to a port nobody listens on: ECONNREFUSED, at once or as a CLOSE, and no OPEN;
 *   3. a unix dial to a path that does not exist: -ENOENT at once, no slot taken, no fd left open;
 *   4. a unix dial to a live listener: connected at once, its OPEN waits in the pending list;
 *   5. a CLOSE command on a connecting id: cancelled, one CLOSE with errno 0, no OPEN;
 *   6. gev_loop_stop_all with a dial still connecting: one CLOSE with errno 0.
 * At the end every fd the cases opened is closed again.
 */
#include "harness.h"

#include <poll.h>
#include <sys/un.h>

#define ORIGIN (GEV_ORIGIN_DIAL | 7u)

typedef struct {
  uint32_t id;
  int opened;
  int closed;
  int err;
  uint32_t origin;
  uint32_t addr[GEV_ADDR_U32];
  char data[256];
  size_t data_len;
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
  } else if (r[0] == GEV_REC_DATA && w->in8 != NULL) {
    size_t n = r[3];
    CHECK(w->data_len + n <= sizeof w->data, "DATA fits the test's buffer");
    memcpy(w->data + w->data_len, w->in8 + r[2], n);
    w->data_len += n;
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

/* A loopback TCP listener on an ephemeral port; its port into *port. */
static int tcp_listener(int *port) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(l >= 0, "socket: %s", strerror(errno));
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(l, (struct sockaddr *)&sa, sizeof sa) == 0, "bind: %s", strerror(errno));
  CHECK(listen(l, 16) == 0, "listen: %s", strerror(errno));
  CHECK(getsockname(l, (struct sockaddr *)&sa, &len) == 0, "getsockname");
  *port = ntohs(sa.sin_port);
  return l;
}

/* The lowest free fd number: equal before and after a case when it left nothing open. */
static int lowest_free_fd(void) {
  int fd = dup(0);
  CHECK(fd >= 0, "dup: %s", strerror(errno));
  close(fd);
  return fd;
}

static void dial_echo(void) {
  gev_loop *loop = h_loop_new();
  int port;
  int l = tcp_listener(&port);
  watch w = {0};
  int rc = gev_conn_connect_inet(loop, 4, "127.0.0.1", port, "127.0.0.1", 0, 7, &w.id);
  CHECK(rc == 0, "dial: %s", strerror(-rc));
  gev_conn *c = gev_conn_get(loop, w.id);
  CHECK(c != NULL && (c->flags & GEV_C_CONNECTING), "a TCP dial is connecting until a fill sees it writable");
  CHECK(c->events == EPOLLOUT, "a connecting dial watches EPOLLOUT alone");
  /* Commands before OPEN are dropped (JS sends none; the core must not misbehave if it does). */
  h_command(loop, GEV_OP_WRITE, w.id, "early", 5, 0);
  h_command(loop, GEV_OP_END, w.id, NULL, 0, 0);
  h_command(loop, GEV_OP_PAUSE, w.id, NULL, 0, 1);
  h_command(loop, GEV_OP_WATCH, w.id, NULL, 0, 0);
  gev_flush(loop, NULL, 0);
  CHECK(loop->pending.n == 0, "no record for commands on a connecting id");
  CHECK(c->qhead == NULL && (c->flags & GEV_C_CONNECTING), "still connecting, nothing queued");

  int peer = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  CHECK(peer >= 0, "accept: %s", strerror(errno));
  PUMP_UNTIL(loop, &w, w.opened == 1);
  CHECK(w.closed == 0, "no CLOSE");
  CHECK(w.origin == ORIGIN, "OPEN carries the dial origin (%#x)", w.origin);
  CHECK(w.addr[0] == GEV_ADDR_INET4 && w.addr[1] == (uint32_t)port, "OPEN carries the address dialled");
  CHECK(memcmp(&w.addr[4], "\x7f\x00\x00\x01", 4) == 0, "OPEN's address is 127.0.0.1");
  CHECK(!(c->flags & GEV_C_CONNECTING) && c->events == EPOLLIN, "open: EPOLLIN interest");
  uint32_t local[GEV_ADDR_U32];
  CHECK(gev_conn_sockname(loop, w.id, local) == 0, "sockname");
  CHECK(local[0] == GEV_ADDR_INET4 && local[1] != 0 && memcmp(&local[4], "\x7f\x00\x00\x01", 4) == 0,
        "bound to the source host, with a port picked at connect");
  int nodelay = 0;
  socklen_t nl = sizeof nodelay;
  CHECK(getsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &nl) == 0 && nodelay, "TCP_NODELAY as configured");

  h_command(loop, GEV_OP_WRITE, w.id, "hello", 5, 0);
  gev_flush(loop, NULL, 0);
  char buf[16];
  ssize_t n = recv(peer, buf, sizeof buf, 0);
  CHECK(n == 5 && memcmp(buf, "hello", 5) == 0, "the peer reads the write (and not the dropped one)");
  CHECK(send(peer, "world!", 6, 0) == 6, "peer send");
  PUMP_UNTIL(loop, &w, w.data_len == 6);
  CHECK(memcmp(w.data, "world!", 6) == 0, "DATA carries the peer's bytes");

  h_command(loop, GEV_OP_CLOSE, w.id, NULL, 0, 1);
  gev_flush(loop, NULL, 0);
  PUMP_UNTIL(loop, &w, w.closed == 1);
  CHECK(w.err == 0 && w.opened == 1, "closed once, cleanly");
  CHECK(recv(peer, buf, sizeof buf, 0) == 0, "the peer sees the end");
  close(peer);
  close(l);
  h_loop_free(loop);
  printf("tcp dial: opened, echoed, closed\n");
}

static void dial_refused(void) {
  gev_loop *loop = h_loop_new();
  int port;
  int l = tcp_listener(&port);
  close(l);
  watch w = {0};
  int rc = gev_conn_connect_inet(loop, 4, "127.0.0.1", port, "", 0, 0, &w.id);
  if (rc == 0) {
    PUMP_UNTIL(loop, &w, w.closed == 1);
    CHECK(w.err == ECONNREFUSED, "CLOSE carries ECONNREFUSED, not %s", strerror(w.err));
    CHECK(w.opened == 0, "no OPEN for a refused dial");
    printf("refused dial: CLOSE with %s\n", strerror(w.err));
  } else {
    CHECK(rc == -ECONNREFUSED, "refused at once: %s", strerror(-rc));
    CHECK(loop->live == 0, "no slot taken");
    printf("refused dial: at once, %s\n", strerror(-rc));
  }
  CHECK(loop->live == 0, "nothing live");
  h_loop_free(loop);
}

static void dial_unix_missing(void) {
  gev_loop *loop = h_loop_new();
  int before = lowest_free_fd();
  uint32_t id = 0;
  int rc = gev_conn_connect_unix(loop, "/nonexistent/gevent-dial.sock", 0, &id);
  CHECK(rc == -ENOENT, "a missing unix path is -ENOENT at once, not %s", strerror(-rc));
  CHECK(loop->live == 0 && loop->nconns == 0 && loop->pending.n == 0, "no slot taken, no record");
  CHECK(lowest_free_fd() == before, "the socket was closed");
  rc = gev_conn_connect_inet(loop, 4, "not-an-address", 80, "", 0, 0, &id);
  CHECK(rc == -EINVAL, "a host that does not parse is -EINVAL, not %s", strerror(-rc));
  rc = gev_conn_connect_inet(loop, 4, "127.0.0.1", 80, "::1", 0, 0, &id);
  CHECK(rc == -EINVAL, "a source of the other family is -EINVAL, not %s", strerror(-rc));
  CHECK(lowest_free_fd() == before, "nothing left open");
  h_loop_free(loop);
  printf("unix dial to a missing path: ENOENT at once\n");
}

static void dial_unix_live(void) {
  gev_loop *loop = h_loop_new();
  char path[64];
  snprintf(path, sizeof path, "/tmp/gevent-dial-%d.sock", (int)getpid());
  unlink(path);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  strcpy(sa.sun_path, path);
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(l >= 0 && bind(l, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(l, 4) == 0, "unix listener: %s",
        strerror(errno));
  watch w = {0};
  int rc = gev_conn_connect_unix(loop, path, 0, &w.id);
  CHECK(rc == 0, "unix dial: %s", strerror(-rc));
  gev_conn *c = gev_conn_get(loop, w.id);
  CHECK(c != NULL && !(c->flags & GEV_C_CONNECTING), "a unix dial connects at once");
  CHECK(loop->pending.n == 1u + GEV_ADDR_SLOTS, "its OPEN waits in the pending list");
  PUMP_UNTIL(loop, &w, w.opened == 1);
  CHECK(w.origin == GEV_ORIGIN_DIAL && w.addr[0] == GEV_ADDR_UNIX, "OPEN: dial origin, a unix peer");
  int peer = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  CHECK(peer >= 0, "accept: %s", strerror(errno));
  h_command(loop, GEV_OP_WRITE, w.id, "ping", 4, 0);
  gev_flush(loop, NULL, 0);
  char buf[8];
  CHECK(recv(peer, buf, sizeof buf, 0) == 4 && memcmp(buf, "ping", 4) == 0, "the peer reads the write");
  CHECK(send(peer, "pong", 4, 0) == 4, "peer send");
  PUMP_UNTIL(loop, &w, w.data_len == 4);
  CHECK(memcmp(w.data, "pong", 4) == 0, "DATA carries the peer's bytes");
  close(peer);
  close(l);
  unlink(path);
  h_loop_free(loop);
  printf("unix dial: connected at once\n");
}

static void dial_cancel(void) {
  gev_loop *loop = h_loop_new();
  int port;
  int l = tcp_listener(&port);
  watch w = {0};
  int rc = gev_conn_connect_inet(loop, 4, "127.0.0.1", port, "", 0, 0, &w.id);
  CHECK(rc == 0, "dial: %s", strerror(-rc));
  gev_conn *c = gev_conn_get(loop, w.id);
  CHECK(c != NULL && (c->flags & GEV_C_CONNECTING), "connecting");
  h_command(loop, GEV_OP_CLOSE, w.id, NULL, 0, 1);
  gev_flush(loop, NULL, 0);
  CHECK(gev_conn_get(loop, w.id) == NULL && loop->live == 0, "cancelled at once");
  PUMP_UNTIL(loop, &w, w.closed == 1);
  for (int i = 0; i < 3; i++) pump(loop, &w);
  CHECK(w.closed == 1 && w.err == 0 && w.opened == 0, "one CLOSE with errno 0 and no OPEN (%d, %d, %d)", w.closed,
        w.err, w.opened);

  watch s = {0};
  rc = gev_conn_connect_inet(loop, 4, "127.0.0.1", port, "", 0, 0, &s.id);
  CHECK(rc == 0, "dial: %s", strerror(-rc));
  CHECK(gev_conn_get(loop, s.id)->flags & GEV_C_CONNECTING, "connecting");
  gev_loop_stop_all(loop);
  s.in8 = loop->in8;
  h_each_record(h_arena_records(loop), loop->in_nrec, on_record, &s);
  CHECK(s.closed == 1 && s.err == 0 && s.opened == 0, "stop_all closes a connecting dial once, errno 0");
  CHECK(loop->live == 0, "nothing live after stop_all");
  close(l);
  h_loop_free(loop);
  printf("cancelled dials: CLOSE with errno 0\n");
}

int main(void) {
  int before = lowest_free_fd();
  dial_echo();
  dial_refused();
  dial_unix_missing();
  dial_unix_live();
  dial_cancel();
  CHECK(lowest_free_fd() == before, "every fd closed");
  printf("all dial cases passed\n");
  return 0;
}
