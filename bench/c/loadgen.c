/*
 * The load generator: one thread, every byte checked.
 *
 *   loadgen MODE --port P [--host 127.0.0.1] [--conns N] [--duration S] [--warmup S]
 *                [--window BYTES] [--udp-timeout-ms MS] [--pause-when-connected]
 *                [--engine auto|uring|epoll]
 *
 * Modes:
 *   tcp-pingpong   each connection has exactly one 6-byte message in flight
 *   tcp-pipeline   each connection keeps up to --window bytes (default 64 KiB) in flight
 *   udp-pingpong   each of --conns UDP sockets has one 6-byte datagram in flight; a datagram
 *                  not answered within --udp-timeout-ms is sent again and counted as lost
 *   tcp-held       opens --conns connections (default 9000), echoes one message on each, then
 *                  runs tcp-pingpong on all of them
 *
 * Byte i of connection c's stream is (i*31 + c) & 0xff, so a reordered, dropped, duplicated or
 * foreign byte is a mismatch. Any mismatch, early close or socket error is counted in "errors" and
 * makes the exit status 1.
 *
 * With --pause-when-connected, once every connection is open (and, for tcp-held, has echoed one
 * message), it prints {"event":"connected",...} and waits for a line on stdin before loading.
 * That is when the orchestrator reads the server's RSS.
 *
 * Connections are opened with epoll. The load itself runs on io_uring where the kernel has it
 * (--engine auto, the default): every send and receive of one wake-up is submitted in a single
 * io_uring_enter, which keeps its own cost per message close to the kernel's socket work, so
 * that it is not the limit. On Linux 6.0 and later the ping-pong modes go further: one multishot
 * receive per socket draws from a shared ring of provided buffers, and a send posts a completion
 * only when it fails (MSG_WAITALL, IOSQE_CQE_SKIP_SUCCESS). --engine epoll keeps one read and one
 * write per ready socket.
 *
 * The result is one JSON line on stdout, counted from the end of the warm-up to the end of the
 * run: {mode, conns, seconds, msgs, msgsPerSec, bytes, mbPerSec, errors, losses, stale,
 * loadgenCpuPct, loadgenSaturated, engine, p50Us, p99Us, p999Us, maxUs}. loadgenCpuPct is this
 * process's user+system time (getrusage) over wall time; loadgenSaturated is true from 90% on, when
 * the figures may be the load generator's limit rather than the server's.
 *
 * Latency (ping-pong modes; null for tcp-pipeline): the round-trip time of every message whose
 * echo completes in the counted interval, from the wake-up that sent it to the wake-up that saw
 * the last byte of its echo (CLOCK_MONOTONIC, read once per wake-up, so that measuring costs no
 * system call per message). For UDP a datagram sent again after a loss is timed from its last
 * send. The times go into a fixed log-linear histogram (exact to 1 µs up to 1024 µs, then 512
 * buckets per power of two, under 0.2% apart); p50Us, p99Us, p999Us are the upper bounds of the
 * buckets holding those percentiles, maxUs the largest time measured.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "uring.h"

#define kMsgBytes          6
#define kPingRecvBytes     64
#define kUringSqEntries    4096u
#define kUringMaxCqEntries 65536u
#define kUringMaxBufs      32768u
#define kBufGroup          0
#define kReadBytes         (64 * 1024)
#define kMaxEvents         4096
#define kConnectInFlight   256
#define kConnectTimeoutNs  (60ull * 1000000000ull)
#define kSaturatedPct      90.0
#define kStaleLookback     16
#define kHistLinear        1024u /* 1 µs buckets below this many µs */
#define kHistSubBits       9u    /* then 2^9 buckets per power of two */
#define kHistBuckets       (kHistLinear + 48u * (1u << kHistSubBits))

enum mode { kTcpPingpong, kTcpPipeline, kUdpPingpong, kTcpHeld };
enum engine { kEngineAuto, kEngineUring, kEngineEpoll };
enum op { kOpRecv = 0, kOpSend = 1 };

struct conn {
  int fd;
  bool want_out;
  bool send_busy;        /* io_uring: a send is in flight */
  uint32_t send_len;     /* io_uring: its length */
  unsigned char *rbuf;   /* io_uring: this connection's receive buffer */
  uint32_t phase;        /* offset into g_pattern at which this connection's stream starts */
  uint64_t sent;         /* stream bytes written, or submitted with io_uring (TCP); UDP: message index */
  uint64_t recvd;        /* stream bytes received and verified (TCP) */
  uint64_t last_send_ns; /* UDP: when the datagram in flight was sent; TCP: the message in flight */
};

static struct {
  enum mode mode;
  const char *mode_name;
  const char *host;
  int port;
  int conns;
  double duration_s;
  double warmup_s;
  size_t window;
  uint64_t udp_timeout_ns;
  bool pause;
  enum engine engine;
} g_opt = {.host = "127.0.0.1",
           .conns = -1,
           .duration_s = 5,
           .warmup_s = 1,
           .window = 64 * 1024,
           .udp_timeout_ns = 200ull * 1000000ull};

static struct conn *g_conns;
static int g_ep;
static unsigned char *g_pattern; /* g_pattern[k] = (k*31) & 0xff; long enough for any window */
static uint64_t g_total_bytes;   /* verified echoed bytes, all connections */
static uint64_t g_total_msgs;    /* completed messages (UDP) */
static uint64_t g_errors, g_losses, g_stale;
static bool g_refill_on_echo = true; /* false while tcp-held echoes its single first message */
static bool g_uring_on;              /* the load runs on g_ring, not on g_ep */
static struct uring g_ring;
static size_t g_rbuf_bytes;
static uint64_t g_now;       /* io_uring: the time of the current wake-up */
static bool g_multishot;     /* io_uring: receives are multishot, into g_bufs */
static bool g_skip_send_cqe; /* io_uring: a send posts a CQE only when it fails */
static struct uring_bufs g_bufs;
static bool g_measuring;              /* inside the counted interval: round trips are recorded */
static uint64_t g_hist[kHistBuckets]; /* round-trip times, log-linear µs buckets */
static uint64_t g_hist_count, g_hist_max_ns;

static unsigned hist_index(uint64_t us) {
  if (us < kHistLinear) return (unsigned)us;
  unsigned msb = 63u - (unsigned)__builtin_clzll(us); /* >= 10 */
  unsigned shift = msb - kHistSubBits;                /* us >> shift is in [512, 1023] */
  unsigned i = kHistLinear + (msb - 10u) * (1u << kHistSubBits) + (unsigned)((us >> shift) - (1u << kHistSubBits));
  return i < kHistBuckets ? i : kHistBuckets - 1;
}

/* The largest µs value of bucket i. */
static uint64_t hist_upper(unsigned i) {
  if (i < kHistLinear) return i;
  unsigned k = i - kHistLinear;
  unsigned msb = 10u + k / (1u << kHistSubBits);
  uint64_t lo = ((uint64_t)(1u << kHistSubBits) + k % (1u << kHistSubBits)) << (msb - kHistSubBits);
  return lo + (1ull << (msb - kHistSubBits)) - 1;
}

static void hist_record(uint64_t ns) {
  g_hist[hist_index(ns / 1000)]++;
  g_hist_count++;
  if (ns > g_hist_max_ns) g_hist_max_ns = ns;
}

/* The upper bound of the bucket holding the q-quantile, in µs. */
static uint64_t hist_quantile(double q) {
  uint64_t rank = (uint64_t)(q * (double)g_hist_count + 0.999999);
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < kHistBuckets; i++) {
    seen += g_hist[i];
    if (seen >= rank) return hist_upper(i);
  }
  return hist_upper(kHistBuckets - 1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr, "usage: loadgen tcp-pingpong|tcp-pipeline|udp-pingpong|tcp-held --port P [--host H]\n"
                  "       [--conns N] [--duration S] [--warmup S] [--window BYTES] [--udp-timeout-ms MS]\n"
                  "       [--pause-when-connected] [--engine auto|uring|epoll]\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  if (argc < 2) usage();
  g_opt.mode_name = argv[1];
  if (strcmp(argv[1], "tcp-pingpong") == 0) g_opt.mode = kTcpPingpong;
  else if (strcmp(argv[1], "tcp-pipeline") == 0) g_opt.mode = kTcpPipeline;
  else if (strcmp(argv[1], "udp-pingpong") == 0) g_opt.mode = kUdpPingpong;
  else if (strcmp(argv[1], "tcp-held") == 0) g_opt.mode = kTcpHeld;
  else usage();
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--pause-when-connected") == 0) {
      g_opt.pause = true;
      continue;
    }
    if (!v) usage();
    i++;
    if (strcmp(a, "--port") == 0) g_opt.port = atoi(v);
    else if (strcmp(a, "--host") == 0) g_opt.host = v;
    else if (strcmp(a, "--conns") == 0) g_opt.conns = atoi(v);
    else if (strcmp(a, "--duration") == 0) g_opt.duration_s = atof(v);
    else if (strcmp(a, "--warmup") == 0) g_opt.warmup_s = atof(v);
    else if (strcmp(a, "--window") == 0) g_opt.window = (size_t)atol(v);
    else if (strcmp(a, "--udp-timeout-ms") == 0) g_opt.udp_timeout_ns = (uint64_t)atol(v) * 1000000ull;
    else if (strcmp(a, "--engine") == 0 && strcmp(v, "auto") == 0) g_opt.engine = kEngineAuto;
    else if (strcmp(a, "--engine") == 0 && strcmp(v, "uring") == 0) g_opt.engine = kEngineUring;
    else if (strcmp(a, "--engine") == 0 && strcmp(v, "epoll") == 0) g_opt.engine = kEngineEpoll;
    else usage();
  }
  if (g_opt.conns < 0) g_opt.conns = g_opt.mode == kTcpHeld ? 9000 : 100;
  if (g_opt.port <= 0 || g_opt.port > 65535 || g_opt.conns <= 0 || g_opt.duration_s <= 0 || g_opt.warmup_s < 0 ||
      g_opt.window < kMsgBytes || g_opt.window > kReadBytes)
    usage();
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  if ((uint64_t)g_opt.conns + 16 > rl.rlim_cur) {
    fprintf(stderr, "loadgen: %d connections need more than the fd limit %llu\n", g_opt.conns,
            (unsigned long long)rl.rlim_cur);
    exit(1);
  }
}

static void watch(struct conn *c, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(g_ep, op, c->fd, &ev) != 0) die("epoll_ctl");
}

static void fail_conn(struct conn *c, const char *why) {
  g_errors++;
  if (g_errors <= 5) fprintf(stderr, "loadgen: connection %ld: %s\n", (long)(c - g_conns), why);
  if (c->fd >= 0) {
    if (!g_uring_on) epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
  }
}

static const unsigned char *stream_at(const struct conn *c, uint64_t offset) {
  return g_pattern + ((c->phase + offset) & 0xff);
}

static struct io_uring_sqe *next_sqe(void) {
  struct io_uring_sqe *sqe;
  while ((sqe = uring_sqe(&g_ring)) == NULL) uring_enter(&g_ring, 0, 0);
  return sqe;
}

static void uring_recv(struct conn *c) {
  struct io_uring_sqe *sqe = next_sqe();
  sqe->opcode = IORING_OP_RECV;
  sqe->fd = c->fd;
  if (g_multishot) {
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufGroup;
  } else {
    sqe->addr = (uint64_t)(uintptr_t)c->rbuf;
    sqe->len = (uint32_t)g_rbuf_bytes;
  }
  sqe->user_data = (uint64_t)(c - g_conns) << 1 | kOpRecv;
}

static void uring_send(struct conn *c, const unsigned char *bytes, size_t len) {
  struct io_uring_sqe *sqe = next_sqe();
  sqe->opcode = IORING_OP_SEND;
  sqe->fd = c->fd;
  sqe->addr = (uint64_t)(uintptr_t)bytes;
  sqe->len = (uint32_t)len;
  sqe->msg_flags = MSG_NOSIGNAL;
  if (g_skip_send_cqe) {
    sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
    sqe->msg_flags |= MSG_WAITALL; /* all or a failure: no silent short send */
  }
  sqe->user_data = (uint64_t)(c - g_conns) << 1 | kOpSend;
}

/* Writes what the mode allows: one whole message when none is in flight (pingpong), or up to
 * the window (pipeline). Waits for EPOLLOUT only when the kernel refused part of it. */
static void tcp_refill(struct conn *c) {
  uint64_t outstanding = c->sent - c->recvd;
  size_t want;
  if (g_opt.mode == kTcpPipeline) {
    want = g_opt.window - (size_t)outstanding;
  } else if (c->sent % kMsgBytes != 0) {
    want = kMsgBytes - (size_t)(c->sent % kMsgBytes); /* finish a message the kernel split */
  } else {
    want = outstanding == 0 ? kMsgBytes : 0;
    if (want > 0) c->last_send_ns = g_now; /* a new message: its round trip starts */
  }
  if (g_uring_on) {
    if (want == 0 || c->send_busy) return;
    uring_send(c, stream_at(c, c->sent), want);
    c->sent += want;
    c->send_len = (uint32_t)want;
    c->send_busy = !g_skip_send_cqe;
    return;
  }
  bool blocked = false;
  if (want > 0) {
    ssize_t w = send(c->fd, stream_at(c, c->sent), want, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno != EAGAIN) {
        fail_conn(c, strerror(errno));
        return;
      }
      w = 0;
    }
    c->sent += (uint64_t)w;
    blocked = (size_t)w < want;
  }
  if (blocked != c->want_out) {
    c->want_out = blocked;
    watch(c, EPOLL_CTL_MOD, blocked ? EPOLLIN | EPOLLOUT : EPOLLIN);
  }
}

/* Checks n echoed bytes against the stream, then sends what the mode allows next. */
static void tcp_on_echo(struct conn *c, const unsigned char *buf, ssize_t n) {
  if ((uint64_t)n > c->sent - c->recvd) {
    fail_conn(c, "the server sent more bytes than it was sent");
    return;
  }
  if (memcmp(buf, stream_at(c, c->recvd), (size_t)n) != 0) {
    fail_conn(c, "echoed bytes differ from the bytes sent");
    return;
  }
  c->recvd += (uint64_t)n;
  g_total_bytes += (uint64_t)n;
  if (g_measuring && g_opt.mode != kTcpPipeline && c->recvd == c->sent && c->recvd % kMsgBytes == 0)
    hist_record(g_now - c->last_send_ns); /* the whole echo of the message in flight is in */
  if (g_refill_on_echo) tcp_refill(c);
}

static void tcp_on_readable(struct conn *c, unsigned char *buf) {
  ssize_t n = read(c->fd, buf, kReadBytes);
  if (n == 0) {
    fail_conn(c, "closed by the server");
    return;
  }
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) fail_conn(c, strerror(errno));
    return;
  }
  tcp_on_echo(c, buf, n);
}

static void tcp_on_event(struct conn *c, unsigned events, unsigned char *buf) {
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) tcp_on_readable(c, buf);
  if (c->fd >= 0 && (events & EPOLLOUT) && c->want_out) tcp_refill(c);
}

/* Opens every connection, at most kConnectInFlight handshakes at a time. */
static void tcp_connect_all(const struct sockaddr_in *sa) {
  int opened = 0, connected = 0, in_flight = 0;
  static struct epoll_event events[kMaxEvents];
  uint64_t deadline = now_ns() + kConnectTimeoutNs;
  while (connected < g_opt.conns) {
    while (in_flight < kConnectInFlight && opened < g_opt.conns) {
      struct conn *c = &g_conns[opened++];
      c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c->fd < 0) die("socket");
      int one = 1;
      setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) != 0 && errno != EINPROGRESS) die("connect");
      watch(c, EPOLL_CTL_ADD, EPOLLOUT);
      in_flight++;
    }
    if (now_ns() > deadline) {
      fprintf(stderr, "loadgen: only %d of %d connections opened in time\n", connected, g_opt.conns);
      exit(1);
    }
    int n = epoll_wait(g_ep, events, kMaxEvents, 100);
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        errno = err;
        die("connect");
      }
      watch(c, EPOLL_CTL_MOD, EPOLLIN);
      in_flight--;
      connected++;
    }
  }
}

/* Sends one message on every connection and waits until all are echoed: the server has then
 * accepted each connection and served it once. */
static void tcp_echo_once_each(unsigned char *buf) {
  static struct epoll_event events[kMaxEvents];
  g_refill_on_echo = false;
  for (int i = 0; i < g_opt.conns; i++) tcp_refill(&g_conns[i]);
  uint64_t deadline = now_ns() + kConnectTimeoutNs;
  uint64_t target = (uint64_t)g_opt.conns * kMsgBytes;
  while (g_total_bytes < target && g_errors == 0) {
    if (now_ns() > deadline) {
      fprintf(stderr, "loadgen: the first echo on every connection did not arrive in time\n");
      exit(1);
    }
    int n = epoll_wait(g_ep, events, kMaxEvents, 100);
    g_now = now_ns();
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c->fd >= 0) tcp_on_event(c, events[i].events, buf);
    }
  }
  g_refill_on_echo = true;
}

static void udp_send(struct conn *c, uint64_t now) {
  c->last_send_ns = now;
  if (g_uring_on) {
    uring_send(c, stream_at(c, c->sent * kMsgBytes), kMsgBytes);
    return;
  }
  if (send(c->fd, stream_at(c, c->sent * kMsgBytes), kMsgBytes, 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED &&
      errno != ENOBUFS)
    fail_conn(c, strerror(errno));
}

/* Checks one echoed datagram; the right one completes a message and sends the next. */
static void udp_on_echo(struct conn *c, const unsigned char *buf, ssize_t n, uint64_t now) {
  if (n == kMsgBytes && memcmp(buf, stream_at(c, c->sent * kMsgBytes), kMsgBytes) == 0) {
    g_total_msgs++;
    g_total_bytes += kMsgBytes;
    if (g_measuring) hist_record(now - c->last_send_ns);
    c->sent++;
    udp_send(c, now);
    return;
  }
  for (uint64_t back = 1; back <= kStaleLookback && back <= c->sent; back++) {
    if (n == kMsgBytes && memcmp(buf, stream_at(c, (c->sent - back) * kMsgBytes), kMsgBytes) == 0) {
      g_stale++; /* the late answer to a datagram already sent again */
      return;
    }
  }
  fail_conn(c, "echoed datagram differs from the datagram sent");
}

static void udp_on_readable(struct conn *c, unsigned char *buf, uint64_t now) {
  ssize_t n = recv(c->fd, buf, kReadBytes, 0);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED) fail_conn(c, strerror(errno));
    return;
  }
  udp_on_echo(c, buf, n, now);
}

/* One io_uring completion: a receive (check it, receive again unless a multishot receive goes
 * on) or a send (TCP: account for a short one and send what is next; UDP: nothing to do). */
static void uring_on_cqe(void *ctx, const struct io_uring_cqe *cqe) {
  (void)ctx;
  struct conn *c = &g_conns[cqe->user_data >> 1];
  enum op op = (enum op)(cqe->user_data & 1);
  int res = cqe->res;
  bool udp = g_opt.mode == kUdpPingpong;
  const unsigned char *data = c->rbuf;
  if (op == kOpRecv && (cqe->flags & IORING_CQE_F_BUFFER)) {
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    data = uring_bufs_at(&g_bufs, bid);
    uring_bufs_recycle(&g_bufs, bid); /* published after this batch, read before that */
  }
  if (c->fd < 0) return;
  if (op == kOpSend) {
    if (udp) {
      if (res < 0 && res != -EAGAIN && res != -ECONNREFUSED && res != -ENOBUFS) fail_conn(c, strerror(-res));
      return;
    }
    if (g_skip_send_cqe) {
      fail_conn(c, res < 0 ? strerror(-res) : "short send");
      return;
    }
    c->send_busy = false;
    if (res < 0 && res != -EAGAIN && res != -EINTR) {
      fail_conn(c, strerror(-res));
      return;
    }
    uint32_t done = res < 0 ? 0 : (uint32_t)res;
    c->sent -= c->send_len - done; /* take back what the kernel did not take */
    tcp_refill(c);
    return;
  }
  if (res == 0 && !udp) {
    fail_conn(c, "closed by the server");
    return;
  }
  if (res < 0 && res != -EAGAIN && res != -EINTR && res != -ECONNREFUSED && res != -ENOBUFS) {
    fail_conn(c, strerror(-res));
    return;
  }
  if (res > 0) {
    if (udp) udp_on_echo(c, data, res, g_now);
    else tcp_on_echo(c, data, res);
  }
  if (c->fd >= 0 && !(g_multishot && (cqe->flags & IORING_CQE_F_MORE))) uring_recv(c);
}

/* Multishot receives need Linux 6.0. */
static bool kernel_at_least(int major, int minor) {
  struct utsname u;
  int ma = 0, mi = 0;
  if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

/* Moves the load from epoll to io_uring: false (and epoll stays) when the kernel has no usable
 * io_uring. Closing g_ep drops every epoll registration, so packets wake only the ring. */
static bool uring_start(void) {
  unsigned cq = 4096;
  while (cq < 4u * (unsigned)g_opt.conns && cq < kUringMaxCqEntries) cq <<= 1;
  if (uring_init(&g_ring, kUringSqEntries, cq) != 0) return false;
  if (g_opt.mode != kTcpPipeline && kernel_at_least(6, 0) && (g_ring.features & IORING_FEAT_CQE_SKIP)) {
    unsigned n = 1024;
    while (n < 2u * (unsigned)g_opt.conns && n < kUringMaxBufs) n <<= 1;
    g_multishot = uring_bufs_init(&g_ring, &g_bufs, kBufGroup, n, kPingRecvBytes) == 0;
    g_skip_send_cqe = g_multishot;
  }
  g_rbuf_bytes = g_opt.mode == kTcpPipeline ? g_opt.window : kPingRecvBytes;
  unsigned char *bufs = malloc(g_rbuf_bytes * (size_t)g_opt.conns);
  if (!bufs) die("malloc");
  for (int i = 0; i < g_opt.conns; i++) g_conns[i].rbuf = bufs + g_rbuf_bytes * (size_t)i;
  close(g_ep);
  g_ep = -1;
  g_uring_on = true;
  for (int i = 0; i < g_opt.conns; i++)
    if (g_conns[i].fd >= 0) uring_recv(&g_conns[i]);
  return true;
}

static void udp_resend_lost(uint64_t now) {
  for (int i = 0; i < g_opt.conns; i++) {
    struct conn *c = &g_conns[i];
    if (c->fd >= 0 && now - c->last_send_ns > g_opt.udp_timeout_ns) {
      g_losses++;
      udp_send(c, now);
    }
  }
}

static void udp_open_all(const struct sockaddr_in *sa) {
  for (int i = 0; i < g_opt.conns; i++) {
    struct conn *c = &g_conns[i];
    c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket");
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) != 0) die("connect");
    watch(c, EPOLL_CTL_ADD, EPOLLIN);
  }
}

/* Waits up to timeout_ns for sockets to be ready (epoll) or operations to complete (io_uring),
 * and handles them. */
static void wait_and_dispatch(uint64_t timeout_ns, unsigned char *buf) {
  if (g_uring_on) {
    if (uring_enter(&g_ring, 1, timeout_ns) != 0 && errno != ETIME && errno != EINTR && errno != EBUSY &&
        errno != EAGAIN)
      die("io_uring_enter");
    g_now = now_ns();
    uring_drain(&g_ring, uring_on_cqe, NULL);
    if (g_multishot) uring_bufs_publish(&g_bufs);
    return;
  }
  static struct epoll_event events[kMaxEvents];
  int n = epoll_wait(g_ep, events, kMaxEvents, (int)(timeout_ns / 1000000ull) + 1);
  if (n < 0 && errno != EINTR) die("epoll_wait");
  uint64_t now = now_ns();
  g_now = now;
  for (int i = 0; i < n; i++) {
    struct conn *c = events[i].data.ptr;
    if (c->fd < 0) continue;
    if (g_opt.mode == kUdpPingpong) udp_on_readable(c, buf, now);
    else tcp_on_event(c, events[i].events, buf);
  }
}

static void wait_for_go(void) {
  printf("{\"event\":\"connected\",\"conns\":%d}\n", g_opt.conns);
  fflush(stdout);
  char line[64];
  if (!fgets(line, sizeof line, stdin)) return;
}

static void close_all(void) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* reset: leave no TIME_WAIT behind */
  for (int i = 0; i < g_opt.conns; i++) {
    struct conn *c = &g_conns[i];
    if (c->fd < 0) continue;
    if (g_opt.mode != kUdpPingpong) setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c->fd);
    c->fd = -1;
  }
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

  g_pattern = malloc(256 + kReadBytes + 256);
  if (!g_pattern) die("malloc");
  for (size_t k = 0; k < 256 + kReadBytes + 256; k++) g_pattern[k] = (unsigned char)(k * 31);
  g_conns = calloc((size_t)g_opt.conns, sizeof *g_conns);
  if (!g_conns) die("calloc");
  for (int i = 0; i < g_opt.conns; i++) {
    g_conns[i].fd = -1;
    g_conns[i].phase = (uint32_t)(i * 223) & 0xff; /* 223 = 31^-1 mod 256: (i*31+c) = 31(i+223c) */
  }

  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_opt.port)};
  if (inet_pton(AF_INET, g_opt.host, &sa.sin_addr) != 1) {
    fprintf(stderr, "loadgen: --host must be an IPv4 address, got %s\n", g_opt.host);
    return 2;
  }
  g_ep = epoll_create1(EPOLL_CLOEXEC);
  if (g_ep < 0) die("epoll_create1");

  static unsigned char buf[kReadBytes];
  bool udp = g_opt.mode == kUdpPingpong;
  if (udp) {
    udp_open_all(&sa);
  } else {
    tcp_connect_all(&sa);
    if (g_opt.mode == kTcpHeld) tcp_echo_once_each(buf);
  }
  if (g_opt.pause) wait_for_go();
  if (g_opt.engine != kEngineEpoll && !uring_start() && g_opt.engine == kEngineUring) die("io_uring");

  uint64_t start = now_ns();
  g_now = start;
  if (udp) {
    for (int i = 0; i < g_opt.conns; i++) udp_send(&g_conns[i], start);
  } else {
    for (int i = 0; i < g_opt.conns; i++)
      if (g_conns[i].fd >= 0) tcp_refill(&g_conns[i]);
  }

  uint64_t measure_start = start + (uint64_t)(g_opt.warmup_s * 1e9);
  uint64_t end = measure_start + (uint64_t)(g_opt.duration_s * 1e9);
  bool measuring = false;
  uint64_t bytes0 = 0, msgs0 = 0, losses0 = 0, t0 = measure_start;
  double cpu0 = 0;
  uint64_t next_loss_scan = start + g_opt.udp_timeout_ns / 4;

  for (;;) {
    uint64_t now = now_ns();
    if (!measuring && now >= measure_start) {
      measuring = true;
      bytes0 = g_total_bytes;
      msgs0 = g_total_msgs;
      losses0 = g_losses;
      cpu0 = cpu_seconds();
      t0 = now;
      end = t0 + (uint64_t)(g_opt.duration_s * 1e9);
      g_measuring = true;
    }
    if (now >= end) break;
    if (udp && now >= next_loss_scan) {
      udp_resend_lost(now);
      next_loss_scan = now + g_opt.udp_timeout_ns / 4;
    }
    uint64_t next = measuring ? end : measure_start;
    if (udp && next_loss_scan < next) next = next_loss_scan;
    wait_and_dispatch(next - now, buf);
  }

  uint64_t t1 = now_ns();
  double cpu = cpu_seconds() - cpu0;
  double seconds = (double)(t1 - t0) / 1e9;
  uint64_t bytes = g_total_bytes - bytes0;
  uint64_t msgs = udp ? g_total_msgs - msgs0 : bytes / kMsgBytes;
  double cpu_pct = seconds > 0 ? 100.0 * cpu / seconds : 0;
  bool saturated = cpu_pct >= kSaturatedPct;
  char latency[160] = "\"p50Us\":null,\"p99Us\":null,\"p999Us\":null,\"maxUs\":null";
  if (g_opt.mode != kTcpPipeline && g_hist_count > 0)
    snprintf(latency, sizeof latency, "\"p50Us\":%llu,\"p99Us\":%llu,\"p999Us\":%llu,\"maxUs\":%.1f",
             (unsigned long long)hist_quantile(0.50), (unsigned long long)hist_quantile(0.99),
             (unsigned long long)hist_quantile(0.999), (double)g_hist_max_ns / 1e3);

  printf("{\"mode\":\"%s\",\"conns\":%d,\"seconds\":%.3f,\"msgs\":%llu,\"msgsPerSec\":%.0f,"
         "\"bytes\":%llu,\"mbPerSec\":%.2f,\"errors\":%llu,\"losses\":%llu,\"stale\":%llu,"
         "\"loadgenCpuPct\":%.1f,\"loadgenSaturated\":%s,\"engine\":\"%s\",%s}\n",
         g_opt.mode_name, g_opt.conns, seconds, (unsigned long long)msgs, msgs / seconds, (unsigned long long)bytes,
         bytes / seconds / 1e6, (unsigned long long)g_errors, (unsigned long long)(g_losses - losses0),
         (unsigned long long)g_stale, cpu_pct, saturated ? "true" : "false",
         g_multishot  ? "io_uring-multishot"
         : g_uring_on ? "io_uring"
                      : "epoll",
         latency);
  fflush(stdout);
  close_all();
  if (saturated)
    fprintf(stderr,
            "loadgen: used %.0f%% of its core: the figures may be the load generator's "
            "limit, not the server's\n",
            cpu_pct);
  return g_errors > 0 ? 1 : 0;
}
