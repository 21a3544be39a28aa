/**
 * The user-facing contract: the Events object a server is built from, the actions its callbacks
 * return, and the shapes those returns may take.
 */
import type { Addr } from './addr.js';
import type { RingBuffer } from './ringbuffer.js';
import type { Conn } from './loop/conn.js';

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
 * Bytes to write: a Uint8Array (Buffer included), any other view of an ArrayBuffer (a typed array
 * or DataView: the bytes it covers) or an ArrayBuffer, or a string, written as UTF-8.
 */
export type Output = Uint8Array | ArrayBufferView | ArrayBuffer | string;

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

/** The running server, as `serving` sees it. */
export interface Server {
  /** The bound addresses, in the order given to serve(); port 0 is replaced by the real port. */
  readonly addrs: readonly Addr[];
  /** How many event loops serve connections. */
  readonly numLoops: number;
  /** Which backend runs the loops. */
  readonly backend: 'native' | 'portable';
}

/** The callbacks and settings that make a server. Every member is optional. */
export interface Events {
  /** 0 or 1: one loop in this thread; N > 1: N loops; negative: one loop per CPU. */
  numLoops?: number;
  /** Which loop gets a new connection when there are several (default Random). */
  loadBalance?: LoadBalance;
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
   * not consume (retrieve/read) stays for the next call.
   */
  data?(c: Conn, input: RingBuffer): Reply;
  /** Right after the server starts, then again after the returned delay (ms). Runs on loop 0. */
  tick?(): TickReply;
}
