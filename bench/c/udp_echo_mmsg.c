/*
 * The UDP reference: a single-threaded echo server that moves datagrams in batches of 64.
 *
 *   udp_echo_mmsg PORT   prints "ready" once bound to 0.0.0.0:PORT
 *
 * recvmmsg blocks for the first datagram and takes whatever else is queued (MSG_WAITFORONE);
 * sendmmsg returns each one to its sender, unchanged.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define kBatch         64
#define kDatagramBytes 65536

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: udp_echo_mmsg PORT\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int rcvbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in sa = {
      .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_ANY)};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("bind");

  static char bufs[kBatch][kDatagramBytes];
  static struct sockaddr_storage peers[kBatch];
  static struct iovec iovs[kBatch];
  static struct mmsghdr msgs[kBatch];
  printf("ready\n");
  fflush(stdout);

  for (;;) {
    for (int i = 0; i < kBatch; i++) {
      iovs[i].iov_base = bufs[i];
      iovs[i].iov_len = kDatagramBytes;
      msgs[i].msg_hdr =
          (struct msghdr){.msg_name = &peers[i], .msg_namelen = sizeof peers[i], .msg_iov = &iovs[i], .msg_iovlen = 1};
    }
    int n = recvmmsg(fd, msgs, kBatch, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("recvmmsg");
    }
    for (int i = 0; i < n; i++) iovs[i].iov_len = msgs[i].msg_len;
    for (int sent = 0; sent < n;) {
      int w = sendmmsg(fd, msgs + sent, (unsigned)(n - sent), 0);
      if (w < 0) {
        if (errno == EINTR) continue;
        sent++; /* drop the datagram the kernel refused, as UDP may */
        continue;
      }
      sent += w;
    }
  }
}
