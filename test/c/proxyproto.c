/*
 * The PROXY protocol parser (native/proxyproto.c) against the spec's examples and its error cases,
 * every strict prefix of a valid header (always INCOMPLETE, never an error), and random bytes and
 * random mutations of valid headers (never a read past the input: each input lives in a heap block
 * of its exact size, so the sanitizer build sees any overrun). Prints one line per group; exit 1
 * on the first failure. `proxyproto --parse` instead parses its standard input once and prints the
 * result as one line of JSON (for tests that capture headers from real senders).
 */
#include "harness.h"
#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define MAX_V2 4096u

/* Parses a heap copy of exactly n bytes, so an overrun is a sanitizer report. */
static ssize_t parse(const void *bytes, size_t n, gev_pp_header *h) {
  uint8_t *copy = malloc(n ? n : 1);
  CHECK(copy != NULL, "malloc");
  memcpy(copy, bytes, n);
  ssize_t r = gev_pp_parse(copy, n, MAX_V2, h);
  free(copy);
  return r;
}

static ssize_t parse_text(const char *s, gev_pp_header *h) { return parse(s, strlen(s), h); }

static void expect_inet(const struct sockaddr_storage *ss, const char *host, int port) {
  char text[INET6_ADDRSTRLEN];
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    CHECK(strcmp(text, host) == 0 && ntohs(sin->sin_port) == port, "got %s:%d want %s:%d", text, ntohs(sin->sin_port),
          host, port);
  } else {
    CHECK(ss->ss_family == AF_INET6, "family %d", ss->ss_family);
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
    CHECK(strcmp(text, host) == 0 && ntohs(sin6->sin6_port) == port, "got [%s]:%d want [%s]:%d", text,
          ntohs(sin6->sin6_port), host, port);
  }
}

/* Every strict prefix of a valid header is INCOMPLETE. */
static void expect_prefixes_incomplete(const uint8_t *p, size_t len) {
  gev_pp_header h;
  for (size_t k = 0; k < len; k++) CHECK(parse(p, k, &h) == GEV_PP_INCOMPLETE, "prefix %zu of %zu", k, len);
}

static size_t v2_header(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t body_len) {
  static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  memcpy(out, sig, 12);
  out[12] = ver_cmd;
  out[13] = fam;
  out[14] = (uint8_t)(body_len >> 8);
  out[15] = (uint8_t)body_len;
  memcpy(out + 16, body, body_len);
  return 16 + body_len;
}

static void test_v1(void) {
  gev_pp_header h;
  const char *tcp4 = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
  ssize_t r = parse_text(tcp4, &h);
  CHECK(r == 47, "tcp4 length %zd", r);
  CHECK(h.version == 1 && !h.local, "tcp4 header");
  expect_inet(&h.src, "192.168.0.1", 56324);
  expect_inet(&h.dst, "192.168.0.11", 443);
  expect_prefixes_incomplete((const uint8_t *)tcp4, 47);

  r = parse_text("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n", &h);
  CHECK(r == 36, "tcp6 length %zd", r);
  expect_inet(&h.src, "2001:db8::1", 65535);
  expect_inet(&h.dst, "::1", 0);

  r = parse_text("PROXY UNKNOWN\r\n", &h);
  CHECK(r == 15 && h.local, "unknown short %zd", r);
  r = parse_text("PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n", &h);
  CHECK(r > 0 && h.local, "unknown long %zd", r);

  const char *longest =
      "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  CHECK(strlen(longest) == 104 && parse_text(longest, &h) == 104, "the longest TCP6 line");

  static const char *bad[] = {
      "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n",     /* lone LF */
      "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\rX",    /* CR without LF */
      "PROXY TCP4  192.168.0.1 192.168.0.11 56324 443\r\n",  /* two spaces */
      "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n",  /* trailing space */
      "PROXY TCP4 192.168.0.01 192.168.0.11 56324 443\r\n",  /* leading zero */
      "PROXY TCP4 192.168.0.256 192.168.0.11 56324 443\r\n", /* octet > 255 */
      "PROXY TCP4 192.168.0 192.168.0.11 56324 443\r\n",     /* three parts */
      "PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",   /* port > 65535 */
      "PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",  /* port leading zero */
      "PROXY TCP4 ::1 ::1 1 2\r\n",                          /* v6 under TCP4 */
      "PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",                  /* v4 under TCP6 */
      "PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",                  /* unknown protocol */
      "PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",                    /* four fields */
      "PROXY UNKNOWNX\r\n",                                  /* not UNKNOWN */
      "PROXY \r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    r = parse_text(bad[i], &h);
    CHECK(r == GEV_PP_E_V1_SYNTAX, "bad v1 #%zu gave %zd", i, r);
  }

  char over[200];
  memset(over, 'x', sizeof over);
  memcpy(over, "PROXY UNKNOWN ", 14);
  CHECK(parse(over, 106, &h) == GEV_PP_INCOMPLETE, "106 bytes with no CRLF wait");
  CHECK(parse(over, 107, &h) == GEV_PP_E_TOO_LONG, "107 bytes with no CRLF");
  CHECK(parse(over, 200, &h) == GEV_PP_E_TOO_LONG, "200 bytes with no CRLF");
  over[106] = '\r';
  CHECK(parse(over, 107, &h) == GEV_PP_E_TOO_LONG, "CRLF past 107 bytes");
  over[105] = '\r';
  over[106] = '\n';
  CHECK(parse(over, 107, &h) == 107 && h.local, "UNKNOWN line of exactly 107 bytes");

  CHECK(parse_text("GET / HTTP/1.1\r\n", &h) == GEV_PP_E_SIGNATURE, "HTTP is refused");
  CHECK(parse_text("P", &h) == GEV_PP_INCOMPLETE, "P waits");
  CHECK(parse_text("PROXx", &h) == GEV_PP_E_SIGNATURE, "PROXx refused at once");
  CHECK(parse_text("PROXY", &h) == GEV_PP_INCOMPLETE, "PROXY waits for its space");
  CHECK(parse_text("PROXYX", &h) == GEV_PP_E_SIGNATURE, "PROXYX refused");
  puts("v1: examples, limits and refusals ok");
}

static void test_v2(void) {
  gev_pp_header h;
  uint8_t buf[1024];
  uint8_t body[600];

  /* TCP over IPv4 with two TLVs, then payload. */
  uint8_t v4[] = {127, 0, 0, 1, 10, 0, 0, 2, 0x1F, 0x90, 0x01, 0xBB, /* TLVs: */ 0x01, 0, 2, 'h', '2', 0x04, 0, 0};
  size_t len = v2_header(buf, 0x21, 0x11, v4, sizeof v4);
  memcpy(buf + len, "payload", 7);
  ssize_t r = parse(buf, len + 7, &h);
  CHECK(r == (ssize_t)len, "v4 length %zd of %zu", r, len);
  CHECK(h.version == 2 && !h.local && !h.dgram, "v4 flags");
  expect_inet(&h.src, "127.0.0.1", 8080);
  expect_inet(&h.dst, "10.0.0.2", 443);
  CHECK(h.tlv_off == 28 && h.tlv_len == 8, "tlvs at %u+%u", h.tlv_off, h.tlv_len);
  expect_prefixes_incomplete(buf, len);

  /* UDP over IPv6. */
  memset(body, 0, 36);
  body[15] = 1;                                   /* ::1 */
  body[16] = 0x20, body[17] = 0x01, body[31] = 2; /* 2001::2 */
  body[32] = 0, body[33] = 53, body[34] = 0x13, body[35] = 0x88;
  len = v2_header(buf, 0x21, 0x22, body, 36);
  r = parse(buf, len, &h);
  CHECK(r == 52 && h.dgram, "v6 dgram %zd", r);
  expect_inet(&h.src, "::1", 53);
  expect_inet(&h.dst, "2001::2", 5000);

  /* Unix stream. */
  memset(body, 0, 216);
  strcpy((char *)body, "/run/client.sock");
  strcpy((char *)body + 108, "/run/server.sock");
  len = v2_header(buf, 0x21, 0x31, body, 216);
  r = parse(buf, len, &h);
  CHECK(r == 232 && h.src.ss_family == AF_UNIX, "unix %zd", r);
  CHECK(strcmp(((struct sockaddr_un *)&h.dst)->sun_path, "/run/server.sock") == 0, "unix destination");

  /* LOCAL: addresses ignored whatever the family, length still skipped. */
  len = v2_header(buf, 0x20, 0x00, body, 0);
  CHECK(parse(buf, len, &h) == 16 && h.local, "LOCAL with no address");
  len = v2_header(buf, 0x20, 0x11, body, 5);
  CHECK(parse(buf, len, &h) == 21 && h.local, "LOCAL with a short body is skipped whole");
  /* PROXY over UNSPEC: the real endpoints. */
  len = v2_header(buf, 0x21, 0x00, body, 3);
  CHECK(parse(buf, len, &h) == 19 && h.local, "PROXY over UNSPEC");

  len = v2_header(buf, 0x11, 0x11, v4, 12);
  CHECK(parse(buf, len, &h) == GEV_PP_E_VERSION, "version 1 nibble");
  CHECK(parse(buf, 13, &h) == GEV_PP_E_VERSION, "version refused at byte 13");
  len = v2_header(buf, 0x22, 0x11, v4, 12);
  CHECK(parse(buf, len, &h) == GEV_PP_E_COMMAND, "command 2");
  len = v2_header(buf, 0x21, 0x41, v4, 12);
  CHECK(parse(buf, 14, &h) == GEV_PP_E_FAMILY, "family 4");
  len = v2_header(buf, 0x21, 0x13, v4, 12);
  CHECK(parse(buf, len, &h) == GEV_PP_E_FAMILY, "protocol 3");
  len = v2_header(buf, 0x21, 0x21, v4, 12);
  CHECK(parse(buf, 16, &h) == GEV_PP_E_ADDRESS_LEN, "IPv6 in 12 bytes refused on the fixed part");
  len = v2_header(buf, 0x21, 0x11, v4, 14);
  CHECK(parse(buf, len, &h) == GEV_PP_E_TLV, "a TLV cut after its type");
  uint8_t bad_tlv[] = {127, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2, 0x05, 0, 9, 'x'};
  len = v2_header(buf, 0x21, 0x11, bad_tlv, sizeof bad_tlv);
  CHECK(parse(buf, len, &h) == GEV_PP_E_TLV, "a TLV longer than the header");

  uint8_t big[16];
  v2_header(big, 0x21, 0x11, v4, 0);
  big[14] = 0x10, big[15] = 0x00; /* 16 + 4096 > MAX_V2 */
  CHECK(parse(big, 16, &h) == GEV_PP_E_TOO_LONG, "a header above the cap is refused before it arrives");
  puts("v2: families, LOCAL, refusals ok");
}

/* Random input never reads out of bounds and never answers a length past the input. */
static void test_random(void) {
  gev_pp_header h;
  uint8_t buf[300];
  uint32_t seed = 12345;
  unsigned headers = 0;
  for (int round = 0; round < 200000; round++) {
    seed = seed * 1103515245u + 12345u;
    size_t n = (seed >> 8) % sizeof buf;
    for (size_t i = 0; i < n; i++) {
      seed = seed * 1103515245u + 12345u;
      buf[i] = (uint8_t)(seed >> 16);
    }
    /* Half the rounds start from a valid header with a few bytes flipped. */
    if (round & 1) {
      static const char *valid = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
      uint8_t v4[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2};
      if (round & 2) {
        size_t k = strlen(valid);
        memcpy(buf, valid, k < n ? k : n);
      } else if (n >= 28) {
        v2_header(buf, 0x21, 0x11, v4, sizeof v4);
      }
      seed = seed * 1103515245u + 12345u;
      if (n > 0) buf[(seed >> 8) % n] ^= (uint8_t)(1u << ((seed >> 4) & 7));
    }
    ssize_t r = parse(buf, n, &h);
    CHECK(r <= (ssize_t)n, "length %zd past input %zu", r, n);
    CHECK(r >= GEV_PP_E_TLV, "unknown status %zd", r);
    if (r > 0) headers++;
  }
  printf("random: 200000 inputs, %u headers, no overrun\n", headers);
}

static void print_addr(const char *name, const struct sockaddr_storage *ss) {
  char text[INET6_ADDRSTRLEN];
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    printf(",\"%s\":{\"host\":\"%s\",\"port\":%d}", name, text, ntohs(sin->sin_port));
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
    printf(",\"%s\":{\"host\":\"%s\",\"port\":%d}", name, text, ntohs(sin6->sin6_port));
  } else if (ss->ss_family == AF_UNIX) {
    printf(",\"%s\":{\"pathLength\":%zu}", name, strlen(((const struct sockaddr_un *)ss)->sun_path));
  }
}

/* Parses standard input (at most 64 KiB) and prints {"status"|"length", ...} as JSON. */
static int parse_stdin(void) {
  static uint8_t in[65536];
  size_t n = fread(in, 1, sizeof in, stdin);
  gev_pp_header h;
  ssize_t r = parse(in, n, &h);
  if (r <= 0) {
    printf("{\"status\":%zd}\n", r);
    return 0;
  }
  printf("{\"length\":%zd,\"version\":%u,\"local\":%s,\"dgram\":%s,\"tlvOffset\":%u,\"tlvLength\":%u", r, h.version,
         h.local ? "true" : "false", h.dgram ? "true" : "false", h.tlv_off, h.tlv_len);
  if (!h.local) {
    print_addr("source", &h.src);
    print_addr("destination", &h.dst);
  }
  puts("}");
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--parse") == 0) return parse_stdin();
  test_v1();
  test_v2();
  test_random();
  puts("proxyproto: ok");
  return 0;
}
