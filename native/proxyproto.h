/*
 * PROXY protocol header parser (HAProxy's doc/proxy-protocol.txt, versions 1 and 2), for listeners
 * that sit behind a load balancer: the header a balancer puts before a connection's first byte
 * carries the client's real addresses.
 *
 * Pure code over a byte range: no allocation, no syscalls, no loop state, so any thread may call it.
 * The caller feeds everything read so far from the start of the connection and calls again after
 * each read while the answer is GEV_PP_INCOMPLETE; a deadline for a header that never completes is
 * the caller's (the spec asks for at least 3 seconds).
 *
 * Strictness: a v1 line must match the spec byte for byte (single spaces, no leading zeros, CRLF);
 * bytes that cannot begin either version are refused as soon as they are seen, not when a full
 * header's worth has arrived. CRC32C TLVs are not verified (the spec makes checking optional).
 */
#ifndef GEV_PROXYPROTO_H
#define GEV_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define GEV_PP_V1_MAX       107u /* the longest v1 line the spec allows, CRLF included */
#define GEV_PP_V2_FIXED     16u  /* signature, version/command, family/protocol, length */
#define GEV_PP_V2_UNIX_PATH 108u

/* Results other than a header length (> 0). */
enum gev_pp_status {
  GEV_PP_INCOMPLETE = 0,     /* a valid prefix: read more */
  GEV_PP_E_SIGNATURE = -1,   /* neither "PROXY " nor the v2 signature */
  GEV_PP_E_VERSION = -2,     /* v2 version nibble other than 2 */
  GEV_PP_E_COMMAND = -3,     /* v2 command other than LOCAL (0) or PROXY (1) */
  GEV_PP_E_FAMILY = -4,      /* v2 family above 3 or protocol above 2 */
  GEV_PP_E_V1_SYNTAX = -5,   /* a v1 line that does not match the grammar */
  GEV_PP_E_TOO_LONG = -6,    /* no CRLF in 107 bytes (v1), or a v2 header above the caller's cap */
  GEV_PP_E_ADDRESS_LEN = -7, /* v2 length shorter than the family's address block */
  GEV_PP_E_TLV = -8          /* a v2 TLV that runs past the header */
};

typedef struct gev_pp_header {
  uint8_t version;             /* 1 or 2 */
  uint8_t local;               /* use the real endpoints: v1 UNKNOWN, v2 LOCAL, or v2 PROXY over UNSPEC */
  uint8_t dgram;               /* v2 protocol DGRAM (UDP, unix datagram) */
  struct sockaddr_storage src; /* set unless local: AF_INET, AF_INET6 or AF_UNIX */
  struct sockaddr_storage dst;
  socklen_t src_len;
  socklen_t dst_len;
  uint32_t tlv_off; /* v2: the TLV bytes, as an offset and length inside the header */
  uint32_t tlv_len;
} gev_pp_header;

/*
 * Parses the header at the start of `p[0..n)`. Returns its length in bytes (> 0) and fills `h`,
 * GEV_PP_INCOMPLETE while the bytes are a valid prefix, or a negative gev_pp_status. `max_v2`
 * caps a v2 header's total length (16 + its length field); v1 is capped by the spec.
 */
ssize_t gev_pp_parse(const uint8_t *p, size_t n, size_t max_v2, gev_pp_header *h);

#endif
