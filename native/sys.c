/*
 * Syscall wrappers and the socket address format shared with JavaScript.
 *
 * An address takes 8 u32 (two record slots): [family, port, flowinfo, scope_id] then 16 address
 * bytes in network order. family is 4, 6, 1 (unix, no path carried) or 0 (unknown).
 */
#include "gev.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

int sys_set_int(int fd, int level, int opt, int value) {
  return setsockopt(fd, level, opt, &value, sizeof value) == 0 ? 0 : -errno;
}

int sys_so_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

int sys_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t tag) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.u64 = tag;
  return epoll_ctl(epfd, op, fd, &ev) == 0 ? 0 : -errno;
}

/* The one send path of stream sockets: never blocks and never raises SIGPIPE (a reset peer is
 * EPIPE or ECONNRESET in errno instead). One buffer uses send, several sendmsg. */
ssize_t sys_sendv(int fd, const struct iovec *iov, int iovcnt) {
  if (iovcnt == 1) return send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = (struct iovec *)iov;
  msg.msg_iovlen = (size_t)iovcnt;
  return sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Arms a one-shot timerfd `ms` milliseconds from now. 0 or -errno. */
int sys_timer_arm(int tfd, uint32_t ms) {
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_sec = ms / 1000u;
  its.it_value.tv_nsec = (long)(ms % 1000u) * 1000000L;
  return timerfd_settime(tfd, 0, &its, NULL) == 0 ? 0 : -errno;
}

/* Asks for transparent huge pages over the whole pages inside [p, p + len), so that filling a large
 * fresh buffer takes a page fault per 2 MiB instead of per 4 KiB. Advice only: errors are ignored. */
void sys_advise_huge(void *p, size_t len) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t from = ((uintptr_t)p + page - 1u) & ~(page - 1u);
  uintptr_t to = ((uintptr_t)p + len) & ~(page - 1u);
  if (to > from) (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
}

/* close(2) that is not retried on EINTR: on Linux the fd is released either way. */
void sys_close(int fd) {
  if (fd >= 0) (void)close(fd);
}

void gev_addr_encode(uint32_t *s, const struct sockaddr *sa, socklen_t len) {
  memset(s, 0, 8 * sizeof(uint32_t));
  if (sa == NULL || len < sizeof(sa_family_t)) return;
  if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    s[0] = 4;
    s[1] = ntohs(in->sin_port);
    memcpy(&s[4], &in->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    s[0] = 6;
    s[1] = ntohs(in6->sin6_port);
    s[2] = in6->sin6_flowinfo;
    s[3] = in6->sin6_scope_id;
    memcpy(&s[4], &in6->sin6_addr, 16);
  } else if (sa->sa_family == AF_UNIX) {
    s[0] = 1;
  }
}

socklen_t gev_addr_decode(const uint32_t *s, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (s[0] == 4) {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)s[1]);
    memcpy(&in->sin_addr, &s[4], 4);
    return sizeof *in;
  }
  if (s[0] == 6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)s[1]);
    in6->sin6_flowinfo = s[2];
    in6->sin6_scope_id = s[3];
    memcpy(&in6->sin6_addr, &s[4], 16);
    return sizeof *in6;
  }
  return 0;
}

/* Fills `ss` from a numeric host ('' = any) for family 4 or 6; -EINVAL when it does not parse. */
int gev_addr_parse(int family, const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (family == 4) {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    if (host[0] == '\0') in->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &in->sin_addr) != 1) return -EINVAL;
    *len = sizeof *in;
    return 0;
  }
  if (family == 6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    const char *pct = strchr(host, '%');
    char buf[INET6_ADDRSTRLEN + 1];
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    if (host[0] == '\0') {
      in6->sin6_addr = in6addr_any;
    } else {
      size_t n = pct ? (size_t)(pct - host) : strlen(host);
      if (n >= sizeof buf) return -EINVAL;
      memcpy(buf, host, n);
      buf[n] = '\0';
      if (inet_pton(AF_INET6, buf, &in6->sin6_addr) != 1) return -EINVAL;
      if (pct) {
        unsigned idx = if_nametoindex(pct + 1);
        in6->sin6_scope_id = idx ? idx : (uint32_t)strtoul(pct + 1, NULL, 10);
      }
    }
    *len = sizeof *in6;
    return 0;
  }
  return -EAFNOSUPPORT;
}
