/**
 * The connections user callbacks receive, as the public contract declares them: a stream
 * connection (Conn) and the connection-like value of one UDP datagram (DatagramConn). The loop
 * implements both (src/loop/conn.ts, src/loop/udp-conn.ts); nothing here imports the loop.
 *
 * A connection is owned by one loop: every member must be used on that loop's thread (in a
 * callback, or later from async code on the same thread).
 */
import type { Addr } from './addr.js';
import type { ProxyInfo, TlsInfo } from './backend/backend.js';
import type { LoopInit } from './events.js';

/**
 * Bytes to write: a Uint8Array (Buffer included), any other view of an ArrayBuffer (a typed array
 * or DataView: the bytes it covers) or an ArrayBuffer, or a string, written as UTF-8.
 */
export type Output = Uint8Array | ArrayBufferView | ArrayBuffer | string;

/** Options of Conn.pipe(). */
export interface PipeOptions {
  /** End the destination (Conn.end()) when this connection's peer sends FIN (default true). */
  readonly end?: boolean;
}

/**
 * One TCP or unix stream connection, or a dialled UDP connection (`udp://`): the same interface
 * with datagram semantics there, namely one `data` call per datagram (what it leaves unconsumed is
 * dropped), one datagram per write()/send() (larger than UDP carries: InvalidArgumentError), end()
 * a close, no linger (see LoopInit.dial).
 */
export interface Conn {
  /** Any per-connection value the application wants to keep (the seed's Context/SetContext). */
  context: unknown;
  /** Which of serve()'s addresses this connection came in on (its index in that list); -1 for an outbound connection. */
  readonly addrIndex: number;
  /** True for a connection this server dialled, false for one a listener accepted. */
  readonly outbound: boolean;
  /** The index of the loop this connection is on (0 with one loop). */
  readonly loopIndex: number;
  /** The loop this connection is on: the object its `init` received (`c.loop.dial()` dials from here). */
  readonly loop: LoopInit;
  /** Bytes received on this connection, including input dropped during a lingering close and input piped on. */
  readonly bytesRead: number;
  /**
   * Bytes of output the kernel has taken: what was written minus what is still queued (as the
   * backend last reported it). Exact once the output has drained; output dropped by an abrupt
   * close is not counted.
   */
  readonly bytesWritten: number;
  /** The server-side address of this connection. */
  readonly localAddr: Addr;
  /** The peer's address. */
  readonly remoteAddr: Addr;
  /**
   * For a connection accepted on a listener with `?proxy=true`: what its PROXY protocol header said
   * (version, command, v2 TLVs). remoteAddr and localAddr are then the header's source and
   * destination, unless the command is 'local' (a health check: the socket's own addresses).
   * null for every other connection.
   */
  readonly proxy: ProxyInfo | null;
  /**
   * On a connection of a `tls://` listener or dial: what its handshake settled (protocol, cipher,
   * ALPN protocol, server name, resumption, the peer certificate's verdict and, read on first use,
   * the certificate itself; a dial's latest session). `opened` runs only once the handshake is
   * done. null for every plain connection.
   */
  readonly tls: TlsInfo | null;
  /** True until the connection has closed; false inside `closed` and after it. */
  readonly open: boolean;
  /** Bytes written to this connection that the kernel has not taken yet (as last known). */
  readonly queuedBytes: number;
  /**
   * Queues bytes to write, like send(), and says whether to go on: false once the output queued for
   * this connection passes the server's `highWaterMark` (the bytes are queued all the same), or when
   * the connection can no longer be written to. After false, `drained` fires when the queue falls to
   * the low-water mark. On a dialled UDP connection each call is one datagram, and one larger than
   * a UDP payload (65507 bytes over IPv4, 65527 over IPv6) throws InvalidArgumentError.
   */
  write(data: Output): boolean;
  /**
   * Queues bytes to write, after everything queued before; they are written at the end of the
   * current batch of events, or in a microtask when called from outside one. Usable at any time on
   * the loop's thread, including after an `await`. Returns false (and writes nothing) when the
   * connection is closing or closed. On a dialled UDP connection each call is one datagram (see
   * write()).
   */
  send(data: Output): boolean;
  /** Stops reading from this connection until resume(); writes go on. */
  pause(): void;
  /** Reads from this connection again after pause(). */
  resume(): void;
  /**
   * Half-closes: once everything queued is written, sends FIN; the peer may go on sending (with
   * `allowHalfOpen`). Writing after end() does nothing. Once the output and FIN are written, the
   * peer has the server's linger to end its side; then the connection closes. A dialled UDP
   * connection has no half-close: end() closes it once the writes before it are sent.
   */
  end(): void;
  /**
   * Closes this connection as returning Action.Close does: the queued output is written, then FIN,
   * then the linger. Usable at any time on the loop's thread (a timer, after an `await`, another
   * connection's callback); the close starts at the end of the current batch, or in a microtask
   * outside one. Does nothing once the connection is closing or closed.
   */
  close(): void;
  /**
   * Closes this connection at once, dropping output not yet written; `closed` gets `err`, or null.
   * Usable as close() is; on a connection already closing it cuts the close short. Does nothing
   * on a closed connection. Throws InvalidArgumentError when `err` is given and is not an Error.
   */
  destroy(err?: Error | null): void;
  /** Closes this connection after `ms` without progress (input, or output the kernel takes), instead of the server's idle timeout; 0 turns it off. */
  setIdleTimeout(ms: number): void;
  /** Runs `data` again for this connection, with its current input, in a microtask (once, however often it is called). */
  wake(): void;
  /**
   * Relays this connection's input to `dest` from now on, without calling `data` for it: the input
   * it holds first, then whatever arrives. On the native backend the bytes move inside the loop's
   * C core and never reach JavaScript. While `dest` holds more than `highWaterMark` unsent, this
   * connection is not read. With `end` (the default) the peer's FIN ends `dest` once the bytes
   * before it are written. The pipe stops when either side closes or `dest` is ended; input then
   * reaches `data` again. Throws InvalidArgumentError when `dest` is not an open connection of this
   * loop that can be written to, or another connection already pipes into it.
   */
  pipe(dest: Conn, opts?: PipeOptions): void;
  /** Stops a pipe(): input reaches `data` again. Does nothing when nothing is piped. */
  unpipe(): void;
  /** The connection this one's input is piped to (pipe()), or null. */
  readonly pipedTo: Conn | null;
}

/**
 * The connection-like value `data` receives for one UDP datagram; replies go to its sender. A new
 * one is made for each datagram: there is no stream to pause, end, close or wake.
 */
export interface DatagramConn {
  /** Any value the application wants to keep while handling this datagram (it does not carry over to the next). */
  context: unknown;
  /** Which of serve()'s addresses (a UDP listener) the datagram came in on. */
  readonly addrIndex: number;
  /** The index of the loop this datagram is handled on (0 with one loop). */
  readonly loopIndex: number;
  /** The UDP listener's bound address. */
  readonly localAddr: Addr;
  /** The sender's address. */
  readonly remoteAddr: Addr;
  /** Sends one datagram back to this datagram's sender; false (nothing sent) once the loop is stopping. */
  send(data: Output): boolean;
  /** Sends one datagram back to this datagram's sender (the same as send()). */
  write(data: Output): boolean;
}
