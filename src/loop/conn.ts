/**
 * A connection as user callbacks see it. Owned by one loop; every method must be called on that
 * loop's thread (in a callback, or later from async code on the same thread).
 */
import type { Addr } from '../addr.js';
import type { AddrPair, DatagramPeer } from '../backend/backend.js';
import type { Output } from '../events.js';
import { RingBuffer } from '../ringbuffer.js';
import type { Loop } from './loop.js';

export const enum ConnState {
  Open = 0,
  /** Close was asked for; queued output is being written. No more data is dispatched. */
  Closing = 1,
  Closed = 2,
  /** Accepted before the server started serving; `opened` fires when it does. */
  Pending = 3,
  /**
   * A lingering close (Action.Close, a handler error): queued output is written, then FIN; input is
   * read and dropped until the peer's FIN, an error or the linger deadline closes the fd.
   */
  Lingering = 4,
}

/** One TCP or unix stream connection. */
export class Conn {
  /** Any per-connection value the application wants to keep (the seed's Context/SetContext). */
  context: unknown = undefined;
  /** @internal */ readonly id: number;
  /** @internal */ readonly loop: Loop;
  /** @internal */ readonly input: RingBuffer;
  /** @internal */ state: ConnState = ConnState.Open;
  /** @internal */ lastActiveMs = 0;
  /** @internal */ idleTimer: { stop(): boolean } | null = null;
  /** @internal */ closeError: Error | null = null;
  /** @internal */ wakePending = false;
  /** @internal */ endPending = false;
  /** @internal Output the backend holds (its last onQueued report). */ queued = 0;
  /** @internal Output written since the last flush. */ unflushed = 0;
  /** @internal Reading paused by pause(). */ userPaused = false;
  /** @internal Reading paused because output passed the high-water mark. */ bpPaused = false;
  /** @internal write() returned false; `drained` fires at the low-water mark. */ needDrain = false;
  /** @internal A one-shot queue report has been asked for. */ watching = false;
  /** @internal Idle timeout set by setIdleTimeout(); -1 means the server's waitTimeout. */ idleMs = -1;
  /** @internal The peer sent FIN (allowHalfOpen). */ peerEnded = false;
  /** @internal end() was called: no more writes. */ ended = false;
  /** @internal Closed by maxConnections before `opened`: no `closed` fires. */ dropped = false;
  /** @internal The linger deadline's timer, while Lingering. */ lingerTimer: { stop(): boolean } | null = null;
  /** @internal Lingering, and the backend has written all of the output (a queue report of 0). */ lingerFlushed = false;
  readonly #addrs: AddrPair | null;
  readonly #addrIndex: number;

  /** @internal */
  constructor(loop: Loop, id: number, addrIndex: number, addrs: AddrPair | null, input: RingBuffer) {
    this.loop = loop;
    this.id = id;
    this.#addrIndex = addrIndex;
    this.#addrs = addrs;
    this.input = input;
  }

  /** Which of serve()'s addresses this connection came in on (its index in that list). */
  get addrIndex(): number {
    return this.#addrIndex;
  }

  /** The server-side address of this connection. */
  get localAddr(): Addr {
    return this.#addrs!.local;
  }

  /** The peer's address. */
  get remoteAddr(): Addr {
    return this.#addrs!.remote;
  }

  /** True until the connection has closed; false inside `closed` and after it. */
  get open(): boolean {
    return this.state !== ConnState.Closed;
  }

  /**
   * Queues bytes to write, like send(), and says whether to go on: false once the output queued for
   * this connection passes the server's `highWaterMark` (the bytes are queued all the same), or when
   * the connection can no longer be written to. After false, `drained` fires when the queue falls to
   * the low-water mark.
   */
  write(data: Output): boolean {
    return this.loop.writeConn(this, data);
  }

  /** Bytes written to this connection that the kernel has not taken yet (as last known). */
  get queuedBytes(): number {
    return this.queued + this.unflushed;
  }

  /** Stops reading from this connection until resume(); writes go on. */
  pause(): void {
    this.loop.pauseConn(this, true);
  }

  /** Reads from this connection again after pause(). */
  resume(): void {
    this.loop.pauseConn(this, false);
  }

  /**
   * Half-closes: once everything queued is written, sends FIN; the peer may go on sending (with
   * `allowHalfOpen`). Writing after end() does nothing.
   */
  end(): void {
    this.loop.endConn(this);
  }

  /** Closes this connection after `ms` without incoming data, instead of the server's waitTimeout; 0 turns it off. */
  setIdleTimeout(ms: number): void {
    this.loop.setIdleTimeout(this, ms);
  }

  /**
   * Queues bytes to write, after everything queued before; they are written at the end of the
   * current batch of events, or in a microtask when called from outside one. Usable at any time on
   * the loop's thread, including after an `await`. Returns false (and writes nothing) when the
   * connection is closing or closed.
   */
  send(data: Output): boolean {
    return this.loop.send(this, data);
  }

  /** Runs `data` again for this connection, with its current input, in a microtask (once, however often it is called). */
  wake(): void {
    this.loop.wake(this);
  }
}

/** The connection-like value `data` receives for one UDP datagram; replies go to its sender. */
export class DatagramConn extends Conn {
  /** @internal */ readonly peer: DatagramPeer;
  readonly #local: Addr;

  /** @internal */
  constructor(loop: Loop, listener: number, local: Addr, peer: DatagramPeer, input: RingBuffer) {
    super(loop, 0, listener, null, input);
    this.peer = peer;
    this.#local = local;
  }

  override get localAddr(): Addr {
    return this.#local;
  }

  override get remoteAddr(): Addr {
    return this.peer.addr;
  }

  /** Sends one datagram back to this datagram's sender. */
  override send(data: Output): boolean {
    return this.loop.sendDatagram(this, data);
  }

  /** Sends one datagram back to this datagram's sender (the same as send()). */
  override write(data: Output): boolean {
    return this.loop.sendDatagram(this, data);
  }

  /** Datagrams have no stream to re-read: wake() does nothing. */
  override wake(): void {}

  /** Datagrams have no stream: pause() does nothing. */
  override pause(): void {}

  /** Datagrams have no stream: resume() does nothing. */
  override resume(): void {}

  /** Datagrams have no stream: end() does nothing. */
  override end(): void {}

  /** Datagrams have no idle timeout: setIdleTimeout() does nothing. */
  override setIdleTimeout(): void {}
}
