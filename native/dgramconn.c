/*
 * Dialled UDP connections (gev_conn_connect_udp, see gev.h): a connected datagram socket that lives
 * in the connection table with GEV_C_DGRAM set, so that JS handles it as any other connection
 * (OPEN, DATA, CLOSE, the same commands), while every read and write keeps datagram boundaries.
 *
 *   conn.c   gev_conn_on_event hands every event of such a connection to gev_dgram_on_event;
 *            close, pause, watch and the table itself are conn.c's, unchanged. Its queue stays
 *            empty, so EPOLLOUT is never wanted.
 *   flush.c  run_send hands a run of writes to gev_dgram_send, which sends each buffer as one
 *            datagram (sendmmsg); END closes.
 *
 * Receive: recvmmsg straight into the in arena, as udp.c does for listeners, one DATA record per
 * datagram. A connected socket only takes datagrams from its peer, so no address is carried. An
 * ICMP error for an earlier datagram (port unreachable, host unreachable) is reported by the kernel
 * as the errno of the next receive or send: the connection closes with it.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* Datagrams read per connection per wake-up: the rest waits for the next fill (level-triggered). */
#define GEV_DGRAM_READ_BUDGET GEV_UDP_BATCH

int gev_conn_connect_udp(gev_loop *loop, int family, const char *host, int port, const char *local_host, int local_port,
                         uint32_t origin, uint32_t *id_out) {
  struct sockaddr_storage ss, ls;
  socklen_t len = 0, local_len = 0;
  int bind_local = local_host[0] != '\0' || local_port != 0;
  int rc = gev_addr_parse(family, host, port, &ss, &len);
  if (rc == 0 && bind_local) rc = gev_addr_parse(family, local_host, local_port, &ls, &local_len);
  if (rc != 0) return rc;
  int fd = sys_socket(ss.ss_family, SOCK_DGRAM);
  if (fd < 0) return fd;
  if (bind_local) rc = sys_bind(fd, (struct sockaddr *)&ls, local_len);
  if (rc == 0) rc = sys_connect(fd, (struct sockaddr *)&ss, len);
  origin |= GEV_ORIGIN_DIAL;
  if (rc == 0) rc = gev_conn_add(loop, fd, origin, 0, id_out);
  if (rc != 0) {
    sys_close(fd);
    return rc;
  }
  gev_conn *c = gev_conn_get(loop, *id_out);
  c->flags |= GEV_C_DGRAM;
  uint32_t addr[GEV_ADDR_U32];
  sys_peer_addr(fd, addr);
  gev_loop_emit(loop, GEV_REC_OPEN, *id_out, origin, 0, addr);
  return 0;
}

/* Reads datagrams until EAGAIN, the budget or a full arena. Returns -1 when it closed. */
static int dgram_read(gev_loop *loop, gev_conn *c, uint32_t id) {
  struct mmsghdr msgs[GEV_UDP_BATCH];
  struct iovec iov[GEV_UDP_BATCH];
  size_t slot = loop->udp_slot;
  if (c->read_epoch != loop->epoch) {
    c->read_epoch = loop->epoch;
    c->read_used = 0;
  }
  for (;;) {
    size_t pos = loop->in_byte_pos;
    size_t k = pos < loop->in_size ? (loop->in_size - pos) / slot : 0;
    size_t left = GEV_DGRAM_READ_BUDGET - c->read_used;
    if (k > left) k = left;
    if (k > GEV_UDP_BATCH) k = GEV_UDP_BATCH;
    while (k > 0 && !gev_loop_room(loop, (uint32_t)k)) k--;
    if (k == 0) return 0;
    memset(msgs, 0, k * sizeof msgs[0]);
    for (size_t i = 0; i < k; i++) {
      iov[i].iov_base = loop->in8 + pos + i * slot;
      iov[i].iov_len = slot;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = sys_recvmmsg(c->fd, msgs, (unsigned)k);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      gev_conn_close(loop, c, errno);
      return -1;
    }
    if (n == 0) return 0;
    size_t w = pos;
    for (int i = 0; i < n; i++) {
      size_t dlen = msgs[i].msg_len;
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        loop->dgram_truncated++;
        continue;
      }
      uint8_t *src = loop->in8 + pos + (size_t)i * slot;
      if (src != loop->in8 + w && dlen > 0) memmove(loop->in8 + w, src, dlen);
      uint32_t *rec = gev_loop_record(loop, 1);
      rec[0] = GEV_REC_DATA;
      rec[1] = id;
      rec[2] = (uint32_t)w;
      rec[3] = (uint32_t)dlen;
      w += dlen;
    }
    loop->in_byte_pos = w;
    c->read_used += (uint32_t)n;
    if ((size_t)n < k) return 0;
  }
}

void gev_dgram_on_event(gev_loop *loop, gev_conn *c, uint32_t id, uint32_t ev) {
  if ((ev & (EPOLLIN | EPOLLERR)) && !(c->flags & (GEV_C_CLOSING | GEV_C_PAUSED))) {
    if (dgram_read(loop, c, id) != 0) return;
  }
  /* Paused (or the arena full), an ICMP error still polls as EPOLLERR, which cannot be masked:
   * SO_ERROR takes it, so it is reported once. */
  if (ev & EPOLLERR) {
    int err = sys_so_error(c->fd);
    if (err != 0) gev_conn_close(loop, c, err);
  }
}

/* Sends each of iov[0..iovcnt) as one datagram, in order. */
void gev_dgram_send(gev_loop *loop, gev_conn *c, const struct iovec *iov, int iovcnt) {
  struct mmsghdr msgs[GEV_UDP_BATCH];
  int off = 0;
  if (c->flags & GEV_C_CLOSING) return;
  while (off < iovcnt) {
    int k = iovcnt - off;
    if (k > (int)GEV_UDP_BATCH) k = (int)GEV_UDP_BATCH;
    memset(msgs, 0, (size_t)k * sizeof msgs[0]);
    for (int i = 0; i < k; i++) {
      msgs[i].msg_hdr.msg_iov = (struct iovec *)&iov[off + i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r = sys_sendmmsg(c->fd, msgs, (unsigned)k);
    if (r > 0) {
      off += r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      loop->dgram_send_dropped += (uint64_t)(iovcnt - off);
      return;
    }
    if (r == 0 || errno == EMSGSIZE) {
      loop->dgram_send_dropped++;
      off++;
      continue;
    }
    gev_conn_close(loop, c, errno);
    return;
  }
}
