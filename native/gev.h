/*
 * gevent native core, public API: one epoll loop per JavaScript thread, watched by that thread's
 * libuv loop. This header and gev_proto.h are all that addon.c sees; the structures behind the
 * opaque gev_loop live in internal.h, shared by the core's .c files and test/c.
 *
 * Memory shared with JavaScript (both ArrayBuffers are allocated by JS and pinned by the caller):
 *
 *   in arena  (C writes during gev_loop_fill, JS reads during the batch callback)
 *     u32[0..HDR_U32)  header: [0] record slots used, [1] bytes used
 *     then records, SLOT_U32 u32 a slot: [type, a, b, c]; OPEN, DGRAM, ACCEPTED, PROXY,
 *                  PROXY_REFUSED, RELAYED and TLS_REFUSED take 1 + ADDR_SLOTS slots (the extra ones carry a socket address,
 *                  see gev_addr_encode)
 *     bytes        payload region; offsets in records are absolute byte offsets into the buffer
 *
 *   out arena (JS writes between flushes, C reads during gev_flush)
 *     u32[0..HDR_U32)  header: [0] command slots used
 *     then commands, SLOT_U32 u32 a slot: [op, id, a, b]; SENDTO takes 1 + ADDR_SLOTS slots
 *     bytes        payload region for small writes
 *
 * Every value named there is in gev_proto.h. Every function here runs on the thread that owns
 * the loop; a loop never calls back into its caller, it only writes records.
 *
 * Layering: gev.h and every file but addon.c are plain C over Linux syscalls, with no Node-API or
 * libuv, so test/c/ can link them into a standalone program. addon.c holds a gev_loop pointer in
 * its own Node-facing struct and drives it (gev_loop_fill, gev_flush) from a uv_poll on
 * gev_loop_fd.
 */
#ifndef GEV_H
#define GEV_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "gev_proto.h"

typedef struct gev_loop gev_loop;

/* What gev_loop_stats reports. */
typedef struct gev_stats {
  uint64_t live;               /* open connections, PROXY listeners' ones with a header pending too */
  uint64_t dgram_truncated;    /* datagrams dropped as larger than the receive slot */
  uint64_t dgram_send_dropped; /* datagrams dropped on send (full socket buffer, bad address) */
  uint64_t pending_slots;      /* record slots waiting in the pending list */
  uint64_t listeners_parked;   /* listeners parked after an accept error */
} gev_stats;

/* Opens a loop (epoll, eventfd, timerfd, a spare fd) with no listener and no connection; the
 * caller owns it until gev_loop_free. 0 or -errno, with nothing left open on failure. */
int gev_loop_create(gev_loop **out);
/* Points the loop at the two arenas (sizes checked by the caller, which keeps them alive until
 * gev_loop_free). Call once, before the first fill. */
void gev_loop_bind_arenas(gev_loop *loop, void *in, size_t in_len, uint32_t in_recs, void *out, size_t out_len,
                          uint32_t out_cmds);
/* TCP_NODELAY on TCP connections, the receive slot per datagram (1..GEV_UDP_SLOT), and how long a
 * connection of a PROXY protocol listener may take to send its whole header (ms, >= 1). */
void gev_loop_configure(gev_loop *loop, int tcp_nodelay, size_t udp_slot, uint32_t proxy_timeout_ms);
/* The fd to watch for readability: when it is readable, call gev_loop_fill. */
int gev_loop_fd(const gev_loop *loop);
/* Drains ready events into the in arena; returns the record slots written (also in its header). */
uint32_t gev_loop_fill(gev_loop *loop);
/* True when the out arena holds commands gev_flush has not run yet. */
int gev_loop_has_commands(const gev_loop *loop);
/* Closes every listener and connection, filling the arena with the CLOSE records JS must hear.
 * Call until it returns 0. */
uint32_t gev_loop_stop_all(gev_loop *loop);
/* Closes every listener (unlinking the unix socket files it created); connections stay open. */
void gev_loop_close_listeners(gev_loop *loop);
void gev_loop_stats(const gev_loop *loop, gev_stats *out);
/* Releases everything the loop holds (without telling JS), then the loop itself. */
void gev_loop_free(gev_loop *loop);

/* Runs the out arena's command list; ext[0..next) are the by-reference payloads, which must stay
 * valid until it returns. What it causes reaches JS in a later fill, never from inside the call. */
void gev_flush(gev_loop *loop, const struct iovec *ext, uint32_t next);

/* Listeners. family 0 (dual stack on every interface, host ignored), 4 or 6 with a numeric host
 * ('' = any); flags are GEV_LISTEN_*; origin is the JS listener index its records carry. Each
 * returns the listener slot or -errno. */
int gev_listen_tcp(gev_loop *loop, int family, const char *host, int port, uint32_t flags, uint32_t origin);
int gev_listen_udp(gev_loop *loop, int family, const char *host, int port, uint32_t flags, uint32_t origin);
/* A unix stream listener at `path`, removing a stale socket file first. */
int gev_listen_unix(gev_loop *loop, const char *path, uint32_t flags, uint32_t origin);
/* The bound address of listener `slot` into addr8 (GEV_ADDR_U32 u32). 0 or -errno. */
int gev_listener_sockname(gev_loop *loop, uint32_t slot, uint32_t *addr8);
/* Closes a listener; a unix socket file is unlinked only if it is still the one bound. */
void gev_listener_close(gev_loop *loop, uint32_t slot);

/* The local address of open connection `id` into addr8; -EBADF once it is closed. */
int gev_conn_sockname(gev_loop *loop, uint32_t id, uint32_t *addr8);
/* Registers a connected fd (accepted elsewhere) as a connection of `origin`; its OPEN record
 * follows in a later fill. With GEV_LISTEN_PROXY in `flags` (the ACCEPTED record's word c), this
 * loop reads its PROXY header first, its deadline counted from now, and OPEN (or PROXY_REFUSED)
 * follows that. Returns 0 with *id_out set, or -errno (the fd is then not closed). */
int gev_conn_adopt(gev_loop *loop, int fd, uint32_t origin, uint32_t flags, uint32_t *id_out);
/* Bytes relayed (relay.c) out of open connection `id` (*rx: read from it and sent on) and into it
 * (*tx). 0, or -EBADF once it is closed (its RELAYED record, just before CLOSE, has the totals). */
int gev_conn_relayed(gev_loop *loop, uint32_t id, uint64_t *rx, uint64_t *tx);
/* Closes an fd from an ACCEPTED record that no loop adopted; any thread. 0 or -errno. */
int gev_fd_close(int fd);

/*
 * Outbound connections (dials). Each starts a non-blocking connect and returns 0 with *id_out set,
 * or -errno when it failed at once (no slot taken, nothing left open): a bad address (-EINVAL), the
 * socket, the bind of the source address (-EADDRINUSE, -EADDRNOTAVAIL, ...), a connect refused
 * on the spot (-ECONNREFUSED, -ENOENT for a unix path, -EAGAIN for a unix listener's full
 * backlog, ...), -ENOMEM or -EMFILE for the table. Records carry `origin` with GEV_ORIGIN_DIAL set.
 *
 *   connected at once (a unix peer usually): OPEN [id, origin] + peer follows in a later fill, as
 *     for gev_conn_adopt;
 *   handshake under way: the id is "connecting", watched for EPOLLOUT alone. When it completes,
 *     SO_ERROR decides: 0 gives OPEN [id, origin] + the peer (the address connected to), and the
 *     connection is then like any other; an error gives CLOSE [id, errno] (ECONNREFUSED, ETIMEDOUT,
 *     EHOSTUNREACH, ...) and no OPEN ever.
 *
 * Until its OPEN, a CLOSE command on the id cancels the connect (whatever its flush word) and its
 * CLOSE record carries errno 0, as any close JS asked for; gev_loop_stop_all closes it the same
 * way. Every other command naming a connecting id (WRITE, WRITE_EXT, END, KEEPALIVE, PAUSE, WATCH)
 * is dropped: JS sends none before OPEN. The id counts as live in gev_loop_stats.
 *
 * gev_conn_connect_inet: family 4 or 6 and a numeric host (an IPv6 one may carry %scope); the
 * source is bound first when local_host is not '' (an address of the same family) or local_port
 * is not 0. gev_conn_connect_unix: a unix stream socket at `path`.
 */
int gev_conn_connect_inet(gev_loop *loop, int family, const char *host, int port, const char *local_host,
                          int local_port, uint32_t origin, uint32_t *id_out);
int gev_conn_connect_unix(gev_loop *loop, const char *path, uint32_t origin, uint32_t *id_out);

/*
 * A dialled UDP connection: a datagram socket of family 4 or 6 (numeric host, optional source as
 * for gev_conn_connect_inet) connected to host:port. UDP connect does not handshake, so it opens at
 * once: 0 with *id_out set and OPEN [id, origin | GEV_ORIGIN_DIAL] + the peer waiting in the
 * pending list (or the arena, during a fill), or -errno with nothing left open. From then on it is a
 * connection of the table like any other (flag GEV_C_DGRAM, dgramconn.c) with these differences:
 *
 *   reads: one DATA record per datagram, [DATA, id, offset, length] holding exactly that datagram
 *     (length 0 for an empty one); up to GEV_UDP_BATCH datagrams per connection per wake-up, each
 *     in a receive slot of the loop's udp_slot bytes: a larger one is dropped and counted as
 *     dgram_truncated. Never an END record.
 *   writes: each WRITE or WRITE_EXT command is one datagram, never joined with the commands next to
 *     it. Nothing is ever queued (no QUEUED record but the ones WATCH asks for, always 0): a send
 *     the kernel refuses for a full buffer (EAGAIN, ENOBUFS) or as too large (EMSGSIZE) is dropped
 *     and counted as dgram_send_dropped.
 *   errors: any other error of a send or a receive closes it with that errno: ECONNREFUSED when
 *     an ICMP port unreachable came back for an earlier datagram, EHOSTUNREACH, ...
 *   END is a close; CLOSE (flushed or not) closes at once, there being no queue; KEEPALIVE does
 *     nothing; PAUSE drops and restores read interest as for a stream.
 */
int gev_conn_connect_udp(gev_loop *loop, int family, const char *host, int port, const char *local_host, int local_port,
                         uint32_t origin, uint32_t *id_out);

/*
 * TLS server connections (tls.c), over the process's own OpenSSL 3, found at run time.
 *
 *   gev_tls_init        resolves OpenSSL once per process (any thread): 0, or -ENOSYS (not
 *                       exported) or -ENOTSUP (not version 3) with a static sentence in *reason
 *                       saying why TLS cannot run natively here.
 *   gev_loop_tls        gives the loop the context its GEV_LISTEN_TLS listeners use, from a PEM
 *                       private key and a PEM certificate (its chain may follow it) and an ALPN
 *                       list in wire format (alpn_len 0 for none; a client offering none of it is
 *                       refused with no_application_protocol, as node:tls does); once per loop,
 *                       freed with it. 0, -EALREADY, or -errno with a static sentence in *reason
 *                       (-EINVAL for a key or certificate OpenSSL does not take, or a mismatch).
 *                       A TLS listener's connection opens once its handshake is done; a failed
 *                       one gives TLS_REFUSED [listener index, errno, OpenSSL error or 0] + peer
 *                       instead (EPROTO: the peer does not speak TLS or was refused; ECONNABORTED
 *                       or ECONNRESET: it left; ETIMEDOUT: no handshake within
 *                       handshake_timeout_ms of its accept, 0 for no deadline), and JS never
 *                       hears of its id.
 *   gev_conn_tls_info   what open TLS connection `id`'s handshake settled; -EBADF when it is not
 *                       one (or closed). The strings are OpenSSL's (static) or copied into `out`.
 *   gev_tls_reason      OpenSSL's text for an error of a TLS_REFUSED record, or NULL.
 */
typedef struct gev_tls_info {
  const char *protocol; /* "TLSv1.2", "TLSv1.3" */
  const char *cipher;   /* "TLS_AES_256_GCM_SHA384", ... */
  char servername[256]; /* the SNI name the client sent, "" when none */
  int resumed;          /* the session was resumed */
  char alpn[256];       /* the ALPN protocol chosen, "" when none */
} gev_tls_info;
int gev_tls_init(const char **reason);
int gev_loop_tls(gev_loop *loop, const char *key_pem, size_t key_len, const char *cert_pem, size_t cert_len,
                 const unsigned char *alpn, size_t alpn_len, uint32_t handshake_timeout_ms, const char **reason);
int gev_conn_tls_info(gev_loop *loop, uint32_t id, gev_tls_info *out);
const char *gev_tls_reason(uint32_t err);

#endif
