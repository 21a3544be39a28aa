/*
 * TLS as a gev_io layer (internal.h): server-side TLS per connection, the core above it seeing
 * plaintext only.
 *
 *   socket ──recv──► loop's in scratch ──BIO──► SSL_read ──► plaintext, into the core's buffer
 *   plaintext (the core's iov, gathered into records of at most GEV_TLS_RECORD bytes) ──SSL_write
 *          ──BIO──► loop's out scratch ──send──► socket
 *
 * Each connection's SSL reads and writes through a BIO of this file (one method, made once per
 * process) over the loop's scratch (gev_tls_scratch, made by its first TLS connection): a
 * connection keeps no buffer of its own while idle. Between two calls into the layer the scratch
 * is empty; what would be left in it moves to the connection:
 *   saved   ciphertext read from the socket that SSL has not consumed yet (recv stopped with its
 *           buffer full); served first by the next read;
 *   held    ciphertext the socket did not take: the layer's held output (GEV_C_IO_HELD). Output made
 *           while some is held goes behind it. sendv takes no plaintext while any is held, so a
 *           connection holds about one record (or one handshake flight), and everything else waits
 *           as plaintext in the core's queue.
 * Both are allocated when needed and freed once empty.
 *
 *   adopt (gev_tls_adopt) ─► GEV_C_HANDSHAKE: every event steps SSL_do_handshake; no record
 *        ├─ done ─► OPEN, then DATA/END/CLOSE as for any connection
 *        └─ failed ─► TLS_REFUSED [origin, EPROTO and OpenSSL's error, or ECONNABORTED when the
 *                     peer left] + peer, and never an OPEN (a dial's: CLOSE [id, errno])
 *   a deadline (gev_loop_tls) ─► handshakes in the loop's FIFO, oldest first; past it TLS_REFUSED
 *        [origin, ETIMEDOUT] (the loop's timer)
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

#define GEV_TLS_RECORD 16384u /* plaintext per record written */
#define GEV_TLS_IN     32768u /* ciphertext read from the socket per recv(2) */
#define GEV_TLS_OUT    65536u /* ciphertext gathered before a send(2): a handshake flight, a record */

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
  X(int, BIO_get_new_index, (void))                                                       \
  X(BIO_METHOD *, BIO_meth_new, (int, const char *))                                      \
  X(int, BIO_meth_set_write, (BIO_METHOD *, int (*)(BIO *, const char *, int)))           \
  X(int, BIO_meth_set_read, (BIO_METHOD *, int (*)(BIO *, char *, int)))                  \
  X(int, BIO_meth_set_ctrl, (BIO_METHOD *, long (*)(BIO *, int, long, void *)))           \
  X(BIO *, BIO_new, (const BIO_METHOD *))                                                 \
  X(BIO *, BIO_new_mem_buf, (const void *, int))                                          \
  X(int, BIO_free, (BIO *))                                                               \
  X(void, BIO_set_data, (BIO *, void *))                                                  \
  X(void *, BIO_get_data, (BIO *))                                                        \
  X(void, BIO_set_init, (BIO *, int))                                                     \
  X(void, BIO_set_flags, (BIO *, int))                                                    \
  X(void, BIO_clear_flags, (BIO *, int))                                                  \
  X(X509 *, PEM_read_bio_X509, (BIO *, X509 **, pem_password_cb *, void *))               \
  X(EVP_PKEY *, PEM_read_bio_PrivateKey, (BIO *, EVP_PKEY **, pem_password_cb *, void *)) \
  X(void, X509_free, (X509 *))                                                            \
  X(void, EVP_PKEY_free, (EVP_PKEY *))                                                    \
  X(void, ERR_clear_error, (void))                                                        \
  X(unsigned long, ERR_get_error, (void))                                                 \
  X(const char *, ERR_reason_error_string, (unsigned long))                               \
  X(const char *, SSL_get_version, (const SSL *))                                         \
  X(const SSL_CIPHER *, SSL_get_current_cipher, (const SSL *))                            \
  X(const char *, SSL_CIPHER_get_name, (const SSL_CIPHER *))                              \
  X(const char *, SSL_get_servername, (const SSL *, const int))                           \
  X(int, SSL_session_reused, (const SSL *))                                               \
  X(void, SSL_CTX_set_alpn_select_cb, (SSL_CTX *, SSL_CTX_alpn_select_cb_func, void *))   \
  X(void, SSL_get0_alpn_selected, (const SSL *, const unsigned char **, unsigned int *))

#define GEV_TLS_MEMBER(ret, name, args) ret(*name) args;
static struct {
  GEV_TLS_FUNCS(GEV_TLS_MEMBER)
} fn;

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *tls_bio_method; /* made once, kept for the process's life */
static int tls_status = -ENOSYS;   /* 0 once every function resolved and the version fits */
static const char *tls_reason = "OpenSSL was not looked for";

struct gev_tls_ctx {
  SSL_CTX *ctx;
  unsigned char *alpn; /* the server's protocols in wire format (length-prefixed), NULL for none */
  unsigned int alpn_len;
};

/* A loop's scratch (loop->tls_scratch), used by one call into the layer at a time. */
typedef struct gev_tls_conn gev_tls_conn;

typedef struct gev_tls_scratch {
  gev_tls_conn *hs_head; /* connections in their handshake, oldest (earliest deadline) first */
  gev_tls_conn *hs_tail;
  size_t in_len; /* bytes read into `in` by the current call */
  size_t in_off; /* of which SSL has consumed this many */
  size_t out_len;
  uint8_t in[GEV_TLS_IN];
  uint8_t out[GEV_TLS_OUT];
} gev_tls_scratch;

/* A growable byte run with a read offset: a connection's saved input or held output. */
typedef struct tls_run {
  uint8_t *p;
  size_t off, len, cap;
} tls_run;

/* A connection's TLS state (c->io_state). */
struct gev_tls_conn {
  SSL *ssl;
  gev_tls_scratch *sc; /* the loop's */
  tls_run saved;       /* ciphertext read, not yet consumed by SSL */
  tls_run held;        /* ciphertext not yet written */
  int werr;            /* a failed allocation of `saved` or `held`: the connection's end (ENOMEM) */
  int rerr;            /* a read's error found after input recv has returned, for its next call */
  int ended;           /* close_notify written */
  int eof;             /* the end of the stream was seen after input recv has returned */
  uint32_t failure;    /* OpenSSL's first error of a failed handshake, 0 if none */
  uint32_t id;         /* the connection's, while in the deadline FIFO */
  int in_fifo;         /* in the loop's FIFO of handshakes with a deadline */
  uint64_t deadline_ms;
  gev_tls_conn *hs_prev, *hs_next;
};

static int tls_bio_new_method(void);

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
  if (tls_bio_new_method() != 0) {
    tls_status = -ENOMEM;
    tls_reason = "OpenSSL could not make the BIO method TLS connections use";
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

static int run_append(tls_run *r, const void *p, size_t n) {
  if (r->off == r->len) r->off = r->len = 0;
  if (r->len + n > r->cap) {
    size_t cap = r->cap ? r->cap : 4096u;
    while (cap < r->len + n) cap *= 2u;
    uint8_t *q = realloc(r->p, cap);
    if (q == NULL) return -1;
    r->p = q;
    r->cap = cap;
  }
  memcpy(r->p + r->len, p, n);
  r->len += n;
  return 0;
}

static void run_free(tls_run *r) {
  free(r->p);
  memset(r, 0, sizeof *r);
}

/* The BIO's read: saved input first, then what the current call read into the loop's scratch. */
static int bio_read(BIO *b, char *p, int n) {
  gev_tls_conn *t = fn.BIO_get_data(b);
  gev_tls_scratch *sc = t->sc;
  fn.BIO_clear_flags(b, BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY);
  size_t k = 0;
  if (t->saved.off < t->saved.len) {
    k = t->saved.len - t->saved.off;
    if (k > (size_t)n) k = (size_t)n;
    memcpy(p, t->saved.p + t->saved.off, k);
    t->saved.off += k;
    if (t->saved.off == t->saved.len) run_free(&t->saved);
  } else if (sc->in_off < sc->in_len) {
    k = sc->in_len - sc->in_off;
    if (k > (size_t)n) k = (size_t)n;
    memcpy(p, sc->in + sc->in_off, k);
    sc->in_off += k;
  } else {
    fn.BIO_set_flags(b, BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY);
    return -1;
  }
  return (int)k;
}

/* The BIO's write: into the loop's out scratch, or behind held output (in order). */
static int bio_write(BIO *b, const char *p, int n) {
  gev_tls_conn *t = fn.BIO_get_data(b);
  gev_tls_scratch *sc = t->sc;
  fn.BIO_clear_flags(b, BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY);
  if (t->held.off == t->held.len && sc->out_len + (size_t)n <= sizeof sc->out) {
    memcpy(sc->out + sc->out_len, p, (size_t)n);
    sc->out_len += (size_t)n;
    return n;
  }
  if ((sc->out_len > 0 && run_append(&t->held, sc->out, sc->out_len) != 0) || run_append(&t->held, p, (size_t)n) != 0) {
    t->werr = ENOMEM;
    return -1;
  }
  sc->out_len = 0;
  return n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

static int tls_bio_new_method(void) {
  BIO_METHOD *m = fn.BIO_meth_new(fn.BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gevent");
  if (m == NULL || fn.BIO_meth_set_write(m, bio_write) != 1 || fn.BIO_meth_set_read(m, bio_read) != 1 ||
      fn.BIO_meth_set_ctrl(m, bio_ctrl) != 1) {
    err_drain();
    return -1;
  }
  tls_bio_method = m;
  return 0;
}

/*
 * Ends a call into the layer: input SSL has not consumed moves from the loop's scratch to `saved`,
 * and output is written to the socket, what it does not take moving to `held`. 0 when nothing is
 * held (GEV_C_IO_HELD cleared); -1 with errno EAGAIN when some is (GEV_C_IO_HELD set), or with a
 * fatal errno.
 */
static int tls_push(gev_conn *c, gev_tls_conn *t) {
  gev_tls_scratch *sc = t->sc;
  int rc = 0;
  if (sc->in_off < sc->in_len && run_append(&t->saved, sc->in + sc->in_off, sc->in_len - sc->in_off) != 0)
    t->werr = ENOMEM;
  sc->in_off = sc->in_len = 0;
  if (sc->out_len > 0) {
    struct iovec iov = {sc->out, sc->out_len};
    ssize_t w;
    do w = sys_sendv(c->fd, &iov, 1);
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) rc = errno;
    if (w < 0) w = 0;
    if (rc == 0 && (size_t)w < sc->out_len && run_append(&t->held, sc->out + w, sc->out_len - (size_t)w) != 0)
      t->werr = ENOMEM;
    sc->out_len = 0;
  }
  while (rc == 0 && t->held.off < t->held.len) {
    struct iovec iov = {t->held.p + t->held.off, t->held.len - t->held.off};
    ssize_t w = sys_sendv(c->fd, &iov, 1);
    if (w < 0) {
      if (errno == EINTR) continue;
      rc = errno;
      break;
    }
    t->held.off += (size_t)w;
  }
  if (t->held.off == t->held.len) run_free(&t->held);
  if (t->werr != 0 && rc == 0) rc = t->werr;
  if (rc == 0) {
    c->flags &= (uint16_t)~GEV_C_IO_HELD;
    return 0;
  }
  if (rc == EAGAIN || rc == EWOULDBLOCK) c->flags |= GEV_C_IO_HELD;
  errno = rc;
  return -1;
}

/* Reads the socket once into the loop's scratch (only ever empty here: SSL asks for more only
 * once it has consumed everything): the count, 0 at its end, or -1 with errno. */
static ssize_t tls_fill(gev_conn *c, gev_tls_conn *t) {
  gev_tls_scratch *sc = t->sc;
  ssize_t n;
  do n = sys_recv(c->fd, sc->in, sizeof sc->in);
  while (n < 0 && errno == EINTR);
  sc->in_off = 0;
  sc->in_len = n > 0 ? (size_t)n : 0;
  return n;
}

/* Ends a call that read (see tls_push), keeping errno: a failure to write shows at the next send
 * or EPOLLOUT. */
static void tls_push_quiet(gev_conn *c, gev_tls_conn *t) {
  int saved = errno;
  tls_push(c, t);
  errno = saved;
}

/* Takes `t` out of the loop's FIFO of handshakes with a deadline (if it is in it). */
static void fifo_remove(gev_tls_conn *t) {
  if (!t->in_fifo) return;
  gev_tls_scratch *sc = t->sc;
  if (t->hs_prev != NULL) t->hs_prev->hs_next = t->hs_next;
  else sc->hs_head = t->hs_next;
  if (t->hs_next != NULL) t->hs_next->hs_prev = t->hs_prev;
  else sc->hs_tail = t->hs_prev;
  t->hs_prev = t->hs_next = NULL;
  t->in_fifo = 0;
}

/* The timer fired at `now`: refuses (ETIMEDOUT) every handshake past its deadline, as many as the
 * arena takes (the rest at once in the next fill), and arms the timer for the next deadline. */
static void tls_expire(gev_loop *loop, uint64_t now) {
  gev_tls_scratch *sc = loop->tls_scratch;
  while (sc != NULL && sc->hs_head != NULL) {
    gev_tls_conn *t = sc->hs_head;
    if (t->deadline_ms > now) {
      gev_loop_timer_want(loop, t->deadline_ms);
      return;
    }
    if (!gev_loop_room(loop, 1u + GEV_ADDR_SLOTS)) {
      gev_loop_timer_want(loop, now);
      return;
    }
    gev_conn *c = gev_conn_get(loop, t->id);
    if (c == NULL) { /* cannot happen: release takes it out first */
      fifo_remove(t);
      continue;
    }
    gev_conn_refuse(loop, c, ETIMEDOUT, 0);
  }
}

static int tls_handshake(gev_conn *c) {
  gev_tls_conn *t = c->io_state;
  for (;;) {
    fn.ERR_clear_error();
    int r = fn.SSL_do_handshake(t->ssl);
    if (r == 1) {
      fifo_remove(t);
      if (tls_push(c, t) != 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      return 1;
    }
    int e = fn.SSL_get_error(t->ssl, r);
    unsigned long first = err_drain();
    if (e != SSL_ERROR_WANT_READ) {
      t->failure = (uint32_t)first;
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
  if (t->rerr != 0) {
    errno = t->rerr;
    return -1;
  }
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
  if (t->werr != 0) err = t->werr;
  else if (got > 0) {
    t->rerr = err == EAGAIN || err == EWOULDBLOCK ? 0 : err; /* the socket's EAGAIN is no error to keep */
    return (ssize_t)got;
  }
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
  return t->eof || t->rerr != 0 || t->saved.off < t->saved.len || fn.SSL_pending(t->ssl) > 0;
}

static void tls_release(gev_conn *c) {
  gev_tls_conn *t = c->io_state;
  if (t == NULL) return;
  fifo_remove(t);
  fn.SSL_free(t->ssl);
  run_free(&t->saved);
  run_free(&t->held);
  free(t);
  c->io_state = NULL;
}

static uint32_t tls_failure(const gev_conn *c) { return ((const gev_tls_conn *)c->io_state)->failure; }

static const gev_io gev_io_tls = {tls_recv, tls_sendv, tls_handshake, tls_end, tls_buffered, tls_release, tls_failure};

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
  if (rc == 0) err_drain(); /* the read past the last certificate fails, as expected */
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

/* Picks the first of the server's protocols (its order of preference) that the client offers, as
 * node:tls does; no overlap is a fatal no_application_protocol alert, as node:tls sends. */
static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                           unsigned int inlen, void *arg) {
  (void)ssl;
  const gev_tls_ctx *x = arg;
  for (unsigned int i = 0; i < x->alpn_len; i += 1u + x->alpn[i]) {
    const unsigned char *mine = &x->alpn[i];
    for (unsigned int j = 0; j < inlen && j + 1u + in[j] <= inlen; j += 1u + in[j]) {
      if (in[j] == mine[0] && memcmp(&in[j + 1], mine + 1, mine[0]) == 0) {
        *out = &in[j + 1];
        *outlen = in[j];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Whether `p` is a well-formed ALPN list: length-prefixed names of 1 to 255 bytes, at least one. */
static int alpn_valid(const unsigned char *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (p[i] == 0 || i + 1 + p[i] > len) return 0;
    i += 1 + (size_t)p[i];
  }
  return len > 0;
}

int gev_tls_ctx_new(const char *key_pem, size_t key_len, const char *cert_pem, size_t cert_len,
                    const unsigned char *alpn, size_t alpn_len, gev_tls_ctx **out, const char **reason_out) {
  const char *unused, **reason = reason_out != NULL ? reason_out : &unused;
  int rc = gev_tls_init(reason);
  if (rc != 0) return rc;
  if (key_len > INT_MAX || cert_len > INT_MAX) {
    *reason = "the key or the certificate is too large";
    return -EINVAL;
  }
  if (alpn_len > 0 && (alpn_len > 0xffff || !alpn_valid(alpn, alpn_len))) {
    *reason = "the ALPN list is not length-prefixed protocol names";
    return -EINVAL;
  }
  gev_tls_ctx *x = calloc(1, sizeof *x);
  if (x == NULL) return -ENOMEM;
  if (alpn_len > 0) {
    x->alpn = malloc(alpn_len);
    if (x->alpn == NULL) {
      free(x);
      return -ENOMEM;
    }
    memcpy(x->alpn, alpn, alpn_len);
    x->alpn_len = (unsigned int)alpn_len;
  }
  fn.ERR_clear_error();
  x->ctx = fn.SSL_CTX_new(fn.TLS_server_method());
  if (x->ctx == NULL) {
    *reason = "SSL_CTX_new failed";
    rc = -ENOMEM;
  } else {
    fn.SSL_CTX_ctrl(x->ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
    fn.SSL_CTX_set_options(x->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    fn.SSL_CTX_ctrl(x->ctx, SSL_CTRL_MODE, SSL_MODE_RELEASE_BUFFERS, NULL);
    if (x->alpn != NULL) fn.SSL_CTX_set_alpn_select_cb(x->ctx, tls_alpn_select, x);
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
    free(x->alpn);
    free(x);
    return rc;
  }
  *out = x;
  return 0;
}

void gev_tls_ctx_free(gev_tls_ctx *x) {
  if (x == NULL) return;
  fn.SSL_CTX_free(x->ctx);
  free(x->alpn);
  free(x);
}

int gev_tls_adopt(gev_loop *loop, int fd, uint32_t origin, gev_tls_ctx *x, uint32_t *id_out) {
  uint32_t addr[GEV_ADDR_U32];
  int rc = sys_local_addr(fd, addr);
  if (rc != 0) return rc;
  int is_tcp = addr[0] == GEV_ADDR_INET4 || addr[0] == GEV_ADDR_INET6;
  if (loop->tls_scratch == NULL) {
    gev_tls_scratch *sc = malloc(sizeof *sc);
    if (sc == NULL) return -ENOMEM;
    sc->in_len = sc->in_off = sc->out_len = 0;
    sc->hs_head = sc->hs_tail = NULL;
    loop->tls_scratch = sc;
  }
  gev_tls_conn *t = calloc(1, sizeof *t);
  if (t == NULL) return -ENOMEM;
  t->sc = loop->tls_scratch;
  fn.ERR_clear_error();
  t->ssl = fn.SSL_new(x->ctx);
  BIO *b = fn.BIO_new(tls_bio_method);
  if (t->ssl == NULL || b == NULL) {
    err_drain();
    if (b != NULL) fn.BIO_free(b);
    if (t->ssl != NULL) fn.SSL_free(t->ssl);
    free(t);
    return -ENOMEM;
  }
  fn.BIO_set_data(b, t);
  fn.BIO_set_init(b, 1);
  fn.SSL_set_bio(t->ssl, b, b); /* one BIO both ways, owned by the SSL */
  fn.SSL_set_accept_state(t->ssl);
  rc = gev_conn_add_layered(loop, fd, origin, is_tcp, &gev_io_tls, t, id_out);
  if (rc != 0) {
    fn.SSL_free(t->ssl);
    free(t);
    return rc;
  }
  if (loop->tls_timeout_ms > 0) {
    gev_tls_scratch *sc = t->sc;
    t->id = *id_out;
    t->deadline_ms = sys_now_ms() + loop->tls_timeout_ms;
    t->in_fifo = 1;
    t->hs_prev = sc->hs_tail;
    if (sc->hs_tail != NULL) sc->hs_tail->hs_next = t;
    else sc->hs_head = t;
    sc->hs_tail = t;
    gev_loop_timer_want(loop, t->deadline_ms);
  }
  return 0;
}

int gev_loop_tls(gev_loop *loop, const char *key_pem, size_t key_len, const char *cert_pem, size_t cert_len,
                 const unsigned char *alpn, size_t alpn_len, uint32_t handshake_timeout_ms, const char **reason) {
  if (loop->tls_ctx != NULL) {
    if (reason != NULL) *reason = "the loop has a TLS context already";
    return -EALREADY;
  }
  gev_tls_ctx *x = NULL;
  int rc = gev_tls_ctx_new(key_pem, key_len, cert_pem, cert_len, alpn, alpn_len, &x, reason);
  if (rc != 0) return rc;
  loop->tls_ctx = x;
  loop->tls_adopt = gev_tls_adopt;
  loop->tls_free = gev_tls_ctx_free;
  loop->tls_expire = tls_expire;
  loop->tls_timeout_ms = handshake_timeout_ms;
  return 0;
}

int gev_conn_tls_info(gev_loop *loop, uint32_t id, gev_tls_info *out) {
  gev_conn *c = gev_conn_get(loop, id);
  if (c == NULL || c->io != &gev_io_tls || (c->flags & GEV_C_HANDSHAKE)) return -EBADF;
  SSL *ssl = ((gev_tls_conn *)c->io_state)->ssl;
  const SSL_CIPHER *cipher = fn.SSL_get_current_cipher(ssl);
  const char *name = fn.SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  out->protocol = fn.SSL_get_version(ssl);
  out->cipher = cipher != NULL ? fn.SSL_CIPHER_get_name(cipher) : "";
  out->servername[0] = '\0';
  if (name != NULL) {
    size_t n = strlen(name);
    if (n >= sizeof out->servername) n = sizeof out->servername - 1;
    memcpy(out->servername, name, n);
    out->servername[n] = '\0';
  }
  out->resumed = fn.SSL_session_reused(ssl) == 1;
  const unsigned char *proto = NULL;
  unsigned int plen = 0;
  fn.SSL_get0_alpn_selected(ssl, &proto, &plen);
  if (proto == NULL || plen >= sizeof out->alpn) plen = 0;
  if (plen > 0) memcpy(out->alpn, proto, plen);
  out->alpn[plen] = '\0';
  return 0;
}

const char *gev_tls_reason(uint32_t err) {
  if (err == 0 || gev_tls_init(NULL) != 0) return NULL;
  return fn.ERR_reason_error_string(err);
}
