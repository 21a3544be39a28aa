/*
 * Every socket syscall and socket option of the core, and the socket address format shared with
 * JavaScript. listen.c, conn.c, udp.c and io.c reach sockets only through the sys_* functions here.
 *
 * An address takes GEV_ADDR_U32 u32 (two record slots): [family, port, flowinfo, scope_id] then 16
 * address bytes in network order. family is GEV_ADDR_INET4, GEV_ADDR_INET6, GEV_ADDR_UNIX (no path
 * carried) or GEV_ADDR_NONE (unknown).
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define GEV_BACKLOG 1024

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24 /* Linux 4.2; older C libraries lack the name */
#endif

/* A non-blocking, close-on-exec socket of address family `af`. The fd or -errno. */
int sys_socket(int af, int type) {
  int fd = socket(af, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

/*
 * The socket-level options a listener of `flags` (GEV_LISTEN_*) takes, applied to its new socket
 * before bind: one case per flag. An inet stream socket always gets SO_REUSEADDR, and an IPv6
 * socket always has IPV6_V6ONLY set one way or the other (dual stack unless GEV_LISTEN_V6ONLY).
 */
int sys_listen_options(int fd, int af, int type, uint32_t flags) {
  int rc = 0;
  if (type == SOCK_STREAM && af != AF_UNIX) rc = sys_set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (rc == 0 && (flags & GEV_LISTEN_REUSEPORT)) rc = sys_set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (rc == 0 && af == AF_INET6) rc = sys_set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, (flags & GEV_LISTEN_V6ONLY) ? 1 : 0);
  return rc;
}

int sys_bind(int fd, const struct sockaddr *sa, socklen_t len) { return bind(fd, sa, len) == 0 ? 0 : -errno; }

/*
 * The options of an outbound socket whose source address is chosen (`local`, bound next): with a
 * source host but no port, IP_BIND_ADDRESS_NO_PORT, so the port is picked at connect time for the
 * whole 4-tuple and many dials from one address do not run out of ports. Advice only: a kernel
 * without the option picks the port at bind, and the dial goes on.
 */
void sys_dial_options(int fd, const struct sockaddr *local) {
  int no_port = (local->sa_family == AF_INET && ((const struct sockaddr_in *)local)->sin_port == 0) ||
                (local->sa_family == AF_INET6 && ((const struct sockaddr_in6 *)local)->sin6_port == 0);
  if (no_port) (void)sys_set_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1);
}

/* connect(2) on a non-blocking socket: 0 when it connected at once (a unix peer often does),
 * -EINPROGRESS while the handshake goes on (EINTR too: the connect then goes on by itself), else
 * -errno (ECONNREFUSED, ENOENT, EAGAIN for a unix listener's full backlog, ...). */
int sys_connect(int fd, const struct sockaddr *sa, socklen_t len) {
  if (connect(fd, sa, len) == 0) return 0;
  return errno == EINTR ? -EINPROGRESS : -errno;
}

int sys_listen(int fd) { return listen(fd, GEV_BACKLOG) == 0 ? 0 : -errno; }

/* accept4 of one connection, non-blocking and close-on-exec, its peer encoded into addr8 when
 * addr8 is not NULL. The fd or -errno. */
int sys_accept(int lfd, uint32_t *addr8) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int fd = accept4(lfd, addr8 ? (struct sockaddr *)&ss : NULL, addr8 ? &len : NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return -errno;
  if (addr8) gev_addr_encode(addr8, (struct sockaddr *)&ss, len);
  return fd;
}

/* Whether a unix stream listener answers at `sa`: 1 when one does, 0 when none does (refused or
 * no such file), else -errno. */
int sys_unix_live(const struct sockaddr_un *sa) {
  int probe = sys_socket(AF_UNIX, SOCK_STREAM);
  if (probe < 0) return probe;
  int rc = connect(probe, (const struct sockaddr *)sa, sizeof *sa);
  int err = errno;
  sys_close(probe);
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) return 1;
  if (err == ECONNREFUSED || err == ENOENT) return 0;
  return -err;
}

int sys_tcp_nodelay(int fd) { return sys_set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1); }

/* TCP keep-alive probing after `seconds` idle, every `seconds`; 0 turns it off. Every option is
 * set even when one fails; the first failure is returned. */
int sys_keepalive(int fd, uint32_t seconds) {
  if (seconds == 0) return sys_set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 0);
  int on = sys_set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
  int idle = sys_set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)seconds);
  int intvl = sys_set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, (int)seconds);
  return on != 0 ? on : idle != 0 ? idle : intvl;
}

int sys_set_int(int fd, int level, int opt, int value) {
  return setsockopt(fd, level, opt, &value, sizeof value) == 0 ? 0 : -errno;
}

int sys_so_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

/* The socket's own address (getsockname), encoded into addr8. */
int sys_local_addr(int fd, uint32_t *addr8) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return -errno;
  gev_addr_encode(addr8, (struct sockaddr *)&ss, len);
  return 0;
}

/* The peer's address (getpeername), encoded into addr8; all zero (GEV_ADDR_NONE) when unknown. */
int sys_peer_addr(int fd, uint32_t *addr8) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int rc = getpeername(fd, (struct sockaddr *)&ss, &len) == 0 ? 0 : -errno;
  gev_addr_encode(addr8, (struct sockaddr *)&ss, rc == 0 ? len : 0);
  return rc;
}

void sys_shutdown_wr(int fd) { (void)shutdown(fd, SHUT_WR); }

/* recv(2) without flags: the count, 0 at end of stream, or -1 with errno. */
ssize_t sys_recv(int fd, void *buf, size_t len) { return recv(fd, buf, len, 0); }

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

/* recvmmsg(2) of up to n datagrams without blocking: the count or -1 with errno. */
int sys_recvmmsg(int fd, struct mmsghdr *msgs, unsigned n) { return recvmmsg(fd, msgs, n, MSG_DONTWAIT, NULL); }

/* sendmmsg(2) of up to n datagrams without blocking or SIGPIPE: the count or -1 with errno. */
int sys_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n) {
  return sendmmsg(fd, msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Arms the one-shot CLOCK_MONOTONIC timerfd for the absolute time `at_ms` (sys_now_ms's clock); a
 * time already past fires at once. 0 or -errno. */
int sys_timer_arm_at(int tfd, uint64_t at_ms) {
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_sec = (time_t)(at_ms / 1000u);
  its.it_value.tv_nsec = (long)(at_ms % 1000u) * 1000000L;
  if (at_ms == 0) its.it_value.tv_nsec = 1; /* 0 would disarm it */
  return timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0 ? 0 : -errno;
}

/* CLOCK_MONOTONIC in milliseconds: the clock of every deadline in the core. */
uint64_t sys_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Asks for transparent huge pages over the whole pages inside [p, p + len), so that filling a large
 * fresh buffer takes a page fault per 2 MiB instead of per 4 KiB. Advice only: errors are ignored. */
void sys_advise_huge(void *p, size_t len) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t from = ((uintptr_t)p + page - 1u) & ~(page - 1u);
  uintptr_t to = ((uintptr_t)p + len) & ~(page - 1u);
  if (to > from) (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
}

/* An fd held in reserve: released to accept (and drop) a connection when out of fds. */
int sys_open_spare(void) { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

/* close(2) that is not retried on EINTR: on Linux the fd is released either way. */
void sys_close(int fd) {
  if (fd >= 0) (void)close(fd);
}

int gev_fd_close(int fd) { return fd >= 0 && close(fd) == 0 ? 0 : -errno; }

void gev_addr_encode(uint32_t *s, const struct sockaddr *sa, socklen_t len) {
  memset(s, 0, GEV_ADDR_U32 * sizeof(uint32_t));
  if (sa == NULL || len < sizeof(sa_family_t)) return;
  if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    s[0] = GEV_ADDR_INET4;
    s[1] = ntohs(in->sin_port);
    memcpy(&s[4], &in->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    s[0] = GEV_ADDR_INET6;
    s[1] = ntohs(in6->sin6_port);
    s[2] = in6->sin6_flowinfo;
    s[3] = in6->sin6_scope_id;
    memcpy(&s[4], &in6->sin6_addr, 16);
  } else if (sa->sa_family == AF_UNIX) {
    s[0] = GEV_ADDR_UNIX;
  }
}

socklen_t gev_addr_decode(const uint32_t *s, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (s[0] == GEV_ADDR_INET4) {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)s[1]);
    memcpy(&in->sin_addr, &s[4], 4);
    return sizeof *in;
  }
  if (s[0] == GEV_ADDR_INET6) {
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
