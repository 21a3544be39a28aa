/**
 * The only seam between the event loop and the operating system. A backend owns sockets: it binds
 * listeners, accepts, reads, writes and closes, and reports what happened to one BackendHandler
 * (the loop). Two implementations exist: `native` (the epoll addon) and `portable` (node:net and
 * node:dgram). The loop never imports either directly.
 *
 * Threading: a backend belongs to the thread that created it; every method is called on that thread
 * and every handler callback runs on it.
 *
 * Connection ids are positive integers chosen by the backend. An id is never reused while the loop
 * may still hold it: after onClose(id) the backend may reuse it, and calls naming a closed id are
 * ignored.
 */
import type { X509Certificate } from 'node:crypto';
import type { Addr, ListenSpec } from '../addr.js';
import type { DialTlsConfig, ServerTlsConfig } from '../tls-options.js';

/** One PROXY protocol v2 TLV (type and value, a copy the loop may keep). */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Uint8Array;
}

/** What a PROXY protocol header said, for a connection accepted on a listener with `?proxy=true`. */
export interface ProxyInfo {
  readonly version: 1 | 2;
  /** 'proxy': the addresses are the header's; 'local' (v2 LOCAL, v1 UNKNOWN, v2 over UNSPEC): the socket's own. */
  readonly command: 'proxy' | 'local';
  /** v2 TLVs in header order; [] for v1 and for 'local'. */
  readonly tlvs: readonly ProxyTlv[];
}

/**
 * The local and remote address of one connection; a backend may compute them lazily. On a PROXY
 * protocol listener they are the header's destination and source (unless its command is 'local').
 */
export interface AddrPair {
  readonly local: Addr;
  readonly remote: Addr;
  /** Set for a connection accepted on a PROXY protocol listener; undefined otherwise. */
  readonly proxy?: ProxyInfo;
  /** Set for a TLS connection (a `tls://` listener or dial), once its handshake is done; undefined otherwise. */
  readonly tls?: TlsInfo;
  /**
   * True when the backend's recallAddrs() makes this pair again, equal, for as long as the
   * connection is open: the BackendHandler need not keep it, and recalls it on first use, or at
   * the latest in the connection's onClose.
   */
  readonly recallable?: boolean;
}

/** What a TLS connection's handshake settled (Conn.tls). */
export interface TlsInfo {
  /** The protocol version, 'TLSv1.2' or 'TLSv1.3'. */
  readonly protocol: string;
  /** The cipher suite's OpenSSL name, such as 'TLS_AES_256_GCM_SHA384'. */
  readonly cipher: string;
  /** The ALPN protocol agreed on, or null when none was. */
  readonly alpnProtocol: string | null;
  /** The server name the client asked for by SNI (the one sent, on a dial), or null. */
  readonly servername: string | null;
  /** Whether the session was resumed (a ticket or session id) rather than negotiated afresh. */
  readonly resumed: boolean;
  /** Whether the peer's certificate verified (false when it sent none). */
  readonly authorized: boolean;
  /** Why the peer's certificate did not verify (such as 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'), or null. */
  readonly authorizationError: string | null;
  /** The peer's certificate, read on first use (null when it sent none, or once the connection has closed). */
  readonly peerCertificate: X509Certificate | null;
  /** On a dial: the latest session the server gave, to pass as DialOptions.session later; null on a listener. */
  readonly session: Uint8Array | null;
}

/**
 * How a dial's TLS handshake failed, as a backend reports it in onClose: `reason` is OpenSSL's or
 * Node's code (ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL, ...).
 */
export class TlsHandshakeFailure extends Error {
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/**
 * Why a PROXY protocol listener refused a connection before it opened: one of the header parser's
 * refusals, 'timeout' (no complete header within proxyHeaderTimeoutMs) or 'closed' (the peer closed
 * or reset before its header was complete).
 */
export type ProxyRefusal =
  | 'signature'
  | 'version'
  | 'command'
  | 'family'
  | 'v1-syntax'
  | 'too-long'
  | 'address-length'
  | 'tlv'
  | 'timeout'
  | 'closed';

/** Where a datagram came from; opaque to the loop, handed back to sendTo() to reply. */
export interface DatagramPeer {
  readonly addr: Addr;
}

/**
 * Where a connection came from, as one u32: the index of the listener that accepted it (in the
 * address list), or kOriginDial with bit 31 set for a connection the loop dialled. Backends report
 * it in onOpen as a raw number; only the helpers below read it.
 */
export const kOriginDial = 0x80000000;

/**
 * The origin a backend reports for a dialled UDP connection (a DialSpec with network 'udp'): a dial
 * origin whose connection is datagram-oriented (see DialSpec).
 */
export const kOriginDialDatagram = (kOriginDial | 1) >>> 0;

/** Whether `origin` is a dialled UDP connection's (see kOriginDialDatagram). */
export function originIsDatagram(origin: number): boolean {
  return origin === kOriginDialDatagram;
}

/** Whether `origin` is an outbound (dialled) connection's. */
export function originIsDial(origin: number): boolean {
  return (origin & kOriginDial) !== 0;
}

/** The listener index in `origin`, or -1 for an outbound connection. */
export function originListener(origin: number): number {
  return (origin & kOriginDial) !== 0 ? -1 : origin;
}

/**
 * One outbound connection to open (Backend.dial). Host names are resolved before it reaches the
 * backend: `host` is a numeric IPv4 or IPv6 address for tcp and udp, and `path` the socket file for
 * unix.
 *
 * udp: a connected datagram socket (socket + connect, no handshake), reported open at once with
 * origin kOriginDialDatagram and 'udp' addresses. Every onData is exactly one datagram; every
 * write() is sent as exactly one datagram, never joined with the writes next to it (a write
 * larger than a datagram can be is the caller's to refuse); a send the kernel refuses for a full
 * buffer is dropped. end() closes (a datagram socket has no half-close), nothing is ever queued
 * (onQueued only answers watchQueue, with 0), and no onEnd ever comes. An error from a later send or
 * receive (ECONNREFUSED when an ICMP port unreachable came back, EHOSTUNREACH, ...) closes the
 * connection: onClose(id, err) with err made by datagramError().
 */
export interface DialSpec {
  readonly network: 'tcp' | 'udp' | 'unix';
  /** 4 or 6 for tcp and udp (the family of `host`); 0 for unix. */
  readonly family: 0 | 4 | 6;
  /** Numeric address to connect to (tcp, udp); '' for unix. */
  readonly host: string;
  readonly port: number;
  /** Socket file (unix); '' for tcp and udp. */
  readonly path: string;
  /** Numeric source address to bind before connecting ('' for any); tcp and udp only. */
  readonly localHost: string;
  /** Source port to bind before connecting (0 for any); tcp and udp only. */
  readonly localPort: number;
  /** TLS over the connection (a `tls://` target), opened only once the handshake is done; absent for plain tcp. */
  readonly tls?: DialTlsConfig;
}

/** The largest datagram a dialled UDP connection sends to an IPv4 peer: 65,535 minus the IP and UDP headers. */
export const kMaxDatagramBytes4 = 65_507;
/** The largest datagram a dialled UDP connection sends to an IPv6 peer: 65,535 minus the UDP header. */
export const kMaxDatagramBytes6 = 65_527;

/**
 * The error that closes a dialled UDP connection, from either backend: shaped like Node's socket
 * errors and like a dial's connect errors, with `code` the errno name (ECONNREFUSED, ...), `errno`
 * negative, `syscall`, `address` and `port`, and a message naming the peer:
 * `udp ECONNREFUSED 127.0.0.1:9 (ICMP port unreachable: nothing listens there)`.
 */
export function datagramError(code: string, errno: number, syscall: string, host: string, port: number): Error {
  const peer = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const why = code === 'ECONNREFUSED' ? ' (ICMP port unreachable: nothing listens there)' : '';
  const err = new Error(`udp ${code} ${peer}${why}`);
  return Object.assign(err, { code, errno: -Math.abs(errno), syscall, address: host, port });
}

/** What the loop implements to hear from a backend. */
export interface BackendHandler {
  /** A connection opened: accepted on a listener, or dialled; `origin` says which (see kOriginDial). */
  onOpen(id: number, origin: number, addrs: AddrPair): void;
  /**
   * Bytes arrived. `bytes` is valid only during this call: the backend may reuse its memory
   * afterwards, so the loop copies what it keeps.
   */
  onData(id: number, bytes: Uint8Array): void;
  /** The peer sent FIN (end of input); the loop closes the connection after flushing. */
  onEnd(id: number): void;
  /**
   * The connection is closed and its fd released; fires exactly once per id, opened or not. For a
   * dialled id that never reached onOpen it means the connect failed (or was cancelled by close()),
   * and `err` carries the errno as its `code` (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ENOENT, ...).
   */
  onClose(id: number, err: Error | null): void;
  /** One datagram arrived on the UDP listener of index `listenerIndex`; `bytes` is valid only during this call. */
  onDatagram(listenerIndex: number, bytes: Uint8Array, peer: DatagramPeer): void;
  /** A batch of events ended; the loop flushes its replies. Backends without batching call it after every event. */
  onBatchEnd(): void;
  /**
   * How many bytes of connection `id`'s output the kernel has not taken yet, whenever that figure
   * changes and the old or the new value is non-zero: after a flush leaves output queued, as the
   * queue shrinks, and 0 once it has drained. Connections whose writes the kernel took at once are
   * never reported. May lag a flush by one batch.
   */
  onQueued(id: number, bytes: number): void;
  /**
   * accept() on the listener of index `listenerIndex` failed with `errno` (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...); the
   * listener goes on. Backends rate-limit nothing: the loop does.
   */
  onAcceptError(listenerIndex: number, errno: string): void;
  /**
   * A connection accepted on the PROXY protocol listener of index `listenerIndex` was closed before
   * it opened: its header was refused (`reason`), did not complete in time, or the peer left first.
   * `peer` is the socket's peer (the balancer). No onOpen or onClose is ever made for it. Backends
   * rate-limit nothing: the loop does.
   */
  onProxyRefused(listenerIndex: number, reason: ProxyRefusal, peer: Addr): void;
  /**
   * A connection accepted on the TLS listener of index `listenerIndex` failed its handshake and was
   * closed before it opened: `reason` is OpenSSL's or Node's code, `peer` the socket's peer (null
   * when the socket closed before it could be read). No
   * onOpen or onClose is ever made for it. Backends rate-limit nothing: the loop does.
   */
  onTlsError?(listenerIndex: number, reason: string, peer: Addr | null, detail: string): void;
  /**
   * Connection `id`, about to close (its onClose follows), relayed `out` bytes of its input to
   * another connection and was sent `into` bytes by one (Backend.relay), none of which passed
   * through onData or write(). Made only by a backend that implements relay(), and only for a
   * connection that relayed something.
   */
  onRelayed?(id: number, out: number, into: number): void;
}

/** Options fixed when a backend is created. */
export interface BackendOptions {
  /** TCP_NODELAY on accepted TCP connections. */
  readonly tcpNoDelay: boolean;
  /**
   * On PROXY protocol listeners: how long a new connection may take to send its complete header
   * (ms) before it is closed with onProxyRefused(…, 'timeout'). The header itself is at most
   * kProxyHeaderMaxBytes (v2) or 107 bytes (v1).
   */
  readonly proxyHeaderTimeoutMs: number;
  /** The server side of TLS listeners (`tls://`); a backend without TLS is never given it. */
  readonly tls?: ServerTlsConfig | null;
}

/** The largest PROXY v2 header a listener accepts (16 + its length field); larger is 'too-long'. */
export const kProxyHeaderMaxBytes = 4096;

/** One side of the seam: the operations a loop asks of the OS. */
export interface Backend {
  readonly name: 'native' | 'portable';
  /** Starts delivering events to `handler`. Called once, before listen(). */
  start(handler: BackendHandler): void;
  /**
   * Binds and listens (TCP, unix) or binds (UDP). Resolves with the bound address; rejects with a
   * ListenError naming `spec.text`. A stale unix socket file is removed first; a live one is
   * EADDRINUSE.
   */
  listen(spec: ListenSpec): Promise<Addr>;
  /**
   * Starts a non-blocking connect on this backend's loop and returns the new connection's id, or an
   * Error (with an errno `code`) when the connect failed at once (e.g. EMFILE, EADDRINUSE binding
   * the source, ECONNREFUSED or ENOENT on a unix path). Once connected the backend reports
   * onOpen(id, kOriginDial, addrs); a connect that fails later ends in onClose(id, err) with no
   * onOpen. close(id, false) before onOpen cancels it (onClose follows). Until onOpen, write, end,
   * pauseReading, setKeepAlive and watchQueue must not be called for the id.
   */
  dial(spec: DialSpec): number | Error;
  /** Queues bytes for connection `id`, in order. The bytes may be referenced until flushed; the caller must not change them. */
  write(id: number, data: Uint8Array): void;
  /** Sends every write queued since the last flush (a batching backend makes one native call here). */
  flush(): void;
  /**
   * Closes connection `id`. With `flush`, queued output is written first; without it the socket
   * is closed now. onClose(id, ...) follows, from a later callback.
   */
  close(id: number, flush: boolean): void;
  /** Half-closes (shutdown SHUT_WR) after queued output is written. */
  end(id: number): void;
  /**
   * Asks for one onQueued(id, bytes) report after the next flush, made even when `bytes` is 0 and
   * unchanged: the loop uses it to learn that output it could not account for has drained.
   */
  watchQueue(id: number): void;
  /** Stops (true) or restarts (false) reading from connection `id`; writes go on either way. */
  pauseReading(id: number, paused: boolean): void;
  /** Closes every listener (unlinking unix socket files) so that nothing new is accepted; open connections stay. */
  closeListeners(): Promise<void>;
  /** TCP keep-alive with the given idle time, or off when ms <= 0. */
  setKeepAlive(id: number, ms: number): void;
  /**
   * Optional: from the next flush on, input read from connection `id` is written to connection
   * `to` by the backend itself, with no onData (0 stops it; `to` may be `id`). While `to` holds more
   * than `highWater` bytes unsent, `id` is not read; below a quarter of it, it is again. onEnd and
   * onClose still come for both. The relay stops by itself when either closes or `to` has been
   * ended; `id`'s input then comes through onData again, as it does for bytes read before the
   * flush. relayed(id) tells how many bytes moved so far, onRelayed the totals before onClose. A
   * backend without it leaves relaying to the loop (which writes what onData brings).
   */
  relay?(id: number, to: number, highWater: number): void;
  /** With relay(): the bytes relayed out of open connection `id` and into it so far, or null once it is closed. */
  relayed?(id: number): readonly [out: number, into: number] | null;
  /**
   * The addresses of open connection `id` (opened with `origin`) whose onOpen pair was recallable;
   * valid until its onClose returns.
   */
  recallAddrs?(id: number, origin: number): AddrPair;
  /** Sends one datagram from the UDP listener of index `listenerIndex` back to `peer`. */
  sendTo(listenerIndex: number, data: Uint8Array, peer: DatagramPeer): void;
  /**
   * Closes every listener (unlinking unix socket files it created) and every connection, firing
   * onClose for each open connection, and releases the backend's OS resources.
   */
  stop(): Promise<void>;
}
