/*
 * SIGPIPE: the core's send path against peers that reset the connection, with SIGPIPE left at its
 * default disposition (which kills the process). Exits 0 only if it survived every case and saw
 * EPIPE or ECONNRESET where it should:
 *   1. direct sends: WRITE commands through gev_flush -> gev_conn_send, until the core closes the
 *      connection; its CLOSE record (in the pending list) must carry EPIPE or ECONNRESET;
 *   2. queued sends: output queued behind a peer that does not read, reading paused, then the peer
 *      resets; the fill's EPOLLOUT/EPOLLERR drain must close it with EPIPE or ECONNRESET;
 *   3. the raw wrapper: sys_sendv 64 times on a reset socket, which must return EPIPE.
 * With --control it does case 3 with plain send() (no MSG_NOSIGNAL), to show that this
 * environment really delivers SIGPIPE: the process is then expected to die of it.
 */
#include "harness.h"

#include <signal.h>
#include <time.h>

typedef struct {
  uint32_t id;
  int closed;
  int err;
  int queued_reports;
} watch;

static void on_record(const uint32_t *r, void *arg) {
  watch *w = arg;
  if (r[1] != w->id) return;
  if (r[0] == GEV_REC_CLOSE) {
    w->closed++;
    w->err = (int)r[2];
  } else if (r[0] == GEV_REC_QUEUED) {
    w->queued_reports++;
  }
}

static void scan_pending(gev_loop *loop, watch *w) {
  h_each_record(loop->pending.slots, loop->pending.n, on_record, w);
  loop->pending.n = 0;
}

static void sleep_ms(int ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

static int reset_errno(int err) { return err == EPIPE || err == ECONNRESET; }

static void direct_sends(void) {
  static char buf[1024];
  gev_loop *loop = h_loop_new();
  int mine, peer;
  watch w = {0};
  h_tcp_pair(&mine, &peer, 0, 0);
  CHECK(gev_conn_add(loop, mine, 0, 1, &w.id) == 0, "gev_conn_add");
  h_reset(peer);
  sleep_ms(10);
  for (int i = 0; i < 1000 && !w.closed; i++) {
    h_command(loop, GEV_OP_WRITE, w.id, buf, sizeof buf, 0);
    gev_flush(loop, NULL, 0);
    scan_pending(loop, &w);
  }
  CHECK(w.closed == 1, "the core closed the connection once (%d)", w.closed);
  CHECK(reset_errno(w.err), "CLOSE carries EPIPE or ECONNRESET, not %s", strerror(w.err));
  CHECK(gev_conn_get(loop, w.id) == NULL, "the id is stale after the close");
  h_command(loop, GEV_OP_WRITE, w.id, buf, sizeof buf, 0);
  gev_flush(loop, NULL, 0);
  CHECK(loop->pending.n == 0, "a write to the closed id does nothing");
  printf("direct send: closed with %s\n", strerror(w.err));
  h_loop_free(loop);
}

static void queued_sends(void) {
  static char buf[65536];
  gev_loop *loop = h_loop_new();
  int mine, peer;
  watch w = {0};
  h_tcp_pair(&mine, &peer, 4096, 4096);
  CHECK(gev_conn_add(loop, mine, 0, 1, &w.id) == 0, "gev_conn_add");
  gev_conn *c = gev_conn_get(loop, w.id);
  for (int i = 0; i < 64 && c->qbytes == 0; i++) {
    h_command(loop, GEV_OP_WRITE, w.id, buf, sizeof buf, 0);
    gev_flush(loop, NULL, 0);
  }
  CHECK(c->qbytes > 0, "output is queued behind a peer that does not read");
  h_command(loop, GEV_OP_PAUSE, w.id, NULL, 0, 1);
  gev_flush(loop, NULL, 0);
  scan_pending(loop, &w);
  CHECK(w.queued_reports == 1, "one QUEUED report for the flushes that queued (%d)", w.queued_reports);
  h_reset(peer);
  for (int i = 0; i < 200 && !w.closed; i++) {
    sleep_ms(1);
    uint32_t n = gev_loop_fill(loop);
    h_each_record(h_arena_records(loop), n, on_record, &w);
    scan_pending(loop, &w);
  }
  CHECK(w.closed == 1, "the drain closed the connection once (%d)", w.closed);
  CHECK(reset_errno(w.err), "CLOSE carries EPIPE or ECONNRESET, not %s", strerror(w.err));
  printf("queued send: closed with %s\n", strerror(w.err));
  h_loop_free(loop);
}

static void raw_sends(int control) {
  char buf[512];
  int mine, peer, epipe = 0, other = 0;
  memset(buf, 'x', sizeof buf);
  h_tcp_pair(&mine, &peer, 0, 0);
  h_reset(peer);
  sleep_ms(10);
  for (int i = 0; i < 64; i++) {
    struct iovec iov[2] = {{buf, 256}, {buf + 256, 256}};
    ssize_t r = control ? send(mine, buf, sizeof buf, MSG_DONTWAIT) : sys_sendv(mine, iov, 1 + (i & 1));
    if (r < 0 && errno == EPIPE) epipe++;
    else if (r < 0 && errno != ECONNRESET) other++;
  }
  close(mine);
  CHECK(epipe > 0 && other == 0, "sys_sendv returned EPIPE (%d times, %d other errors)", epipe, other);
  printf("raw sends: %d x EPIPE, no signal\n", epipe);
}

int main(int argc, char **argv) {
  struct sigaction sa;
  CHECK(sigaction(SIGPIPE, NULL, &sa) == 0, "sigaction");
  CHECK(sa.sa_handler == SIG_DFL, "SIGPIPE keeps its default disposition");
  if (argc > 1 && strcmp(argv[1], "--control") == 0) {
    raw_sends(1);
    return 0;
  }
  direct_sends();
  queued_sends();
  raw_sends(0);
  printf("survived\n");
  return 0;
}
