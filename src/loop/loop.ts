/**
 * One event loop, backend-neutral: the connection table, dispatch of events to user callbacks,
 * the actions they return, output flushing, idle timeouts on the timing wheel, send and wake.
 *
 * A Loop runs on one thread and handles one backend's events. The engine above it starts it,
 * receives its shutdown requests, and stops it.
 */
import type { Addr } from '../addr.js';
import type { AddrPair, Backend, BackendHandler, DatagramPeer } from '../backend/backend.js';
import { HandlerError, IdleTimeoutError, InvalidArgumentError } from '../errors.js';
import { Action, type Events, type Output } from '../events.js';
import { RingBuffer, ringBufferPool } from '../ringbuffer.js';
import { TimingWheel } from '../timingwheel.js';
import { Conn, ConnState, DatagramConn } from './conn.js';
import { parseReply, toBytes } from './reply.js';

export interface LoopOptions {
  /** Close connections with no incoming data for this long; 0 disables. */
  readonly waitTimeoutMs: number;
  /** Receives errors that have no connection or caller to go to (a throwing `closed`, say). */
  readonly onError: (err: Error) => void;
  /** Asks the engine to shut the whole server down (Action.Shutdown from a callback). */
  readonly requestShutdown: (err?: Error) => void;
  /** Told of every connection opened (+1) and closed (-1), for the load balancer's counters. */
  readonly onCount?: (delta: 1 | -1, listener: number) => void;
}

/** The idle-timeout wheel's tick: a tenth of the timeout, kept between 10 ms and 1 s. */
function wheelTickFor(waitTimeoutMs: number): number {
  return Math.min(1000, Math.max(10, Math.floor(waitTimeoutMs / 10)));
}

export class Loop implements BackendHandler {
  readonly backend: Backend;
  readonly events: Events;
  readonly #opts: LoopOptions;
  readonly #conns = new Map<number, Conn>();
  readonly #wheel: TimingWheel | null;
  readonly #datagramInput = new RingBuffer(0);
  #listenerAddrs: Addr[] = [];
  #needFlush = false;
  #wrote = false;
  #flushQueued = false;
  #inBatch = false;
  #stopping = false;
  /** Connections accepted before start(), waiting for `serving` to return; null once started. */
  #pending: Conn[] | null = [];

  constructor(backend: Backend, events: Events, opts: LoopOptions) {
    this.backend = backend;
    this.events = events;
    this.#opts = opts;
    this.#wheel = opts.waitTimeoutMs > 0 ? new TimingWheel({ tickMs: wheelTickFor(opts.waitTimeoutMs), wheelSize: 64 }) : null;
    this.#wheel?.start();
  }

  /** How many connections are open on this loop. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** The bound address of each listener, by index; set by the engine once listening. */
  setListenerAddrs(addrs: Addr[]): void {
    this.#listenerAddrs = addrs;
  }

  // ---- BackendHandler ------------------------------------------------------------------------

  onOpen(id: number, listener: number, addrs: AddrPair): void {
    this.#inBatch = true;
    const c = new Conn(this, id, listener, addrs, ringBufferPool.get());
    this.#conns.set(id, c);
    this.#opts.onCount?.(1, listener);
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
      if (c.endPending) this.#close(c);
    }
    this.onBatchEnd();
  }

  #open(c: Conn): void {
    const id = c.id;
    if (this.#wheel) {
      c.lastActiveMs = performance.now();
      c.idleTimer = this.#wheel.afterFunc(this.#opts.waitTimeoutMs, () => this.#checkIdle(c));
    }
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
        this.backend.setKeepAlive(id, ms);
      }
      if (p.out) this.#write(c, p.out);
      if (p.action !== Action.None) this.#act(c, p.action);
    } catch (err) {
      this.#fail(c, err as Error);
    }
  }

  onData(id: number, bytes: Uint8Array): void {
    const c = this.#conns.get(id);
    if (c === undefined || c.state !== ConnState.Open) {
      if (c?.state === ConnState.Pending) c.input.write(bytes);
      return;
    }
    this.#inBatch = true;
    if (this.#wheel) c.lastActiveMs = performance.now();
    const input = c.input;
    if (input.length === 0) input.borrow(bytes);
    else input.write(bytes);
    this.#runData(c);
  }

  onEnd(id: number): void {
    const c = this.#conns.get(id);
    if (c?.state === ConnState.Pending) c.endPending = true;
    if (c === undefined || c.state !== ConnState.Open) return;
    this.#inBatch = true;
    this.#close(c);
  }

  onClose(id: number, err: Error | null): void {
    const c = this.#conns.get(id);
    if (c === undefined) return;
    this.#conns.delete(id);
    this.#opts.onCount?.(-1, c.addrIndex);
    const seen = c.state !== ConnState.Pending;
    c.state = ConnState.Closed;
    c.idleTimer?.stop();
    c.idleTimer = null;
    ringBufferPool.put(c.input);
    if (!seen) return;
    const closed = this.events.closed;
    if (!closed) return;
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

  onBatchEnd(): void {
    this.#inBatch = false;
    if (this.#needFlush) this.#flush();
  }

  // ---- used by Conn ----------------------------------------------------------------------------

  /** Conn.send: queue bytes and make sure a flush follows. */
  send(c: Conn, data: Output): boolean {
    const bytes = toBytes('send data', data);
    if (c.state !== ConnState.Open) return false;
    this.#write(c, bytes);
    return true;
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

  // ---- engine-facing ----------------------------------------------------------------------------

  /** Stops the loop: closes every connection (firing `closed` for each) and every listener. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#wheel?.stop();
    if (this.#needFlush) this.#flush();
    await this.backend.stop();
  }

  // ---- internals ---------------------------------------------------------------------------------

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

  #write(c: Conn, bytes: Uint8Array): void {
    if (bytes.length === 0 || c.state !== ConnState.Open) return;
    this.backend.write(c.id, bytes);
    this.#wrote = true;
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
    this.backend.flush();
  }

  #act(c: Conn, action: Action): void {
    if (action === Action.Close) this.#close(c);
    else if (action === Action.Shutdown) this.#opts.requestShutdown();
  }

  /** Closes after flushing what is queued; `closed` fires when the backend reports the fd closed. */
  #close(c: Conn): void {
    if (c.state !== ConnState.Open) return;
    c.state = ConnState.Closing;
    this.backend.close(c.id, true);
    this.#scheduleFlush();
  }

  /** A handler threw or returned a bad value: close only this connection, and hand the error to `closed`. */
  #fail(c: Conn, err: Error): void {
    c.closeError ??= err;
    this.#close(c);
  }

  #checkIdle(c: Conn): void {
    c.idleTimer = null;
    if (c.state !== ConnState.Open) return;
    const timeout = this.#opts.waitTimeoutMs;
    const idle = performance.now() - c.lastActiveMs;
    if (idle + 1 >= timeout) {
      c.closeError = new IdleTimeoutError(timeout);
      this.#close(c);
      this.#flush();
    } else {
      c.idleTimer = this.#wheel!.afterFunc(timeout - idle, () => this.#checkIdle(c));
    }
  }
}
