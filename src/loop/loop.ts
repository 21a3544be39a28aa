/**
 * One event loop, backend-neutral: the connection table, dispatch of events to user callbacks,
 * the actions they return, output flushing and backpressure, idle timeouts on the timing wheel,
 * send and wake.
 *
 * A Loop runs on one thread and handles one backend's events. The engine above it starts it,
 * receives its shutdown requests, and stops it.
 *
 * Output accounting: a connection's queued output is what the backend last reported holding
 * (onQueued) plus what was written since the last flush. Past `highWaterMark` reading pauses and
 * write() returns false; at `lowWaterMark` reading resumes and, after a false write(), `drained`
 * fires. Past `maxOutputBytes` the connection closes with OutputLimitError.
 *
 * Lingering close (Action.Close, a handler's error): closing an fd whose kernel receive queue holds
 * unread bytes makes the kernel send RST, and a RST can destroy the reply still in the peer's
 * receive buffer. So such a close writes the queued output, half-closes (FIN), and goes on reading
 * and dropping input; the fd closes when the peer's FIN or an error arrives, or at the `lingerMs`
 * deadline. `closed` fires once, when the backend reports the fd closed.
 *
 *   Open ──Close──▶ Lingering ──peer FIN (output written) / error / deadline──▶ Closing ──▶ Closed
 */
import type { Addr } from '../addr.js';
import type { AddrPair, Backend, BackendHandler, DatagramPeer } from '../backend/backend.js';
import { HandlerError, IdleTimeoutError, InvalidArgumentError, OutputLimitError } from '../errors.js';
import { Action, type Events, type Output } from '../events.js';
import { RingBuffer, ringBufferPool } from '../ringbuffer.js';
import { TimingWheel } from '../timingwheel.js';
import { AcceptErrorReporter } from './accept-errors.js';
import { Conn, ConnState, DatagramConn } from './conn.js';
import { parseReply, toBytes } from './reply.js';

/** A loop's limits and settings: plain values, so that they can cross to a worker thread. */
export interface LoopTuning {
  /** Close connections with no incoming data for this long; 0 disables. */
  readonly waitTimeoutMs: number;
  /** Queued output above which reading pauses and write() returns false (default kHighWaterMarkBytes). */
  readonly highWaterMark?: number;
  /** Queued output at which reading resumes and `drained` fires (default a quarter of the high mark). */
  readonly lowWaterMark?: number;
  /** Queued output past which the connection closes with OutputLimitError (default Infinity). */
  readonly maxOutputBytes?: number;
  /** Open connections past which new ones are dropped (default Infinity). */
  readonly maxConnections?: number;
  /** Keep a connection writable after the peer's FIN, and fire `end` (default false). */
  readonly allowHalfOpen?: boolean;
  /** How long a lingering close waits for the peer's FIN before closing the fd; 0 closes right after the flush (default kLingerMs). */
  readonly lingerMs?: number;
}

export interface LoopOptions extends LoopTuning {
  /** Receives errors that have no connection or caller to go to (a throwing `closed`, say). */
  readonly onError: (err: Error) => void;
  /** Asks the engine to shut the whole server down (Action.Shutdown from a callback). */
  readonly requestShutdown: (err?: Error) => void;
  /** Told of every connection opened (+1) and closed (-1), for the load balancer's counters. */
  readonly onCount?: (delta: 1 | -1, listener: number) => void;
}

export const kHighWaterMarkBytes = 64 * 1024;

/**
 * The default linger deadline: Apache's lingering close gives up after 2 s without input
 * (SECONDS_TO_LINGER), nginx waits 5 s between reads (lingering_timeout). Ours is one deadline
 * for the whole linger, and a well-behaved peer answers our FIN within a round trip, so 2 s is
 * ample for a reply to be read on any route while keeping a peer that never closes from holding
 * its fd (and a maxConnections place) for long.
 */
export const kLingerMs = 2000;

/** The idle-timeout wheel's tick: a tenth of the timeout, kept between 10 ms and 1 s. */
function wheelTickFor(timeoutMs: number): number {
  return Math.min(1000, Math.max(10, Math.floor(timeoutMs / 10)));
}

export class Loop implements BackendHandler {
  readonly backend: Backend;
  readonly events: Events;
  readonly #opts: LoopOptions;
  readonly #conns = new Map<number, Conn>();
  #wheel: TimingWheel | null = null;
  readonly #datagramInput = new RingBuffer(0);
  readonly #highWater: number;
  readonly #lowWater: number;
  readonly #maxOutput: number;
  readonly #maxConns: number;
  readonly #halfOpen: boolean;
  readonly #lingerMs: number;
  /** Lingering connections whose output is all written (lingerFlushed): stop()'s grace need not wait for them. */
  #lingerDone = 0;
  #listenerAddrs: Addr[] = [];
  #needFlush = false;
  #wrote = false;
  #flushQueued = false;
  #inBatch = false;
  #stopping = false;
  /** Connections written to since the last flush. */
  #dirty: Conn[] = [];
  /** Connections accepted before start(), waiting for `serving` to return; null once started. */
  #pending: Conn[] | null = [];
  /** Resolves stop()'s grace wait once every connection has closed or is lingering with its output written. */
  #onSettled: (() => void) | null = null;
  readonly #acceptErrors: AcceptErrorReporter;

  constructor(backend: Backend, events: Events, opts: LoopOptions) {
    this.backend = backend;
    this.events = events;
    this.#opts = opts;
    this.#highWater = opts.highWaterMark ?? kHighWaterMarkBytes;
    this.#lowWater = opts.lowWaterMark ?? Math.floor(this.#highWater / 4);
    this.#maxOutput = opts.maxOutputBytes ?? Infinity;
    this.#maxConns = opts.maxConnections ?? Infinity;
    this.#halfOpen = opts.allowHalfOpen ?? false;
    this.#lingerMs = opts.lingerMs ?? kLingerMs;
    this.#acceptErrors = new AcceptErrorReporter(opts.onError);
    if (opts.waitTimeoutMs > 0) this.#wheelFor(this.#lingerMs > 0 ? Math.min(opts.waitTimeoutMs, this.#lingerMs) : opts.waitTimeoutMs);
  }

  /** How many connections are open on this loop. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** The bound address of each listener, by index; set by the engine once listening. */
  setListenerAddrs(addrs: Addr[]): void {
    this.#listenerAddrs = addrs;
    this.#acceptErrors.setListenerAddrs(addrs);
  }

  // ---- BackendHandler ------------------------------------------------------------------------

  onOpen(id: number, listener: number, addrs: AddrPair): void {
    this.#inBatch = true;
    const c = new Conn(this, id, listener, addrs, ringBufferPool.get());
    this.#conns.set(id, c);
    this.#opts.onCount?.(1, listener);
    if (this.#conns.size > this.#maxConns || this.#stopping) {
      this.#drop(c);
      return;
    }
    if (this.#pending !== null) {
      c.state = ConnState.Pending;
      this.#pending.push(c);
      return;
    }
    this.#open(c);
  }

  /** Starts serving connections: those accepted before `serving` returned get `opened` (and their input) now. */
  start(): void {
    const pending = this.#pending;
    if (pending === null) return;
    this.#pending = null;
    this.#inBatch = true;
    for (const c of pending) {
      if (c.state !== ConnState.Pending) continue;
      c.state = ConnState.Open;
      this.#open(c);
      if (c.state === ConnState.Open && c.input.length > 0) this.#runData(c);
      if (c.endPending) this.onEnd(c.id);
    }
    this.onBatchEnd();
  }

  onData(id: number, bytes: Uint8Array): void {
    const c = this.#conns.get(id);
    if (c === undefined || c.state !== ConnState.Open) {
      if (c?.state === ConnState.Pending) c.input.write(bytes);
      return;
    }
    this.#inBatch = true;
    if (c.idleTimer !== null) c.lastActiveMs = performance.now();
    const input = c.input;
    if (input.length === 0) input.borrow(bytes);
    else input.write(bytes);
    this.#runData(c);
  }

  onEnd(id: number): void {
    const c = this.#conns.get(id);
    if (c?.state === ConnState.Pending) c.endPending = true;
    if (c?.state === ConnState.Lingering) {
      // The linger is over once our output is written too; until then the backend finishes the
      // writing (and closes by itself once both sides are shut) or the deadline cuts it short.
      c.peerEnded = true;
      this.#inBatch = true;
      if (c.lingerFlushed) this.#endLinger(c);
      return;
    }
    if (c === undefined || c.state !== ConnState.Open) return;
    this.#inBatch = true;
    if (!this.#halfOpen) {
      this.#close(c);
      return;
    }
    c.peerEnded = true;
    if (c.ended) {
      this.#close(c);
      return;
    }
    const end = this.events.end;
    if (end) this.#reply(c, 'end', () => end.call(this.events, c));
  }

  onClose(id: number, err: Error | null): void {
    const c = this.#conns.get(id);
    if (c === undefined) return;
    this.#conns.delete(id);
    this.#opts.onCount?.(-1, c.addrIndex);
    const seen = c.state !== ConnState.Pending && !c.dropped;
    c.state = ConnState.Closed;
    c.idleTimer?.stop();
    c.idleTimer = null;
    c.lingerTimer?.stop();
    c.lingerTimer = null;
    // Once a lingering connection's output is written, the close has succeeded, as a close right
    // after the flush would have: a later error (the peer's RST) is not the handler's concern.
    if (c.lingerFlushed) {
      this.#lingerDone--;
      err = null;
    }
    ringBufferPool.put(c.input);
    this.#checkSettled();
    const closed = this.events.closed;
    if (!seen || !closed) return;
    try {
      const p = parseReply('closed', closed.call(this.events, c, c.closeError ?? err));
      if (p.action === Action.Shutdown) this.#opts.requestShutdown();
    } catch (e) {
      this.#opts.onError(new HandlerError('closed', e));
    }
  }

  onDatagram(listener: number, bytes: Uint8Array, peer: DatagramPeer): void {
    const data = this.events.data;
    if (!data || this.#stopping) return;
    this.#inBatch = true;
    const input = this.#datagramInput;
    input.borrow(bytes);
    const c = new DatagramConn(this, listener, this.#listenerAddrs[listener]!, peer, input);
    try {
      const p = parseReply('data', data.call(this.events, c, input));
      if (p.out) this.sendDatagram(c, p.out);
      if (p.action === Action.Shutdown) this.#opts.requestShutdown();
    } catch (err) {
      this.#opts.onError(new HandlerError('data', err));
    } finally {
      input.reset();
      input.release();
    }
  }

  onQueued(id: number, bytes: number): void {
    const c = this.#conns.get(id);
    if (c === undefined) return;
    c.queued = bytes;
    c.watching = false;
    if (c.state === ConnState.Lingering) {
      if (bytes === 0 && c.unflushed === 0 && !c.lingerFlushed) this.#lingerWritten(c);
      return;
    }
    if (c.state !== ConnState.Open && c.state !== ConnState.Closing) return;
    if (bytes > this.#maxOutput) {
      this.#overLimit(c);
      return;
    }
    if (bytes > this.#highWater) {
      if (!c.bpPaused) {
        c.bpPaused = true;
        if (!c.userPaused) this.backend.pauseReading(id, true);
      }
    } else if (bytes <= this.#lowWater) {
      if (c.bpPaused) {
        c.bpPaused = false;
        if (!c.userPaused) this.backend.pauseReading(id, false);
      }
      if (c.needDrain && c.unflushed === 0) {
        c.needDrain = false;
        const drained = this.events.drained;
        if (drained && c.state === ConnState.Open) this.#reply(c, 'drained', () => drained.call(this.events, c));
      }
    }
  }

  onAcceptError(listener: number, errno: string): void {
    this.#acceptErrors.onAcceptError(listener, errno);
  }

  onBatchEnd(): void {
    this.#inBatch = false;
    if (this.#needFlush) this.#flush();
  }

  // ---- used by Conn ----------------------------------------------------------------------------

  /** Conn.send: queue bytes and make sure a flush follows. */
  send(c: Conn, data: Output): boolean {
    const bytes = toBytes('send data', data);
    if (c.state !== ConnState.Open || c.ended) return false;
    this.#write(c, bytes);
    return true;
  }

  /** Conn.write: send, and say whether the queue is still under the high-water mark. */
  writeConn(c: Conn, data: Output): boolean {
    if (!this.send(c, data)) return false;
    if (c.queued + c.unflushed <= this.#highWater) return true;
    c.needDrain = true;
    return false;
  }

  /** DatagramConn.send: one datagram back to the sender. */
  sendDatagram(c: DatagramConn, data: Output): boolean {
    if (this.#stopping) return false;
    this.backend.sendTo(c.addrIndex, toBytes('send data', data), c.peer);
    this.#wrote = true;
    this.#scheduleFlush();
    return true;
  }

  /** Conn.wake: run `data` again on the next microtask turn. */
  wake(c: Conn): void {
    if (c.state !== ConnState.Open || c.wakePending) return;
    c.wakePending = true;
    queueMicrotask(() => {
      c.wakePending = false;
      if (c.state !== ConnState.Open) return;
      this.#inBatch = true;
      try {
        this.#runData(c);
      } finally {
        this.onBatchEnd();
      }
    });
  }

  /** Conn.pause / Conn.resume. */
  pauseConn(c: Conn, paused: boolean): void {
    if (c.state !== ConnState.Open || c.userPaused === paused) return;
    c.userPaused = paused;
    if (!c.bpPaused) {
      this.backend.pauseReading(c.id, paused);
      this.#scheduleFlush();
    }
  }

  /** Conn.end: FIN after the queued output; a connection ended both ways closes. */
  endConn(c: Conn): void {
    if (c.state !== ConnState.Open || c.ended) return;
    c.ended = true;
    if (c.peerEnded) {
      this.#close(c);
      return;
    }
    this.backend.end(c.id);
    this.#scheduleFlush();
  }

  /** Conn.setIdleTimeout. */
  setIdleTimeout(c: Conn, ms: number): void {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new InvalidArgumentError('setIdleTimeout ms', ms, 'a finite number of milliseconds >= 0');
    }
    if (c.state !== ConnState.Open && c.state !== ConnState.Pending) return;
    c.idleMs = ms;
    c.idleTimer?.stop();
    c.idleTimer = null;
    this.#armIdle(c);
  }

  // ---- engine-facing ----------------------------------------------------------------------------

  /**
   * Stops the loop. With `graceMs` > 0: stops accepting, closes every connection after writing its
   * queued output, and waits up to `graceMs` for them; then (or at once without a grace) closes
   * whatever is left and every listener, firing `closed` for each connection. Lingering does not
   * lengthen the wait: it ends once every connection has closed or has all its output written, and
   * lingering connections are then closed with the rest.
   */
  async stop(graceMs = 0): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (graceMs > 0 && this.#conns.size > 0) {
      await this.backend.closeListeners();
      const settled = new Promise<void>((resolve) => (this.#onSettled = resolve));
      this.#inBatch = true;
      for (const c of [...this.#conns.values()]) {
        if (c.state === ConnState.Pending) this.backend.close(c.id, false);
        else this.#closeLingering(c);
      }
      this.onBatchEnd();
      this.#checkSettled();
      const deadline = performance.now() + graceMs;
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<void>((resolve) => {
        const wait = (): void => {
          const left = deadline - performance.now();
          if (left <= 0) resolve();
          else timer = setTimeout(wait, Math.min(left, 2 ** 31 - 1));
        };
        wait();
      });
      await Promise.race([settled, expired]);
      clearTimeout(timer);
    }
    this.#wheel?.stop();
    this.#acceptErrors.stop();
    if (this.#needFlush) this.#flush();
    await this.backend.stop();
  }

  // ---- internals ---------------------------------------------------------------------------------

  #open(c: Conn): void {
    this.#armIdle(c);
    const opened = this.events.opened;
    if (!opened) return;
    let r: unknown;
    try {
      r = opened.call(this.events, c);
    } catch (err) {
      this.#fail(c, new HandlerError('opened', err));
      return;
    }
    try {
      const p = parseReply('opened', r);
      if (p.opts?.tcpKeepAlive !== undefined) {
        const ms = p.opts.tcpKeepAlive;
        if (typeof ms !== 'number' || !(ms >= 0)) throw new InvalidArgumentError('opts.tcpKeepAlive', ms, 'a number of milliseconds >= 0');
        this.backend.setKeepAlive(c.id, ms);
      }
      if (p.out) this.#write(c, p.out);
      if (p.action !== Action.None) this.#act(c, p.action);
    } catch (err) {
      this.#fail(c, err as Error);
    }
  }

  /** Closes a connection accepted past maxConnections, before `opened`, and reports it; at once, as there is no reply to protect. */
  #drop(c: Conn): void {
    c.dropped = true;
    c.state = ConnState.Closing;
    this.backend.close(c.id, false);
    this.#scheduleFlush();
    const dropped = this.events.dropped;
    if (!dropped) return;
    try {
      dropped.call(this.events, { addrIndex: c.addrIndex, localAddr: c.localAddr, remoteAddr: c.remoteAddr });
    } catch (err) {
      this.#opts.onError(new HandlerError('dropped', err));
    }
  }

  #runData(c: Conn): void {
    const data = this.events.data;
    const input = c.input;
    if (!data) {
      input.retrieveAll();
      input.release();
      return;
    }
    let r: unknown;
    try {
      r = data.call(this.events, c, input);
    } catch (err) {
      input.release();
      this.#fail(c, new HandlerError('data', err));
      return;
    }
    input.release();
    if (r === undefined || r === null) return;
    if (r instanceof Uint8Array) {
      this.#write(c, r);
      return;
    }
    try {
      const p = parseReply('data', r);
      if (p.out) this.#write(c, p.out);
      if (p.action !== Action.None) this.#act(c, p.action);
    } catch (err) {
      this.#fail(c, err as Error);
    }
  }

  /** Runs a connection callback other than data/opened and applies its reply. */
  #reply(c: Conn, handler: string, call: () => unknown): void {
    let r: unknown;
    try {
      r = call();
    } catch (err) {
      this.#fail(c, new HandlerError(handler, err));
      return;
    }
    try {
      const p = parseReply(handler, r);
      if (p.out) this.#write(c, p.out);
      if (p.action !== Action.None) this.#act(c, p.action);
    } catch (err) {
      this.#fail(c, err as Error);
    }
  }

  #write(c: Conn, bytes: Uint8Array): void {
    const len = bytes.length;
    if (len === 0 || c.state !== ConnState.Open || c.ended) return;
    this.backend.write(c.id, bytes);
    if (c.unflushed === 0) this.#dirty.push(c);
    c.unflushed += len;
    this.#wrote = true;
    if (c.queued + c.unflushed > this.#maxOutput) {
      this.#overLimit(c);
      return;
    }
    this.#scheduleFlush();
  }

  /**
   * Output past maxOutputBytes: the connection closes at once, its output dropped. No linger: with
   * the output dropped there is no reply left to protect, and this peer is not reading anyway.
   */
  #overLimit(c: Conn): void {
    c.closeError ??= new OutputLimitError(this.#maxOutput, c.queued + c.unflushed);
    c.state = ConnState.Closing;
    this.backend.close(c.id, false);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    this.#needFlush = true;
    if (this.#inBatch || this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      if (this.#needFlush) this.#flush();
    });
  }

  #flush(): void {
    this.#needFlush = false;
    const preWrite = this.events.preWrite;
    if (preWrite && this.#wrote) {
      try {
        preWrite.call(this.events);
      } catch (err) {
        this.#opts.onError(new HandlerError('preWrite', err));
      }
    }
    this.#wrote = false;
    const dirty = this.#dirty;
    if (dirty.length > 0) {
      this.#dirty = [];
      for (const c of dirty) {
        c.unflushed = 0;
        if (c.needDrain && !c.watching && c.state === ConnState.Open) {
          c.watching = true;
          this.backend.watchQueue(c.id);
        }
      }
    }
    this.backend.flush();
  }

  #act(c: Conn, action: Action): void {
    if (action === Action.Close) this.#closeLingering(c);
    else if (action === Action.Shutdown) this.#opts.requestShutdown();
  }

  /**
   * Closes after flushing what is queued, with no linger; `closed` fires when the backend reports
   * the fd closed. For closes where the peer has nothing left to send: it has sent FIN, or (idle
   * timeout) nothing for a whole timeout.
   */
  #close(c: Conn): void {
    if (c.state !== ConnState.Open) return;
    c.state = ConnState.Closing;
    this.backend.close(c.id, true);
    this.#scheduleFlush();
  }

  /**
   * A lingering close (see the top of this file): FIN after the queued output, then read and drop
   * input, with reading resumed whatever paused it, until the peer's FIN, an error or the deadline.
   * A plain flushed close when lingerMs is 0, or when the peer has already ended its side.
   */
  #closeLingering(c: Conn): void {
    if (c.state !== ConnState.Open) return;
    if (this.#lingerMs === 0 || c.peerEnded) {
      this.#close(c);
      return;
    }
    c.state = ConnState.Lingering;
    c.idleTimer?.stop();
    c.idleTimer = null;
    if (!c.ended) this.backend.end(c.id);
    if (c.userPaused || c.bpPaused) {
      c.userPaused = false;
      c.bpPaused = false;
      this.backend.pauseReading(c.id, false);
    }
    c.watching = true;
    this.backend.watchQueue(c.id);
    c.lingerTimer = this.#wheelFor(this.#lingerMs).afterFunc(this.#lingerMs, () => this.#lingerExpired(c));
    this.#scheduleFlush();
  }

  /** A lingering connection's output is all written: the peer's FIN (if it came already) now closes it. */
  #lingerWritten(c: Conn): void {
    c.lingerFlushed = true;
    this.#lingerDone++;
    if (c.peerEnded) this.#endLinger(c);
    else this.#checkSettled();
  }

  /**
   * The linger deadline: close the fd now, and drop whatever output the peer never read. Abrupt on
   * purpose: a peer that neither reads nor closes would otherwise hold the fd for ever.
   */
  #lingerExpired(c: Conn): void {
    c.lingerTimer = null;
    if (c.state === ConnState.Lingering) this.#endLinger(c);
  }

  /** Ends a linger: the fd closes now (its output is written, or the deadline has passed). */
  #endLinger(c: Conn): void {
    c.state = ConnState.Closing;
    c.lingerTimer?.stop();
    c.lingerTimer = null;
    this.backend.close(c.id, false);
    this.#scheduleFlush();
  }

  /** Resolves stop()'s grace wait once every connection has closed or only lingers, its output written. */
  #checkSettled(): void {
    if (this.#onSettled !== null && this.#conns.size === this.#lingerDone) this.#onSettled();
  }

  /** A handler threw or returned a bad value: close only this connection (lingering), and hand the error to `closed`. */
  #fail(c: Conn, err: Error): void {
    c.closeError ??= err;
    this.#closeLingering(c);
  }

  #wheelFor(timeoutMs: number): TimingWheel {
    if (this.#wheel === null) {
      this.#wheel = new TimingWheel({ tickMs: wheelTickFor(timeoutMs), wheelSize: 64 });
      this.#wheel.start();
    }
    return this.#wheel;
  }

  #idleMs(c: Conn): number {
    return c.idleMs >= 0 ? c.idleMs : this.#opts.waitTimeoutMs;
  }

  #armIdle(c: Conn): void {
    const ms = this.#idleMs(c);
    if (ms <= 0 || this.#stopping) return;
    c.lastActiveMs = performance.now();
    c.idleTimer = this.#wheelFor(ms).afterFunc(ms, () => this.#checkIdle(c));
  }

  #checkIdle(c: Conn): void {
    c.idleTimer = null;
    if (c.state !== ConnState.Open) return;
    const timeout = this.#idleMs(c);
    if (timeout <= 0) return;
    const idle = performance.now() - c.lastActiveMs;
    if (idle >= timeout) {
      // No linger: the peer has sent nothing for a whole timeout, so no unread input can turn the
      // close into a RST, and lingering would only keep a silent peer's fd open longer.
      c.closeError = new IdleTimeoutError(timeout);
      this.#close(c);
    } else {
      c.idleTimer = this.#wheel!.afterFunc(timeout - idle, () => this.#checkIdle(c));
    }
  }
}
