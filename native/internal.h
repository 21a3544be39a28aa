/*
 * The core's internals: the structures behind gev_loop and the functions the core's files call on
 * one another. Included by the core's .c files (never by addon.c, which sees only gev.h) and by
 * test/c, which inspects a loop's state. Everything here runs on the thread that owns the loop.
 */
#ifndef GEV_INTERNAL_H
#define GEV_INTERNAL_H

#include "gev.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#define GEV_SLOT_MASK         ((1u << GEV_SLOT_BITS) - 1u)
#define GEV_MAX_SLOTS         (1u << GEV_SLOT_BITS)
#define GEV_READ_BUDGET       65536u /* bytes read per connection per wake-up */
#define GEV_ACCEPT_CAP        128u   /* accepts per listener per wake-up */
#define GEV_EPOLL_EVENTS      512
#define GEV_EPOLL_ROUNDS      4
#define GEV_UDP_BATCH         64u
#define GEV_REC_RESERVE       8u  /* record slots kept free so an event's END/CLOSE never waits */
#define GEV_PENDING_SPARE     16u /* pending slots kept for one event's END/ACCEPT_ERROR (loop.c) */
#define GEV_PENDING_INIT      64u /* pending slots allocated when the loop opens */
#define GEV_ACCEPT_BACKOFF_MS 100 /* a listener parked after an accept error retries this late */
#define GEV_HANDSHAKE_CAP     16  /* layer handshake steps per wake-up; the rest wait for the next */
/* A queue copy this large asks for huge pages (sys_advise_huge). It is glibc's largest mmap
 * threshold, so the block is always a mapping of its own, unmapped on free with its advice. */
#define GEV_HUGE_COPY (32u << 20)

/* epoll_data.u64 tags: high 32 bits say what the low 32 bits name. */
#define GEV_TAG_CONN     1ull
#define GEV_TAG_LISTENER 2ull
#define GEV_TAG_EVENTFD  3ull
#define GEV_TAG_TIMER    4ull

/* Connection flags. */
#define GEV_C_OPEN       0x01u /* slot holds a live fd */
#define GEV_C_RD_EOF     0x02u /* peer sent FIN; EPOLLIN no longer wanted */
#define GEV_C_CLOSING    0x04u /* close after the output queue drains */
#define GEV_C_ENDING     0x08u /* shutdown(SHUT_WR) after the output queue drains */
#define GEV_C_WR_SHUT    0x10u /* shutdown(SHUT_WR) done */
#define GEV_C_TCP        0x20u
#define GEV_C_PAUSED     0x40u   /* reading paused by JS: EPOLLIN not wanted */
#define GEV_C_QDIRTY     0x80u   /* queue changed (or a report was asked for) during this flush */
#define GEV_C_QWATCH     0x100u  /* report QUEUED after this flush even if unchanged */
#define GEV_C_HUP_PARKED 0x200u  /* hung up while paused: out of the epoll set until resumed */
#define GEV_C_CONNECTING 0x400u  /* dialled, handshake under way: EPOLLOUT alone, no OPEN yet */
#define GEV_C_PROXY_WAIT 0x800u  /* PROXY listener's: header not complete yet, no OPEN yet (proxyaccept.c) */
#define GEV_C_RELAY_HELD 0x2000u /* relaying into a connection holding too much output: EPOLLIN not wanted (relay.c) */
#define GEV_C_HANDSHAKE  0x4000u /* its gev_io layer's handshake is under way: no OPEN yet (see gev_io) */
#define GEV_C_IO_HELD    0x8000u /* its gev_io layer holds output for the socket: EPOLLOUT wanted (see gev_io) */

/* A dialled (connected) UDP socket: one DATA record per datagram, one datagram per write (dgramconn.c). */
#define GEV_C_DGRAM 0x1000u

/* One queued output chunk, owned by its connection; `off` is how much was already sent. */
typedef struct gev_chunk {
  struct gev_chunk *next;
  size_t off;
  size_t len;
  char data[];
} gev_chunk;

typedef struct gev_conn gev_conn;

/*
 * A connection of a PROXY protocol listener (proxyaccept.c). While its header is pending: its place
 * in the loop's FIFO of pending connections (slots, accept order, so deadlines ascend), the bytes
 * read so far (buf, allocated on the first read) and the socket's peer for a refusal. Once open,
 * only `local` is kept: the header's destination, which gev_conn_sockname reports.
 */
/*
 * A connection's part in a relay (relay.c), allocated when it first takes part in one: the
 * connection its input goes to, the one whose input comes to it, and the bytes moved each way.
 * Ids are 0 for none; a destination takes one source at a time.
 */
typedef struct gev_relay {
  uint32_t to;   /* input read from this connection is sent to `to` */
  uint32_t from; /* the connection relaying into this one */
  uint32_t hw;   /* reading stops while `to` holds more than hw bytes unsent, and resumes at hw / 4 */
  uint64_t rx;   /* bytes read from this connection and relayed */
  uint64_t tx;   /* bytes relayed into this connection */
} gev_relay;

typedef struct gev_proxy {
  uint64_t deadline_ms; /* CLOCK_MONOTONIC ms */
  uint32_t prev;        /* FIFO neighbours (slots), UINT32_MAX at either end */
  uint32_t next;
  uint32_t len; /* bytes in buf */
  int has_local;
  uint8_t *buf; /* GEV_PROXY_HEADER_MAX bytes, or NULL */
  uint32_t peer[GEV_ADDR_U32];
  uint32_t local[GEV_ADDR_U32];
} gev_proxy;

/*
 * The one pair every stream connection's bytes go through (conn.c calls nothing else to move
 * them), so that a layer such as TLS can stand between the core and the socket by supplying its
 * own pair and hooks. gev_io_plain (io.c) is the socket itself, with no hook; tls.c is a layer.
 *
 *   recv(c, buf, len)    reads at most len bytes of plaintext into buf. Returns the count (> 0),
 *                        0 at the end of the stream (the peer is done sending), or -1 with errno:
 *                        EAGAIN/EWOULDBLOCK when nothing can be read until c->fd polls readable
 *                        again, EINTR to be called again at once, anything else a fatal error that
 *                        closes the connection with that errno. A count short of len, with
 *                        buffered(c) false, means the layer holds no more input: the next comes
 *                        with c->fd polling readable.
 *   sendv(c, iov, n)     takes as many leading bytes of iov[0..n) as it can without blocking and
 *                        returns that count (possibly fewer than offered), or -1 with errno:
 *                        EAGAIN/EWOULDBLOCK when none can be taken until c->fd polls writable,
 *                        EINTR to be called again, anything else fatal (EPIPE, ECONNRESET, ...).
 *                        Bytes counted as taken are the layer's from then on; the rest the core
 *                        queues and offers again, first and in order. It never raises SIGPIPE.
 *                        With n == 0 it only pushes output the layer holds (0, or -1 as above).
 *
 * The hooks, NULL in the plain pair:
 *   handshake(c)         steps the layer's handshake: 1 done, 0 under way, -1 with errno (EPROTO
 *                        for a peer that does not speak the protocol, ECONNABORTED for one that
 *                        left, a socket's errno). While GEV_C_HANDSHAKE is set the core calls it on
 *                        every event instead of reading (at most GEV_HANDSHAKE_CAP times a wake-up,
 *                        the rest staying ready), emits no record and runs no command but CLOSE
 *                        (errno 0); done, it emits OPEN and reads at once; failed, it closes and
 *                        there is never an OPEN: a dial's gives CLOSE [id, errno] (as for a dial
 *                        that fails), an accepted one's, which JS never heard of, TLS_REFUSED
 *                        [listener index, errno, failure(c)] + the peer, its slot free at once.
 *   end(c)               writes the layer's end of stream (TLS: close_notify), once however often
 *                        it is called. The core calls it when the queue has drained under an END or
 *                        a flushed CLOSE, and shuts down or closes the socket only once the layer
 *                        holds nothing. 0, or -1 with a fatal errno.
 *   buffered(c)          true when the layer holds input recv has not returned yet. A read that
 *                        stops for the budget or a full arena, and a connection whose reading is
 *                        resumed, go on the loop's ready list (`ready`) when it holds some: c->fd
 *                        will not poll readable for it, so the next fill reads it from there.
 *   release(c)           frees the layer's state (c->io_state) when the connection is torn down.
 *   failure(c)           after a failed handshake: the layer's own code for why (TLS: OpenSSL's
 *                        first error), 0 when it has none.
 *
 * Held output: a layer whose recv, sendv, handshake or end could not write all its own bytes
 * (TLS records) keeps them and sets GEV_C_IO_HELD in c->flags, clearing it once they are written.
 * The core polls EPOLLOUT while the flag is set (as while its queue is non-empty) and then calls
 * sendv, with the queue or with n == 0. Held output is not counted in qbytes: a layer holds about
 * one record (or one handshake flight) of it at most, and stops taking plaintext while it holds any.
 *
 * buf and iov belong to the caller and are valid only during the call. Every call runs on the loop's
 * thread, inside a fill or a flush, and must never call back into the core (setting or clearing
 * GEV_C_IO_HELD is the one thing a layer does to the connection).
 */
typedef struct gev_io {
  ssize_t (*recv)(gev_conn *c, void *buf, size_t len);
  ssize_t (*sendv)(gev_conn *c, const struct iovec *iov, int iovcnt);
  int (*handshake)(gev_conn *c);
  int (*end)(gev_conn *c);
  int (*buffered)(const gev_conn *c);
  void (*release)(gev_conn *c);
  uint32_t (*failure)(const gev_conn *c);
} gev_io;

extern const gev_io gev_io_plain;

struct gev_conn {
  int fd;
  uint16_t gen;
  uint16_t flags;
  uint32_t origin;     /* the JS listener index it was accepted on, or GEV_ORIGIN_DIAL | n */
  uint32_t events;     /* current epoll interest */
  uint32_t read_epoch; /* wake-up that read_used counts for */
  uint32_t read_used;
  uint32_t next_free;
  const gev_io *io; /* how its bytes move, see gev_io */
  void *io_state;   /* the layer's own state, NULL for the plain pair */
  gev_chunk *qhead;
  gev_chunk *qtail;
  size_t qbytes;    /* bytes in the queue, exactly: sum of (len - off) over its chunks */
  size_t reported;  /* the qbytes JS last heard of in a QUEUED record */
  gev_proxy *proxy; /* NULL unless accepted on a PROXY protocol listener */
  gev_relay *relay; /* NULL unless it has taken part in a relay */
};

enum gev_lkind { GEV_L_FREE = 0, GEV_L_TCP, GEV_L_UNIX, GEV_L_UDP };

typedef struct gev_listener {
  int fd;
  int kind;
  int handoff;          /* report accepted fds instead of registering them (GEV_LISTEN_HANDOFF) */
  int proxy;            /* connections start with a PROXY header (GEV_LISTEN_PROXY) */
  int tls;              /* connections are TLS over the loop's context (GEV_LISTEN_TLS) */
  int parked;           /* EPOLLIN dropped after an accept error, until the timer or a close */
  uint32_t error_epoch; /* the wake-up that last emitted ACCEPT_ERROR */
  uint32_t origin;      /* the JS listener index, carried by its records */
  char *path;           /* unix socket file we created, unlinked on close */
  dev_t dev;
  ino_t ino;
} gev_listener;

typedef struct gev_pending {
  uint32_t *slots; /* GEV_SLOT_U32 u32 per slot */
  uint32_t n;
  uint32_t cap;
} gev_pending;

/* Ids of connections whose queue changed during the current flush (GEV_C_QDIRTY set). When the
 * list cannot grow, `overflow` says so and the flush's end scans the table for the flag instead. */
typedef struct gev_idlist {
  uint32_t *ids;
  uint32_t n;
  uint32_t cap;
  int overflow;
} gev_idlist;

struct gev_loop {
  int epfd;
  int efd;            /* eventfd: our own notification that pending records wait (gev_loop_notify) */
  int tfd;            /* timerfd: re-arms parked listeners, expires PROXY headers (the earlier of the two) */
  int filling;        /* a fill is writing records into the in arena */
  int notified;       /* our own eventfd write is outstanding */
  uint64_t timer_at;  /* CLOCK_MONOTONIC ms the timerfd is armed for, 0 when disarmed */
  uint64_t unpark_at; /* when parked listeners retry, 0 when none waits */
  uint32_t proxy_timeout_ms;
  uint32_t proxy_head; /* FIFO of connections whose PROXY header is pending (slots), oldest first */
  uint32_t proxy_tail;
  uint32_t proxy_pending;
  int tcp_nodelay;
  uint32_t epoch;
  uint32_t parked; /* listeners parked after an accept error */

  uint32_t *in32;
  uint8_t *in8;
  size_t in_size;
  uint32_t in_rec_cap; /* record slots */
  uint32_t in_nrec;
  size_t in_byte_start;
  size_t in_byte_pos;

  uint32_t *out32;
  uint8_t *out8;
  size_t out_size;
  uint32_t out_cmd_cap;

  gev_conn *conns;
  uint32_t nconns;    /* slots handed out so far (open, closing or on the free list) */
  uint32_t conns_cap; /* slots allocated; those past nconns are untouched memory */
  uint32_t free_head;
  uint32_t live;

  gev_listener ls[GEV_MAX_LISTENERS];
  gev_pending pending;
  gev_idlist dirty;
  gev_idlist ready;  /* connections whose layer holds input c->fd will not announce (gev_io) */
  uint32_t hs_epoch; /* the wake-up hs_used counts for */
  uint32_t hs_used;  /* layer handshake steps in that wake-up (GEV_HANDSHAKE_CAP) */

  int spare_fd;       /* released to accept and drop a connection when out of fds */
  uint8_t *relay_buf; /* GEV_READ_BUDGET bytes relayed input passes through, made by the first relay */
  void *tls_scratch;  /* tls.c's buffers every TLS connection's bytes pass through, made by the first */
  /* The context of the loop's TLS listeners (gev_loop_tls) and the tls.c functions that adopt a
   * connection over it and free it: pointers, so that a core built without tls.c links. */
  struct gev_tls_ctx *tls_ctx;
  int (*tls_adopt)(gev_loop *loop, int fd, uint32_t origin, struct gev_tls_ctx *x, uint32_t *id_out);
  void (*tls_free)(struct gev_tls_ctx *x);
  void (*tls_expire)(gev_loop *loop, uint64_t now); /* refuses handshakes past their deadline */
  uint32_t tls_timeout_ms;                          /* the handshake deadline, 0 for none */
  size_t udp_slot; /* receive slot per datagram; a larger datagram is dropped as truncated */

  uint64_t dgram_truncated;
  uint64_t dgram_send_dropped;

  /* Datagrams queued by a flush, sent with one sendmmsg per listener run. */
  uint32_t udp_slot_out;
  uint32_t udp_n;
  struct mmsghdr udp_msgs[GEV_UDP_BATCH];
  struct iovec udp_iov[GEV_UDP_BATCH];
  struct sockaddr_storage udp_addr[GEV_UDP_BATCH];

  struct epoll_event evs[GEV_EPOLL_EVENTS];
};

/* sys.c: every socket syscall and socket option, and the socket address format. Functions that
 * return int give 0 (or an fd) or -errno; the ssize_t ones keep the syscall's -1 and errno. */
int sys_socket(int af, int type);
int sys_listen_options(int fd, int af, int type, uint32_t flags);
int sys_bind(int fd, const struct sockaddr *sa, socklen_t len);
void sys_dial_options(int fd, const struct sockaddr *local);
int sys_connect(int fd, const struct sockaddr *sa, socklen_t len);
int sys_listen(int fd);
int sys_accept(int lfd, uint32_t *addr8);
int sys_unix_live(const struct sockaddr_un *sa);
int sys_tcp_nodelay(int fd);
int sys_keepalive(int fd, uint32_t seconds);
int sys_set_int(int fd, int level, int opt, int value);
int sys_so_error(int fd);
int sys_local_addr(int fd, uint32_t *addr8);
int sys_peer_addr(int fd, uint32_t *addr8);
void sys_shutdown_wr(int fd);
ssize_t sys_recv(int fd, void *buf, size_t len);
ssize_t sys_sendv(int fd, const struct iovec *iov, int iovcnt);
int sys_recvmmsg(int fd, struct mmsghdr *msgs, unsigned n);
int sys_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n);
int sys_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t tag);
int sys_timer_arm_at(int tfd, uint64_t at_ms);
uint64_t sys_now_ms(void);
int sys_open_spare(void);
void sys_close(int fd);
void sys_advise_huge(void *p, size_t len);
void gev_addr_encode(uint32_t *slots8, const struct sockaddr *sa, socklen_t len);
socklen_t gev_addr_decode(const uint32_t *slots8, struct sockaddr_storage *ss);
int gev_addr_parse(int family, const char *host, int port, struct sockaddr_storage *ss, socklen_t *len);

/* loop.c: records (arena or pending list), the loop's own notification and its timer. */
int gev_loop_room(gev_loop *loop, uint32_t slots);
uint32_t *gev_loop_record(gev_loop *loop, uint32_t slots);
int gev_loop_reserve(gev_loop *loop, uint32_t slots);
int gev_loop_emit(gev_loop *loop, uint32_t type, uint32_t a, uint32_t b, uint32_t c, const uint32_t *addr8);
void gev_loop_notify(gev_loop *loop);
void gev_loop_timer_want(gev_loop *loop, uint64_t at_ms);
uint32_t gev_rec_slots(uint32_t type);

/* conn.c: the connection table, reads and the output queue. */
gev_conn *gev_conn_get(gev_loop *loop, uint32_t id);
uint32_t gev_conn_id(gev_loop *loop, gev_conn *c);
void gev_conn_release(gev_loop *loop, gev_conn *c);
void gev_conn_refuse(gev_loop *loop, gev_conn *c, int err, uint32_t why);
int gev_conn_add(gev_loop *loop, int fd, uint32_t origin, int is_tcp, uint32_t *id_out);
int gev_conn_add_pending(gev_loop *loop, int fd, uint32_t origin, int is_tcp, uint32_t *id_out);
int gev_conn_connect(gev_loop *loop, const struct sockaddr *sa, socklen_t len, const struct sockaddr *local,
                     socklen_t local_len, uint32_t origin, uint32_t *id_out);
void gev_conn_on_event(gev_loop *loop, uint32_t id, uint32_t events);
void gev_conn_send(gev_loop *loop, gev_conn *c, struct iovec *iov, int iovcnt, size_t total);
void gev_conn_close(gev_loop *loop, gev_conn *c, int err);
void gev_conn_request_close(gev_loop *loop, gev_conn *c, int flush);
void gev_conn_end(gev_loop *loop, gev_conn *c);
void gev_conn_keepalive(gev_conn *c, uint32_t seconds);
void gev_conn_pause(gev_loop *loop, gev_conn *c, int paused);
void gev_conn_watch(gev_loop *loop, gev_conn *c);
void gev_conn_report_queued(gev_loop *loop);
void gev_conn_free_all(gev_loop *loop);
void gev_conn_interest(gev_loop *loop, gev_conn *c);
void gev_conn_read_eof(gev_loop *loop, gev_conn *c, uint32_t id);
int gev_conn_report(gev_loop *loop, gev_conn *c);
int gev_conn_add_layered(gev_loop *loop, int fd, uint32_t origin, int is_tcp, const gev_io *io, void *state,
                         uint32_t *id_out);
void gev_conn_ready_push(gev_loop *loop, gev_conn *c);
void gev_conn_run_ready(gev_loop *loop);

/* listen.c: accept and the parking of listeners. */
void gev_listener_on_event(gev_loop *loop, uint32_t slot);
void gev_listener_unpark_all(gev_loop *loop);

/* proxyaccept.c: connections of PROXY protocol listeners until their header is read. */
int gev_proxy_accept(gev_loop *loop, int fd, uint32_t origin, int is_tcp, const uint32_t *peer8);
int gev_proxy_adopt(gev_loop *loop, int fd, uint32_t origin, int is_tcp, const uint32_t *peer8, uint32_t *id_out);
void gev_proxy_on_event(gev_loop *loop, gev_conn *c);
int gev_proxy_sockname(const gev_conn *c, uint32_t *addr8);
void gev_proxy_expire(gev_loop *loop, uint64_t now);
void gev_proxy_drop_all(gev_loop *loop);
void gev_proxy_free(gev_loop *loop, gev_conn *c);

/* relay.c: input moved from one connection to another without a record. */
void gev_relay_set(gev_loop *loop, gev_conn *c, uint32_t to, uint32_t hw);
gev_conn *gev_relay_dest(gev_loop *loop, gev_conn *c);
int gev_relay_read(gev_loop *loop, gev_conn *c, uint32_t id, gev_conn *dst);
void gev_relay_drained(gev_loop *loop, gev_conn *dst);
void gev_relay_unlink(gev_loop *loop, gev_conn *c);
void gev_relay_dest_ending(gev_loop *loop, gev_conn *dst);

/* dgramconn.c: dialled UDP connections (GEV_C_DGRAM), whose reads and writes keep datagram
 * boundaries; conn.c hands them their events and flush.c their writes. */
void gev_dgram_on_event(gev_loop *loop, gev_conn *c, uint32_t id, uint32_t events);
void gev_dgram_send(gev_loop *loop, gev_conn *c, const struct iovec *iov, int iovcnt);

/* udp.c: datagram sockets, recvmmsg and sendmmsg. */
void gev_udp_on_event(gev_loop *loop, gev_listener *l);
void gev_udp_queue(gev_loop *loop, uint32_t slot, const void *data, size_t len, const uint32_t *addr8);
void gev_udp_flush(gev_loop *loop);

/*
 * tls.c: TLS as a gev_io layer, server side, over the process's own OpenSSL 3 (resolved at run time).
 *
 *   gev_tls_init      (gev.h) whether TLS can run natively in this process.
 *   gev_tls_ctx_new   a server context from a PEM private key and a PEM certificate (its chain may
 *                     follow it) and an ALPN list in wire format (length-prefixed names, server's
 *                     preference first; alpn_len 0 for none, when the client's offer is ignored):
 *                     TLS 1.2 at least, no renegotiation, no compression. 0 with *out
 *                     set, or -errno (-EINVAL for a key or certificate OpenSSL does not take or a key
 *                     that does not match the certificate) with a static sentence in *reason. The
 *                     caller frees it with gev_tls_ctx_free, from any thread, once no adopt is
 *                     running with it and none of its connections is in its handshake (the ALPN
 *                     choice reads its list; open connections keep their own reference).
 *   gev_tls_adopt     registers a connected fd as a TLS server connection of `origin` in its
 *                     handshake (GEV_C_HANDSHAKE): its OPEN comes once the handshake completes, or
 *                     TLS_REFUSED [origin, EPROTO or ECONNABORTED, OpenSSL's error] + peer and
 *                     never an OPEN when it fails (gev_io). gev_loop_tls (gev.h) makes it the
 *                     loop's way to adopt its TLS listeners' connections.
 *                     0 with *id_out set, or -errno (the fd is then not closed).
 */
typedef struct gev_tls_ctx gev_tls_ctx;
int gev_tls_ctx_new(const char *key_pem, size_t key_len, const char *cert_pem, size_t cert_len,
                    const unsigned char *alpn, size_t alpn_len, gev_tls_ctx **out, const char **reason);
void gev_tls_ctx_free(gev_tls_ctx *x);
int gev_tls_adopt(gev_loop *loop, int fd, uint32_t origin, gev_tls_ctx *x, uint32_t *id_out);

#endif
