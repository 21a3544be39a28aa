/*
 * gevent native core: one epoll loop per JavaScript thread, watched by that thread's libuv loop.
 *
 * Memory shared with JavaScript (both ArrayBuffers are allocated by JS and pinned by a reference):
 *
 *   in arena  (C writes during a fill, JS reads during the batch callback)
 *     u32[0..15]   header: [0] record slots used, [1] bytes used
 *     u32[16..]    records, 4 u32 per slot: [type, a, b, c]; OPEN, DGRAM and ACCEPTED take 3 slots
 *                  (the 2nd and 3rd carry a socket address, see gev_addr_encode)
 *     bytes        payload region, offsets in records are absolute byte offsets into the buffer
 *
 *   out arena (JS writes between flushes, C reads during gev_flush)
 *     u32[0..15]   header: [0] command slots used
 *     u32[16..]    commands, 4 u32 per slot: [op, id, a, b]; SENDTO takes 3 slots
 *     bytes        payload region for small writes
 *
 * Connection ids: (generation << 20) | slot, generation 1..2047, so ids are positive and < 2^31.
 * Everything here runs on the thread that owns the loop, except gev_loop_wake_fd (any thread).
 *
 * Layering: this header and every file but addon.c are plain C over Linux syscalls, with no
 * Node-API or libuv, so test/c/ can link them into a standalone program. addon.c embeds the
 * gev_loop in its own Node-facing struct and drives it (gev_loop_fill, gev_flush) from a uv_poll.
 */
#ifndef GEV_H
#define GEV_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

enum gev_rec {
  GEV_REC_OPEN = 1,     /* [OPEN, id, listener, 0] + address (peer) */
  GEV_REC_DATA = 2,     /* [DATA, id, offset, length] */
  GEV_REC_END = 3,      /* [END, id, 0, 0] */
  GEV_REC_CLOSE = 4,    /* [CLOSE, id, errno, what]: what is a gev_nomem when the core ran out of memory */
  GEV_REC_DGRAM = 5,    /* [DGRAM, listener, offset, length] + address (sender) */
  GEV_REC_ACCEPTED = 6, /* [ACCEPTED, fd, listener, 0] + address (peer); fd not registered */
  GEV_REC_WAKE = 7,     /* [WAKE, 0, 0, 0]: another thread called gev_loop_wake_fd */
  GEV_REC_QUEUED = 8,   /* [QUEUED, id, bytes low 32, bytes high 32]: output not yet taken */
  GEV_REC_ACCEPT_ERROR = 9 /* [ACCEPT_ERROR, listener, errno, 0]: accept4 failed */
};

/* What the core failed to allocate when it closed a connection with ENOMEM (CLOSE record, word c);
 * 0 when the errno came from the kernel. */
enum gev_nomem {
  GEV_NOMEM_QUEUE = 1,  /* the copy of output the kernel did not take */
  GEV_NOMEM_REPORT = 2  /* room in the pending list for the connection's QUEUED report */
};

enum gev_op {
  GEV_OP_WRITE = 1,      /* [WRITE, id, offset, length] bytes in the out arena */
  GEV_OP_WRITE_EXT = 2,  /* [WRITE_EXT, id, buffer index, length] bytes in ext[index] */
  GEV_OP_CLOSE = 3,      /* [CLOSE, id, flush, 0] */
  GEV_OP_END = 4,        /* [END, id, 0, 0] */
  GEV_OP_KEEPALIVE = 5,  /* [KEEPALIVE, id, seconds (0 = off), 0] */
  GEV_OP_SENDTO = 6,     /* [SENDTO, listener slot, offset, length] + address */
  GEV_OP_SENDTO_EXT = 7, /* [SENDTO_EXT, listener slot, buffer index, length] + address */
  GEV_OP_PAUSE = 8,      /* [PAUSE, id, paused, 0]: drop (1) or restore (0) read interest */
  GEV_OP_WATCH = 9       /* [WATCH, id, 0, 0]: report QUEUED after this flush even if unchanged */
};

#define GEV_HDR_U32 16u
#define GEV_SLOT_BITS 20u
#define GEV_SLOT_MASK ((1u << GEV_SLOT_BITS) - 1u)
#define GEV_MAX_SLOTS (1u << GEV_SLOT_BITS)
#define GEV_GEN_MAX 2047u
#define GEV_ADDR_SLOTS 2u         /* extra record slots carrying an address */
#define GEV_READ_BUDGET 65536u    /* bytes read per connection per wake-up */
#define GEV_ACCEPT_CAP 128u       /* accepts per listener per wake-up */
#define GEV_EPOLL_EVENTS 512
#define GEV_EPOLL_ROUNDS 4
#define GEV_UDP_BATCH 64u
#define GEV_UDP_SLOT 65536u       /* receive slot per datagram: no legal datagram is larger */
#define GEV_MAX_LISTENERS 256u
#define GEV_MAX_EXT 1024u
#define GEV_REC_RESERVE 8u        /* record slots kept free so an event's END/CLOSE never waits */
#define GEV_PENDING_SPARE 16u     /* pending slots kept for one event's END/WAKE/ACCEPT_ERROR (loop.c) */
#define GEV_PENDING_INIT 64u      /* pending slots allocated when the loop opens */
#define GEV_ACCEPT_BACKOFF_MS 100 /* a listener parked after an accept error retries this late */
/* A queue copy this large asks for huge pages (sys_advise_huge). It is glibc's largest mmap
 * threshold, so the block is always a mapping of its own, unmapped on free with its advice. */
#define GEV_HUGE_COPY (32u << 20)

/* epoll_data.u64 tags: high 32 bits say what the low 32 bits name. */
#define GEV_TAG_CONN 1ull
#define GEV_TAG_LISTENER 2ull
#define GEV_TAG_EVENTFD 3ull
#define GEV_TAG_TIMER 4ull

/* Connection flags. */
#define GEV_C_OPEN 0x01u      /* slot holds a live fd */
#define GEV_C_RD_EOF 0x02u    /* peer sent FIN; EPOLLIN no longer wanted */
#define GEV_C_CLOSING 0x04u   /* close after the output queue drains */
#define GEV_C_ENDING 0x08u    /* shutdown(SHUT_WR) after the output queue drains */
#define GEV_C_WR_SHUT 0x10u   /* shutdown(SHUT_WR) done */
#define GEV_C_TCP 0x20u
#define GEV_C_PAUSED 0x40u    /* reading paused by JS: EPOLLIN not wanted */
#define GEV_C_QDIRTY 0x80u    /* queue changed (or a report was asked for) during this flush */
#define GEV_C_QWATCH 0x100u   /* report QUEUED after this flush even if unchanged */
#define GEV_C_HUP_PARKED 0x200u /* hung up while paused: out of the epoll set until resumed */

/* One queued output chunk, owned by its connection; `off` is how much was already sent. */
typedef struct gev_chunk {
  struct gev_chunk *next;
  size_t off;
  size_t len;
  char data[];
} gev_chunk;

typedef struct gev_conn {
  int fd;
  uint16_t gen;
  uint16_t flags;
  uint32_t listener;   /* the JS listener index it came from */
  uint32_t events;     /* current epoll interest */
  uint32_t read_epoch; /* wake-up that read_used counts for */
  uint32_t read_used;
  uint32_t next_free;
  gev_chunk *qhead;
  gev_chunk *qtail;
  size_t qbytes;       /* bytes in the queue, exactly: sum of (len - off) over its chunks */
  size_t reported;     /* the qbytes JS last heard of in a QUEUED record */
} gev_conn;

enum gev_lkind { GEV_L_FREE = 0, GEV_L_TCP, GEV_L_UNIX, GEV_L_UDP };

typedef struct gev_listener {
  int fd;
  int kind;
  int handoff;        /* report accepted fds instead of registering them */
  int parked;         /* EPOLLIN dropped after an accept error, until the timer or a close */
  uint32_t error_epoch; /* the wake-up that last emitted ACCEPT_ERROR */
  uint32_t index;     /* the JS listener index */
  char *path;         /* unix socket file we created, unlinked on close */
  dev_t dev;
  ino_t ino;
} gev_listener;

typedef struct gev_pending {
  uint32_t *slots; /* 4 u32 per slot */
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

typedef struct gev_loop {
  int epfd;
  int efd;
  int tfd;         /* timerfd: re-arms parked listeners */
  int filling;     /* a fill is writing records into the in arena */
  int self_woken;  /* our own eventfd write is outstanding */
  int timer_armed;
  int tcp_nodelay;
  uint32_t epoch;
  uint32_t parked; /* listeners parked after an accept error */

  uint32_t *in32;
  uint8_t *in8;
  size_t in_size;
  uint32_t in_rec_cap;   /* record slots */
  uint32_t in_nrec;
  size_t in_byte_start;
  size_t in_byte_pos;

  uint32_t *out32;
  uint8_t *out8;
  size_t out_size;
  uint32_t out_cmd_cap;

  gev_conn *conns;
  uint32_t nconns;     /* slots handed out so far (open, closing or on the free list) */
  uint32_t conns_cap;  /* slots allocated; those past nconns are untouched memory */
  uint32_t free_head;
  uint32_t live;

  gev_listener ls[GEV_MAX_LISTENERS];
  gev_pending pending;
  gev_idlist dirty;

  int spare_fd;          /* released to accept and drop a connection when out of fds */
  size_t udp_slot;       /* receive slot per datagram; a larger datagram is dropped as truncated */

  uint64_t dgram_truncated;
  uint64_t dgram_send_dropped;

  /* Datagrams queued by a flush, sent with one sendmmsg per listener run. */
  uint32_t udp_slot_out;
  uint32_t udp_n;
  struct mmsghdr udp_msgs[GEV_UDP_BATCH];
  struct iovec udp_iov[GEV_UDP_BATCH];
  struct sockaddr_storage udp_addr[GEV_UDP_BATCH];

  struct epoll_event evs[GEV_EPOLL_EVENTS];
} gev_loop;

/* sys.c: syscall wrappers and socket address encoding. */
int sys_set_int(int fd, int level, int opt, int value);
int sys_so_error(int fd);
int sys_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t tag);
ssize_t sys_sendv(int fd, const struct iovec *iov, int iovcnt);
int sys_timer_arm(int tfd, uint32_t ms);
void sys_close(int fd);
void sys_advise_huge(void *p, size_t len);
void gev_addr_encode(uint32_t *slots8, const struct sockaddr *sa, socklen_t len);
socklen_t gev_addr_decode(const uint32_t *slots8, struct sockaddr_storage *ss);
int gev_addr_parse(int family, const char *host, int port, struct sockaddr_storage *ss, socklen_t *len);

/* loop.c: the epoll instance, records (arena or pending list), fills and teardown. */
int gev_loop_init(gev_loop *loop);
void gev_loop_bind_arenas(gev_loop *loop, void *in, size_t in_len, uint32_t in_recs, void *out, size_t out_len,
                          uint32_t out_cmds);
int gev_loop_room(gev_loop *loop, uint32_t slots);
uint32_t *gev_loop_record(gev_loop *loop, uint32_t slots);
int gev_loop_reserve(gev_loop *loop, uint32_t slots);
int gev_loop_emit(gev_loop *loop, uint32_t type, uint32_t a, uint32_t b, uint32_t c, const uint32_t *addr8);
void gev_loop_self_wake(gev_loop *loop);
void gev_loop_arm_timer(gev_loop *loop, uint32_t ms);
int gev_loop_wake_fd(int efd);
uint32_t gev_loop_fill(gev_loop *loop);
uint32_t gev_loop_stop_all(gev_loop *loop);
void gev_loop_close_listeners(gev_loop *loop);
void gev_loop_free(gev_loop *loop);

/* conn.c: the connection table, reads and the output queue. */
gev_conn *gev_conn_get(gev_loop *loop, uint32_t id);
int gev_conn_add(gev_loop *loop, int fd, uint32_t listener, int is_tcp, uint32_t *id_out);
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
int gev_conn_sockname(gev_loop *loop, uint32_t id, uint32_t *addr8);
int gev_conn_adopt(gev_loop *loop, int fd, uint32_t listener, uint32_t *id_out);

/* listen.c: listening sockets and accept. */
int gev_listen_tcp(gev_loop *loop, int family, const char *host, int port, int reuseport, int v6only,
                   uint32_t index, int handoff);
int gev_listen_udp(gev_loop *loop, int family, const char *host, int port, int reuseport, int v6only,
                   uint32_t index);
int gev_listen_unix(gev_loop *loop, const char *path, uint32_t index, int handoff);
void gev_listener_on_event(gev_loop *loop, uint32_t slot);
void gev_listener_close(gev_loop *loop, uint32_t slot);
void gev_listener_unpark_all(gev_loop *loop);
int gev_listener_sockname(gev_loop *loop, uint32_t slot, uint32_t *addr8);

/* udp.c: datagram sockets, recvmmsg and sendmmsg. */
void gev_udp_on_event(gev_loop *loop, gev_listener *l);
void gev_udp_queue(gev_loop *loop, uint32_t slot, const void *data, size_t len, const uint32_t *addr8);
void gev_udp_flush(gev_loop *loop);

/* flush.c: the write path, one walk over the command list. */
void gev_flush(gev_loop *loop, const struct iovec *ext, uint32_t next);

#endif
