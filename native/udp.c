/*
 * Datagrams: recvmmsg straight into the in arena, sendmmsg for the replies a flush queued.
 *
 * Receive: up to GEV_UDP_BATCH slots of loop->udp_slot bytes are laid out from the arena's write
 * position; after the call each datagram is moved down so the payloads end up contiguous. A
 * datagram the kernel flags MSG_TRUNC (larger than its slot) is dropped and counted, never
 * delivered as if complete. Send: datagrams queued during one flush point into the out arena or
 * into caller buffers that stay valid until the flush returns; a full socket buffer drops them
 * (and counts them), as UDP may.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

void gev_udp_on_event(gev_loop *loop, gev_listener *l) {
  struct mmsghdr msgs[GEV_UDP_BATCH];
  struct iovec iov[GEV_UDP_BATCH];
  struct sockaddr_storage from[GEV_UDP_BATCH];
  size_t slot = loop->udp_slot;
  for (int round = 0; round < 4; round++) {
    size_t pos = loop->in_byte_pos;
    size_t k = (loop->in_size - pos) / slot;
    if (k > GEV_UDP_BATCH) k = GEV_UDP_BATCH;
    while (k > 0 && !gev_loop_room(loop, (uint32_t)k * (1u + GEV_ADDR_SLOTS))) k--;
    if (k == 0) return;
    memset(msgs, 0, k * sizeof msgs[0]);
    for (size_t i = 0; i < k; i++) {
      iov[i].iov_base = loop->in8 + pos + i * slot;
      iov[i].iov_len = slot;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = sys_recvmmsg(l->fd, msgs, (unsigned)k);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    size_t w = pos;
    for (int i = 0; i < n; i++) {
      uint32_t addr[GEV_ADDR_U32];
      size_t len = msgs[i].msg_len;
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        loop->dgram_truncated++;
        continue;
      }
      uint8_t *src = loop->in8 + pos + (size_t)i * slot;
      if (src != loop->in8 + w && len > 0) memmove(loop->in8 + w, src, len);
      gev_addr_encode(addr, (struct sockaddr *)&from[i], msgs[i].msg_hdr.msg_namelen);
      gev_loop_emit(loop, GEV_REC_DGRAM, l->origin, (uint32_t)w, (uint32_t)len, addr);
      w += len;
    }
    loop->in_byte_pos = w;
    if ((size_t)n < k) return;
  }
}

/* Sends every queued datagram; the queue is empty afterwards. */
void gev_udp_flush(gev_loop *loop) {
  uint32_t n = loop->udp_n;
  uint32_t off = 0;
  loop->udp_n = 0;
  if (n == 0) return;
  gev_listener *l = &loop->ls[loop->udp_slot_out];
  if (l->kind != GEV_L_UDP) return;
  while (off < n) {
    int r = sys_sendmmsg(l->fd, loop->udp_msgs + off, n - off);
    if (r > 0) {
      off += (uint32_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      loop->dgram_send_dropped += n - off;
      return;
    }
    loop->dgram_send_dropped++;
    off++;
  }
}

/* Queues one datagram from UDP listener `slot` to the address in addr8 (see gev_addr_encode). */
void gev_udp_queue(gev_loop *loop, uint32_t slot, const void *data, size_t len, const uint32_t *addr8) {
  if (slot >= GEV_MAX_LISTENERS || loop->ls[slot].kind != GEV_L_UDP) return;
  if (loop->udp_n > 0 && (loop->udp_slot_out != slot || loop->udp_n == GEV_UDP_BATCH)) gev_udp_flush(loop);
  uint32_t i = loop->udp_n;
  struct mmsghdr *m = &loop->udp_msgs[i];
  socklen_t alen = gev_addr_decode(addr8, &loop->udp_addr[i]);
  if (alen == 0) {
    loop->dgram_send_dropped++;
    return;
  }
  memset(m, 0, sizeof *m);
  loop->udp_iov[i].iov_base = (void *)data;
  loop->udp_iov[i].iov_len = len;
  m->msg_hdr.msg_iov = &loop->udp_iov[i];
  m->msg_hdr.msg_iovlen = 1;
  m->msg_hdr.msg_name = &loop->udp_addr[i];
  m->msg_hdr.msg_namelen = alen;
  loop->udp_slot_out = slot;
  loop->udp_n = i + 1;
}
