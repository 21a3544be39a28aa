/**
 * The native addon's whole surface (native/addon.c), typed, with the memory layout it shares with
 * JavaScript. Only src/backend/native.ts and src/backend/addon.ts use it.
 *
 * Every function runs on the thread that created the loop. Functions that can fail at the OS level
 * return a negative errno (map it with util.getSystemErrorName); arguments are validated in
 * TypeScript before they get here.
 *
 * The const enums and constants below mirror native/gev_proto.h, the one C list of protocol
 * numbers; they stay const enums so the hot path inlines them. The addon exports that list at load
 * (`constants`), and test/native-protocol-constants.test.ts checks the two sides agree, both ways.
 *
 *   in arena (C writes, JS reads during the batch callback)      out arena (JS writes, C reads at flush)
 *   ┌────────────┬────────────────────────┬───────────────┐      ┌────────────┬──────────────────┬────────┐
 *   │ header 16  │ records: 4 u32 a slot  │ payload bytes │      │ header 16  │ commands: 4 u32  │ bytes  │
 *   │ [0] slots  │ [type, a, b, c]        │               │      │ [0] slots  │ [op, id, a, b]   │        │
 *   │ [1] bytes  │ (+2 address slots)     │               │      │ [1] bytes  │ (+2 address)     │        │
 *   └────────────┴────────────────────────┴───────────────┘      └────────────┴──────────────────┴────────┘
 *
 * An address is 8 u32: [family (AddrFamily), port, flowinfo, scope_id, 16 address bytes].
 */

/** An opaque handle to one native loop (a napi external). */
export interface LoopHandle {
  readonly __geventLoop: never;
}

export interface NativeAddon {
  /**
   * Creates a loop (epoll + eventfd) over two JS-owned arenas; a negative errno if the OS refuses.
   * `proxyHeaderTimeoutMs` (>= 1) is the deadline of a PROXY protocol header on its listeners.
   */
  loopCreate(
    inArena: ArrayBuffer,
    inRecordSlots: number,
    outArena: ArrayBuffer,
    outCommandSlots: number,
    tcpNoDelay: boolean,
    udpSlotBytes: number,
    proxyHeaderTimeoutMs: number,
  ): LoopHandle | number;
  /** Starts watching the loop's epoll fd; `onBatch` runs once per wake-up that produced records. */
  loopStart(loop: LoopHandle, onBatch: () => void): number;
  /**
   * Binds a TCP listener on a numeric host ('' = any; family 0 = dual stack on every interface).
   * `flags` are ListenFlag bits; `origin` is the listener index its records carry. Returns its
   * slot or -errno.
   */
  listenTcp(loop: LoopHandle, family: 0 | 4 | 6, host: string, port: number, flags: number, origin: number): number;
  /** Binds a UDP socket, as listenTcp. Returns its slot or -errno. */
  listenUdp(loop: LoopHandle, family: 0 | 4 | 6, host: string, port: number, flags: number, origin: number): number;
  /** Binds a unix stream listener (removing a stale socket file first). Returns its slot or -errno. */
  listenUnix(loop: LoopHandle, path: string, flags: number, origin: number): number;
  /** Writes a listener's bound address into `out` (8 u32). */
  listenerAddr(loop: LoopHandle, slot: number, out: Uint32Array): number;
  /** Closes one listener (unlinking its unix socket file). */
  listenerClose(loop: LoopHandle, slot: number): void;
  /** Writes connection `id`'s local address into `out` (8 u32); -EBADF when it is closed. */
  connAddr(loop: LoopHandle, id: number, out: Uint32Array): number;
  /** Writes the bytes relayed out of and into open connection `id` into `out` (2 doubles); -EBADF when it is closed. */
  connRelayed(loop: LoopHandle, id: number, out: Float64Array): number;
  /** Runs the out arena's commands; `ext[i]` holds the bytes of WRITE_EXT/SENDTO_EXT index i. */
  flush(loop: LoopHandle, ext: readonly Uint8Array[] | null, extCount: number): void;
  /**
   * Registers an fd accepted elsewhere as a connection of `origin` (see kOriginDial); returns its id
   * or -errno. `flags` is an Accepted record's word c: ListenFlag.Proxy makes this loop read the
   * connection's PROXY header first (Proxy then Open, or ProxyRefused, follow).
   */
  adopt(loop: LoopHandle, fd: number, origin: number, flags: number): number;
  /**
   * Starts a non-blocking TCP connect to a numeric `host` of `family`, bound first to `localHost`
   * ('' = any) and `localPort` (0 = any) when either is set. Returns the new id, or -errno when it
   * failed at once (no id taken: EINVAL for an address that does not parse, EADDRINUSE binding the
   * source, ECONNREFUSED, ENOMEM, EMFILE, ...). Then exactly one of: Open [id, origin | kOriginDial]
   * with the address connected to, or Close [id, errno] with no Open (ECONNREFUSED, ETIMEDOUT, ...).
   * Until that Open, a Close command cancels it (its Close record carries errno 0) and every other
   * command naming the id is dropped; stopAll closes it like any connection.
   */
  connectInet(
    loop: LoopHandle,
    family: 4 | 6,
    host: string,
    port: number,
    localHost: string,
    localPort: number,
    origin: number,
  ): number;
  /**
   * Starts a connect to the unix stream socket at `path`, as connectInet: usually connected at once
   * (its Open comes in the next batch); ENOENT, ECONNREFUSED, or EAGAIN (the listener's backlog is
   * full) come back at once as -errno.
   */
  connectUnix(loop: LoopHandle, path: string, origin: number): number;
  /**
   * Opens a connected UDP socket to a numeric host (source bound first as for connectInet). UDP
   * connect does not handshake: it returns the new id, whose Open comes in the next batch, or
   * -errno. Each Data record of the id is one datagram, each write command one datagram (never
   * joined with the next), End is a close, and an ICMP error (ECONNREFUSED, ...) reported by a later
   * send or receive closes it with that errno (see gev_conn_connect_udp in native/gev.h).
   */
  connectUdp(
    loop: LoopHandle,
    family: 4 | 6,
    host: string,
    port: number,
    localHost: string,
    localPort: number,
    origin: number,
  ): number;
  /** Closes every listener and connection, writing CLOSE records; call until it returns 0. */
  stopAll(loop: LoopHandle): number;
  /** Closes the poll handle and every fd; `done` runs once that finished. */
  close(loop: LoopHandle, done: () => void): number;
  /** Closes an fd from an ACCEPTED record that no loop adopted. */
  closeFd(fd: number): number;
  /**
   * Fills `out` (kStatsLen doubles): [live connections, datagrams dropped as truncated, datagrams
   * dropped on send, pending record slots, listeners parked after an accept error].
   */
  stats(loop: LoopHandle, out: Float64Array): number;
  /** null when TLS can run natively in this process (OpenSSL 3 found), else the sentence saying why not. */
  tlsAvailable(): string | null;
  /**
   * Gives the loop the context of its ListenFlag.Tls listeners from a PEM key and certificate
   * (chain after it), their ALPN protocols in wire format (each name after its length byte, the
   * server's preference first; empty for none: a client with none in common is refused with
   * no_application_protocol) and their handshake deadline (ms from accept; past it a TlsRefused
   * with ETIMEDOUT); once per loop. 0, -errno, or [-errno, what OpenSSL refused].
   */
  loopTls(
    loop: LoopHandle,
    key: Uint8Array,
    cert: Uint8Array,
    alpn: Uint8Array,
    handshakeTimeoutMs: number,
  ): number | [number, string];
  /**
   * [protocol, cipher, servername ('' for none), resumed, ALPN protocol ('' for none)] of open TLS
   * connection `id`, or -errno.
   */
  connTlsInfo(loop: LoopHandle, id: number): [string, string, string, boolean, string] | number;
  /** OpenSSL's text for the error word of a TlsRefused record, or null. */
  tlsReason(err: number): string | null;
  /** Every protocol constant of native/gev_proto.h by its C name without GEV_ (frozen). */
  readonly constants: Readonly<Record<string, number>>;
}

/** u32 in an arena's header (HDR_U32). */
export const kHeaderU32 = 16;
/** u32 per record or command slot (SLOT_U32). */
export const kSlotU32 = 4;
/** Extra slots an address takes after its record or command (ADDR_SLOTS). */
export const kAddrSlots = 2;
/** u32 in an encoded address (ADDR_U32). */
export const kAddrU32 = 8;
/**
 * A connection's origin: below this bit, the index of the listener it was accepted on; with it set,
 * a dial (ORIGIN_DIAL). Defined with the Backend contract, which every backend reports origins in.
 */
export { kOriginDial } from './backend.js';
/**
 * The largest PROXY v2 header a listener takes (PROXY_HEADER_MAX), defined with the Backend
 * contract.
 */
export { kProxyHeaderMaxBytes } from './backend.js';
/** Word b of a Proxy record: this bit for a LOCAL (v2) or UNKNOWN (v1) command (PROXY_LOCAL). */
export const kProxyLocalBit = 1 << 8;
/**
 * Word b of a Proxy record: a v2 AF_UNIX header, whose 216-byte address block (source path, then
 * destination path, 108 bytes each, NUL-padded) is at the record's offset, the TLV bytes right
 * after it (PROXY_UNIX).
 */
export const kProxyUnixBit = 1 << 9;
/** Bytes of one path in a v2 AF_UNIX address block. */
export const kProxyUnixPathBytes = 108;
/** Word b of a Proxy record: the TLV bytes' length sits above this bit (PROXY_TLV_SHIFT). */
export const kProxyTlvShift = 16;
/** Connection ids are (generation << kIdSlotBits) | slot (SLOT_BITS). */
export const kIdSlotBits = 20;
/** The largest generation, so ids stay below 2^31 (GEN_MAX). */
export const kIdGenerationMax = 2047;
/** Payloads passed by reference per flush (MAX_EXT). */
export const kMaxExtBuffers = 1024;
/** The largest receive slot per datagram, and the default: no datagram is larger (UDP_SLOT). */
export const kUdpSlotBytes = 65536;
/** Listener slots per loop; a listen past them fails with EMFILE (MAX_LISTENERS). */
export const kMaxListenerSlots = 256;
/** The largest keep-alive idle time in seconds (KEEPALIVE_MAX_S). */
export const kMaxKeepAliveSeconds = 32767;
/** Doubles stats() fills (STATS_LEN). */
export const kStatsLen = 5;

/** Encoded address families, word 0 of an address (ADDR_*). */
export const enum AddrFamily {
  None = 0,
  Unix = 1,
  Inet4 = 4,
  Inet6 = 6,
}

/** Record types in the in arena (REC_*); each record is [type, a, b, c] (+2 address slots where noted). */
export const enum Rec {
  /** [id, origin] + peer address: origin is a listener index, or has kOriginDial set */
  Open = 1,
  /** [id, offset, length] */
  Data = 2,
  /** [id]: the peer sent FIN */
  End = 3,
  /** [id, errno, what]: `what` is a NoMemory value when the core itself ran out of memory, else 0 */
  Close = 4,
  /** [listener, offset, length] + sender address */
  Dgram = 5,
  /** [fd, origin, ListenFlag.Proxy or 0] + peer address: a hand-off listener accepted fd, not registered */
  Accepted = 6,
  /* 7 is retired (a cross-thread wake-up) and stays unused. */
  /**
   * [id, bytes low 32, bytes high 32]: connection id's output the kernel has not taken yet. Sent
   * after a flush for each connection whose queue grew (or that WatchQueue named), and after
   * EPOLLOUT writes, whenever the figure differs from the last one reported; never for a send the
   * kernel took whole. A connection that closes is not reported again.
   */
  Queued = 8,
  /** [listener, errno]: accept4 failed; the listener is parked for a moment, then retries */
  AcceptError = 9,
  /**
   * [id, version | kProxyLocalBit | tlv length << kProxyTlvShift, tlv offset] + the header's
   * destination (AddrFamily.None for a local command): the PROXY header of connection id, right
   * before its Open (whose address is then the header's source, or the socket's peer when local)
   */
  Proxy = 10,
  /** [listener, ProxyReason] + the socket's peer: a PROXY listener closed a connection before Open */
  ProxyRefused = 11,
  /**
   * [id] + [rx low, rx high, tx low, tx high, 0, 0, 0, 0]: the bytes relayed out of and into
   * connection id (Op.Relay), right before its Close; only for a connection that relayed any
   */
  Relayed = 12,
  /**
   * [listener, errno, OpenSSL error or 0] + the socket's peer (AddrFamily.None when it reset): a TLS
   * listener's connection failed its handshake and closed before Open (EPROTO: not TLS, or refused;
   * ECONNABORTED, ECONNRESET: it left); its id is never used
   */
  TlsRefused = 13,
}

/** Why a PROXY protocol listener refused a connection (PROXY_E_*), word b of ProxyRefused. */
export const enum ProxyReason {
  Signature = 1,
  Version = 2,
  Command = 3,
  Family = 4,
  V1Syntax = 5,
  TooLong = 6,
  AddressLength = 7,
  Tlv = 8,
  Timeout = 9,
  /** the peer closed or reset first, or the core had no memory for the header */
  Closed = 10,
}

/** What the core failed to allocate when a Close record carries ENOMEM (NOMEM_*). */
export const enum NoMemory {
  /** 0: the ENOMEM came from the kernel */
  Kernel = 0,
  /** the copy of output the kernel did not take at once */
  Queue = 1,
  /** room for the connection's Queued report */
  Report = 2,
}

/** Command ops in the out arena (OP_*); each command is [op, id, a, b] (+2 address slots for SendTo*). */
export const enum Op {
  /** [id, offset, length] */
  Write = 1,
  /** [id, ext index, length]: length is a u32, so a larger write takes several commands */
  WriteExt = 2,
  /** [id, flush] */
  Close = 3,
  /** [id] */
  End = 4,
  /** [id, seconds (0 = off)] */
  KeepAlive = 5,
  /** [listener slot, offset, length] + address */
  SendTo = 6,
  /** [listener slot, ext index, length] + address; no datagram reaches the u32 limit */
  SendToExt = 7,
  /** [id, paused]: 1 drops read interest (no DATA/END until 0 restores it); errors still close */
  PauseReading = 8,
  /** [id]: a Queued record after this flush even when the figure is unchanged (or 0) */
  WatchQueue = 9,
  /** [id, to (0 = stop), high-water bytes]: id's input is sent to `to` inside the core, with no Data record */
  Relay = 10,
}

/** Listener options, one bit each (LISTEN_*); native/sys.c applies the socket-level ones. */
export const enum ListenFlag {
  /** SO_REUSEPORT */
  ReusePort = 1 << 0,
  /** IPV6_V6ONLY on an IPv6 socket (off without it) */
  V6Only = 1 << 1,
  /** report accepted fds through Accepted records instead of opening them */
  HandOff = 1 << 2,
  /** every connection starts with a PROXY protocol header, read in C before Open */
  Proxy = 1 << 3,
  /** every connection is TLS over the loop's context (loopTls), opened once its handshake is done */
  Tls = 1 << 4,
}
