/*
 * PROXY protocol listeners (proxyaccept.c) through the core alone, on loopback, with plain blocking
 * sockets as the balancer. Exits 0 only if every case behaves as gev_proto.h and proxyaccept.c say:
 *   1. v1 header + payload: PROXY (v1, no TLVs) + the destination, OPEN with the header's source,
 *      DATA with exactly the payload; gev_conn_sockname reports the destination;
 *   2. v2 with TLVs: the PROXY record's TLV bytes are the header's;
 *   3. a header split across two writes: nothing after the first, OPEN after the second;
 *   4. garbage: PROXY_REFUSED SIGNATURE with the socket's peer, no OPEN, the client sees the close;
 *   5. a client that sends nothing: PROXY_REFUSED TIMEOUT after the deadline (a 50 ms loop);
 *   6. a client that closes mid-header: PROXY_REFUSED CLOSED;
 *   7. a v2 LOCAL header: OPEN with the socket's real peer, the PROXY_LOCAL bit, real local address;
 *   8. an adopted fd with GEV_LISTEN_PROXY: its header is read by the adopting loop;
 *   9. gev_loop_stop_all with a header pending: closed with no record at all; gev_loop_free with one
 *      pending frees it.
 * No connection stays live at the end, and every fd the cases opened is closed.
 */
#include "harness.h"

#include <poll.h>
#include <sys/time.h>

#define ORIGIN 3u

typedef struct {
  int opened, proxied, refused, closed, data_len;
  uint32_t id, origin, info, reason;
  uint32_t src[GEV_ADDR_U32], dst[GEV_ADDR_U32], peer[GEV_ADDR_U32];
  uint8_t tlv[256];
  uint32_t tlv_len;
  char data[4096];
} seen;

static void on_record(const uint32_t *r, void *arg) {
  seen *s = arg;
  if (r[0] == GEV_REC_PROXY) {
    s->proxied++;
    s->id = r[1];
    s->info = r[2];
    memcpy(s->dst, r + GEV_SLOT_U32, sizeof s->dst);
    s->tlv_len = r[2] >> GEV_PROXY_TLV_SHIFT;
    CHECK(s->tlv_len <= sizeof s->tlv, "TLVs fit the test's buffer"); /* pump copies them */
  } else if (r[0] == GEV_REC_OPEN) {
    CHECK(s->proxied == s->opened + 1 && r[1] == s->id, "PROXY comes right before OPEN, same id");
    s->opened++;
    s->origin = r[2];
    memcpy(s->src, r + GEV_SLOT_U32, sizeof s->src);
  } else if (r[0] == GEV_REC_PROXY_REFUSED) {
    s->refused++;
    s->origin = r[1];
    s->reason = r[2];
    memcpy(s->peer, r + GEV_SLOT_U32, sizeof s->peer);
  } else if (r[0] == GEV_REC_CLOSE) {
    s->closed++;
  }
}

/* Waits for the loop's fd (up to 100 ms), runs one fill and hands its records to `s`. */
static void pump(gev_loop *loop, seen *s) {
  struct pollfd p = {gev_loop_fd(loop), POLLIN, 0};
  (void)poll(&p, 1, 100);
  uint32_t n = gev_loop_fill(loop);
  const uint32_t *recs = h_arena_records(loop);
  h_each_record(recs, n, on_record, s);
  for (uint32_t i = 0; i < n; i += gev_rec_slots(recs[(size_t)i * GEV_SLOT_U32])) {
    const uint32_t *r = recs + (size_t)i * GEV_SLOT_U32;
    if (r[0] == GEV_REC_PROXY && (r[2] >> GEV_PROXY_TLV_SHIFT) > 0) {
      memcpy(s->tlv, loop->in8 + r[3], r[2] >> GEV_PROXY_TLV_SHIFT);
    } else if (r[0] == GEV_REC_DATA) {
      CHECK(s->data_len + (int)r[3] <= (int)sizeof s->data, "DATA fits");
      memcpy(s->data + s->data_len, loop->in8 + r[2], r[3]);
      s->data_len += (int)r[3];
    }
  }
}

#define PUMP_UNTIL(loop, s, done)                                 \
  do {                                                            \
    for (int i_ = 0; i_ < 50 && !(done); i_++) pump((loop), (s)); \
    CHECK((done), "timed out waiting for %s", #done);             \
  } while (0)

static int listen_proxy(gev_loop *loop, int *port) {
  int slot = gev_listen_tcp(loop, 4, "127.0.0.1", 0, GEV_LISTEN_PROXY, ORIGIN);
  CHECK(slot >= 0, "gev_listen_tcp: %s", strerror(-slot));
  uint32_t a[GEV_ADDR_U32];
  CHECK(gev_listener_sockname(loop, (uint32_t)slot, a) == 0, "sockname");
  *port = (int)a[1];
  return slot;
}

static int client(int port) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0, "socket");
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s", strerror(errno));
  struct timeval tv = {2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static int local_port(int fd) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0, "getsockname");
  return ntohs(sa.sin_port);
}

static void send_all(int fd, const void *p, size_t n) { CHECK(write(fd, p, n) == (ssize_t)n, "write"); }

/* The client sees its connection closed: EOF or a reset. */
static void expect_closed(int fd) {
  char b;
  ssize_t r = recv(fd, &b, 1, 0);
  CHECK(r == 0 || (r < 0 && errno == ECONNRESET), "the client sees the close (%zd, %s)", r, strerror(errno));
}

static void check_inet4(const uint32_t *a, const char *host, int port, const char *what) {
  struct in_addr want;
  inet_pton(AF_INET, host, &want);
  CHECK(a[0] == GEV_ADDR_INET4 && (int)a[1] == port && memcmp(&a[4], &want, 4) == 0, "%s is %s:%d (family %u port %u)",
        what, host, port, a[0], a[1]);
}

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A v2 PROXY TCP4 header 192.0.2.7:5555 -> 203.0.113.9:8443 followed by `tlvs`. */
static size_t v2_header(uint8_t *out, const uint8_t *tlvs, size_t tlv_len) {
  const uint8_t addrs[12] = {192, 0, 2, 7, 203, 0, 113, 9, 0x15, 0xB3, 0x20, 0xFB};
  memcpy(out, v2_sig, 12);
  out[12] = 0x21;
  out[13] = 0x11;
  out[14] = (uint8_t)((12 + tlv_len) >> 8);
  out[15] = (uint8_t)(12 + tlv_len);
  memcpy(out + 16, addrs, 12);
  if (tlv_len > 0) memcpy(out + 28, tlvs, tlv_len);
  return 28 + tlv_len;
}

static void v1_payload(gev_loop *loop, int port) {
  seen s = {0};
  int fd = client(port);
  const char msg[] = "PROXY TCP4 192.0.2.1 198.51.100.2 1234 443\r\nhello";
  send_all(fd, msg, sizeof msg - 1);
  PUMP_UNTIL(loop, &s, s.opened == 1 && s.data_len == 5);
  CHECK(s.origin == ORIGIN, "OPEN carries the listener's origin");
  CHECK((s.info & 0xFF) == 1 && !(s.info & GEV_PROXY_LOCAL) && s.tlv_len == 0, "v1, PROXY command, no TLVs");
  check_inet4(s.src, "192.0.2.1", 1234, "OPEN's peer");
  check_inet4(s.dst, "198.51.100.2", 443, "PROXY's destination");
  CHECK(memcmp(s.data, "hello", 5) == 0, "DATA is the payload alone");
  uint32_t a[GEV_ADDR_U32];
  CHECK(gev_conn_sockname(loop, s.id, a) == 0, "sockname");
  check_inet4(a, "198.51.100.2", 443, "gev_conn_sockname");
  h_command(loop, GEV_OP_WRITE, s.id, "ok", 2, 0);
  gev_flush(loop, NULL, 0);
  char b[2];
  CHECK(recv(fd, b, 2, MSG_WAITALL) == 2 && memcmp(b, "ok", 2) == 0, "writes reach the client");
  close(fd);
  h_command(loop, GEV_OP_CLOSE, s.id, NULL, 0, 0);
  gev_flush(loop, NULL, 0);
  PUMP_UNTIL(loop, &s, s.closed == 1);
  printf("v1: OPEN from the header's source, DATA the payload\n");
}

static void v2_tlvs(gev_loop *loop, int port) {
  seen s = {0};
  uint8_t hdr[128];
  const uint8_t tlvs[] = {0x01, 0x00, 0x02, 'h', '2', 0x04, 0x00, 0x00, 0xE0, 0x00, 0x01, 0x7F};
  size_t n = v2_header(hdr, tlvs, sizeof tlvs);
  int fd = client(port);
  send_all(fd, hdr, n);
  send_all(fd, "xyz", 3);
  PUMP_UNTIL(loop, &s, s.opened == 1 && s.data_len == 3);
  CHECK((s.info & 0xFF) == 2 && !(s.info & GEV_PROXY_LOCAL), "v2 PROXY");
  CHECK(s.tlv_len == sizeof tlvs && memcmp(s.tlv, tlvs, sizeof tlvs) == 0, "the TLV bytes, %u of them", s.tlv_len);
  check_inet4(s.src, "192.0.2.7", 5555, "OPEN's peer");
  check_inet4(s.dst, "203.0.113.9", 8443, "PROXY's destination");
  close(fd);
  h_command(loop, GEV_OP_CLOSE, s.id, NULL, 0, 0);
  gev_flush(loop, NULL, 0);
  PUMP_UNTIL(loop, &s, s.closed == 1);
  printf("v2: %u TLV bytes\n", s.tlv_len);
}

static void split(gev_loop *loop, int port) {
  seen s = {0};
  uint8_t hdr[128];
  size_t n = v2_header(hdr, NULL, 0);
  int fd = client(port);
  send_all(fd, hdr, 10);
  for (int i = 0; i < 3; i++) pump(loop, &s);
  CHECK(s.opened == 0 && s.refused == 0 && loop->proxy_pending == 1, "a prefix waits");
  send_all(fd, hdr + 10, n - 10);
  PUMP_UNTIL(loop, &s, s.opened == 1);
  CHECK(s.data_len == 0 && loop->proxy_pending == 0, "no DATA, nothing pending");
  close(fd);
  h_command(loop, GEV_OP_CLOSE, s.id, NULL, 0, 0);
  gev_flush(loop, NULL, 0);
  PUMP_UNTIL(loop, &s, s.closed == 1);
  printf("split header: waited, then opened\n");
}

static void refused(gev_loop *loop, int port, const char *bytes, uint32_t reason, const char *what) {
  seen s = {0};
  int fd = client(port);
  int cport = local_port(fd);
  if (bytes[0] != '\0') send_all(fd, bytes, strlen(bytes));
  if (reason == GEV_PROXY_E_CLOSED) close(fd);
  PUMP_UNTIL(loop, &s, s.refused == 1);
  CHECK(s.reason == reason, "%s: reason %u, not %u", what, s.reason, reason);
  CHECK(s.opened == 0 && s.proxied == 0 && s.closed == 0, "%s: no OPEN, no CLOSE", what);
  CHECK(s.origin == ORIGIN, "the listener's origin");
  check_inet4(s.peer, "127.0.0.1", cport, "the refused peer");
  if (reason != GEV_PROXY_E_CLOSED) {
    expect_closed(fd);
    close(fd);
  }
  CHECK(loop->live == 0 && loop->proxy_pending == 0, "%s: nothing live or pending", what);
  printf("%s: refused with %u\n", what, reason);
}

static void timeout(void) {
  gev_loop *loop = h_loop_new();
  gev_loop_configure(loop, 1, GEV_UDP_SLOT, 50);
  int port;
  listen_proxy(loop, &port);
  struct timeval t0, t1;
  gettimeofday(&t0, NULL);
  refused(loop, port, "", GEV_PROXY_E_TIMEOUT, "silent client");
  gettimeofday(&t1, NULL);
  long ms = (t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_usec - t0.tv_usec) / 1000L;
  CHECK(ms >= 45, "not before the deadline (%ld ms)", ms);
  seen s = {0};
  int fd = client(port);
  PUMP_UNTIL(loop, &s, loop->proxy_pending == 1);
  h_loop_free(loop); /* frees a pending connection's state too (checked under the sanitizers) */
  expect_closed(fd);
  close(fd);
}

static void local_header(gev_loop *loop, int port) {
  seen s = {0};
  uint8_t hdr[16];
  memcpy(hdr, v2_sig, 12);
  hdr[12] = 0x20;
  hdr[13] = 0x00;
  hdr[14] = 0;
  hdr[15] = 0;
  int fd = client(port);
  int cport = local_port(fd);
  send_all(fd, hdr, sizeof hdr);
  PUMP_UNTIL(loop, &s, s.opened == 1);
  CHECK((s.info & GEV_PROXY_LOCAL) && (s.info & 0xFF) == 2 && s.tlv_len == 0, "v2 LOCAL");
  CHECK(s.dst[0] == GEV_ADDR_NONE, "no destination for LOCAL");
  check_inet4(s.src, "127.0.0.1", cport, "OPEN's peer is the socket's");
  uint32_t a[GEV_ADDR_U32];
  CHECK(gev_conn_sockname(loop, s.id, a) == 0, "sockname");
  check_inet4(a, "127.0.0.1", port, "the real local address");
  close(fd);
  h_command(loop, GEV_OP_CLOSE, s.id, NULL, 0, 0);
  gev_flush(loop, NULL, 0);
  PUMP_UNTIL(loop, &s, s.closed == 1);
  printf("LOCAL: the socket's own addresses\n");
}

static void adopted(gev_loop *loop) {
  seen s = {0};
  int mine, peer;
  h_tcp_pair(&mine, &peer, 0, 0);
  uint32_t id;
  CHECK(gev_conn_adopt(loop, mine, ORIGIN, GEV_LISTEN_PROXY, &id) == 0, "adopt");
  for (int i = 0; i < 2; i++) pump(loop, &s);
  CHECK(s.opened == 0 && loop->proxy_pending == 1, "no OPEN before the header");
  const char msg[] = "PROXY TCP4 10.1.2.3 10.4.5.6 7 8\r\n";
  send_all(peer, msg, sizeof msg - 1);
  PUMP_UNTIL(loop, &s, s.opened == 1);
  CHECK(s.id == id, "the adopted id opens");
  check_inet4(s.src, "10.1.2.3", 7, "adopted OPEN's peer");
  close(peer);
  h_command(loop, GEV_OP_CLOSE, s.id, NULL, 0, 0);
  gev_flush(loop, NULL, 0);
  PUMP_UNTIL(loop, &s, s.closed == 1);
  printf("adopted: the adopting loop read the header\n");
}

static void stop_with_pending(void) {
  gev_loop *loop = h_loop_new();
  seen s = {0};
  int port;
  listen_proxy(loop, &port);
  int fd = client(port);
  PUMP_UNTIL(loop, &s, loop->proxy_pending == 1);
  uint32_t n = gev_loop_stop_all(loop);
  h_each_record(h_arena_records(loop), n, on_record, &s);
  CHECK(s.refused == 0 && s.closed == 0 && s.opened == 0, "no record for a pending header");
  CHECK(loop->live == 0 && loop->proxy_pending == 0, "closed");
  expect_closed(fd);
  close(fd);
  h_loop_free(loop);
  printf("stop_all: the pending connection closed silently\n");
}

int main(void) {
  gev_loop *loop = h_loop_new();
  int port;
  listen_proxy(loop, &port);
  v1_payload(loop, port);
  v2_tlvs(loop, port);
  split(loop, port);
  refused(loop, port, "GET / HTTP/1.1\r\n\r\n", GEV_PROXY_E_SIGNATURE, "garbage");
  refused(loop, port, "PROXY TCP4 1.2", GEV_PROXY_E_CLOSED, "closed mid-header");
  refused(loop, port, "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", GEV_PROXY_E_V1_SYNTAX, "bad v1 port");
  local_header(loop, port);
  adopted(loop);
  CHECK(loop->live == 0, "no connection left live");
  h_loop_free(loop);
  timeout();
  stop_with_pending();
  printf("all proxy accept cases passed\n");
  return 0;
}
