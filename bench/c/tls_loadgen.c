/*
 * The TLS load generator: N connections doing echo ping-pong over TLS, one 6-byte message in
 * flight on each, from one thread (epoll + OpenSSL, nonblocking).
 *
 *   tls_loadgen --port P [--host H] [--conns N] [--duration S] [--warmup S] [--tls12]
 *
 * Every handshake completes (blocking, before the clock starts), so the timed part is the echo
 * alone: each connection writes a message, waits for its whole echo, checks it byte for byte and
 * writes the next. The certificate is not verified (the servers use a throwaway self-signed one).
 * --tls12 caps the protocol at TLS 1.2 (the default lets the server pick, TLS 1.3 in practice).
 * Prints {"event":"connected"} once every handshake is done, then at the end one JSON line: {mode, conns, seconds, msgs, msgsPerSec, errors, protocol, cipher,
 * loadgenCpuPct, loadgenSaturated}; loadgenCpuPct is this process's user+system time over wall
 * time, and loadgenSaturated is true from 90% on, when the figure is the load generator's limit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define kMsgBytes  6
#define kMaxEvents 1024

struct conn {
  int fd;
  SSL *ssl;
  char msg[kMsgBytes]; /* the message in flight */
  char got[kMsgBytes];
  size_t sent;  /* bytes of msg SSL_write has taken */
  size_t recvd; /* bytes of its echo read so far */
  unsigned long long n;
  int want_out; /* EPOLLOUT is on: the socket did not take all of the message */
};

static int g_ep;
static int g_measuring;
static unsigned long long g_msgs;
static unsigned long long g_errors;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

static void next_msg(struct conn *c) {
  /* Distinct bytes per connection and message, so a misrouted or stale echo does not match. */
  unsigned long long v = c->n * 2654435761u + (unsigned)c->fd;
  for (int i = 0; i < kMsgBytes - 1; i++) c->msg[i] = (char)('a' + (v >> (i * 4)) % 26);
  c->msg[kMsgBytes - 1] = '\n';
  c->sent = 0;
  c->recvd = 0;
}

/* Writes what is left of the message; -1 on a fatal error. */
static int pump_write(struct conn *c) {
  while (c->sent < kMsgBytes) {
    size_t wrote = 0;
    ERR_clear_error();
    if (SSL_write_ex(c->ssl, c->msg + c->sent, kMsgBytes - c->sent, &wrote) == 1) {
      c->sent += wrote;
      continue;
    }
    int err = SSL_get_error(c->ssl, 0);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) return 0;
    return -1;
  }
  return 0;
}

/* Reads the echo; each complete and correct one counts and starts the next message. */
static int pump_read(struct conn *c) {
  for (;;) {
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(c->ssl, c->got + c->recvd, kMsgBytes - c->recvd, &got) != 1) {
      int err = SSL_get_error(c->ssl, 0);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return 0;
      return -1;
    }
    c->recvd += got;
    if (c->recvd < kMsgBytes) continue;
    if (memcmp(c->got, c->msg, kMsgBytes) != 0) {
      fprintf(stderr, "tls_loadgen: a wrong echo on fd %d\n", c->fd);
      return -1;
    }
    if (g_measuring) g_msgs++;
    c->n++;
    next_msg(c);
    if (pump_write(c) < 0) return -1;
  }
}

static SSL *connect_tls(SSL_CTX *ctx, const struct sockaddr_in *addr, int *fd_out) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) != 0) die("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SSL *ssl = SSL_new(ctx);
  if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) die_ssl("SSL_new");
  SSL_set_tlsext_host_name(ssl, "localhost");
  if (SSL_connect(ssl) != 1) die_ssl("the handshake");
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl");
  *fd_out = fd;
  return ssl;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, conns = 100, tls12 = 0;
  double duration = 5, warmup = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--tls12") == 0) tls12 = 1;
    else if (v != NULL && strcmp(a, "--port") == 0) port = atoi(v), i++;
    else if (v != NULL && strcmp(a, "--host") == 0) host = v, i++;
    else if (v != NULL && strcmp(a, "--conns") == 0) conns = atoi(v), i++;
    else if (v != NULL && strcmp(a, "--duration") == 0) duration = atof(v), i++;
    else if (v != NULL && strcmp(a, "--warmup") == 0) warmup = atof(v), i++;
    else {
      fprintf(stderr, "usage: tls_loadgen --port P [--host H] [--conns N] [--duration S] [--warmup S] [--tls12]\n");
      return 2;
    }
  }
  if (port <= 0 || conns <= 0 || duration <= 0 || warmup < 0) {
    fprintf(stderr, "tls_loadgen: --port, --conns and --duration must be positive, --warmup at least 0\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == NULL) die_ssl("SSL_CTX_new");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (tls12) SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "tls_loadgen: --host %s is not an IPv4 address\n", host);
    return 2;
  }
  g_ep = epoll_create1(EPOLL_CLOEXEC);
  if (g_ep < 0) die("epoll_create1");
  struct conn *cs = calloc((size_t)conns, sizeof *cs);
  if (cs == NULL) die("calloc");
  for (int i = 0; i < conns; i++) {
    cs[i].ssl = connect_tls(ctx, &addr, &cs[i].fd);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0) die("epoll_ctl");
  }
  const char *protocol = SSL_get_version(cs[0].ssl);
  const char *cipher = SSL_get_cipher_name(cs[0].ssl);
  printf("{\"event\":\"connected\",\"conns\":%d}\n", conns);
  fflush(stdout);
  for (int i = 0; i < conns; i++) {
    next_msg(&cs[i]);
    if (pump_write(&cs[i]) < 0) die_ssl("the first write");
  }

  double start = now_s();
  double measure_from = start + warmup, end = measure_from + duration;
  double cpu0 = 0;
  struct epoll_event events[kMaxEvents];
  for (;;) {
    double t = now_s();
    if (!g_measuring && t >= measure_from) {
      g_measuring = 1;
      cpu0 = cpu_s();
    }
    if (t >= end) break;
    int n = epoll_wait(g_ep, events, kMaxEvents, 50);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c->ssl == NULL) continue;
      if (pump_read(c) == 0 && pump_write(c) == 0) {
        int want_out = c->sent < kMsgBytes;
        if (want_out != c->want_out) {
          struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
          if (epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) die("epoll_ctl");
          c->want_out = want_out;
        }
      } else {
        g_errors++;
        epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
        SSL_free(c->ssl);
        c->ssl = NULL;
        close(c->fd);
      }
    }
  }
  double cpu = cpu_s() - cpu0;
  double pct = 100.0 * cpu / duration;
  printf("{\"mode\":\"tls-pingpong\",\"conns\":%d,\"seconds\":%.3f,\"msgs\":%llu,\"msgsPerSec\":%.0f,\"errors\":%llu,"
         "\"protocol\":\"%s\",\"cipher\":\"%s\",\"loadgenCpuPct\":%.1f,\"loadgenSaturated\":%s}\n",
         conns, duration, g_msgs, (double)g_msgs / duration, g_errors, protocol, cipher, pct,
         pct >= 90 ? "true" : "false");
  for (int i = 0; i < conns; i++) {
    if (cs[i].ssl == NULL) continue;
    SSL_free(cs[i].ssl);
    close(cs[i].fd);
  }
  SSL_CTX_free(ctx);
  return 0;
}
