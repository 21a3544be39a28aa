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
 * Byte accounting: a connection's bytesWritten is what it handed the backend minus `queued` minus
 * `unflushed`. The loop's BytesWritten counter follows the same sum where the loop learns of
 * progress: a flush adds what it hands over, a queue report subtracts the change in `queued`, and
 * a flushed close that succeeded adds the rest (the native core does not report a queue it
 * drained on the way to closing). Output an abrupt close drops stays in `queued`, never counted.
 *
 * Outbound connections: dial() hands a target to the Dialer (dial.ts), which keeps it pending until
 * the backend reports it open (onOpen with a dial origin: the Conn is made and opened at once) or
 * failed (onClose for an id with no Conn).
 *
 * Closing, and the lingering close's state machine, are in close.ts; the idle timeouts in timers.ts;
 * the tuning in tuning.ts (its defaults are applied above the loop, in engine/options.ts).
 */
import type { Addr } from '../addr.js';
import {
  kMaxDatagramBytes4,
  kMaxDatagramBytes6,
  originIsDial,
  type AddrPair,
  type Backend,
  type BackendHandler,
  type DatagramPeer,
  type ProxyRefusal,
} from '../backend/backend.js';
import {
  HandlerError,
  IdleTimeoutError,
  InputLimitError,
  InvalidArgumentError,
  NoMemoryError,
  OutputLimitError,
  ShutdownError,
} from '../errors.js';
import type { Conn, PipeOptions } from '../conn-types.js';
import { Action, type ConnOptions, type Events, type LoopInit, type Output } from '../events.js';
import { RingBuffer, ringBufferPool } from '../ringbuffer.js';
import { AcceptErrorReporter, ProxyRefusalReporter, TlsHandshakeReporter } from './accept-errors.js';
import { ConnCloser } from './close.js';
import { ConnTable } from './conn-table.js';
import { ConnState, StreamConn, streamConnClass } from './conn.js';
import { Counter, newCounters } from './counters.js';
import { Dialer } from './dial.js';
import { asHandlerError, isThenable, parseReply, toBytes, watchSettled } from './reply.js';
import { LoopTimers } from './timers.js';
import { UdpConn } from './udp-conn.js';
import type { LoopTuning } from './tuning.js';

/** The connection callbacks whose results the loop applies to their connection. */
type ConnHandler = 'opened' | 'data' | 'end' | 'drained';

export interface LoopOptions extends LoopTuning {
  /** Receives errors that have no connection or caller to go to (a throwing `closed`, say). */
  readonly onError: (err: Error) => void;
  /** Asks the engine to shut the whole server down (Action.Shutdown from a callback). */
  readonly requestShutdown: (err?: Error) => void;
  /** Told of every connection opened (+1) and closed (-1), with its origin, for the load balancer's counters. */
  readonly onCount?: (delta: 1 | -1, origin: number) => void;
  /** This loop's index among the server's loops, as Conn.loopIndex reports it (default 0). */
  readonly loopIndex?: number;
  /** Where the loop keeps its running totals, by Counter slot (default a fresh unshared array). */
  readonly counters?: Float64Array;
}

export class Loop implements BackendHandler {
  readonly backend: Backend;
  readonly events: Events;
  /** This loop's index among the server's loops. */
  readonly index: number;
  /** This loop's running totals, by Counter slot; written by this loop only, on its thread. */
  readonly counters: Float64Array;
  readonly #opts: LoopOptions;
  readonly #conns = new ConnTable<StreamConn>();
  /** Makes this loop's connections. */
  readonly #Conn = streamConnClass(this);
  readonly #timers: LoopTimers;
  readonly #closer: ConnCloser;
  readonly #datagramInput = new RingBuffer(0);
  /**
   * The input `data` gets for a connection that holds none of its own: received bytes are lent
   * into it, and it becomes that connection's own buffer when the handler leaves bytes unconsumed
   * or returns an object, which may be a promise (the loop then takes another from the pool). Most
   * connections consume what arrives and never hold a buffer.
   */
  #spareInput: RingBuffer = ringBufferPool.get();
  /** The connection #spareInput is lent to, during its `data` call; null when it is free. */
  #lentTo: StreamConn | null = null;
  readonly #highWater: number;
  readonly #lowWater: number;
  readonly #maxOutput: number;
  readonly #maxInput: number;
  readonly #maxConns: number;
  readonly #halfOpen: boolean;
  #listenerAddrs: Addr[] = [];
  #needFlush = false;
  #wrote = false;
  #flushQueued = false;
  #inBatch = false;
  #stopping = false;
  /** Connections written to since the last flush. */
  #dirty: StreamConn[] = [];
  /** Connections accepted before start(), waiting for `serving` to return; null once started. */
  #pending: StreamConn[] | null = [];
  readonly #acceptErrors: AcceptErrorReporter;
  readonly #proxyRefusals: ProxyRefusalReporter;
  readonly #tlsErrors: TlsHandshakeReporter;
  readonly #dialer: Dialer;
  /** Dialled connections open now (maxConnections counts accepted ones only). */
  #dialedOpen = 0;
  #handle: LoopInit;

  constructor(backend: Backend, events: Events, opts: LoopOptions) {
    this.backend = backend;
    this.events = events;
    this.#opts = opts;
    this.index = opts.loopIndex ?? 0;
    this.counters = opts.counters ?? newCounters(false);
    this.#highWater = opts.highWaterMark;
    this.#lowWater = opts.lowWaterMark;
    this.#maxOutput = opts.maxOutputBytes;
    this.#maxInput = opts.maxInputBytes;
    this.#maxConns = opts.maxConnections;
    this.#halfOpen = opts.allowHalfOpen;
    const lingerMs = opts.lingerMs;
    this.#acceptErrors = new AcceptErrorReporter(opts.onError);
    this.#proxyRefusals = new ProxyRefusalReporter(opts.onError);
    this.#tlsErrors = new TlsHandshakeReporter(opts.onError);
    this.#timers = new LoopTimers(opts.idleTimeoutMs, lingerMs, (c, timeoutMs) => this.#idleExpired(c, timeoutMs));
    this.#closer = new ConnCloser(
      backend,
      this.#conns,
      this.#timers,
      lingerMs,
      () => this.#scheduleFlush(),
      (c) => {
        const src = c.pipeFrom;
        if (src !== null) this.#stopPipe(src);
      },
    );
    this.#dialer = new Dialer(backend, this.#timers, () => this.#scheduleFlush());
    this.#handle = this.setHandle({ loopIndex: this.index, numLoops: 1, workerData: undefined, broadcast: () => {} });
  }

  /** This loop as its code sees it: what `init` gets and every Conn's `loop`. */
  get handle(): LoopInit {
    return this.#handle;
  }

  /** Makes the loop's handle from what the engine knows of it (before `init` runs); returns it. */
  setHandle(info: Omit<LoopInit, 'dial'>): LoopInit {
    this.#handle = Object.freeze({
      loopIndex: info.loopIndex,
      numLoops: info.numLoops,
      workerData: info.workerData,
      broadcast: info.broadcast,
      dial: (target: string, opts?: unknown) => this.dial(target, opts),
    });
    return this.#handle;
  }

  /**
   * LoopInit.dial: opens an outbound connection on this loop. Resolves with its Conn once `opened`
   * has returned for it; rejects (with no `opened` or `closed`) when it does not connect.
   */
  dial(target: unknown, opts?: unknown): Promise<Conn> {
    return this.#dialer.start<Conn>(target, opts);
  }

  /** How many connections are open on this loop. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** The bound address of each listener, by index; set by the engine once listening. */
  setListenerAddrs(addrs: Addr[]): void {
    this.#listenerAddrs = addrs;
    this.#acceptErrors.setListenerAddrs(addrs);
    this.#proxyRefusals.setListenerAddrs(addrs);
    this.#tlsErrors.setListenerAddrs(addrs);
  }

  // ---- BackendHandler ------------------------------------------------------------------------

  onOpen(id: number, origin: number, addrs: AddrPair): void {
    this.#inBatch = true;
    if (originIsDial(origin)) {
      this.#openDialed(id, origin, addrs);
      return;
    }
    const c = new this.#Conn(id, origin, this.#keptAddrs(addrs));
    this.#conns.set(c);
    this.counters[Counter.Accepted]++;
    this.counters[Counter.Connections] = this.#conns.size;
    this.#opts.onCount?.(1, origin);
    if (this.#conns.size - this.#dialedOpen > this.#maxConns || this.#stopping) {
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
      if (c.state === ConnState.Open && c.input !== null && c.input.length > 0) this.#runData(c);
      if (c.endPending) this.onEnd(c.id);
    }
    this.onBatchEnd();
  }

  onData(id: number, bytes: Uint8Array): void {
    const c = this.#conns.get(id);
    if (c === undefined) return;
    c.readBytes += bytes.length;
    this.counters[Counter.BytesRead] += bytes.length;
    if (c.state !== ConnState.Open) {
      if (c.state === ConnState.Pending) this.#keepInput(c, bytes);
      return;
    }
    this.#inBatch = true;
    if (c.idleTimer !== null) c.lastActiveMs = performance.now();
    const dest = c.pipeTo;
    if (dest !== null) {
      if (this.#relay(c, dest, bytes.slice())) return;
      this.#stopPipe(c);
    }
    if (this.#keepInput(c, bytes)) this.#runData(c);
  }

  onEnd(id: number): void {
    const c = this.#conns.get(id);
    if (c?.state === ConnState.Pending) c.endPending = true;
    if (c?.state === ConnState.Lingering) {
      this.#inBatch = true;
      this.#closer.onPeerEnd(c);
      return;
    }
    if (c === undefined || c.state !== ConnState.Open) return;
    if (c.userPaused) {
      // An end read in the same batch as data whose handler paused: held until resume(), like a
      // FIN that arrives while paused.
      c.endPending = true;
      return;
    }
    this.#inBatch = true;
    const dest = c.pipeTo;
    if (dest !== null && c.pipeEnd) this.endConn(dest);
    if (!this.#halfOpen) {
      this.#closer.close(c);
      return;
    }
    c.peerEnded = true;
    if (c.ended) {
      this.#closer.close(c);
      return;
    }
    this.#callback(c, 'end');
  }

  onClose(id: number, err: Error | null): void {
    const c = this.#conns.get(id);
    if (c === undefined) {
      this.#dialer.failed(id, err);
      return;
    }
    this.#conns.delete(id);
    // The backend recalls addresses only while the connection is open: keep them from now on.
    if (c.addrs === null) this.recallAddrs(c);
    if (c.outbound) this.#dialedOpen--;
    this.counters[Counter.Closed]++;
    this.counters[Counter.Connections] = this.#conns.size;
    this.#opts.onCount?.(-1, c.origin);
    const seen = c.state !== ConnState.Pending && !c.dropped;
    c.state = ConnState.Closed;
    this.#timers.disarmIdle(c);
    if (c.pipeTo !== null) this.#stopPipe(c);
    const src = c.pipeFrom;
    if (src !== null) this.#stopPipe(src);
    if (err !== null) c.abrupt = true;
    else if (!c.abrupt && c.queued > 0) {
      // A flushed close that succeeded: the output the backend last reported holding was written.
      this.counters[Counter.BytesWritten] += c.queued;
      c.queued = 0;
    }
    if (this.#closer.onClosed(c) || c.destroyed) err = null;
    if (c.input !== null) ringBufferPool.put(c.input);
    if (!seen) return;
    try {
      const closed = this.events.closed;
      if (!closed) return;
      const r = closed.call(this.events, c, c.closeError ?? err);
      if (isThenable(r)) this.#settleDetached('closed', r);
      else if (parseReply('closed', r).action === Action.Shutdown) this.#opts.requestShutdown();
    } catch (e) {
      this.#opts.onError(asHandlerError('closed', e));
    }
  }

  onDatagram(listenerIndex: number, bytes: Uint8Array, peer: DatagramPeer): void {
    if (this.#stopping) return;
    this.#inBatch = true;
    const input = this.#datagramInput;
    input.borrow(bytes);
    try {
      const data = this.events.data;
      if (!data) return;
      const c = new UdpConn(this, listenerIndex, this.#listenerAddrs[listenerIndex]!, peer);
      // Events.data is declared with Conn for stream handlers' sake; a UDP handler declares DatagramConn.
      const r = data.call(this.events, c as unknown as Conn, input);
      if (r instanceof Uint8Array) {
        this.sendDatagram(c, r);
        return;
      }
      if (isThenable(r)) {
        this.#settleDetached('data', r);
        return;
      }
      const p = parseReply('data', r);
      if (p.out) this.sendDatagram(c, p.out);
      if (p.action === Action.Shutdown) this.#opts.requestShutdown();
    } catch (err) {
      this.#opts.onError(asHandlerError('data', err));
    } finally {
      input.reset();
      input.release();
    }
  }

  onQueued(id: number, bytes: number): void {
    const c = this.#conns.get(id);
    if (c === undefined) return;
    const before = c.queued;
    this.counters[Counter.BytesWritten] -= bytes - before;
    // The kernel took output: progress, for the idle timeout.
    if (bytes < before && c.idleTimer !== null) c.lastActiveMs = performance.now();
    c.queued = bytes;
    c.watching = false;
    if (c.state === ConnState.Lingering) {
      this.#closer.onQueued(c, bytes);
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
        if (!c.userPaused && !c.relayHeld) this.backend.pauseReading(id, true);
      }
    } else if (bytes <= this.#lowWater) {
      if (c.bpPaused) {
        c.bpPaused = false;
        if (!c.userPaused && !c.relayHeld) this.backend.pauseReading(id, false);
      }
      const src = c.pipeFrom;
      if (src !== null && src.relayHeld) this.#hold(src, false);
      if (c.needDrain && c.unflushed === 0) {
        c.needDrain = false;
        if (c.state === ConnState.Open) this.#callback(c, 'drained');
      }
    }
    if (bytes === 0 && c.ended && c.unflushed === 0 && c.state === ConnState.Open) this.#closer.onEndWritten(c);
  }

  onAcceptError(listenerIndex: number, errno: string): void {
    this.counters[Counter.AcceptErrors]++;
    this.#acceptErrors.onAcceptError(listenerIndex, errno);
  }

  onProxyRefused(listenerIndex: number, reason: ProxyRefusal, peer: Addr): void {
    this.counters[Counter.ProxyRefused]++;
    this.#proxyRefusals.onProxyRefused(listenerIndex, reason, peer);
  }

  onTlsError(listenerIndex: number, reason: string, peer: Addr | null, detail: string): void {
    this.counters[Counter.TlsRefused]++;
    this.#tlsErrors.onTlsError(listenerIndex, reason, peer, detail);
  }

  onRelayed(id: number, out: number, into: number): void {
    const c = this.#conns.get(id);
    if (c === undefined) return;
    c.relayed = false;
    c.readBytes += out;
    c.handedBytes += into;
    this.counters[Counter.BytesRead] += out;
    this.counters[Counter.BytesWritten] += into;
  }

  onBatchEnd(): void {
    this.#inBatch = false;
    if (this.#needFlush) this.#flush();
  }

  // ---- used by StreamConn ----------------------------------------------------------------------------

  /** The addresses of `c`, recalled from the backend (and kept from then on) when `c` holds none. */
  recallAddrs(c: StreamConn): AddrPair {
    return (c.addrs ??= this.backend.recallAddrs!(c.id, c.origin));
  }

  /** Conn.send: queue bytes and make sure a flush follows. */
  send(c: StreamConn, data: Output): boolean {
    const bytes = toBytes('send data', data);
    if (c.state !== ConnState.Open || c.ended) return false;
    this.#write(c, bytes);
    return true;
  }

  /** Conn.write: send, and say whether the queue is still under the high-water mark. */
  writeConn(c: StreamConn, data: Output): boolean {
    if (!this.send(c, data)) return false;
    if (c.queued + c.unflushed <= this.#highWater) return true;
    c.needDrain = true;
    return false;
  }

  /** UdpConn.send: one datagram back to the sender. */
  sendDatagram(c: UdpConn, data: Output): boolean {
    if (this.#stopping) return false;
    this.backend.sendTo(c.listenerIndex, toBytes('send data', data), c.peer);
    this.#wrote = true;
    this.#scheduleFlush();
    return true;
  }

  /** Conn.wake: run `data` again on the next microtask turn. */
  wake(c: StreamConn): void {
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
  pauseConn(c: StreamConn, paused: boolean): void {
    if (c.state !== ConnState.Open || c.userPaused === paused) return;
    c.userPaused = paused;
    if (!c.bpPaused && !c.relayHeld) {
      this.backend.pauseReading(c.id, paused);
      this.#scheduleFlush();
    }
    if (!paused && c.endPending) {
      c.endPending = false;
      setImmediate(() => {
        this.onEnd(c.id);
        this.onBatchEnd();
      });
    }
  }

  /**
   * Conn.end: FIN after the queued output, then the linger; a connection ended both ways closes. A
   * dialled UDP connection has no half-close: it closes after its writes.
   */
  endConn(c: StreamConn): void {
    if (c.state !== ConnState.Open || c.ended) return;
    c.ended = true;
    if (c.peerEnded || c.datagram) {
      this.#closer.close(c);
      return;
    }
    this.#closer.end(c);
  }

  /** Conn.close: the lingering close of Action.Close. */
  closeConn(c: StreamConn): void {
    this.#closer.closeLingering(c);
  }

  /** Conn.destroy: close at once, output dropped; `closed` gets `err` (or null). */
  destroyConn(c: StreamConn, err: Error | null | undefined): void {
    if (err !== undefined && err !== null && !isError(err))
      throw new InvalidArgumentError('destroy err', err, 'an Error, null or undefined');
    if (c.state === ConnState.Closed || c.state === ConnState.Pending || c.destroyed) return;
    c.destroyed = true;
    if (c.state === ConnState.Open) c.closeError = err ?? null;
    else if (err) c.closeError = err;
    this.#closer.closeNow(c);
  }

  /** Conn.pipe: see StreamConn.pipe. */
  pipeConn(c: StreamConn, dest: Conn, opts: PipeOptions | undefined): void {
    if (!(dest instanceof StreamConn) || dest.owner !== this) {
      throw new InvalidArgumentError('pipe dest', dest, 'a connection of the same loop');
    }
    if (dest.state !== ConnState.Open || dest.ended) {
      throw new InvalidArgumentError('pipe dest', dest.remoteAddr.toString(), 'an open connection that was not ended');
    }
    if (c.datagram || dest.datagram) {
      throw new InvalidArgumentError(
        'pipe',
        (c.datagram ? c : dest).remoteAddr.toString(),
        'stream connections (a udp:// connection keeps datagrams apart and cannot be piped)',
      );
    }
    const from = dest.pipeFrom;
    if (from !== null && from !== c) {
      throw new InvalidArgumentError(
        'pipe dest',
        dest.remoteAddr.toString(),
        'a connection no other connection pipes into',
      );
    }
    const end = opts?.end ?? true;
    if (typeof end !== 'boolean') throw new InvalidArgumentError('pipe opts.end', end, 'a boolean');
    if (c.state !== ConnState.Open) return;
    if (c.pipeTo !== null && c.pipeTo !== dest) this.#stopPipe(c);
    c.pipeTo = dest;
    c.pipeEnd = end;
    dest.pipeFrom = c;
    const input = this.#inputOf(c);
    if (input !== null && input.length > 0) {
      const held = input.bytes();
      input.retrieveAll();
      this.#outsideBatch(() => this.#relay(c, dest, held));
    }
    const relay = this.backend.relay;
    if (relay !== undefined && c.pipeTo === dest) {
      c.relayed = true;
      dest.relayed = true;
      relay.call(this.backend, c.id, dest.id, this.#highWater);
      this.#scheduleFlush();
    }
  }

  /** Conn.unpipe. */
  unpipeConn(c: StreamConn): void {
    if (c.pipeTo === null) return;
    this.#stopPipe(c);
    this.#scheduleFlush();
  }

  /** The bytes the backend relayed out of and into `c` so far (Conn byte counts). */
  relayedBytes(c: StreamConn): readonly [number, number] {
    if (c.state === ConnState.Closed) return kNoneRelayed;
    return this.backend.relayed?.(c.id) ?? kNoneRelayed;
  }

  /** Conn.setIdleTimeout. */
  setIdleTimeout(c: StreamConn, ms: number): void {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new InvalidArgumentError('setIdleTimeout ms', ms, 'a finite number of milliseconds >= 0');
    }
    if (c.state !== ConnState.Open && c.state !== ConnState.Pending) return;
    c.idleMs = ms;
    this.#timers.disarmIdle(c);
    if (!this.#stopping) this.#timers.armIdle(c);
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
    this.#dialer.stop();
    if (graceMs > 0 && this.#conns.size > 0) {
      await this.backend.closeListeners();
      const settled = this.#closer.whenSettled();
      this.#inBatch = true;
      for (const c of [...this.#conns.values()]) {
        if (c.state === ConnState.Pending) this.backend.close(c.id, false);
        else this.#closer.closeLingering(c);
      }
      this.onBatchEnd();
      this.#closer.checkSettled();
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
    this.#timers.stop();
    this.#acceptErrors.stop();
    this.#proxyRefusals.stop();
    this.#tlsErrors.stop();
    if (this.#needFlush) this.#flush();
    this.#cutForShutdown(graceMs);
    await this.backend.stop();
  }

  // ---- internals ---------------------------------------------------------------------------------

  /**
   * Marks what the backend's stop is about to close: its queued output is dropped. A connection
   * that had not finished writing gets ShutdownError: after a grace, every one still closing (one
   * lingering with its output written has finished); without a grace, those with output queued.
   */
  #cutForShutdown(graceMs: number): void {
    for (const c of this.#conns.values()) {
      if (c.state === ConnState.Pending || c.dropped || c.destroyed || c.lingerFlushed) continue;
      c.abrupt = true;
      const dropped = c.queued + c.unflushed;
      if (graceMs > 0 || dropped > 0) c.closeError ??= new ShutdownError(graceMs, dropped);
    }
  }

  /**
   * A dial connected: its Conn opens at once, even before `serving` (the application asked for it,
   * perhaps from `init`, which waits for it), and the dial resolves once `opened` has returned. A
   * dial cancelled meanwhile (timeout, abort, stop) finds nothing pending: the connection is closed.
   */
  #openDialed(id: number, origin: number, addrs: AddrPair): void {
    const p = this.#dialer.take(id);
    if (p === undefined) {
      this.backend.close(id, false);
      this.#scheduleFlush();
      return;
    }
    const c = new this.#Conn(id, origin, this.#keptAddrs(addrs));
    c.context = p.context;
    this.#conns.set(c);
    this.#dialedOpen++;
    this.counters[Counter.Dialed]++;
    this.counters[Counter.Connections] = this.#conns.size;
    this.#opts.onCount?.(1, origin);
    this.#open(c);
    p.resolve(c);
  }

  /** What a new Conn keeps of its addresses: nothing when the backend can recall them (AddrPair.recallable). */
  #keptAddrs(addrs: AddrPair): AddrPair | null {
    return addrs.recallable === true && this.backend.recallAddrs !== undefined ? null : addrs;
  }

  #open(c: StreamConn): void {
    if (!this.#stopping) this.#timers.armIdle(c);
    this.#callback(c, 'opened');
  }

  /** Closes a connection accepted past maxConnections, before `opened`, and reports it; at once, as there is no reply to protect. */
  #drop(c: StreamConn): void {
    c.dropped = true;
    this.counters[Counter.Dropped]++;
    this.#closer.closeNow(c);
    try {
      const dropped = this.events.dropped;
      if (!dropped) return;
      const r: unknown = dropped.call(this.events, {
        addrIndex: c.addrIndex,
        localAddr: c.localAddr,
        remoteAddr: c.remoteAddr,
      });
      if (isThenable(r)) this.#settleDetached('dropped', r);
    } catch (err) {
      this.#opts.onError(asHandlerError('dropped', err));
    }
  }

  #runData(c: StreamConn): void {
    let input = c.input;
    if (input === null) {
      if (this.#lentTo === null) this.#lentTo = c;
      input = this.#lentTo === c ? this.#spareInput : (c.input = ringBufferPool.get());
    }
    let r: unknown;
    try {
      const data = this.events.data;
      if (data) r = data.call(this.events, c, input);
      else input.retrieveAll();
    } catch (err) {
      this.#endLend(c, undefined);
      this.#releaseInput(c);
      this.#fail(c, new HandlerError('data', err));
      return;
    }
    // A datagram connection's input is one datagram: what `data` left of it is dropped.
    if (c.datagram) input.reset();
    this.#endLend(c, r);
    if (!this.#releaseInput(c)) return;
    if (r !== undefined && r !== null) this.#apply(c, 'data', r);
  }

  /**
   * Ends the lend of #spareInput to `c` once its `data` call has returned `r` (undefined after a
   * throw): the buffer becomes `c`'s own when it holds bytes or `r` is an object other than bytes,
   * which may be a promise (an async handler may go on using its input), and is emptied of the
   * lent bytes otherwise. `r` is not inspected further here: its getters (`then`) are user code,
   * read once, by #apply.
   */
  #endLend(c: StreamConn, r: unknown): void {
    if (this.#lentTo !== c) return;
    this.#lentTo = null;
    const spare = this.#spareInput;
    if (
      spare.length > 0 ||
      (typeof r === 'object' && r !== null && !ArrayBuffer.isView(r)) ||
      typeof r === 'function'
    ) {
      c.input = spare;
      this.#spareInput = ringBufferPool.get();
    } else {
      spare.release();
    }
  }

  /** The input `c` holds: its own buffer, the spare while lent to it, or null. */
  #inputOf(c: StreamConn): RingBuffer | null {
    return c.input ?? (this.#lentTo === c ? this.#spareInput : null);
  }

  /** Runs connection callback `handler` (other than data) and applies its result. */
  #callback(c: StreamConn, handler: ConnHandler): void {
    let r: unknown;
    try {
      const fn = this.events[handler] as ((c: StreamConn) => unknown) | undefined;
      if (!fn) return;
      r = fn.call(this.events, c);
    } catch (err) {
      this.#fail(c, new HandlerError(handler, err));
      return;
    }
    if (r !== undefined && r !== null) this.#apply(c, handler, r);
  }

  /**
   * The one path for what a connection callback returned: bytes and `{ out, action, opts }` are
   * applied; a Promise (an async handler) is settled apart; anything else, and any getter of the
   * result that throws, closes the connection with the error as `closed`'s argument.
   */
  #apply(c: StreamConn, handler: ConnHandler, r: unknown): void {
    try {
      if (r instanceof Uint8Array) {
        this.#write(c, r);
        return;
      }
      if (isThenable(r)) {
        this.#settle(c, handler, r);
        return;
      }
      const p = parseReply(handler, r);
      if (p.opts !== null) this.#applyOpts(c, handler, p.opts);
      if (p.out) this.#write(c, p.out);
      if (p.action !== Action.None) this.#act(c, p.action);
    } catch (err) {
      this.#fail(c, asHandlerError(handler, err));
    }
  }

  /** `opts` returned by `opened` (ignored from other callbacks, as their reply types have none). */
  #applyOpts(c: StreamConn, handler: ConnHandler, opts: ConnOptions): void {
    if (handler !== 'opened' || opts.tcpKeepAlive === undefined) return;
    const ms = opts.tcpKeepAlive;
    if (typeof ms !== 'number' || !(ms >= 0))
      throw new InvalidArgumentError('opts.tcpKeepAlive', ms, 'a number of milliseconds >= 0');
    this.backend.setKeepAlive(c.id, ms);
  }

  /**
   * An async connection callback's promise: the loop does not wait for it. A rejection closes the
   * connection with a HandlerError (or goes to onError once it has closed); a resolved value other
   * than nothing is an error too, since it would be a reply that is never written.
   */
  #settle(c: StreamConn, handler: ConnHandler, p: PromiseLike<unknown>): void {
    const failLater = (err: Error): void => {
      if (c.state !== ConnState.Open) {
        this.#opts.onError(err);
        return;
      }
      this.#outsideBatch(() => this.#fail(c, err));
    };
    watchSettled(handler, p, failLater);
  }

  /** A promise returned by a callback with no connection to close (closed, dropped, UDP data): failures go to onError. */
  #settleDetached(handler: string, p: PromiseLike<unknown>): void {
    watchSettled(handler, p, this.#opts.onError);
  }

  /** Runs `fn` as a batch of its own when called from outside one, so that its writes and closes are flushed. */
  #outsideBatch(fn: () => void): void {
    if (this.#inBatch) {
      fn();
      return;
    }
    this.#inBatch = true;
    try {
      fn();
    } finally {
      this.onBatchEnd();
    }
  }

  /**
   * Adds received bytes to a connection's input (lent without a copy when it is empty). Returns
   * false, having closed the connection, when they would take it past maxInputBytes or its buffer
   * cannot grow.
   */
  #keepInput(c: StreamConn, bytes: Uint8Array): boolean {
    const held = this.#inputOf(c);
    const total = (held === null ? 0 : held.length) + bytes.length;
    if (total > this.#maxInput) {
      c.closeError ??= new InputLimitError(this.#maxInput, total);
      this.#closeForInput(c);
      return false;
    }
    try {
      if (held === null) {
        if (c.state !== ConnState.Open || this.#lentTo !== null) (c.input = ringBufferPool.get()).borrow(bytes);
        else {
          this.#spareInput.borrow(bytes);
          this.#lentTo = c;
        }
      } else if (held.length === 0) held.borrow(bytes);
      else held.write(bytes);
      return true;
    } catch (err) {
      c.closeError ??= new NoMemoryError('input buffer', { cause: err });
      this.#closeForInput(c);
      return false;
    }
  }

  /**
   * Ends a borrow of the received bytes once `data` has returned; what it left unconsumed is copied
   * into the connection's own storage. Returns false, having closed the connection, when that
   * storage cannot be allocated.
   */
  #releaseInput(c: StreamConn): boolean {
    const input = c.input;
    if (input === null) return true;
    try {
      input.release();
      return true;
    } catch (err) {
      input.reset();
      input.release();
      c.closeError ??= new NoMemoryError('input buffer', { cause: err });
      this.#closeForInput(c);
      return false;
    }
  }

  /** Closes a connection whose input cannot be kept: its unread input dropped, its replies written (lingering). */
  #closeForInput(c: StreamConn): void {
    const input = c.input;
    if (input !== null) {
      input.reset();
      input.release();
    }
    if (c.state === ConnState.Pending) this.#closer.closeNow(c);
    else this.#fail(c, c.closeError!);
  }

  /**
   * Writes input read from `c` (bytes the loop owns) to `dest`, the connection it pipes to, and
   * holds `c` while `dest` is past the high-water mark. False, having written nothing, when `dest`
   * can no longer be written to: the pipe is over.
   */
  #relay(c: StreamConn, dest: StreamConn, bytes: Uint8Array): boolean {
    if (dest.state !== ConnState.Open || dest.ended) return false;
    this.#write(dest, bytes);
    if (dest.queued + dest.unflushed > this.#highWater && !c.relayHeld && c.state === ConnState.Open) {
      this.#hold(c, true);
    }
    return true;
  }

  /**
   * Stops (`on`) or restarts reading `c` for the connection it pipes to; a pause of its own or for
   * its own output stays as it is. While held, the destination's queue is watched so that its
   * drain is heard.
   */
  #hold(c: StreamConn, on: boolean): void {
    c.relayHeld = on;
    if (!c.userPaused && !c.bpPaused) this.backend.pauseReading(c.id, on);
    this.#scheduleFlush();
  }

  /** Ends `c`'s pipe, in the backend too, and lifts its hold. */
  #stopPipe(c: StreamConn): void {
    const dest = c.pipeTo;
    c.pipeTo = null;
    if (dest !== null && dest.pipeFrom === c) dest.pipeFrom = null;
    if (c.relayed && c.state !== ConnState.Closed && this.backend.relay !== undefined) {
      this.backend.relay(c.id, 0, 0);
    }
    if (c.relayHeld && c.state !== ConnState.Closed) this.#hold(c, false);
    else c.relayHeld = false;
  }

  #write(c: StreamConn, bytes: Uint8Array): void {
    const len = bytes.length;
    if (len > kMaxDatagramBytes4 && c.datagram) checkDatagram(c, bytes);
    if (len === 0 || c.state !== ConnState.Open || c.ended) return;
    this.backend.write(c.id, bytes);
    if (c.unflushed === 0) this.#dirty.push(c);
    c.unflushed += len;
    c.handedBytes += len;
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
  #overLimit(c: StreamConn): void {
    c.closeError ??= new OutputLimitError(this.#maxOutput, c.queued + c.unflushed);
    this.#closer.closeNow(c);
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
      const counters = this.counters;
      let now = 0;
      for (const c of dirty) {
        const n = c.unflushed;
        c.unflushed = 0;
        if (c.abrupt || c.state === ConnState.Closed) {
          // Dropped with the connection: still queued, never written.
          c.queued += n;
        } else {
          counters[Counter.BytesWritten] += n;
          // Into an empty queue the kernel takes it now: progress, for the idle timeout.
          if (c.idleTimer !== null && c.queued === 0) c.lastActiveMs = now === 0 ? (now = performance.now()) : now;
        }
        if ((c.needDrain || c.pipeFrom?.relayHeld === true) && !c.watching && c.state === ConnState.Open) {
          c.watching = true;
          this.backend.watchQueue(c.id);
        }
      }
    }
    this.backend.flush();
  }

  #act(c: StreamConn, action: Action): void {
    if (action === Action.Close) this.#closer.closeLingering(c);
    else if (action === Action.Shutdown) this.#opts.requestShutdown();
  }

  /** A handler threw or returned a bad value: close only this connection (lingering), and hand the error to `closed`. */
  #fail(c: StreamConn, err: Error): void {
    c.closeError ??= err;
    this.#closer.closeLingering(c);
  }

  /** `c` made no progress (no input, no output taken by the kernel) for its whole idle timeout. */
  #idleExpired(c: StreamConn, timeoutMs: number): void {
    if (c.relayed) {
      // Bytes the backend relays never pass through the loop: they are progress all the same.
      const [out, into] = this.relayedBytes(c);
      if (out + into !== c.relayMark) {
        c.relayMark = out + into;
        this.#timers.armIdle(c);
        return;
      }
    }
    c.closeError = new IdleTimeoutError(timeoutMs);
    // Output queued that has not moved for a whole timeout (a lingering reply included): the peer
    // neither reads nor sends, and a flushed close would wait on it forever. Close now, dropping it.
    if (c.state === ConnState.Lingering || c.queued > 0) {
      this.#closer.closeNow(c);
      return;
    }
    // No linger: the peer has sent nothing for a whole timeout, so no unread input can turn the
    // close into a RST, and lingering would only keep a silent peer's fd open longer.
    this.#closer.close(c);
  }
}

/** What relayedBytes() says of a connection nothing was relayed for. */
const kNoneRelayed: readonly [number, number] = Object.freeze([0, 0] as const);

/**
 * Throws InvalidArgumentError for a write to a dialled UDP connection larger than one datagram can
 * be: 65,507 bytes to an IPv4 peer, 65,527 to an IPv6 one.
 */
function checkDatagram(c: StreamConn, bytes: Uint8Array): void {
  const v6 = c.remoteAddr.host.includes(':');
  const max = v6 ? kMaxDatagramBytes6 : kMaxDatagramBytes4;
  if (bytes.length <= max) return;
  throw new InvalidArgumentError(
    'a datagram',
    bytes,
    `at most ${max} bytes (the largest UDP payload over IPv${v6 ? 6 : 4}); each write to a udp:// connection is one datagram`,
  );
}

/** `value instanceof Error`, false for a value that cannot be inspected (a revoked Proxy). */
function isError(value: unknown): value is Error {
  try {
    return value instanceof Error;
  } catch {
    return false;
  }
}
