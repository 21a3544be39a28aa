/*
 * PROXY protocol header parser (see proxyproto.h for the contract).
 *
 *   v1  "PROXY " ("TCP4" | "TCP6") " " src " " dst " " sport " " dport "\r\n"   at most 107 bytes
 *       "PROXY UNKNOWN" [anything but CRLF] "\r\n"                                  (use real ends)
 *   v2  sig[12] ver_cmd fam len_hi len_lo | addresses | TLVs (type, len_hi, len_lo, value)
 *
 * Each step checks only bytes that have arrived, so a bad first byte is refused at once and a
 * short read is answered GEV_PP_INCOMPLETE.
 */
#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

static const uint8_t v1_sig[6] = {'P', 'R', 'O', 'X', 'Y', ' '};
static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* One decimal port: 1 to 5 digits, no leading zero unless it is "0", at most 65535. */
static int v1_port(const uint8_t *s, size_t len, uint16_t *out) {
  if (len == 0 || len > 5 || (len > 1 && s[0] == '0')) return -1;
  uint32_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10u + (uint32_t)(s[i] - '0');
  }
  if (v > 65535u) return -1;
  *out = (uint16_t)v;
  return 0;
}

/* Dotted decimal: exactly four parts, each 0..255 with no leading zero. */
static int v1_ipv4(const uint8_t *s, size_t len, struct in_addr *out) {
  uint8_t b[4];
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    size_t start = i;
    uint32_t v = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 3) v = v * 10u + (uint32_t)(s[i++] - '0');
    size_t digits = i - start;
    if (digits == 0 || v > 255u || (digits > 1 && s[start] == '0')) return -1;
    b[part] = (uint8_t)v;
    if (part < 3) {
      if (i >= len || s[i] != '.') return -1;
      i++;
    }
  }
  if (i != len) return -1;
  memcpy(out, b, 4);
  return 0;
}

/* Hex groups and colons (an IPv4 tail allowed), as inet_pton reads them. */
static int v1_ipv6(const uint8_t *s, size_t len, struct in6_addr *out) {
  char text[INET6_ADDRSTRLEN];
  if (len == 0 || len >= sizeof text) return -1;
  for (size_t i = 0; i < len; i++) {
    uint8_t ch = s[i];
    int ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.';
    if (!ok) return -1;
  }
  memcpy(text, s, len);
  text[len] = '\0';
  return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1;
}

static void set_inet(struct sockaddr_storage *ss, socklen_t *len, const struct in_addr *a, uint16_t port) {
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  memset(ss, 0, sizeof *ss);
  sin->sin_family = AF_INET;
  sin->sin_addr = *a;
  sin->sin_port = htons(port);
  *len = sizeof *sin;
}

static void set_inet6(struct sockaddr_storage *ss, socklen_t *len, const struct in6_addr *a, uint16_t port) {
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  memset(ss, 0, sizeof *ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_addr = *a;
  sin6->sin6_port = htons(port);
  *len = sizeof *sin6;
}

static void set_unix(struct sockaddr_storage *ss, socklen_t *len, const uint8_t *field) {
  struct sockaddr_un *sun = (struct sockaddr_un *)ss;
  memset(ss, 0, sizeof *ss);
  sun->sun_family = AF_UNIX;
  size_t n = strnlen((const char *)field, GEV_PP_V2_UNIX_PATH);
  if (n >= sizeof sun->sun_path) n = sizeof sun->sun_path - 1;
  memcpy(sun->sun_path, field, n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

/* The v1 line `s[0..len)` between "PROXY " and CRLF. */
static int v1_fields(const uint8_t *s, size_t len, gev_pp_header *h) {
  if (len >= 7 && memcmp(s, "UNKNOWN", 7) == 0 && (len == 7 || s[7] == ' ')) {
    h->local = 1;
    return 0;
  }
  const uint8_t *f[5];
  size_t fl[5];
  size_t start = 0;
  int nf = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && s[i] != ' ') continue;
    if (nf == 5) return -1;
    f[nf] = s + start;
    fl[nf] = i - start;
    if (fl[nf] == 0) return -1;
    nf++;
    start = i + 1;
  }
  if (nf != 5 || fl[0] != 4) return -1;
  uint16_t sport, dport;
  if (v1_port(f[3], fl[3], &sport) != 0 || v1_port(f[4], fl[4], &dport) != 0) return -1;
  if (memcmp(f[0], "TCP4", 4) == 0) {
    struct in_addr a, b;
    if (v1_ipv4(f[1], fl[1], &a) != 0 || v1_ipv4(f[2], fl[2], &b) != 0) return -1;
    set_inet(&h->src, &h->src_len, &a, sport);
    set_inet(&h->dst, &h->dst_len, &b, dport);
    return 0;
  }
  if (memcmp(f[0], "TCP6", 4) == 0) {
    struct in6_addr a, b;
    if (v1_ipv6(f[1], fl[1], &a) != 0 || v1_ipv6(f[2], fl[2], &b) != 0) return -1;
    set_inet6(&h->src, &h->src_len, &a, sport);
    set_inet6(&h->dst, &h->dst_len, &b, dport);
    return 0;
  }
  return -1;
}

static ssize_t parse_v1(const uint8_t *p, size_t n, gev_pp_header *h) {
  size_t scan = min_size(n, GEV_PP_V1_MAX);
  for (size_t i = sizeof v1_sig; i < scan; i++) {
    if (p[i] == '\n') return GEV_PP_E_V1_SYNTAX;
    if (p[i] != '\r') continue;
    if (i + 1 == n) return i + 1 < GEV_PP_V1_MAX ? GEV_PP_INCOMPLETE : GEV_PP_E_TOO_LONG;
    if (i + 1 >= GEV_PP_V1_MAX || p[i + 1] != '\n')
      return i + 1 >= GEV_PP_V1_MAX ? GEV_PP_E_TOO_LONG : GEV_PP_E_V1_SYNTAX;
    h->version = 1;
    if (v1_fields(p + sizeof v1_sig, i - sizeof v1_sig, h) != 0) return GEV_PP_E_V1_SYNTAX;
    return (ssize_t)(i + 2);
  }
  return n >= GEV_PP_V1_MAX ? GEV_PP_E_TOO_LONG : GEV_PP_INCOMPLETE;
}

static ssize_t parse_v2(const uint8_t *p, size_t n, size_t max_v2, gev_pp_header *h) {
  if (n > 12 && (p[12] >> 4) != 2) return GEV_PP_E_VERSION;
  if (n > 12 && (p[12] & 0x0F) > 1) return GEV_PP_E_COMMAND;
  if (n > 13 && ((p[13] >> 4) > 3 || (p[13] & 0x0F) > 2)) return GEV_PP_E_FAMILY;
  if (n < GEV_PP_V2_FIXED) return GEV_PP_INCOMPLETE;
  size_t body = ((size_t)p[14] << 8) | p[15];
  size_t total = GEV_PP_V2_FIXED + body;
  if (total > max_v2) return GEV_PP_E_TOO_LONG;
  int proxy = (p[12] & 0x0F) == 1;
  unsigned family = p[13] >> 4;
  unsigned proto = p[13] & 0x0F;
  static const size_t addr_len[4] = {0, 12, 36, 2 * GEV_PP_V2_UNIX_PATH};
  size_t need = addr_len[family];
  int use_addrs = proxy && family != 0 && proto != 0;
  if (use_addrs && body < need) return GEV_PP_E_ADDRESS_LEN;
  if (n < total) return GEV_PP_INCOMPLETE;

  h->version = 2;
  h->local = (uint8_t)!use_addrs;
  h->dgram = (uint8_t)(use_addrs && proto == 2);
  if (!use_addrs) return (ssize_t)total;

  const uint8_t *a = p + GEV_PP_V2_FIXED;
  if (family == 1) {
    struct in_addr s, d;
    memcpy(&s, a, 4);
    memcpy(&d, a + 4, 4);
    set_inet(&h->src, &h->src_len, &s, (uint16_t)((a[8] << 8) | a[9]));
    set_inet(&h->dst, &h->dst_len, &d, (uint16_t)((a[10] << 8) | a[11]));
  } else if (family == 2) {
    struct in6_addr s, d;
    memcpy(&s, a, 16);
    memcpy(&d, a + 16, 16);
    set_inet6(&h->src, &h->src_len, &s, (uint16_t)((a[32] << 8) | a[33]));
    set_inet6(&h->dst, &h->dst_len, &d, (uint16_t)((a[34] << 8) | a[35]));
  } else {
    set_unix(&h->src, &h->src_len, a);
    set_unix(&h->dst, &h->dst_len, a + GEV_PP_V2_UNIX_PATH);
  }

  size_t off = GEV_PP_V2_FIXED + need;
  h->tlv_off = (uint32_t)off;
  h->tlv_len = (uint32_t)(total - off);
  while (off < total) {
    if (total - off < 3) return GEV_PP_E_TLV;
    size_t vlen = ((size_t)p[off + 1] << 8) | p[off + 2];
    if (total - off - 3 < vlen) return GEV_PP_E_TLV;
    off += 3 + vlen;
  }
  return (ssize_t)total;
}

ssize_t gev_pp_parse(const uint8_t *p, size_t n, size_t max_v2, gev_pp_header *h) {
  memset(h, 0, sizeof *h);
  if (n == 0) return GEV_PP_INCOMPLETE;
  if (memcmp(p, v2_sig, min_size(n, sizeof v2_sig)) == 0) {
    if (n < sizeof v2_sig) return GEV_PP_INCOMPLETE;
    return parse_v2(p, n, max_v2, h);
  }
  if (memcmp(p, v1_sig, min_size(n, sizeof v1_sig)) == 0) {
    if (n < sizeof v1_sig) return GEV_PP_INCOMPLETE;
    return parse_v1(p, n, h);
  }
  return GEV_PP_E_SIGNATURE;
}
