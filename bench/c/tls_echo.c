/*
 * The TLS reference: a minimal single-threaded, level-triggered epoll echo server over OpenSSL.
 *
 *   tls_echo PORT CERT KEY      prints "ready" once listening on 0.0.0.0:PORT
 *
 * Every connection is a nonblocking socket with its own SSL (TLS 1.2 minimum, no renegotiation,
 * no compression, session tickets on). The handshake runs inside the same wake-ups as the echo.
 * Each wake-up reads plaintext with SSL_read into one shared 64 KiB buffer until OpenSSL wants
 * more, and writes each piece back with SSL_write (partial writes allowed). Plaintext that
 * SSL_write cannot take yet is kept per fd, in order, and the fd stops reading until it is
 * written, so a slow reader cannot grow the server's memory without bound. The connection waits
 * for EPOLLOUT whenever OpenSSL reports WANT_WRITE.
 */
#define _GNU_SOURCE
#include <errno.h>
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
#include <unistd.h>

#include "common.h"

#define kReadBytes (64 * 1024)
#define kMaxEvents 1024

struct conn {
  SSL *ssl;
  char *buf; /* plaintext SSL_write has not taken yet */
  size_t off;
  size_t len;
  unsigned events;
};

static struct conn *g_conns;
static size_t g_max_fds;
static int g_ep;
static SSL_CTX *g_ctx;

static void watch(int fd, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(g_ep, op, fd, &ev) != 0) die("epoll_ctl");
  if (op != EPOLL_CTL_DEL) g_conns[fd].events = events;
}

static void set_events(int fd, unsigned events) {
  if (g_conns[fd].events != events) watch(fd, EPOLL_CTL_MOD, events);
}

static void close_conn(int fd) {
  struct conn *c = &g_conns[fd];
  SSL_free(c->ssl);
  free(c->buf);
  memset(c, 0, sizeof *c);
  epoll_ctl(g_ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
}

/* Keeps buf[0..n) for a later SSL_write, after what is kept already. 0, or -1 when out of memory. */
static int keep(struct conn *c, const char *buf, size_t n) {
  if (c->off > 0) {
    memmove(c->buf, c->buf + c->off, c->len - c->off);
    c->len -= c->off;
    c->off = 0;
  }
  char *grown = realloc(c->buf, c->len + n);
  if (grown == NULL) return -1;
  c->buf = grown;
  memcpy(c->buf + c->len, buf, n);
  c->len += n;
  return 0;
}

/*
 * Writes buf[0..n) with SSL_write, keeping what it cannot take. Returns 0 while the connection
 * lives (*want_write set when OpenSSL waits for the socket), -1 when it must close.
 */
static int write_plain(struct conn *c, const char *buf, size_t n, int *want_write) {
  size_t done = 0;
  while (done < n) {
    size_t wrote = 0;
    ERR_clear_error();
    if (SSL_write_ex(c->ssl, buf + done, n - done, &wrote) == 1) {
      done += wrote;
      continue;
    }
    int err = SSL_get_error(c->ssl, 0);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
      *want_write = err == SSL_ERROR_WANT_WRITE;
      return keep(c, buf + done, n - done);
    }
    ERR_clear_error();
    return -1;
  }
  return 0;
}

/* Writes what was kept. 0 when all of it is written, 1 when some remains, -1 to close. */
static int flush_kept(struct conn *c, int *want_write) {
  while (c->off < c->len) {
    size_t wrote = 0;
    ERR_clear_error();
    if (SSL_write_ex(c->ssl, c->buf + c->off, c->len - c->off, &wrote) == 1) {
      c->off += wrote;
      continue;
    }
    int err = SSL_get_error(c->ssl, 0);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
      *want_write = err == SSL_ERROR_WANT_WRITE;
      return 1;
    }
    ERR_clear_error();
    return -1;
  }
  free(c->buf);
  c->buf = NULL;
  c->off = c->len = 0;
  return 0;
}

/* One wake-up of a connection: finish the handshake, write what was kept, echo what can be read. */
static void serve(int fd, char *buf) {
  struct conn *c = &g_conns[fd];
  int want_write = 0;
  if (!SSL_is_init_finished(c->ssl)) {
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc != 1) {
      int err = SSL_get_error(c->ssl, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        set_events(fd, err == SSL_ERROR_WANT_WRITE ? EPOLLIN | EPOLLOUT : EPOLLIN);
        return;
      }
      ERR_clear_error();
      close_conn(fd);
      return;
    }
  }
  if (c->len > 0) {
    int rc = flush_kept(c, &want_write);
    if (rc < 0) {
      close_conn(fd);
      return;
    }
    if (rc > 0) {
      set_events(fd, want_write ? EPOLLOUT : EPOLLIN);
      return;
    }
  }
  for (;;) {
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(c->ssl, buf, kReadBytes, &got) == 1) {
      if (write_plain(c, buf, got, &want_write) != 0) {
        close_conn(fd);
        return;
      }
      if (c->len > 0) break; /* stop reading until the kept bytes are written */
      continue;
    }
    int err = SSL_get_error(c->ssl, 0);
    if (err == SSL_ERROR_WANT_READ) break;
    if (err == SSL_ERROR_WANT_WRITE) {
      want_write = 1;
      break;
    }
    /* SSL_ERROR_ZERO_RETURN (close_notify), SYSCALL (EOF, reset) or a protocol error. */
    ERR_clear_error();
    close_conn(fd);
    return;
  }
  set_events(fd, want_write ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void accept_all(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if (errno == EMFILE || errno == ENFILE) return;
      die("accept4");
    }
    if ((size_t)fd >= g_max_fds) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = SSL_new(g_ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) die_ssl("SSL_new");
    SSL_set_accept_state(ssl);
    g_conns[fd].ssl = ssl;
    watch(fd, EPOLL_CTL_ADD, EPOLLIN);
  }
}

static SSL_CTX *make_ctx(const char *cert, const char *key) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL) die_ssl("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) die_ssl("loading the certificate");
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) die_ssl("loading the key");
  if (SSL_CTX_check_private_key(ctx) != 1) die_ssl("matching the key to the certificate");
  return ctx;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: tls_echo PORT CERT KEY\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  g_max_fds = fd_table_size();
  g_conns = calloc(g_max_fds, sizeof *g_conns);
  if (g_conns == NULL) die("calloc");
  g_ctx = make_ctx(argv[2], argv[3]);

  int lfd = listen_tcp4(argv[1]);

  g_ep = epoll_create1(EPOLL_CLOEXEC);
  if (g_ep < 0) die("epoll_create1");
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
  if (epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &lev) != 0) die("epoll_ctl");
  printf("ready\n");
  fflush(stdout);

  char *buf = malloc(kReadBytes);
  if (buf == NULL) die("malloc");
  struct epoll_event events[kMaxEvents];
  for (;;) {
    int n = epoll_wait(g_ep, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == lfd) accept_all(lfd);
      else if (g_conns[fd].ssl != NULL) serve(fd, buf);
    }
  }
}
