/**
 * The user-facing contract: the Events object a server is built from, the actions its callbacks
 * return, and the shapes those returns may take.
 */
import type { DialTlsOptions } from './tls-options.js';
import type { Addr } from './addr.js';
import type { RingBuffer } from './ringbuffer.js';
import type { Conn, Output } from './conn-types.js';

export type { Conn, DatagramConn, Output, PipeOptions } from './conn-types.js';

/** What a callback asks the server to do next. */
export enum Action {
  /** Carry on. */
  None = 0,
  /** Close this connection, after writing everything queued for it. */
  Close = 1,
  /** Close every connection (firing `closed` for each), stop every loop, and settle serve(). */
  Shutdown = 2,
}

/** How a new connection picks its loop when there are several. */
export enum LoadBalance {
  Random = 0,
  RoundRobin = 1,
  LeastConnections = 2,
}

/**
 * What an async callback's promise may resolve to: nothing. The loop does not wait for it, so an
 * async callback writes with `c.send()`/`c.write()`; its rejection closes the connection with a
 * HandlerError (or reaches `onError` where there is no connection), and a resolved value other
 * than nothing closes it with InvalidArgumentError rather than being dropped.
 */
export type AsyncReply = PromiseLike<void | undefined | null>;

/**
 * What `data`, `closed` and `serving` may return: nothing, bytes, an Action, or both; or, from an
 * async callback, a promise of nothing (see AsyncReply).
 */
export type Reply = void | undefined | null | Output | Action | { out?: Output | null; action?: Action } | AsyncReply;

/** Per-connection options `opened` may set. */
export interface ConnOptions {
  /** TCP keep-alive idle time in milliseconds; 0 or absent leaves keep-alive off. */
  tcpKeepAlive?: number;
}

/** What `opened` may return: a Reply, or an object that may also carry `opts`. */
export type OpenedReply = Reply | { out?: Output | null; action?: Action; opts?: ConnOptions };

/** What `tick` may return: nothing (tick again after the same delay), an Action, or `{ delay, action }`. */
export type TickReply = void | undefined | null | Action | { delay?: number; action?: Action } | AsyncReply;

/** What `dropped` learns of a connection refused by `maxConnections`. */
export interface DroppedConn {
  readonly addrIndex: number;
  readonly localAddr: Addr;
  readonly remoteAddr: Addr;
}

/** One loop's share of Server.stats(). */
export interface LoopStats {
  /** Connections open on this loop now. */
  readonly connections: number;
  /** Connections this loop has accepted, including those dropped past maxConnections. */
  readonly accepted: number;
  /** Outbound connections this loop has opened (dials that connected). */
  readonly dialed: number;
  /** Bytes received on this loop's stream connections. */
  readonly bytesRead: number;
  /** Bytes of this loop's stream output that the kernel took. */
  readonly bytesWritten: number;
}

/** What Server.stats() returns: totals over every loop, and each loop's share. */
export interface ServerStats {
  /** Connections open now. */
  readonly connections: number;
  /** Connections accepted since the server started, including those dropped. */
  readonly accepted: number;
  /** Outbound connections opened since the server started (dials that connected). */
  readonly dialed: number;
  /** Connections closed since the server started (accepted, dialed and dropped ones). */
  readonly closed: number;
  /** Connections refused past maxConnections. */
  readonly dropped: number;
  /** Bytes received on stream connections. */
  readonly bytesRead: number;
  /** Bytes of stream output that the kernel took. */
  readonly bytesWritten: number;
  /** accept() failures (each also reported to onError, at most once a second). */
  readonly acceptErrors: number;
  /**
   * Connections a PROXY protocol listener (`?proxy=true`) closed before they opened: a refused or
   * late header, or a peer that left first (each reported to onError as a ProxyProtocolError, at
   * most once a second per listener). They are not in `accepted`, `connections` or `closed`.
   */
  readonly proxyRefused: number;
  /**
   * Connections a TLS listener closed because their handshake failed (each reported to onError as
   * a TlsHandshakeError, at most once a second per listener). Not in `accepted`, `connections` or `closed`.
   */
  readonly tlsRefused: number;
  /** Per loop, by index. */
  readonly loops: readonly LoopStats[];
}

/**
 * A running server: what listen() resolves to and what `serving` receives. Its counts read
 * memory the loops write as they go (shared memory across worker threads), so polling them is
 * cheap: no message to any loop. Usable from the thread that called listen() and, for the object
 * `serving` gets on a loop's thread, from that thread.
 */
export interface Server {
  /** The bound addresses, in the order given; port 0 is replaced by the real port. */
  readonly addrs: readonly Addr[];
  /** How many event loops serve connections. */
  readonly numLoops: number;
  /** Which backend runs the loops. */
  readonly backend: 'native' | 'portable';
  /** Connections open now, across every loop. */
  readonly connections: number;
  /** Totals since the server started, and each loop's share; each total is at most one batch old. */
  stats(): ServerStats;
  /**
   * Stops the server as Action.Shutdown does: with `grace` (ms; default the server's `grace`
   * option) it stops accepting and gives connections that long to finish writing. Settles when
   * every connection has closed and every loop has stopped; calling it again returns the same wait.
   */
  shutdown(opts?: { grace?: number }): Promise<void>;
  /** Settles once the server has shut down: resolves, or rejects where serve() rejects. */
  readonly closed: Promise<void>;
  /**
   * Sends `value` (anything structured-clonable) to every loop, this one included: each loop's
   * `events.message(value)` runs with it, later, on that loop's thread. In order from one sender.
   */
  broadcast(value: unknown): void;
  /**
   * Opens an outbound connection on one of the server's loops (with several, the one the server's
   * `loadBalance` picks). Resolves, with nothing, once the connection is open and `opened` has
   * returned for it on its loop, where the handlers see it with `c.outbound` true and `c.context`
   * set from `opts.context` (a structured clone when the loop runs on a worker thread). Rejects
   * with DialError when it does not connect, then neither `opened` nor `closed` fires for it. From
   * the handle `serving` gets on a multi-loop server, it dials on loop 0 (that handle's own loop).
   */
  dial(target: string, opts?: DialOptions): Promise<void>;
  /** `await using server = await listen(...)`: shuts the server down (with its grace) at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Options of a dial: LoopInit.dial(), Conn.loop.dial(), Server.dial(). The members of
 * DialTlsOptions (servername, ca, alpn, session, ...) are for `tls://` targets only.
 */
export interface DialOptions extends DialTlsOptions {
  /** The new connection's `c.context`, set before `opened` runs (default undefined). */
  context?: unknown;
  /** Connect timeout in ms, on the loop's timing wheel (default 10000); then DialError ETIMEDOUT. */
  timeout?: number;
  /** Numeric source address to bind before connecting (tcp and udp; default any). */
  localAddress?: string;
  /** Source port to bind before connecting (tcp and udp; default 0, any). */
  localPort?: number;
  /** Aborting it cancels a dial that has not opened yet (DialError ECANCELED); ignored once open. */
  signal?: AbortSignal;
}

/**
 * One loop, as its code sees it: what `init` is given on each loop, and `c.loop` of every
 * connection on that loop (the same object). Usable on that loop's thread.
 */
export interface LoopInit {
  /** This loop's index, 0-based. */
  readonly loopIndex: number;
  /** How many loops the server runs. */
  readonly numLoops: number;
  /** ServeOptions.workerData, cloned for this loop (a SharedArrayBuffer in it is shared, not copied). */
  readonly workerData: unknown;
  /** Server.broadcast(), from this loop: `value` reaches every loop's `message`, this one's included. */
  broadcast(value: unknown): void;
  /**
   * Opens an outbound connection on this loop to `target` (`tcp://host:port`, `tcp4://`, `tcp6://`,
   * `unix:///path`, `udp://host:port`, `udp4://`, `udp6://`, or `tls://host:port`, which opens
   * after its TLS handshake and rejects with TlsHandshakeError when that fails). Host names are
   * resolved first, off the loop. Once connected the connection gets `opened` like an accepted one
   * (before `serving` too: a dial from `init` is not held back), and the promise resolves with it
   * after `opened` returns, even if `opened` closed it. Rejects with BadAddressError or
   * InvalidArgumentError for a bad target or option, and with DialError when it does not connect:
   * then neither `opened` nor `closed` fires.
   *
   * A udp target is a connected UDP socket, open at once (no handshake): each `data` call is one
   * datagram (what it leaves unconsumed is dropped), each write one datagram (one larger than UDP
   * carries, 65507 bytes over IPv4 or 65527 over IPv6, throws InvalidArgumentError), a send the
   * kernel refuses for a full buffer is dropped, end() closes, and an ICMP error for an earlier
   * datagram closes it: `closed` gets an Error with `code` ECONNREFUSED (...) naming the peer.
   */
  dial(target: string, opts?: DialOptions): Promise<Conn>;
}

/** The callbacks and settings that make a server. Every member is optional. */
export interface Events {
  /** 0 or 1: one loop in this thread; N > 1: N loops; negative: one loop per CPU. */
  numLoops?: number;
  /** Which loop gets a new connection when there are several (default Random). */
  loadBalance?: LoadBalance;
  /**
   * Once on each loop, on its thread, before it serves any connection (on loop 0 before
   * `serving`): where a loop on a worker thread gets ServeOptions.workerData and a way to
   * broadcast. A returned promise is waited for; a throw or rejection fails listen() with HandlerError.
   */
  init?(loop: LoopInit): void | PromiseLike<void>;
  /** Once, when the server can accept. Return Action.Shutdown to stop at once. */
  serving?(server: Server): Reply;
  /** A connection opened. `out` is written to it first. */
  opened?(c: Conn): OpenedReply;
  /** A connection closed; `err` is the last error, or null for a clean close. */
  closed?(c: Conn, err: Error | null): Reply;
  /**
   * The peer sent FIN (end of its input). Only with `allowHalfOpen`: the connection stays open for
   * writing, and `c.end()` half-closes it (or return Action.Close). Without `allowHalfOpen` the
   * connection is closed after its queued output is written, and this does not fire.
   */
  end?(c: Conn): Reply;
  /** Queued output fell to the low-water mark after `c.write()` had returned false. */
  drained?(c: Conn): Reply;
  /** A connection was accepted past `maxConnections` and closed at once, before `opened`. */
  dropped?(info: DroppedConn): void;
  /** Just before queued output is written to sockets (once per batch of writes). */
  preWrite?(): void;
  /**
   * Data arrived. `input` holds everything received and not yet consumed; what the handler does
   * not consume (retrieve/read) stays for the next call. For a UDP listener, `c` is a DatagramConn
   * (only its members exist) and `input` holds one datagram: a handler that serves UDP declares
   * `data(c: DatagramConn, input)`, or `c: Conn | DatagramConn` when it serves both.
   */
  data?(c: Conn, input: RingBuffer): Reply;
  /** Right after the server starts, then again after the returned delay (ms). Runs on loop 0. */
  tick?(): TickReply;
  /** A value given to Server.broadcast() (on any loop, or by the listen() caller) arrived on this loop. */
  message?(value: unknown): void;
}
