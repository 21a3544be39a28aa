/*
 * The TCP reference: a minimal single-threaded, level-triggered epoll echo server.
 *
 *   echo_epoll PORT      prints "ready" once listening on 0.0.0.0:PORT
 *
 * Each wake-up reads at most 64 KiB from a ready socket into one shared buffer and writes it
 * straight back. Bytes the kernel does not take are kept per fd, in order; the fd then waits for
 * EPOLLOUT and stops reading until they are flushed, so the echoed stream stays exact under
 * pipelining and a slow reader cannot grow the server's memory without bound.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

struct pending {
  char *buf;
  size_t off;
  size_t len;
};

static struct pending *g_pending;
static size_t g_max_fds;
static int g_ep;

static void watch(int fd, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(g_ep, op, fd, &ev) != 0) die("epoll_ctl");
}

static void close_conn(int fd) {
  struct pending *p = &g_pending[fd];
  free(p->buf);
  p->buf = NULL;
  p->off = p->len = 0;
  close(fd);
}

/* Keeps buf[0..n) for later, after whatever is already queued for fd. */
static void queue_bytes(int fd, const char *buf, size_t n) {
  struct pending *p = &g_pending[fd];
  if (p->off > 0) {
    memmove(p->buf, p->buf + p->off, p->len - p->off);
    p->len -= p->off;
    p->off = 0;
  }
  char *grown = realloc(p->buf, p->len + n);
  if (!grown) die("realloc");
  p->buf = grown;
  memcpy(p->buf + p->len, buf, n);
  p->len += n;
}

static void on_readable(int fd, char *buf) {
  ssize_t n = read(fd, buf, kReadBytes);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    close_conn(fd);
    return;
  }
  if (n < 0) return;
  if (g_pending[fd].len > 0) {
    queue_bytes(fd, buf, (size_t)n);
    return;
  }
  ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
  if (w < 0) {
    if (errno != EAGAIN) {
      close_conn(fd);
      return;
    }
    w = 0;
  }
  if (w < n) {
    queue_bytes(fd, buf + w, (size_t)(n - w));
    watch(fd, EPOLL_CTL_MOD, EPOLLOUT);
  }
}

static void on_writable(int fd) {
  struct pending *p = &g_pending[fd];
  ssize_t w = send(fd, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);
  if (w < 0) {
    if (errno != EAGAIN) close_conn(fd);
    return;
  }
  p->off += (size_t)w;
  if (p->off == p->len) {
    p->off = p->len = 0;
    watch(fd, EPOLL_CTL_MOD, EPOLLIN);
  }
}

static void on_acceptable(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if ((size_t)fd >= g_max_fds) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    watch(fd, EPOLL_CTL_ADD, EPOLLIN);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: echo_epoll PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  g_max_fds = fd_table_size();
  g_pending = calloc(g_max_fds, sizeof *g_pending);
  if (!g_pending) die("calloc");

  int lfd = listen_tcp4(argv[1]);

  g_ep = epoll_create1(EPOLL_CLOEXEC);
  if (g_ep < 0) die("epoll_create1");
  watch(lfd, EPOLL_CTL_ADD, EPOLLIN);
  printf("ready\n");
  fflush(stdout);

  static char buf[kReadBytes];
  static struct epoll_event events[kMaxEvents];
  for (;;) {
    int n = epoll_wait(g_ep, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      unsigned ev = events[i].events;
      if (fd == lfd) {
        on_acceptable(lfd);
      } else if (ev & EPOLLOUT) {
        on_writable(fd);
      } else if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        on_readable(fd, buf);
      }
    }
  }
}
