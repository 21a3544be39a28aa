/*
 * The protocol between the native core and JavaScript: every number both sides must agree on,
 * written once in GEV_PROTO_CONSTANTS. C gets each as GEV_<NAME>; addon.c exports the same list at
 * load as the frozen object `constants` (NAME -> number, without the GEV_ prefix), and
 * test/native-protocol-constants.test.ts checks it against the const enums and constants of
 * src/backend/addon-types.ts in both directions, so neither side can drift.
 *
 * X(kind, NAME, value): kind INT becomes an enumerator (usable in constant expressions), kind U32 a
 * `static const uint32_t` (for values past INT_MAX).
 *
 * Record kind 7 is retired (it was WAKE, a cross-thread wake-up) and stays unused.
 */
#ifndef GEV_PROTO_H
#define GEV_PROTO_H

#include <stdint.h>

#define GEV_PROTO_CONSTANTS(X)                                                                           \
  /* Records in the in arena, 4 u32 a slot: [type, a, b, c]; "+ address" adds ADDR_SLOTS slots. */       \
  X(INT, REC_OPEN, 1)           /* [OPEN, id, origin, 0] + address (peer) */                             \
  X(INT, REC_DATA, 2)           /* [DATA, id, offset, length] */                                         \
  X(INT, REC_END, 3)            /* [END, id, 0, 0]: the peer sent FIN */                                 \
  X(INT, REC_CLOSE, 4)          /* [CLOSE, id, errno, NOMEM_* when the core ran out of memory] */        \
  X(INT, REC_DGRAM, 5)          /* [DGRAM, listener index, offset, length] + address (sender) */         \
  X(INT, REC_ACCEPTED, 6)       /* [ACCEPTED, fd, origin, LISTEN_PROXY or 0] + address (peer) */         \
  X(INT, REC_QUEUED, 8)         /* [QUEUED, id, bytes low 32, bytes high 32]: output not yet taken */    \
  X(INT, REC_ACCEPT_ERROR, 9)   /* [ACCEPT_ERROR, listener index, errno, 0]: accept4 failed */           \
  X(INT, REC_PROXY, 10)         /* [PROXY, id, ver|LOCAL|tlv len<<16, tlv off] + dst */                  \
  X(INT, REC_PROXY_REFUSED, 11) /* [.., listener index, PROXY_E_*, 0] + peer */                          \
  X(INT, REC_RELAYED, 12)       /* [RELAYED, id, 0, 0] + [rx lo, rx hi, tx lo, tx hi, 0...]: at CLOSE */ \
  X(INT, REC_TLS_REFUSED, 13)   /* [.., listener index, errno, OpenSSL error or 0] + peer: no OPEN */    \
  /* PROXY protocol listeners: word b of PROXY, the header cap, and why a header was refused. */         \
  X(INT, PROXY_LOCAL, 1 << 8)    /* command LOCAL (v2) or UNKNOWN (v1): the socket's addresses */        \
  X(INT, PROXY_UNIX, 1 << 9)     /* v2 AF_UNIX: the 216-byte address block precedes the TLV bytes */     \
  X(INT, PROXY_TLV_SHIFT, 16)    /* the TLV bytes' length sits above this bit */                         \
  X(INT, PROXY_HEADER_MAX, 4096) /* the largest v2 header taken (16 + its length field) */               \
  X(INT, PROXY_E_SIGNATURE, 1)   /* neither v1 nor v2 */                                                 \
  X(INT, PROXY_E_VERSION, 2)     /* v2 version other than 2 */                                           \
  X(INT, PROXY_E_COMMAND, 3)     /* v2 command other than LOCAL or PROXY */                              \
  X(INT, PROXY_E_FAMILY, 4)      /* v2 family or protocol out of range */                                \
  X(INT, PROXY_E_V1_SYNTAX, 5)   /* a v1 line off the grammar */                                         \
  X(INT, PROXY_E_TOO_LONG, 6)    /* v1 past 107 bytes, v2 past PROXY_HEADER_MAX */                       \
  X(INT, PROXY_E_ADDRESS_LEN, 7) /* v2 length shorter than its addresses */                              \
  X(INT, PROXY_E_TLV, 8)         /* a v2 TLV running past the header */                                  \
  X(INT, PROXY_E_TIMEOUT, 9)     /* no complete header before the deadline */                            \
  X(INT, PROXY_E_CLOSED, 10)     /* the peer closed or reset first, or no memory for the header */       \
  /* What the core failed to allocate when it closed a connection with ENOMEM (CLOSE, word c). */        \
  X(INT, NOMEM_KERNEL, 0) /* the errno came from the kernel */                                           \
  X(INT, NOMEM_QUEUE, 1)  /* the copy of output the kernel did not take */                               \
  X(INT, NOMEM_REPORT, 2) /* room in the pending list for the connection's QUEUED report */              \
  /* Commands in the out arena, 4 u32 a slot: [op, id, a, b]; SENDTO* add ADDR_SLOTS slots. */           \
  X(INT, OP_WRITE, 1)      /* [WRITE, id, offset, length] bytes in the out arena */                      \
  X(INT, OP_WRITE_EXT, 2)  /* [WRITE_EXT, id, buffer index, length] bytes in ext[index] */               \
  X(INT, OP_CLOSE, 3)      /* [CLOSE, id, flush, 0] */                                                   \
  X(INT, OP_END, 4)        /* [END, id, 0, 0] */                                                         \
  X(INT, OP_KEEPALIVE, 5)  /* [KEEPALIVE, id, seconds (0 = off), 0] */                                   \
  X(INT, OP_SENDTO, 6)     /* [SENDTO, listener slot, offset, length] + address */                       \
  X(INT, OP_SENDTO_EXT, 7) /* [SENDTO_EXT, listener slot, buffer index, length] + address */             \
  X(INT, OP_PAUSE, 8)      /* [PAUSE, id, paused, 0]: drop (1) or restore (0) read interest */           \
  X(INT, OP_WATCH, 9)      /* [WATCH, id, 0, 0]: report QUEUED after this flush even if unchanged */     \
  X(INT, OP_RELAY, 10)     /* [RELAY, id, to (0 = stop), high-water bytes]: input goes to `to` */        \
  /* Listener flags: the socket-level ones are applied by sys_listen_options (sys.c). */                 \
  X(INT, LISTEN_REUSEPORT, 1 << 0) /* SO_REUSEPORT */                                                    \
  X(INT, LISTEN_V6ONLY, 1 << 1)    /* IPV6_V6ONLY on (off without it) for an IPv6 socket */              \
  X(INT, LISTEN_HANDOFF, 1 << 2)   /* report accepted fds (ACCEPTED) instead of opening them */          \
  X(INT, LISTEN_PROXY, 1 << 3)     /* a PROXY header first; ACCEPTED word c carries this bit on */       \
  X(INT, LISTEN_TLS, 1 << 4)       /* TLS server connections over the loop's context (tls.c) */          \
  /* A connection's origin: the JS listener index it was accepted on, or this bit for a dial. */         \
  X(U32, ORIGIN_DIAL, 0x80000000u)                                                                       \
  /* Arena layout: a header of HDR_U32 u32, then slots of SLOT_U32 u32 each. */                          \
  X(INT, HDR_U32, 16)                                                                                    \
  X(INT, SLOT_U32, 4)                                                                                    \
  X(INT, ADDR_SLOTS, 2) /* extra slots carrying an address */                                            \
  X(INT, ADDR_U32, 8)   /* an address: [family, port, flowinfo, scope_id, 16 bytes] */                   \
  X(INT, ADDR_NONE, 0)  /* address families as encoded (word 0) */                                       \
  X(INT, ADDR_UNIX, 1)                                                                                   \
  X(INT, ADDR_INET4, 4)                                                                                  \
  X(INT, ADDR_INET6, 6)                                                                                  \
  /* Connection ids: (generation << SLOT_BITS) | slot, generation 1..GEN_MAX, so 0 < id < 2^31. */       \
  X(INT, SLOT_BITS, 20)                                                                                  \
  X(INT, GEN_MAX, 2047)                                                                                  \
  /* Limits. */                                                                                          \
  X(INT, MAX_EXT, 1024)          /* by-reference payloads per flush */                                   \
  X(INT, UDP_SLOT, 65536)        /* largest receive slot per datagram: no legal datagram is larger */    \
  X(INT, MAX_LISTENERS, 256)     /* listener slots per loop */                                           \
  X(INT, KEEPALIVE_MAX_S, 32767) /* the largest TCP_KEEPIDLE the kernel takes */                         \
  X(INT, STATS_LEN, 5)           /* doubles gev_loop_stats fills for js_stats */

#define GEV_PROTO_INT_ENUM(name, value) GEV_##name = (value),
#define GEV_PROTO_U32_ENUM(name, value)
#define GEV_PROTO_ENUM(kind, name, value) GEV_PROTO_##kind##_ENUM(name, value)
enum gev_proto { GEV_PROTO_CONSTANTS(GEV_PROTO_ENUM) };

#define GEV_PROTO_INT_CONST(name, value)
#define GEV_PROTO_U32_CONST(name, value)   static const uint32_t GEV_##name = (value);
#define GEV_PROTO_CONST(kind, name, value) GEV_PROTO_##kind##_CONST(name, value)
GEV_PROTO_CONSTANTS(GEV_PROTO_CONST)

#endif
