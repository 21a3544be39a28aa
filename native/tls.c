/*
 * TLS as a gev_io layer (internal.h): server-side TLS per connection, the core above it seeing
 * plaintext only.
 *
 *   socket ──recv──► rbio ──SSL_read──► plaintext, into the core's buffer
 *   plaintext (the core's iov, gathered into records of at most GEV_TLS_RECORD bytes)
 *          ──SSL_write──► wbio ──send──► socket; what the socket does not take stays in wbio
 *
 * rbio and wbio are memory BIOs owned by the connection's SSL. wbio holding bytes is the layer's
 * held output (GEV_C_IO_HELD): sendv takes no plaintext while it holds any, so a connection holds at
 * most about one record of ciphertext, and everything else waits as plaintext in the core's queue.
 *
 *   adopt (gev_tls_adopt) ─► GEV_C_HANDSHAKE: every event steps SSL_do_handshake; no record
 *        ├─ done ─► OPEN, then DATA/END/CLOSE as for any connection
 *        └─ failed ─► CLOSE [id, EPROTO], or ECONNABORTED when the peer left, and never an OPEN
 *   END, or a flushed CLOSE, once the queue drained ─► close_notify (end), then the socket's
 *        shutdown or close once it is written; a peer's close_notify reads as the end of the stream
 *        (so does a FIN without one, as most servers take it)
 *
 * OpenSSL: the 3.x API only, every function called through `fn`, a table resolved at run time with
 * dlsym(RTLD_DEFAULT) by gev_tls_init, never by the linker: the addon must load in a process whose
 * binary exports no OpenSSL (Bun, Electron), where TLS then reports why it cannot run natively. The
 * headers give types and constants only. Error queue: OpenSSL keeps one per thread, shared with
 * whatever else uses OpenSSL on it (Node's crypto), so every call is preceded by ERR_clear_error
 * and every failure's entries are drained before returning.
 */
#include "internal.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define GEV_TLS_RECORD  16384u /* plaintext per record written */
#define GEV_TLS_SCRATCH 16896u /* ciphertext read from the socket per call: a full record and more */

#define GEV_TLS_FUNCS(X)                                                                  \
  X(unsigned long, OpenSSL_version_num, (void))                                           \
  X(const SSL_METHOD *, TLS_server_method, (void))                                        \
  X(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *))                                         \
  X(void, SSL_CTX_free, (SSL_CTX *))                                                      \
  X(long, SSL_CTX_ctrl, (SSL_CTX *, int, long, void *))                                   \
  X(uint64_t, SSL_CTX_set_options, (SSL_CTX *, uint64_t))                                 \
  X(int, SSL_CTX_use_certificate, (SSL_CTX *, X509 *))                                    \
  X(int, SSL_CTX_use_PrivateKey, (SSL_CTX *, EVP_PKEY *))                                 \
  X(int, SSL_CTX_check_private_key, (const SSL_CTX *))                                    \
  X(SSL *, SSL_new, (SSL_CTX *))                                                          \
  X(void, SSL_free, (SSL *))                                                              \
  X(void, SSL_set_bio, (SSL *, BIO *, BIO *))                                             \
  X(void, SSL_set_accept_state, (SSL *))                                                  \
  X(int, SSL_do_handshake, (SSL *))                                                       \
  X(int, SSL_read, (SSL *, void *, int))                                                  \
  X(int, SSL_write, (SSL *, const void *, int))                                           \
  X(int, SSL_shutdown, (SSL *))                                                           \
  X(int, SSL_get_error, (const SSL *, int))                                               \
  X(int, SSL_pending, (const SSL *))                                                      \
  X(const BIO_METHOD *, BIO_s_mem, (void))                                                \
  X(BIO *, BIO_new, (const BIO_METHOD *))                                                 \
  X(BIO *, BIO_new_mem_buf, (const void *, int))                                          \
  X(int, BIO_free, (BIO *))                                                               \
  X(int, BIO_read, (BIO *, void *, int))                                                  \
  X(int, BIO_write, (BIO *, const void *, int))                                           \
  X(long, BIO_ctrl, (BIO *, int, long, void *))                                           \
  X(size_t, BIO_ctrl_pending, (BIO *))                                                    \
  X(X509 *, PEM_read_bio_X509, (BIO *, X509 **, pem_password_cb *, void *))               \
  X(EVP_PKEY *, PEM_read_bio_PrivateKey, (BIO *, EVP_PKEY **, pem_password_cb *, void *)) \
  X(void, X509_free, (X509 *))                                                            \
  X(void, EVP_PKEY_free, (EVP_PKEY *))                                                    \
  X(void, ERR_clear_error, (void))                                                        \
  X(unsigned long, ERR_get_error, (void))

#define GEV_TLS_MEMBER(ret, name, args) ret(*name) args;
static struct {
  GEV_TLS_FUNCS(GEV_TLS_MEMBER)
} fn;

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_status = -ENOSYS; /* 0 once every function resolved and the version fits */
static const char *tls_reason = "OpenSSL was not looked for";

struct gev_tls_ctx {
  SSL_CTX *ctx;
};

/* A connection's TLS state (c->io_state). */
typedef struct gev_tls_conn {
  SSL *ssl;
  BIO *rbio; /* ciphertext read from the socket, owned by ssl */
  BIO *wbio; /* ciphertext to write to the socket (the held output), owned by ssl */
  int ended; /* close_notify written */
  int eof;   /* the end of the stream was seen after input recv has returned */
} gev_tls_conn;

static void tls_resolve(void) {
  int missing = 0;
#define GEV_TLS_RESOLVE(ret, name, args)  \
  {                                       \
    void *p = dlsym(RTLD_DEFAULT, #name); \
    if (p == NULL) missing = 1;           \
    else memcpy(&fn.name, &p, sizeof p);  \
  }
  GEV_TLS_FUNCS(GEV_TLS_RESOLVE)
#undef GEV_TLS_RESOLVE
  if (missing) {
    tls_status = -ENOSYS;
    tls_reason = "the process exports no OpenSSL 3 (SSL_* and the functions TLS needs were not found)";
    return;
  }
  if ((fn.OpenSSL_version_num() >> 28) != 3) {
    tls_status = -ENOTSUP;
    tls_reason = "the process's OpenSSL is not version 3";
    return;
  }
  tls_status = 0;
  tls_reason = NULL;
}

int gev_tls_init(const char **reason) {
  pthread_once(&tls_once, tls_resolve);
  if (reason != NULL) *reason = tls_reason;
  return tls_status;
}

/* Empties the thread's error queue after a failure; returns its first entry. */
static unsigned long err_drain(void) {
  unsigned long first = fn.ERR_get_error(), e = first;
  while (e != 0) e = fn.ERR_get_error();
  return first;
}

static long mem_data(BIO *b, char **p) { return fn.BIO_ctrl(b, BIO_CTRL_INFO, 0, p); }

/*
 * Writes wbio's ciphertext to the socket. 0 when all of it is written (GEV_C_IO_HELD cleared), -1
 * with errno EAGAIN when the socket holds back the rest (GEV_C_IO_HELD set), or a fatal errno.
 */
static int tls_push(gev_conn *c, gev_tls_conn *t) {
  char sink[4096];
  for (;;) {
    char *p = NULL;
    long n = mem_data(t->wbio, &p);
    if (n <= 0) {
      c->flags &= (uint16_t)~GEV_C_IO_HELD;
      return 0;
    }
    struct iovec iov = {p, (size_t)n};
    ssize_t w = sys_sendv(c->fd, &iov, 1);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) c->flags |= GEV_C_IO_HELD;
      return -1;
    }
    if (w == n) {
      fn.BIO_ctrl(t->wbio, BIO_CTRL_RESET, 0, NULL);
      continue;
    }
    for (size_t left = (size_t)w; left > 0;) { /* drop what was written */
      int k = (int)(left < sizeof sink ? left : sizeof sink);
      fn.BIO_read(t->wbio, sink, k);
      left -= (size_t)k;
    }
  }
}

/* Reads the socket once into rbio: the count, 0 at its end, or -1 with errno. */
static ssize_t tls_fill(gev_conn *c, gev_tls_conn *t) {
  char buf[GEV_TLS_SCRATCH];
  ssize_t n;
  do n = sys_recv(c->fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  if (n > 0 && fn.BIO_write(t->rbio, buf, (int)n) != (int)n) {
    err_drain();
    errno = ENOMEM;
    return -1;
  }
  return n;
}

/* Pushes output that reading produced (a handshake's reply, a key update), keeping errno: a
 * failure to write it shows at the next send or EPOLLOUT. */
static void tls_push_quiet(gev_conn *c, gev_tls_conn *t) {
  int saved = errno;
  if (fn.BIO_ctrl_pending(t->wbio) > 0) tls_push(c, t);
  errno = saved;
}

static int tls_handshake(gev_conn *c) {
  gev_tls_conn *t = c->io_state;
  for (;;) {
    fn.ERR_clear_error();
    int r = fn.SSL_do_handshake(t->ssl);
    if (r == 1) {
      if (tls_push(c, t) != 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      return 1;
    }
    int e = fn.SSL_get_error(t->ssl, r);
    err_drain();
    if (e != SSL_ERROR_WANT_READ) {
      tls_push_quiet(c, t); /* the alert, if OpenSSL wrote one */
      errno = EPROTO;
      return -1;
    }
    if (tls_push(c, t) != 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    ssize_t n = tls_fill(c, t);
    if (n > 0) continue;
    if (n == 0) {
      errno = ECONNABORTED;
      return -1;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  }
}

/* Reads plaintext until len is filled or the layer holds none and the socket has no more. */
static ssize_t tls_recv(gev_conn *c, void *buf, size_t len) {
  gev_tls_conn *t = c->io_state;
  size_t got = 0;
  int err = 0;
  if (len > INT_MAX) len = INT_MAX;
  while (got < len) {
    fn.ERR_clear_error();
    int n = fn.SSL_read(t->ssl, (char *)buf + got, (int)(len - got));
    if (n > 0) {
      got += (size_t)n;
      continue;
    }
    int e = fn.SSL_get_error(t->ssl, n);
    err_drain();
    if (e == SSL_ERROR_WANT_READ) {
      ssize_t k = tls_fill(c, t);
      if (k > 0) continue;
      if (k == 0) t->eof = 1;
      else err = errno;
    } else if (e == SSL_ERROR_ZERO_RETURN) {
      t->eof = 1;
    } else {
      err = EPROTO;
    }
    break;
  }
  tls_push_quiet(c, t);
  if (got > 0) return (ssize_t)got;
  if (err == 0) return 0; /* the end: close_notify, or a FIN */
  errno = err;
  return -1;
}

/* Encrypts the iov into records of up to GEV_TLS_RECORD bytes (small buffers gathered into one),
 * each written to the socket before the next is made; stops once the socket holds one back. */
static ssize_t tls_sendv(gev_conn *c, const struct iovec *iov, int iovcnt) {
  gev_tls_conn *t = c->io_state;
  char rec[GEV_TLS_RECORD];
  size_t taken = 0, off = 0;
  int i = 0;
  if (tls_push(c, t) != 0) return -1;
  for (;;) {
    while (i < iovcnt && off == iov[i].iov_len) {
      i++;
      off = 0;
    }
    if (i == iovcnt) break;
    const char *p;
    size_t m = 0;
    if (iov[i].iov_len - off >= GEV_TLS_RECORD) {
      p = (const char *)iov[i].iov_base + off;
      m = GEV_TLS_RECORD;
      off += m;
    } else {
      while (i < iovcnt && m < GEV_TLS_RECORD) {
        size_t k = iov[i].iov_len - off;
        if (k > GEV_TLS_RECORD - m) k = GEV_TLS_RECORD - m;
        memcpy(rec + m, (const char *)iov[i].iov_base + off, k);
        m += k;
        off += k;
        if (off == iov[i].iov_len) {
          i++;
          off = 0;
        }
      }
      p = rec;
    }
    fn.ERR_clear_error();
    int w = fn.SSL_write(t->ssl, p, (int)m);
    if (w <= 0) {
      err_drain();
      if (taken > 0) return (ssize_t)taken;
      errno = EPROTO;
      return -1;
    }
    taken += m;
    if (tls_push(c, t) != 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return -1;
    }
  }
  return (ssize_t)taken;
}

static int tls_end(gev_conn *c) {
  gev_tls_conn *t = c->io_state;
  if (!t->ended) {
    t->ended = 1;
    fn.ERR_clear_error();
    if (fn.SSL_shutdown(t->ssl) < 0) err_drain();
  }
  if (tls_push(c, t) != 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
  return 0;
}

static int tls_buffered(const gev_conn *c) {
  const gev_tls_conn *t = c->io_state;
  return t->eof || fn.SSL_pending(t->ssl) > 0 || fn.BIO_ctrl_pending(t->rbio) > 0;
}

static void tls_release(gev_conn *c) {
  gev_tls_conn *t = c->io_state;
  if (t == NULL) return;
  fn.SSL_free(t->ssl);
  free(t);
  c->io_state = NULL;
}

static const gev_io gev_io_tls = {tls_recv, tls_sendv, tls_handshake, tls_end, tls_buffered, tls_release};

/* Reads every certificate of a PEM block: the first is the leaf, the rest its chain. */
static int ctx_certs(SSL_CTX *ctx, const char *pem, size_t len) {
  BIO *b = fn.BIO_new_mem_buf(pem, (int)len);
  if (b == NULL) return -ENOMEM;
  X509 *x = fn.PEM_read_bio_X509(b, NULL, NULL, NULL);
  int rc = x != NULL && fn.SSL_CTX_use_certificate(ctx, x) == 1 ? 0 : -EINVAL;
  if (x != NULL) fn.X509_free(x);
  while (rc == 0 && (x = fn.PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    if (fn.SSL_CTX_ctrl(ctx, SSL_CTRL_CHAIN_CERT, 0, x) != 1) { /* add0: the context owns it */
      fn.X509_free(x);
      rc = -EINVAL;
    }
  }
  fn.BIO_free(b);
  return rc;
}

static int ctx_key(SSL_CTX *ctx, const char *pem, size_t len) {
  BIO *b = fn.BIO_new_mem_buf(pem, (int)len);
  if (b == NULL) return -ENOMEM;
  EVP_PKEY *k = fn.PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  int rc = k != NULL && fn.SSL_CTX_use_PrivateKey(ctx, k) == 1 ? 0 : -EINVAL;
  if (k != NULL) fn.EVP_PKEY_free(k);
  fn.BIO_free(b);
  return rc;
}

int gev_tls_ctx_new(const char *key_pem, size_t key_len, const char *cert_pem, size_t cert_len, gev_tls_ctx **out,
                    const char **reason_out) {
  const char *unused, **reason = reason_out != NULL ? reason_out : &unused;
  int rc = gev_tls_init(reason);
  if (rc != 0) return rc;
  if (key_len > INT_MAX || cert_len > INT_MAX) {
    *reason = "the key or the certificate is too large";
    return -EINVAL;
  }
  gev_tls_ctx *x = calloc(1, sizeof *x);
  if (x == NULL) return -ENOMEM;
  fn.ERR_clear_error();
  x->ctx = fn.SSL_CTX_new(fn.TLS_server_method());
  if (x->ctx == NULL) {
    *reason = "SSL_CTX_new failed";
    rc = -ENOMEM;
  } else {
    fn.SSL_CTX_ctrl(x->ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
    fn.SSL_CTX_set_options(x->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    fn.SSL_CTX_ctrl(x->ctx, SSL_CTRL_MODE, SSL_MODE_RELEASE_BUFFERS, NULL);
    /* The key first: a certificate set after it drops a key it does not match, which the check
     * below then reports, where a key set after the certificate would fail to load instead. */
    rc = ctx_key(x->ctx, key_pem, key_len);
    if (rc != 0) *reason = "the key is not a PEM private key OpenSSL takes";
  }
  if (rc == 0) {
    rc = ctx_certs(x->ctx, cert_pem, cert_len);
    if (rc != 0) *reason = "the certificate is not a PEM certificate OpenSSL takes";
  }
  if (rc == 0 && fn.SSL_CTX_check_private_key(x->ctx) != 1) {
    *reason = "the key does not match the certificate";
    rc = -EINVAL;
  }
  if (rc != 0) {
    err_drain();
    if (x->ctx != NULL) fn.SSL_CTX_free(x->ctx);
    free(x);
    return rc;
  }
  *out = x;
  return 0;
}

void gev_tls_ctx_free(gev_tls_ctx *x) {
  if (x == NULL) return;
  fn.SSL_CTX_free(x->ctx);
  free(x);
}

int gev_tls_adopt(gev_loop *loop, int fd, uint32_t origin, gev_tls_ctx *x, uint32_t *id_out) {
  uint32_t addr[GEV_ADDR_U32];
  int rc = sys_local_addr(fd, addr);
  if (rc != 0) return rc;
  int is_tcp = addr[0] == GEV_ADDR_INET4 || addr[0] == GEV_ADDR_INET6;
  gev_tls_conn *t = calloc(1, sizeof *t);
  if (t == NULL) return -ENOMEM;
  fn.ERR_clear_error();
  t->ssl = fn.SSL_new(x->ctx);
  t->rbio = fn.BIO_new(fn.BIO_s_mem());
  t->wbio = fn.BIO_new(fn.BIO_s_mem());
  if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
    err_drain();
    if (t->rbio != NULL) fn.BIO_free(t->rbio);
    if (t->wbio != NULL) fn.BIO_free(t->wbio);
    if (t->ssl != NULL) fn.SSL_free(t->ssl);
    free(t);
    return -ENOMEM;
  }
  fn.SSL_set_bio(t->ssl, t->rbio, t->wbio);
  fn.SSL_set_accept_state(t->ssl);
  rc = gev_conn_add_layered(loop, fd, origin, is_tcp, &gev_io_tls, t, id_out);
  if (rc != 0) {
    fn.SSL_free(t->ssl);
    free(t);
  }
  return rc;
}
