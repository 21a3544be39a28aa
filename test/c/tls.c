/*
 * TLS as a gev_io layer (native/tls.c) through the core alone: a connection adopted with
 * gev_tls_adopt on one end of a loopback TCP pair, and on the other an OpenSSL client of this
 * program over memory BIOs, whose ciphertext the test moves to and from the socket itself (so it
 * can feed the server one byte at a time). The key and the self-signed P-256 certificate are made
 * here. Exits 0 only if every case behaves as tls.c's header says:
 *   1. contexts: the runtime lookup finds OpenSSL 3; a key that does not match the certificate
 *      and a certificate that is not PEM are refused with a reason;
 *   2. echo: 6 MiB of random bytes, written by the client in records of random sizes and read in
 *      random sizes, come back byte-exact (TLS 1.3, and 1 MiB over TLS 1.2);
 *   3. the handshake fed one byte at a time: no record at all before the client's last byte, then
 *      OPEN; data sent after a read that ended with the socket empty arrives too;
 *   4. small writes in one flush leave as one record per send flush.c gathers (64 writes);
 *   5. garbage instead of a ClientHello: TLS_REFUSED [EPROTO, OpenSSL's error] with the peer, never
 *      OPEN or DATA, an empty error queue; a peer that sends FIN after its ClientHello: TLS_REFUSED
 *      [ECONNABORTED]; one that resets: TLS_REFUSED [ECONNRESET]; neither ever OPEN; once open, a
 *      reset right behind data gives the data, then CLOSE [ECONNRESET];
 *   6. close_notify both ways: the client's reads as END; END sends close_notify and then FIN, and
 *      the server still reads what the client sends after it; a flushed CLOSE writes everything
 *      queued, then close_notify, then closes;
 *   7. a client that stops reading: the server's output is held (plaintext queued, ciphertext held,
 *      EPOLLOUT armed), then all 8 MiB arrive in order once it reads, and the hold is gone;
 *   8. handshakes are capped per wake-up: of 24 ClientHellos ready at once, one fill answers
 *      GEV_HANDSHAKE_CAP, and the rest are answered by the next fills; all 24 open;
 *   9. input the layer holds (read from the socket, not yet delivered) when the read budget runs
 *      out arrives in the next fill, and, when JS paused reading then, after resume, though the
 *      socket has nothing more;
 *  10. ALPN: the server's first protocol the client offers is chosen (gev_conn_tls_info, and the
 *      client agrees); a client offering none of them is refused (TLS_REFUSED [EPROTO, no
 *      application protocol]); one offering no ALPN opens with none; a malformed list is refused.
 * Run it under the sanitizers too (test/c/build.sh with GEVENT_TEST_CFLAGS).
 */
#include "harness.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <time.h>

#define ORIGIN 9u
#define MIB    (1u << 20)
#define MAXS   48
#define NCAP   24

/* A server-side connection as JS would see it. */
typedef struct {
  uint32_t id;
  int echo; /* DATA goes back as a WRITE */
  int opened, ended, closed, close_err;
  int refused;          /* TLS_REFUSED instead of OPEN */
  uint32_t failure;     /* its OpenSSL error */
  uint32_t peer_family; /* its peer's, GEV_ADDR_* */
  uint8_t *data;
  size_t data_len, data_cap;
  uint64_t queued;
} sconn;

typedef struct {
  int fd; /* the socket, driven with MSG_DONTWAIT */
  SSL *ssl;
  BIO *rb, *wb;
  int eof;
  int app_records; /* application_data records received (record headers) */
} client;

static sconn g_s[MAXS];
static int g_ns;
static char *g_key, *g_cert;
static X509 *g_x509;
static SSL_CTX *g_cctx;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}

static uint8_t pat(uint64_t i) { return (uint8_t)((i * 131u + (i >> 9) * 7u + 3u) % 253u); }

static sconn *by_id(uint32_t id) {
  for (int i = 0; i < g_ns; i++)
    if (g_s[i].id == id) return &g_s[i];
  return NULL;
}

static void on_record(const uint32_t *r, void *arg) {
  gev_loop *loop = arg;
  if (r[0] == GEV_REC_TLS_REFUSED) { /* names the listener, not the id: the newest connection's */
    sconn *last = g_ns > 0 ? &g_s[g_ns - 1] : NULL;
    CHECK(r[1] == ORIGIN && last != NULL && !last->closed && !last->opened, "TLS_REFUSED with the origin, no OPEN");
    last->closed = 1;
    last->refused = 1;
    last->close_err = (int)r[2];
    last->failure = r[3];
    last->peer_family = r[4];
    return;
  }
  sconn *s = by_id(r[1]);
  CHECK(s != NULL, "record %u for a connection of this test (%u)", r[0], r[1]);
  CHECK(!s->closed, "record %u after CLOSE", r[0]);
  CHECK(s->opened || r[0] == GEV_REC_OPEN || r[0] == GEV_REC_CLOSE, "record %u before OPEN", r[0]);
  switch (r[0]) {
    case GEV_REC_OPEN:
      CHECK(!s->opened && r[2] == ORIGIN, "one OPEN, with the origin");
      s->opened = 1;
      break;
    case GEV_REC_DATA:
      if (s->data_len + r[3] > s->data_cap) {
        s->data_cap = (s->data_len + r[3]) * 2;
        s->data = realloc(s->data, s->data_cap);
        CHECK(s->data != NULL, "realloc");
      }
      memcpy(s->data + s->data_len, loop->in8 + r[2], r[3]);
      s->data_len += r[3];
      if (s->echo) h_command(loop, GEV_OP_WRITE, s->id, loop->in8 + r[2], r[3], 0);
      break;
    case GEV_REC_END: s->ended++; break;
    case GEV_REC_QUEUED: s->queued = (uint64_t)r[2] | ((uint64_t)r[3] << 32); break;
    case GEV_REC_CLOSE:
      s->closed = 1;
      s->close_err = (int)r[2];
      break;
    default: CHECK(0, "unexpected record %u", r[0]);
  }
}

/* Waits for the loop's fd (up to `ms`), runs one fill, then a flush of what the records asked. */
static void pump(gev_loop *loop, int ms) {
  struct pollfd p = {gev_loop_fd(loop), POLLIN, 0};
  (void)poll(&p, 1, ms);
  uint32_t n = gev_loop_fill(loop);
  h_each_record(h_arena_records(loop), n, on_record, loop);
  if (loop->out32[0] > 0) gev_flush(loop, NULL, 0);
}

#define PUMP_UNTIL(loop, done)                                  \
  do {                                                          \
    for (int i_ = 0; i_ < 50 && !(done); i_++) pump(loop, 100); \
    CHECK((done), "timed out waiting for %s", #done);           \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *pem_of(BIO *b) {
  char *p = NULL;
  long n = BIO_get_mem_data(b, &p);
  char *s = malloc((size_t)n + 1);
  CHECK(s != NULL, "malloc");
  memcpy(s, p, (size_t)n);
  s[n] = '\0';
  BIO_free(b);
  return s;
}

/* A P-256 key and a self-signed certificate for localhost, as PEM. */
static void make_identity(char **key, char **cert, X509 **x509_out) {
  EVP_PKEY *pk = EVP_EC_gen("P-256");
  CHECK(pk != NULL, "EVP_EC_gen");
  X509 *x = X509_new();
  CHECK(x != NULL, "X509_new");
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rnd() & 0x7fffffff));
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, pk);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, name);
  CHECK(X509_sign(x, pk, EVP_sha256()) > 0, "X509_sign");
  BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
  CHECK(PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL) == 1, "PEM key");
  CHECK(PEM_write_bio_X509(cb, x) == 1, "PEM cert");
  *key = pem_of(kb);
  *cert = pem_of(cb);
  EVP_PKEY_free(pk);
  if (x509_out != NULL) *x509_out = x;
  else X509_free(x);
}

static void on_msg(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl, void *arg) {
  client *cl = arg;
  if (!write_p && content_type == SSL3_RT_HEADER && len >= 1 && ((const uint8_t *)buf)[0] == SSL3_RT_APPLICATION_DATA)
    cl->app_records++;
}

/* A server connection on one end of a fresh pair and a client on the other, not yet handshaken. */
static sconn *open_pair(gev_loop *loop, gev_tls_ctx *ctx, client *cl, int rcvbuf, int max_version) {
  int mine, peer;
  h_tcp_pair(&mine, &peer, 0, rcvbuf);
  CHECK(g_ns < MAXS, "connections");
  sconn *s = &g_s[g_ns++];
  memset(s, 0, sizeof *s);
  int rc = gev_tls_adopt(loop, mine, ORIGIN, ctx, &s->id);
  CHECK(rc == 0, "gev_tls_adopt: %s", strerror(-rc));
  gev_conn *c = gev_conn_get(loop, s->id);
  CHECK(c != NULL && (c->flags & GEV_C_HANDSHAKE), "adopted in its handshake");
  memset(cl, 0, sizeof *cl);
  cl->fd = peer;
  cl->ssl = SSL_new(g_cctx);
  cl->rb = BIO_new(BIO_s_mem());
  cl->wb = BIO_new(BIO_s_mem());
  CHECK(cl->ssl != NULL && cl->rb != NULL && cl->wb != NULL, "client SSL");
  SSL_set_bio(cl->ssl, cl->rb, cl->wb);
  SSL_set_connect_state(cl->ssl);
  SSL_set1_host(cl->ssl, "localhost");
  if (max_version) SSL_set_max_proto_version(cl->ssl, max_version);
  SSL_set_msg_callback(cl->ssl, on_msg);
  SSL_set_msg_callback_arg(cl->ssl, cl);
  return s;
}

static void client_free(client *cl) {
  SSL_free(cl->ssl);
  if (cl->fd >= 0) close(cl->fd);
  cl->fd = -1;
}

/* Sends the client's ciphertext, `chunk` bytes a send at most (0: as much as the socket takes),
 * running the loop after each send when `step` is set. Returns 1 when it is all sent. */
static int client_send(gev_loop *loop, client *cl, size_t chunk, int step) {
  for (;;) {
    char *p = NULL;
    long n = BIO_get_mem_data(cl->wb, &p);
    if (n <= 0) return 1;
    size_t k = chunk && (size_t)n > chunk ? chunk : (size_t)n;
    if (k > 65536) k = 65536;
    ssize_t w = send(cl->fd, p, k, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    CHECK(w > 0, "client send: %s", strerror(errno));
    char sink[65536];
    CHECK(BIO_read(cl->wb, sink, (int)w) == (int)w, "client wbio");
    if (step) pump(loop, 100);
  }
}

/* Moves what has arrived at the client's socket into its read BIO. */
static void client_take(client *cl) {
  char buf[65536];
  for (;;) {
    ssize_t r = recv(cl->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r == 0) {
      cl->eof = 1;
      return;
    }
    CHECK(r > 0, "client recv: %s", strerror(errno));
    CHECK(BIO_write(cl->rb, buf, (int)r) == (int)r, "client rbio");
  }
}

/* Runs the handshake to its end on both sides, the client's bytes `chunk` at a time (0: all). */
static void handshake(gev_loop *loop, client *cl, sconn *s, size_t chunk) {
  double end = now_s() + 10;
  int done = 0;
  while (!done || !s->opened) {
    CHECK(now_s() < end, "handshake (client done %d, server opened %d)", done, s->opened);
    if (!done) {
      int r = SSL_do_handshake(cl->ssl);
      if (r == 1) done = 1;
      else CHECK(SSL_get_error(cl->ssl, r) == SSL_ERROR_WANT_READ, "client handshake: %d", SSL_get_error(cl->ssl, r));
    }
    if (chunk == 1) {
      /* One byte at a time, the loop run after each: nothing may reach JS before the last. */
      for (;;) {
        char *p = NULL;
        long n = BIO_get_mem_data(cl->wb, &p);
        if (n <= 0) break;
        CHECK(!s->opened, "no OPEN with %ld bytes of the client's handshake unsent", n);
        client_send(loop, cl, 1, 0);
        pump(loop, 0);
        CHECK(s->data_len == 0 && !s->closed, "no record but OPEN");
      }
    } else {
      client_send(loop, cl, chunk, 0);
    }
    pump(loop, 5);
    client_take(cl);
  }
  CHECK(SSL_is_init_finished(cl->ssl), "client finished");
  CHECK(SSL_get_verify_result(cl->ssl) == X509_V_OK, "the client verified the certificate");
}

/* Reads all the client's plaintext that has arrived, in pieces of random sizes, into out. Returns
 * the count; *end is set at close_notify. */
static size_t client_read(client *cl, uint8_t *out, size_t cap, int *end) {
  size_t got = 0;
  client_take(cl);
  while (got < cap) {
    size_t want = 1 + (size_t)(rnd() % 65536);
    if (want > cap - got) want = cap - got;
    int r = SSL_read(cl->ssl, out + got, (int)want);
    if (r > 0) {
      got += (size_t)r;
      continue;
    }
    int e = SSL_get_error(cl->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN && end != NULL) *end = 1;
    else CHECK(e == SSL_ERROR_WANT_READ, "client read: %d", e);
    break;
  }
  return got;
}

static void client_write(gev_loop *loop, client *cl, const void *p, size_t n) {
  CHECK(SSL_write(cl->ssl, p, (int)n) == (int)n, "client write");
  client_send(loop, cl, 0, 0);
}

static void close_server(gev_loop *loop, sconn *s) {
  if (!s->closed) {
    h_command(loop, GEV_OP_CLOSE, s->id, NULL, 0, 0);
    gev_flush(loop, NULL, 0);
    PUMP_UNTIL(loop, s->closed);
  }
  free(s->data);
  s->data = NULL;
}

static void contexts(gev_tls_ctx **ctx) {
  const char *why = NULL;
  int rc = gev_tls_init(&why);
  CHECK(rc == 0, "gev_tls_init: %s", why ? why : "?");
  make_identity(&g_key, &g_cert, &g_x509);
  rc = gev_tls_ctx_new(g_key, strlen(g_key), g_cert, strlen(g_cert), NULL, 0, ctx, &why);
  CHECK(rc == 0, "gev_tls_ctx_new: %s", why ? why : "?");
  CHECK(ERR_peek_error() == 0, "error queue empty after a context is made");
  char *key2, *cert2;
  make_identity(&key2, &cert2, NULL);
  gev_tls_ctx *bad = NULL;
  rc = gev_tls_ctx_new(key2, strlen(key2), g_cert, strlen(g_cert), NULL, 0, &bad, &why);
  CHECK(rc == -EINVAL && bad == NULL && strstr(why, "does not match") != NULL, "mismatched key refused (%d)", rc);
  rc = gev_tls_ctx_new(g_key, strlen(g_key), "not a certificate", 17, NULL, 0, &bad, &why);
  CHECK(rc == -EINVAL && bad == NULL && strstr(why, "certificate") != NULL, "bad certificate refused (%d)", rc);
  CHECK(ERR_peek_error() == 0, "error queue empty after refusals");
  free(key2);
  free(cert2);

  g_cctx = SSL_CTX_new(TLS_client_method());
  CHECK(g_cctx != NULL, "client context");
  X509_STORE_add_cert(SSL_CTX_get_cert_store(g_cctx), g_x509);
  SSL_CTX_set_verify(g_cctx, SSL_VERIFY_PEER, NULL);
  printf("contexts: OpenSSL 3 found at run time, a mismatched key and a non-PEM certificate refused\n");
}

/* Echo of `total` random bytes; returns nothing, checks everything. */
static void echo(gev_loop *loop, gev_tls_ctx *ctx, size_t total, int max_version, const char *what) {
  client cl;
  sconn *s = open_pair(loop, ctx, &cl, 0, max_version);
  s->echo = 1;
  handshake(loop, &cl, s, 0);
  uint8_t *src = malloc(total), *back = malloc(total);
  CHECK(src != NULL && back != NULL, "malloc");
  for (size_t i = 0; i < total; i++) src[i] = (uint8_t)rnd();
  size_t sent = 0, got = 0;
  double end = now_s() + 60;
  while (got < total) {
    CHECK(now_s() < end, "echo: sent %zu, got %zu of %zu", sent, got, total);
    for (int k = 0; k < 4 && sent < total && sent - got < 2 * MIB; k++) {
      size_t m = rnd() % 4 == 0 ? 1 + (size_t)(rnd() % 100) : 1 + (size_t)(rnd() % 65536);
      if (m > total - sent) m = total - sent;
      CHECK(SSL_write(cl.ssl, src + sent, (int)m) == (int)m, "client write");
      sent += m;
    }
    client_send(loop, &cl, 0, 0);
    pump(loop, 1);
    got += client_read(&cl, back + got, total - got, NULL);
  }
  CHECK(memcmp(src, back, total) == 0, "echo byte-exact");
  CHECK(s->data_len == total, "server read %zu of %zu", s->data_len, total);
  CHECK(ERR_peek_error() == 0, "error queue empty");
  printf("echo: %s: %zu random bytes in random records came back byte-exact\n", what, total);

  /* Small writes in one flush leave as one record. */
  s->echo = 0;
  cl.app_records = 0;
  for (int i = 0; i < 100; i++) h_command(loop, GEV_OP_WRITE, s->id, "0123456789", 10, 0);
  gev_flush(loop, NULL, 0);
  got = 0;
  for (int i = 0; i < 50 && got < 1000; i++) {
    pump(loop, 10);
    got += client_read(&cl, back + got, 1000 - got, NULL);
  }
  CHECK(got == 1000 && memcmp(back, "0123456789", 10) == 0 && memcmp(back + 990, "0123456789", 10) == 0,
        "1000 bytes back");
  /* flush.c gathers up to 64 writes into one send: two sends, two records. */
  CHECK(cl.app_records == 2, "100 writes of one flush in two records (%d)", cl.app_records);
  printf("coalesce: %s: 100 writes of one flush left as 2 records, one per gathered send\n", what);
  free(src);
  free(back);
  close_server(loop, s);
  client_free(&cl);
}

static void bytewise(gev_loop *loop, gev_tls_ctx *ctx) {
  client cl;
  sconn *s = open_pair(loop, ctx, &cl, 0, 0);
  s->echo = 1;
  handshake(loop, &cl, s, 1);
  uint8_t back[5];
  client_write(loop, &cl, "hello", 5);
  size_t got = 0;
  for (int i = 0; i < 50 && got < 5; i++) {
    pump(loop, 10);
    got += client_read(&cl, back + got, 5 - got, NULL);
  }
  CHECK(got == 5 && memcmp(back, "hello", 5) == 0, "echo after a bytewise handshake");
  close_server(loop, s);
  client_free(&cl);
  printf("bytewise: a handshake fed one byte at a time, no record before the last byte, then OPEN\n");
}

/* A read that took data and then found the socket empty (EAGAIN) leaves the connection readable:
 * what the client sends later arrives too. */
static void twice(gev_loop *loop, gev_tls_ctx *ctx) {
  client cl;
  sconn *s = open_pair(loop, ctx, &cl, 0, 0);
  handshake(loop, &cl, s, 0);
  client_write(loop, &cl, "one", 3);
  PUMP_UNTIL(loop, s->data_len == 3);
  client_write(loop, &cl, "two", 3);
  PUMP_UNTIL(loop, s->data_len == 6);
  CHECK(memcmp(s->data, "onetwo", 6) == 0, "twice: both writes, in order");
  close_server(loop, s);
  client_free(&cl);
  printf("twice: data after a read that ended at EAGAIN arrives too\n");
}

static void failures(gev_loop *loop, gev_tls_ctx *ctx) {
  /* Garbage instead of a ClientHello. */
  client cl;
  sconn *s = open_pair(loop, ctx, &cl, 0, 0);
  const char *get = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  CHECK(send(cl.fd, get, strlen(get), MSG_NOSIGNAL) == (ssize_t)strlen(get), "send");
  PUMP_UNTIL(loop, s->closed);
  CHECK(ERR_peek_error() == 0, "the thread's error queue is empty after a failed handshake");
  CHECK(!s->opened && s->refused && s->data_len == 0 && s->close_err == EPROTO,
        "garbage: TLS_REFUSED [EPROTO] (%d), never OPEN", s->close_err);
  CHECK(s->failure != 0 && gev_tls_reason(s->failure) != NULL, "garbage: OpenSSL's error with it (%s)",
        gev_tls_reason(s->failure));
  CHECK(s->peer_family == GEV_ADDR_INET4, "garbage: the peer with it (family %u)", s->peer_family);
  for (int i = 0; i < 50 && !cl.eof; i++) {
    struct pollfd p = {cl.fd, POLLIN, 0};
    (void)poll(&p, 1, 100);
    client_take(&cl);
  }
  CHECK(cl.eof, "the client sees the close");
  client_free(&cl);

  /* A peer that sends its ClientHello, then FIN. */
  s = open_pair(loop, ctx, &cl, 0, 0);
  CHECK(SSL_do_handshake(cl.ssl) == -1, "client hello");
  client_send(loop, &cl, 0, 0);
  pump(loop, 100);
  CHECK(!s->closed && !s->opened, "waiting for the client's next flight");
  shutdown(cl.fd, SHUT_WR);
  PUMP_UNTIL(loop, s->closed);
  CHECK(!s->opened && s->refused && s->close_err == ECONNABORTED, "FIN mid-handshake: TLS_REFUSED [ECONNABORTED] (%d)",
        s->close_err);
  CHECK(ERR_peek_error() == 0, "error queue empty");
  client_free(&cl);

  /* A peer that resets mid-handshake. */
  s = open_pair(loop, ctx, &cl, 0, 0);
  CHECK(SSL_do_handshake(cl.ssl) == -1, "client hello");
  client_send(loop, &cl, 0, 0);
  pump(loop, 100);
  h_reset(cl.fd);
  cl.fd = -1;
  PUMP_UNTIL(loop, s->closed);
  CHECK(!s->opened && s->refused && s->close_err == ECONNRESET, "reset mid-handshake: TLS_REFUSED [ECONNRESET] (%d)",
        s->close_err);
  client_free(&cl);

  /* Once open, a reset right behind data: the data, then CLOSE [ECONNRESET] (not an END). */
  s = open_pair(loop, ctx, &cl, 0, 0);
  handshake(loop, &cl, s, 0);
  client_write(loop, &cl, "bye", 3);
  h_reset(cl.fd);
  cl.fd = -1;
  usleep(20000);
  PUMP_UNTIL(loop, s->closed);
  CHECK(s->data_len == 3 && memcmp(s->data, "bye", 3) == 0 && s->ended == 0 && s->close_err == ECONNRESET,
        "reset behind data: DATA, no END, CLOSE [ECONNRESET] (%zu, %d, %d)", s->data_len, s->ended, s->close_err);
  free(s->data);
  s->data = NULL;
  client_free(&cl);
  printf("failures: garbage TLS_REFUSED [EPROTO, OpenSSL's error], FIN TLS_REFUSED [ECONNABORTED], reset "
         "TLS_REFUSED [ECONNRESET], never OPEN, error queue empty; a reset behind data: DATA, then CLOSE "
         "[ECONNRESET]\n");
}

static void alpn(gev_loop *loop) {
  static const unsigned char mine[] = "\x02h2\x08http/1.1";
  static const unsigned char theirs[] = "\x08http/1.1\x02h2";
  static const unsigned char other[] = "\003foo";
  const char *why = NULL;
  gev_tls_ctx *ctx = NULL, *bad = NULL;
  int rc = gev_tls_ctx_new(g_key, strlen(g_key), g_cert, strlen(g_cert), mine, sizeof mine - 1, &ctx, &why);
  CHECK(rc == 0, "gev_tls_ctx_new with ALPN: %s", why ? why : "?");
  rc = gev_tls_ctx_new(g_key, strlen(g_key), g_cert, strlen(g_cert), (const unsigned char *)"\x05h2", 3, &bad, &why);
  CHECK(rc == -EINVAL && bad == NULL, "a malformed ALPN list refused (%d)", rc);

  /* Both offered: the server's preference wins. */
  client cl;
  gev_tls_info ti;
  sconn *s = open_pair(loop, ctx, &cl, 0, 0);
  CHECK(SSL_set_alpn_protos(cl.ssl, theirs, sizeof theirs - 1) == 0, "client ALPN");
  handshake(loop, &cl, s, 0);
  CHECK(gev_conn_tls_info(loop, s->id, &ti) == 0 && strcmp(ti.alpn, "h2") == 0, "ALPN h2 chosen (%s)", ti.alpn);
  const unsigned char *got = NULL;
  unsigned int got_len = 0;
  SSL_get0_alpn_selected(cl.ssl, &got, &got_len);
  CHECK(got_len == 2 && memcmp(got, "h2", 2) == 0, "the client agrees on h2");
  close_server(loop, s);
  client_free(&cl);

  /* No ALPN offered: opens, with none. */
  s = open_pair(loop, ctx, &cl, 0, 0);
  handshake(loop, &cl, s, 0);
  CHECK(gev_conn_tls_info(loop, s->id, &ti) == 0 && ti.alpn[0] == '\0', "no ALPN offered: none (%s)", ti.alpn);
  close_server(loop, s);
  client_free(&cl);

  /* No overlap: refused with no_application_protocol, never OPEN. */
  s = open_pair(loop, ctx, &cl, 0, 0);
  CHECK(SSL_set_alpn_protos(cl.ssl, other, sizeof other - 1) == 0, "client ALPN");
  CHECK(SSL_do_handshake(cl.ssl) == -1, "client hello");
  client_send(loop, &cl, 0, 0);
  PUMP_UNTIL(loop, s->closed);
  const char *reason = gev_tls_reason(s->failure);
  CHECK(!s->opened && s->refused && s->close_err == EPROTO && reason != NULL &&
            strstr(reason, "no application protocol") != NULL,
        "no common ALPN protocol: TLS_REFUSED [EPROTO, %s] (%d)", reason ? reason : "?", s->close_err);
  CHECK(ERR_peek_error() == 0, "error queue empty");
  client_free(&cl);
  gev_tls_ctx_free(ctx);
  printf("alpn: the server's preference chosen, none without an offer, no overlap TLS_REFUSED [EPROTO, no "
         "application protocol], a malformed list refused\n");
}

static void close_notify(gev_loop *loop, gev_tls_ctx *ctx) {
  /* The client's close_notify reads as END; the server's END sends close_notify, then FIN. */
  client cl;
  uint8_t buf[64];
  int end = 0;
  sconn *s = open_pair(loop, ctx, &cl, 0, 0);
  handshake(loop, &cl, s, 0);
  /* "last" and close_notify in one send: one read finds the data and the end behind it. */
  CHECK(SSL_write(cl.ssl, "last", 4) == 4, "client write");
  CHECK(SSL_shutdown(cl.ssl) == 0, "client close_notify");
  client_send(loop, &cl, 0, 0);
  PUMP_UNTIL(loop, s->ended);
  CHECK(s->ended == 1 && s->data_len == 4 && memcmp(s->data, "last", 4) == 0, "DATA then END");
  h_command(loop, GEV_OP_END, s->id, NULL, 0, 0);
  gev_flush(loop, NULL, 0);
  for (int i = 0; i < 50 && !(end && cl.eof); i++) {
    pump(loop, 10);
    CHECK(client_read(&cl, buf, sizeof buf, &end) == 0, "no data");
  }
  CHECK(end && cl.eof, "the client reads close_notify (%d), then FIN (%d)", end, cl.eof);
  CHECK(!s->closed, "half-closed, still open");
  close_server(loop, s);
  CHECK(s->close_err == 0, "closed as asked");
  client_free(&cl);

  /* END first: the server still reads what the client sends after close_notify. */
  s = open_pair(loop, ctx, &cl, 0, 0);
  handshake(loop, &cl, s, 0);
  h_command(loop, GEV_OP_END, s->id, NULL, 0, 0);
  gev_flush(loop, NULL, 0);
  end = 0;
  for (int i = 0; i < 50 && !end; i++) {
    pump(loop, 10);
    client_read(&cl, buf, sizeof buf, &end);
  }
  CHECK(end, "close_notify reaches the client");
  client_write(loop, &cl, "after", 5);
  PUMP_UNTIL(loop, s->data_len == 5);
  CHECK(memcmp(s->data, "after", 5) == 0, "read after our close_notify");
  close_server(loop, s);
  client_free(&cl);

  /* A flushed CLOSE with output queued: all of it, then close_notify, then the close. */
  s = open_pair(loop, ctx, &cl, 64 * 1024, 0);
  handshake(loop, &cl, s, 0);
  static uint8_t big[MIB];
  for (size_t i = 0; i < MIB; i++) big[i] = pat(i);
  h_command(loop, GEV_OP_WRITE, s->id, big, MIB, 0);
  h_command(loop, GEV_OP_CLOSE, s->id, NULL, 0, 1);
  gev_flush(loop, NULL, 0);
  CHECK(!s->closed, "a flushed close waits for the queue");
  static uint8_t got[MIB + 64]; /* room past the end, so the read goes on to close_notify */
  size_t n = 0;
  end = 0;
  double until = now_s() + 20;
  while (!(end && cl.eof)) {
    CHECK(now_s() < until, "flushed close: %zu bytes, end %d, eof %d", n, end, cl.eof);
    pump(loop, 5);
    n += client_read(&cl, got + n, sizeof got - n, &end);
  }
  CHECK(n == MIB && memcmp(big, got, MIB) == 0, "1 MiB before close_notify (%zu)", n);
  PUMP_UNTIL(loop, s->closed);
  CHECK(s->close_err == 0, "a close JS asked for");
  client_free(&cl);
  printf("close_notify: the client's reads as END, END sends close_notify then FIN and reads on, a flushed "
         "CLOSE writes 1 MiB, close_notify, then closes\n");
}

static void stalled(gev_loop *loop, gev_tls_ctx *ctx) {
  const size_t total = 8u * MIB, step = 2u * MIB, piece = 64u * 1024u;
  client cl;
  sconn *s = open_pair(loop, ctx, &cl, 64 * 1024, 0);
  handshake(loop, &cl, s, 0);
  uint8_t *buf = malloc(piece), *got = malloc(total);
  CHECK(buf != NULL && got != NULL, "malloc");
  for (size_t off = 0; off < total; off += step) {
    for (size_t k = off; k < off + step; k += piece) {
      for (size_t i = 0; i < piece; i++) buf[i] = pat(k + i);
      h_command(loop, GEV_OP_WRITE, s->id, buf, (uint32_t)piece, 0);
    }
    gev_flush(loop, NULL, 0);
    pump(loop, 5);
  }
  gev_conn *c = gev_conn_get(loop, s->id);
  CHECK(c != NULL, "open");
  CHECK(c->qbytes > 0 && (c->flags & GEV_C_IO_HELD) && (c->events & EPOLLOUT),
        "held: %zu plaintext queued, ciphertext held (%d), EPOLLOUT (%d)", c->qbytes, !!(c->flags & GEV_C_IO_HELD),
        !!(c->events & EPOLLOUT));
  CHECK(s->queued == c->qbytes, "QUEUED %llu = qbytes %zu", (unsigned long long)s->queued, c->qbytes);
  size_t held_q = c->qbytes;
  size_t n = 0;
  double until = now_s() + 30;
  while (n < total) {
    CHECK(now_s() < until, "stalled: %zu of %zu", n, total);
    struct pollfd p[2] = {{gev_loop_fd(loop), POLLIN, 0}, {cl.fd, POLLIN, 0}};
    (void)poll(p, 2, 20);
    pump(loop, 0);
    n += client_read(&cl, got + n, total - n, NULL);
  }
  for (size_t i = 0; i < total; i++) CHECK(got[i] == pat(i), "byte %zu in order", i);
  PUMP_UNTIL(loop, s->queued == 0);
  c = gev_conn_get(loop, s->id);
  CHECK(c->qbytes == 0 && !(c->flags & GEV_C_IO_HELD) && !(c->events & EPOLLOUT), "drained: no hold, no EPOLLOUT");
  free(buf);
  free(got);
  close_server(loop, s);
  client_free(&cl);
  printf("stalled: %zu bytes queued and ciphertext held with EPOLLOUT, then 8 MiB in order, hold gone\n", held_q);
}

static void capped(gev_loop *loop, gev_tls_ctx *ctx) {
  static client cl[NCAP];
  sconn *s[NCAP];
  for (int i = 0; i < NCAP; i++) {
    s[i] = open_pair(loop, ctx, &cl[i], 0, 0);
    CHECK(SSL_do_handshake(cl[i].ssl) == -1, "client hello");
    client_send(loop, &cl[i], 0, 0);
  }
  usleep(20000);
  pump(loop, 100);
  CHECK(loop->hs_used == GEV_HANDSHAKE_CAP, "one fill steps %u handshakes", loop->hs_used);
  int answered = 0;
  for (int i = 0; i < NCAP; i++) {
    struct pollfd p = {cl[i].fd, POLLIN, 0};
    answered += poll(&p, 1, 0) == 1;
  }
  CHECK(answered == (int)GEV_HANDSHAKE_CAP, "%d clients answered after one fill", answered);
  for (int i = 0; i < NCAP; i++) handshake(loop, &cl[i], s[i], 0);
  for (int i = 0; i < NCAP; i++) {
    close_server(loop, s[i]);
    client_free(&cl[i]);
  }
  printf("capped: one fill answers %u of %d ClientHellos, all %d open in the end\n", GEV_HANDSHAKE_CAP, NCAP, NCAP);
}

static void held_input(gev_loop *loop, gev_tls_ctx *ctx, int pause) {
  const size_t total = GEV_READ_BUDGET + 100u;
  client cl;
  sconn *s = open_pair(loop, ctx, &cl, 0, 0);
  handshake(loop, &cl, s, 0);
  uint8_t *buf = malloc(total);
  CHECK(buf != NULL, "malloc");
  for (size_t i = 0; i < total; i++) buf[i] = pat(i);
  client_write(loop, &cl, buf, total);
  usleep(20000);
  pump(loop, 100);
  CHECK(s->data_len == GEV_READ_BUDGET, "one fill reads the budget (%zu)", s->data_len);
  gev_conn *c = gev_conn_get(loop, s->id);
  int unread = -1;
  CHECK(ioctl(c->fd, FIONREAD, &unread) == 0 && unread == 0, "the socket holds nothing more (%d)", unread);
  if (pause) {
    h_command(loop, GEV_OP_PAUSE, s->id, NULL, 0, 1);
    gev_flush(loop, NULL, 0);
    for (int i = 0; i < 3; i++) pump(loop, 20);
    CHECK(s->data_len == GEV_READ_BUDGET, "nothing while paused (%zu)", s->data_len);
    h_command(loop, GEV_OP_PAUSE, s->id, NULL, 0, 0);
    gev_flush(loop, NULL, 0);
  }
  PUMP_UNTIL(loop, s->data_len == total);
  CHECK(memcmp(s->data, buf, total) == 0, "in order");
  free(buf);
  close_server(loop, s);
  client_free(&cl);
  if (pause)
    printf("paused: %zu bytes the layer held when reading paused arrived after resume, the socket empty\n",
           total - GEV_READ_BUDGET);
  else
    printf("budget: %zu bytes the layer held past the read budget arrived in the next fill, the socket empty\n",
           total - GEV_READ_BUDGET);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  gev_loop *loop = h_loop_new();
  gev_tls_ctx *ctx = NULL;
  contexts(&ctx);
  echo(loop, ctx, 6u * MIB, 0, "TLS 1.3");
  echo(loop, ctx, 1u * MIB, TLS1_2_VERSION, "TLS 1.2");
  bytewise(loop, ctx);
  twice(loop, ctx);
  failures(loop, ctx);
  close_notify(loop, ctx);
  stalled(loop, ctx);
  capped(loop, ctx);
  held_input(loop, ctx, 0);
  held_input(loop, ctx, 1);
  alpn(loop);
  CHECK(loop->live == 0, "no connection left live (%u)", loop->live);
  h_loop_free(loop);
  gev_tls_ctx_free(ctx);
  SSL_CTX_free(g_cctx);
  X509_free(g_x509);
  free(g_key);
  free(g_cert);
  printf("all tls cases passed\n");
  return 0;
}
