/*
 * Queue accounting: random writes (joined into sendmsg runs, split by the kernel at arbitrary
 * points) to a peer that reads in random bites. After every flush and every fill it checks that
 *   - qbytes equals the sum of (len - off) over the queued chunks,
 *   - the last QUEUED record for the connection equals qbytes, and none went out when nothing
 *     changed (reported == qbytes),
 *   - EPOLLOUT is in the interest exactly while output is queued,
 * and at the end that the peer received every byte once, in order, and the last report was 0.
 * A second connection's writes are interleaved to split the runs. Exits 0 when all held.
 *
 * Nothing here depends on the machine's TCP tuning or state: both socket buffers are set before
 * the handshake (and measured, since the kernel rounds them), the queue is checked against those
 * measured sizes rather than against what a default kernel takes, and the final drain waits in
 * poll() until every byte has arrived, up to a generous deadline, instead of spinning a fixed count.
 */
#include "harness.h"

#include <poll.h>
#include <time.h>

#define ROUNDS    400
#define BUF_BYTES 16384 /* SO_SNDBUF of the core's end, SO_RCVBUF of the peer's */
#define DRAIN_MS  30000 /* the whole drain; loopback at any tuning needs well under a second */

typedef struct {
  int fd;
  uint32_t id;
  uint64_t written;  /* bytes handed to the core */
  uint64_t received; /* bytes the peer read, each checked against the sequence */
  int64_t last_report;
  int reports;
} stream;

static uint8_t seq_byte(uint64_t i) { return (uint8_t)((i * 7u + (i >> 11)) % 251u); }

static uint32_t rnd(void) {
  static uint64_t s = 0x9e3779b97f4a7c15ull;
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return (uint32_t)s;
}

static stream *g_streams;

static void on_record(const uint32_t *r, void *arg) {
  (void)arg;
  for (int k = 0; k < 2; k++) {
    stream *st = &g_streams[k];
    if (r[0] == GEV_REC_QUEUED && r[1] == st->id) {
      st->last_report = (int64_t)((uint64_t)r[2] | ((uint64_t)r[3] << 32));
      st->reports++;
    }
    CHECK(!(r[0] == GEV_REC_CLOSE && r[1] == st->id), "stream %d closed (errno %u)", k, r[2]);
  }
}

static void check_conn(gev_loop *loop, stream *st, const char *when) {
  gev_conn *c = gev_conn_get(loop, st->id);
  CHECK(c != NULL, "open %s", when);
  size_t sum = 0;
  for (gev_chunk *ch = c->qhead; ch != NULL; ch = ch->next) {
    CHECK(ch->off < ch->len, "no empty chunk stays queued %s", when);
    sum += ch->len - ch->off;
  }
  CHECK(sum == c->qbytes, "qbytes %zu equals the chunks' %zu %s", c->qbytes, sum, when);
  CHECK(c->reported == c->qbytes, "reported %zu equals qbytes %zu %s", c->reported, c->qbytes, when);
  CHECK(st->last_report < 0 || (size_t)st->last_report == c->qbytes, "last QUEUED %lld is qbytes %zu %s",
        (long long)st->last_report, c->qbytes, when);
  CHECK(((c->events & EPOLLOUT) != 0) == (c->qhead != NULL), "EPOLLOUT iff queued %s", when);
}

/* Reads at most `most` bytes the peer has now, checking each; returns how many (0 if none). */
static size_t peer_read(stream *st, int peer, size_t most) {
  static uint8_t buf[1 << 18];
  if (most > sizeof buf) most = sizeof buf;
  if (most == 0) return 0;
  ssize_t n = recv(peer, buf, most, MSG_DONTWAIT);
  CHECK(n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)), "peer recv: %s",
        n == 0 ? "EOF" : strerror(errno));
  if (n <= 0) return 0;
  for (ssize_t i = 0; i < n; i++) {
    CHECK(buf[i] == seq_byte(st->received + (uint64_t)i), "byte %llu arrived in order",
          (unsigned long long)(st->received + (uint64_t)i));
  }
  st->received += (uint64_t)n;
  return (size_t)n;
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int buf_size(int fd, int opt) {
  int v = 0;
  socklen_t len = sizeof v;
  CHECK(getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0, "getsockopt: %s", strerror(errno));
  return v;
}

static void write_some(gev_loop *loop, stream *st, uint32_t len) {
  static uint8_t buf[1 << 17];
  for (uint32_t i = 0; i < len; i++) buf[i] = seq_byte(st->written + i);
  h_command(loop, GEV_OP_WRITE, st->id, buf, len, 0);
  st->written += len;
}

static void collect(gev_loop *loop, uint32_t arena_slots) {
  h_each_record(h_arena_records(loop), arena_slots, on_record, NULL);
  h_each_record(loop->pending.slots, loop->pending.n, on_record, NULL);
  loop->pending.n = 0;
}

int main(void) {
  gev_loop *loop = h_loop_new();
  stream st[2];
  int peers[2];
  memset(st, 0, sizeof st);
  g_streams = st;
  size_t kernel_holds = 0; /* what the kernel may hold of stream 0: its send plus the peer's receive buffer */
  for (int k = 0; k < 2; k++) {
    h_tcp_pair(&st[k].fd, &peers[k], BUF_BYTES, BUF_BYTES);
    CHECK(gev_conn_add(loop, st[k].fd, 0, 1, &st[k].id) == 0, "gev_conn_add");
    st[k].last_report = -1;
  }
  kernel_holds = (size_t)buf_size(st[0].fd, SO_SNDBUF) + (size_t)buf_size(peers[0], SO_RCVBUF);
  uint32_t most_queued = 0;
  for (int round = 0; round < ROUNDS; round++) {
    uint32_t cmds = 1 + rnd() % 90;
    for (uint32_t i = 0; i < cmds; i++) {
      stream *s = &st[(rnd() % 8) == 0 ? 1 : 0];
      uint32_t len = (rnd() % 20 == 0) ? 1 + rnd() % 40000 : 1 + rnd() % 300;
      write_some(loop, s, len);
    }
    if (rnd() % 5 == 0) h_command(loop, GEV_OP_WATCH, st[1].id, NULL, 0, 0);
    gev_flush(loop, NULL, 0);
    collect(loop, 0);
    for (int k = 0; k < 2; k++) check_conn(loop, &st[k], "after a flush");
    gev_conn *c = gev_conn_get(loop, st[0].id);
    if (c->qbytes > most_queued) most_queued = (uint32_t)c->qbytes;
    int cycles = round % 100 < 50 ? 1 : 24;
    for (int cycle = 0; cycle < cycles; cycle++) {
      for (int k = 0; k < 2; k++) peer_read(&st[k], peers[k], cycles == 1 ? 0 : 1 + rnd() % 40000);
      collect(loop, gev_loop_fill(loop));
      for (int k = 0; k < 2; k++) check_conn(loop, &st[k], "after a fill");
    }
  }
  int64_t deadline = now_ms() + DRAIN_MS;
  for (;;) {
    int done = 1;
    for (int k = 0; k < 2; k++) {
      while (peer_read(&st[k], peers[k], 1 << 18) > 0) {}
      done &= st[k].received == st[k].written;
    }
    collect(loop, gev_loop_fill(loop));
    for (int k = 0; k < 2; k++) check_conn(loop, &st[k], "while draining");
    int64_t left = deadline - now_ms();
    if (done || left <= 0) break;
    struct pollfd w[3] = {{peers[0], POLLIN, 0}, {peers[1], POLLIN, 0}, {loop->epfd, POLLIN, 0}};
    CHECK(poll(w, 3, left < 100 ? (int)left : 100) >= 0 || errno == EINTR, "poll: %s", strerror(errno));
  }
  for (int k = 0; k < 2; k++) {
    gev_conn *c = gev_conn_get(loop, st[k].id);
    CHECK(st[k].received == st[k].written, "stream %d: peer got %llu of %llu bytes in %d ms", k,
          (unsigned long long)st[k].received, (unsigned long long)st[k].written, DRAIN_MS);
    CHECK(c->qbytes == 0 && st[k].last_report <= 0, "stream %d drained, last report %lld", k,
          (long long)st[k].last_report);
    close(peers[k]);
  }
  CHECK(most_queued > 8 * kernel_holds, "the queue grew past 8 times the %zu bytes the kernel holds (%u)", kernel_holds,
        most_queued);
  printf("%llu + %llu bytes exact through %d and %d reports; queue peaked at %u bytes (kernel buffers %zu)\n",
         (unsigned long long)st[0].written, (unsigned long long)st[1].written, st[0].reports, st[1].reports,
         most_queued, kernel_holds);
  h_loop_free(loop);
  return 0;
}
