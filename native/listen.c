/*
 * Listening sockets (TCP over IPv4/IPv6/dual stack, unix stream) and accept4.
 *
 * A listener either registers what it accepts as connections (OPEN records) or, in hand-off mode,
 * reports the accepted fd to JS (ACCEPTED records) so an acceptor can pass it to another loop,
 * which registers it with gev_conn_adopt. Both records carry the listener's origin, its JS index.
 * A PROXY protocol listener's connections open only once their header is read (proxyaccept.c); a
 * hand-off one's ACCEPTED record says so (GEV_LISTEN_PROXY), for the adopting loop to read it. A
 * TLS listener's connections open only once their handshake is done (tls.c, over the loop's
 * context, gev_loop_tls); such a listener is neither a PROXY nor a hand-off one.
 * Sockets are made, configured (sys_listen_options, from the GEV_LISTEN_* flags) and accepted in
 * sys.c; every fd is non-blocking and close-on-exec.
 *
 * Accept failures: EINTR is retried, ECONNABORTED and EPROTO (a connection that died in the
 * backlog) are skipped, EAGAIN ends the wake-up. Anything else (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...)
 * emits one ACCEPT_ERROR and parks the listener: its EPOLLIN interest is dropped, so a backlog that
 * stays readable with nothing acceptable cannot spin the loop, and it is re-armed by the loop's
 * timer (GEV_ACCEPT_BACKOFF_MS) or as soon as one of this loop's connections closes. Out of fds,
 * the spare fd is first released to accept and close the oldest waiting connection, so that
 * client hears a close instead of waiting in the backlog.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates a socket of `family` (4 or 6) with the options `flags` asks for. The fd or -errno. */
static int socket_open(int family, int type, uint32_t flags) {
  int af = family == 6 ? AF_INET6 : AF_INET;
  int fd = sys_socket(af, type);
  if (fd < 0) return fd;
  int rc = sys_listen_options(fd, af, type, flags);
  if (rc != 0) {
    sys_close(fd);
    return rc;
  }
  return fd;
}

/*
 * Binds an inet socket. family 0 means dual stack on every interface: [::] with IPV6_V6ONLY off,
 * falling back to 0.0.0.0 when the host has no IPv6. Returns the fd or -errno.
 */
static int bind_inet(int type, int family, const char *host, int port, uint32_t flags) {
  int fam = family == 0 ? 6 : family;
  uint32_t dual = flags & ~(uint32_t)GEV_LISTEN_V6ONLY;
  int fd = socket_open(fam, type, family == 0 ? dual : flags);
  if (fd < 0 && family == 0 && (fd == -EAFNOSUPPORT || fd == -EPROTONOSUPPORT)) {
    fam = 4;
    fd = socket_open(fam, type, dual);
  }
  if (fd < 0) return fd;
  struct sockaddr_storage ss;
  socklen_t len = 0;
  int rc = gev_addr_parse(fam, family == 0 ? "" : host, port, &ss, &len);
  if (rc == 0) rc = sys_bind(fd, (struct sockaddr *)&ss, len);
  if (rc == -EADDRNOTAVAIL && family == 0 && fam == 6) {
    sys_close(fd);
    return bind_inet(type, 4, "", port, dual);
  }
  if (rc != 0) {
    sys_close(fd);
    return rc;
  }
  return fd;
}

/* Puts `fd` in a free listener slot and in epoll. Returns the slot, or -errno (fd closed). */
static int listener_add(gev_loop *loop, int fd, int kind, uint32_t flags, uint32_t origin) {
  uint32_t slot = 0;
  while (slot < GEV_MAX_LISTENERS && loop->ls[slot].kind != GEV_L_FREE) slot++;
  if (slot == GEV_MAX_LISTENERS) {
    sys_close(fd);
    return -EMFILE;
  }
  int rc = sys_epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, EPOLLIN, (GEV_TAG_LISTENER << 32) | slot);
  if (rc != 0) {
    sys_close(fd);
    return rc;
  }
  gev_listener *l = &loop->ls[slot];
  memset(l, 0, sizeof *l);
  l->fd = fd;
  l->kind = kind;
  l->origin = origin;
  l->handoff = kind != GEV_L_UDP && (flags & GEV_LISTEN_HANDOFF) != 0;
  l->proxy = kind != GEV_L_UDP && (flags & GEV_LISTEN_PROXY) != 0;
  l->tls = kind != GEV_L_UDP && (flags & GEV_LISTEN_TLS) != 0;
  return (int)slot;
}

int gev_listen_tcp(gev_loop *loop, int family, const char *host, int port, uint32_t flags, uint32_t origin) {
  if ((flags & GEV_LISTEN_TLS) && (loop->tls_ctx == NULL || (flags & (GEV_LISTEN_PROXY | GEV_LISTEN_HANDOFF))))
    return -EINVAL;
  int fd = bind_inet(SOCK_STREAM, family, host, port, flags);
  if (fd < 0) return fd;
  int rc = sys_listen(fd);
  if (rc != 0) {
    sys_close(fd);
    return rc;
  }
  return listener_add(loop, fd, GEV_L_TCP, flags, origin);
}

int gev_listen_udp(gev_loop *loop, int family, const char *host, int port, uint32_t flags, uint32_t origin) {
  int fd = bind_inet(SOCK_DGRAM, family, host, port, flags);
  if (fd < 0) return fd;
  return listener_add(loop, fd, GEV_L_UDP, flags, origin);
}

/* -EADDRINUSE when a live socket answers at `sa`; 0 after removing a stale one (or if none). */
static int unix_clear_stale(const struct sockaddr_un *sa, const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -errno;
  if (!S_ISSOCK(st.st_mode)) return -EEXIST;
  int live = sys_unix_live(sa);
  if (live < 0) return live;
  if (live) return -EADDRINUSE;
  if (unlink(path) != 0 && errno != ENOENT) return -errno;
  return 0;
}

int gev_listen_unix(gev_loop *loop, const char *path, uint32_t flags, uint32_t origin) {
  struct sockaddr_un sa;
  struct stat st;
  size_t n = strlen(path);
  if ((flags & GEV_LISTEN_TLS) && (loop->tls_ctx == NULL || (flags & (GEV_LISTEN_PROXY | GEV_LISTEN_HANDOFF))))
    return -EINVAL;
  if (n == 0 || n >= sizeof sa.sun_path) return -ENAMETOOLONG;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, n + 1);
  int rc = unix_clear_stale(&sa, path);
  if (rc != 0) return rc;
  int fd = sys_socket(AF_UNIX, SOCK_STREAM);
  if (fd < 0) return fd;
  rc = sys_listen_options(fd, AF_UNIX, SOCK_STREAM, flags);
  if (rc == 0) rc = sys_bind(fd, (struct sockaddr *)&sa, sizeof sa);
  if (rc != 0) {
    sys_close(fd);
    return rc;
  }
  rc = sys_listen(fd);
  if (rc == 0 && stat(path, &st) != 0) rc = -errno;
  if (rc != 0) {
    sys_close(fd);
    unlink(path);
    return rc;
  }
  char *copy = strdup(path);
  if (copy == NULL) {
    sys_close(fd);
    unlink(path);
    return -ENOMEM;
  }
  int slot = listener_add(loop, fd, GEV_L_UNIX, flags, origin);
  if (slot < 0) {
    unlink(path);
    free(copy);
    return slot;
  }
  loop->ls[slot].path = copy;
  loop->ls[slot].dev = st.st_dev;
  loop->ls[slot].ino = st.st_ino;
  return slot;
}

void gev_listener_close(gev_loop *loop, uint32_t slot) {
  if (slot >= GEV_MAX_LISTENERS) return;
  gev_listener *l = &loop->ls[slot];
  if (l->kind == GEV_L_FREE) return;
  if (l->parked) loop->parked--;
  sys_epoll_ctl(loop->epfd, EPOLL_CTL_DEL, l->fd, 0, 0);
  sys_close(l->fd);
  if (l->path != NULL) {
    struct stat st;
    if (stat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino) unlink(l->path);
    free(l->path);
  }
  memset(l, 0, sizeof *l);
  l->fd = -1;
}

int gev_listener_sockname(gev_loop *loop, uint32_t slot, uint32_t *addr8) {
  if (slot >= GEV_MAX_LISTENERS || loop->ls[slot].kind == GEV_L_FREE) return -EBADF;
  return sys_local_addr(loop->ls[slot].fd, addr8);
}

static uint64_t listener_tag(uint32_t slot) { return (GEV_TAG_LISTENER << 32) | slot; }

/* Out of fds: release the spare fd to accept the oldest waiting connection and close it. */
static void shed_one(gev_loop *loop, gev_listener *l) {
  if (loop->spare_fd < 0) return;
  sys_close(loop->spare_fd);
  loop->spare_fd = -1;
  sys_close(sys_accept(l->fd, NULL));
  loop->spare_fd = sys_open_spare();
}

/* Stops watching a listener until the backoff timer fires or a connection closes. */
static void park(gev_loop *loop, uint32_t slot) {
  gev_listener *l = &loop->ls[slot];
  if (l->parked) return;
  if (sys_epoll_ctl(loop->epfd, EPOLL_CTL_MOD, l->fd, 0, listener_tag(slot)) != 0) return;
  l->parked = 1;
  loop->parked++;
  if (loop->unpark_at == 0) loop->unpark_at = sys_now_ms() + GEV_ACCEPT_BACKOFF_MS;
  gev_loop_timer_want(loop, loop->unpark_at);
}

/* Watches every parked listener again; a listener that still cannot accept parks again. */
void gev_listener_unpark_all(gev_loop *loop) {
  if (loop->spare_fd < 0) loop->spare_fd = sys_open_spare();
  for (uint32_t slot = 0; slot < GEV_MAX_LISTENERS && loop->parked > 0; slot++) {
    gev_listener *l = &loop->ls[slot];
    if (l->kind == GEV_L_FREE || !l->parked) continue;
    l->parked = 0;
    loop->parked--;
    sys_epoll_ctl(loop->epfd, EPOLL_CTL_MOD, l->fd, EPOLLIN, listener_tag(slot));
  }
  loop->unpark_at = 0; /* a timer armed for it finds nothing due */
}

/* One ACCEPT_ERROR per listener per wake-up at most. */
static void accept_error(gev_loop *loop, gev_listener *l, int err) {
  if (l->error_epoch == loop->epoch) return;
  l->error_epoch = loop->epoch;
  gev_loop_emit(loop, GEV_REC_ACCEPT_ERROR, l->origin, (uint32_t)err, 0, NULL);
}

void gev_listener_on_event(gev_loop *loop, uint32_t slot) {
  gev_listener *l = &loop->ls[slot];
  if (l->kind == GEV_L_FREE || l->parked) return;
  if (l->kind == GEV_L_UDP) {
    gev_udp_on_event(loop, l);
    return;
  }
  for (uint32_t i = 0; i < GEV_ACCEPT_CAP && gev_loop_room(loop, 1u + GEV_ADDR_SLOTS); i++) {
    uint32_t addr[GEV_ADDR_U32];
    int fd = sys_accept(l->fd, addr);
    if (fd < 0) {
      int err = -fd;
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EMFILE || err == ENFILE) shed_one(loop, l);
      accept_error(loop, l, err);
      park(loop, slot);
      return;
    }
    if (l->handoff) {
      gev_loop_emit(loop, GEV_REC_ACCEPTED, (uint32_t)fd, l->origin, l->proxy ? GEV_LISTEN_PROXY : 0, addr);
      continue;
    }
    uint32_t id;
    int rc = l->proxy ? gev_proxy_accept(loop, fd, l->origin, l->kind == GEV_L_TCP, addr)
             : l->tls ? loop->tls_adopt(loop, fd, l->origin, loop->tls_ctx, &id)
                      : gev_conn_add(loop, fd, l->origin, l->kind == GEV_L_TCP, &id);
    if (rc != 0) {
      sys_close(fd);
      accept_error(loop, l, -rc);
      continue;
    }
    if (l->proxy || l->tls) continue;
    gev_loop_emit(loop, GEV_REC_OPEN, id, l->origin, 0, addr);
  }
}
