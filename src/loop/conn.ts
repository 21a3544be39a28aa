/**
 * The loop's stream connection: what user callbacks see as a Conn (the public interface in
 * src/conn-types.ts, whose docs the members here repeat), and the state the loop keeps for it.
 * Owned by one loop; every method must be called on that loop's thread (in a callback, or later
 * from async code on the same thread).
 */
import type { Addr } from '../addr.js';
import {
  originIsDatagram,
  originIsDial,
  originListener,
  type AddrPair,
  type ProxyInfo,
  type TlsInfo,
} from '../backend/backend.js';
import type { Conn, Output, PipeOptions } from '../conn-types.js';
import type { LoopInit } from '../events.js';
import type { RingBuffer } from '../ringbuffer.js';
import type { Timer } from '../timingwheel/index.js';
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

/** Bits of a Conn's flag word, one per boolean of its state. */
const enum Flag {
  WakePending = 1 << 0,
  EndPending = 1 << 1,
  UserPaused = 1 << 2,
  BpPaused = 1 << 3,
  NeedDrain = 1 << 4,
  Watching = 1 << 5,
  PeerEnded = 1 << 6,
  Ended = 1 << 7,
  Dropped = 1 << 8,
  LingerFlushed = 1 << 9,
  Abrupt = 1 << 10,
  Destroyed = 1 << 11,
  RelayHeld = 1 << 12,
  Relayed = 1 << 13,
}

/** Where the ConnState sits in the flag word: bits kStateShift to kStateShift + 2. */
const kStateShift = 14;
const kStateMask = 7 << kStateShift;

/** `word` with `bit` set (on) or cleared. */
function withBit(word: number, bit: Flag, on: boolean): number {
  return on ? word | bit : word & ~bit;
}

/**
 * The part of a connection's state that most connections never set: queued output, timers, a
 * per-connection idle timeout, the error for `closed`. Made by the first write of a value other
 * than the default, and kept until the Conn goes.
 */
class ConnExtra {
  queued = 0;
  lastActiveMs = 0;
  idleTimer: Timer | null = null;
  idleMs = -1;
  lingerTimer: Timer | null = null;
  closeError: Error | null = null;
  pipeTo: StreamConn | null = null;
  pipeFrom: StreamConn | null = null;
  pipeEnd = true;
  relayMark = 0;
}

/**
 * One TCP or unix stream connection, or a dialled UDP connection (`datagram`), which keeps datagram
 * boundaries through the same interface.
 *
 * A server may hold many thousands of idle connections, so a Conn is kept small: the fields the
 * message path reads are plain, the state and the booleans share one flag word, the owning loop
 * sits on a per-loop prototype, the input buffer is made only when input is kept, the addresses
 * are recalled from the backend when it can give them again, and the rarely set fields live in a
 * ConnExtra made on demand. The accessors below make them read like plain fields.
 */
export class StreamConn implements Conn {
  /** Any per-connection value the application wants to keep (the seed's Context/SetContext). */
  context: unknown = undefined;
  /** @internal */ readonly id: number;
  /** @internal The loop that owns this connection (on the prototype: see streamConnClass). */
  declare readonly owner: Loop;
  /**
   * @internal The input this connection holds between `data` calls: null until a handler leaves
   * bytes unconsumed (or returns an object, which may be a promise), as `data` is otherwise lent the
   * loop's spare buffer.
   */
  input: RingBuffer | null = null;
  /** @internal Output written since the last flush. */ unflushed = 0;
  /** @internal Bytes received. */ readBytes = 0;
  /** @internal Bytes handed to the backend to write. */ handedBytes = 0;
  #flags = 0;
  #extra: ConnExtra | null = null;
  /** @internal Where the connection came from: a listener index, or a dial (see kOriginDial). */
  readonly origin: number;
  /**
   * @internal The connection's addresses; null while the backend can recall them (a recallable
   * pair, which the loop does not keep until they are first asked for, or the connection closes).
   */
  addrs: AddrPair | null;

  /** @internal */
  constructor(id: number, origin: number, addrs: AddrPair | null) {
    this.id = id;
    this.origin = origin;
    this.addrs = addrs;
  }

  /** @internal Where the connection is in its life (kept in the flag word). */
  get state(): ConnState {
    return (this.#flags & kStateMask) >> kStateShift;
  }
  /** @internal */
  set state(state: ConnState) {
    this.#flags = (this.#flags & ~kStateMask) | (state << kStateShift);
  }

  /** @internal wake() has queued a microtask that has not run yet. */
  get wakePending(): boolean {
    return (this.#flags & Flag.WakePending) !== 0;
  }
  /** @internal */
  set wakePending(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.WakePending, on);
  }

  /** @internal The peer's FIN came before `opened` could run, or while reading was paused. */
  get endPending(): boolean {
    return (this.#flags & Flag.EndPending) !== 0;
  }
  /** @internal */
  set endPending(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.EndPending, on);
  }

  /** @internal Reading paused by pause(). */
  get userPaused(): boolean {
    return (this.#flags & Flag.UserPaused) !== 0;
  }
  /** @internal */
  set userPaused(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.UserPaused, on);
  }

  /** @internal Reading paused because output passed the high-water mark. */
  get bpPaused(): boolean {
    return (this.#flags & Flag.BpPaused) !== 0;
  }
  /** @internal */
  set bpPaused(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.BpPaused, on);
  }

  /** @internal write() returned false; `drained` fires at the low-water mark. */
  get needDrain(): boolean {
    return (this.#flags & Flag.NeedDrain) !== 0;
  }
  /** @internal */
  set needDrain(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.NeedDrain, on);
  }

  /** @internal A one-shot queue report has been asked for. */
  get watching(): boolean {
    return (this.#flags & Flag.Watching) !== 0;
  }
  /** @internal */
  set watching(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.Watching, on);
  }

  /** @internal The peer sent FIN (allowHalfOpen, or while lingering). */
  get peerEnded(): boolean {
    return (this.#flags & Flag.PeerEnded) !== 0;
  }
  /** @internal */
  set peerEnded(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.PeerEnded, on);
  }

  /** @internal end() was called: no more writes. */
  get ended(): boolean {
    return (this.#flags & Flag.Ended) !== 0;
  }
  /** @internal */
  set ended(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.Ended, on);
  }

  /** @internal Closed by maxConnections before `opened`: no `closed` fires. */
  get dropped(): boolean {
    return (this.#flags & Flag.Dropped) !== 0;
  }
  /** @internal */
  set dropped(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.Dropped, on);
  }

  /** @internal Lingering, and the backend has written all of the output (a queue report of 0). */
  get lingerFlushed(): boolean {
    return (this.#flags & Flag.LingerFlushed) !== 0;
  }
  /** @internal */
  set lingerFlushed(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.LingerFlushed, on);
  }

  /** @internal Closed at once, its queued output dropped: what the backend last reported holding was never written. */
  get abrupt(): boolean {
    return (this.#flags & Flag.Abrupt) !== 0;
  }
  /** @internal */
  set abrupt(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.Abrupt, on);
  }

  /** @internal destroy() was called: `closed` gets closeError (the error given, or null) whatever the backend reports. */
  get destroyed(): boolean {
    return (this.#flags & Flag.Destroyed) !== 0;
  }
  /** @internal */
  set destroyed(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.Destroyed, on);
  }

  /** @internal Not read while the connection it pipes to holds too much output (the loop relays). */
  get relayHeld(): boolean {
    return (this.#flags & Flag.RelayHeld) !== 0;
  }
  /** @internal */
  set relayHeld(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.RelayHeld, on);
  }

  /** @internal The backend relays bytes out of or into this connection: its counts include backend.relayed(). */
  get relayed(): boolean {
    return (this.#flags & Flag.Relayed) !== 0;
  }
  /** @internal */
  set relayed(on: boolean) {
    this.#flags = withBit(this.#flags, Flag.Relayed, on);
  }

  /** @internal The connection this one's input is piped to. */
  get pipeTo(): StreamConn | null {
    return this.#extra === null ? null : this.#extra.pipeTo;
  }
  /** @internal */
  set pipeTo(value: StreamConn | null) {
    if (this.#extra !== null) this.#extra.pipeTo = value;
    else if (value !== null) (this.#extra = new ConnExtra()).pipeTo = value;
  }

  /** @internal The connection whose input is piped to this one. */
  get pipeFrom(): StreamConn | null {
    return this.#extra === null ? null : this.#extra.pipeFrom;
  }
  /** @internal */
  set pipeFrom(value: StreamConn | null) {
    if (this.#extra !== null) this.#extra.pipeFrom = value;
    else if (value !== null) (this.#extra = new ConnExtra()).pipeFrom = value;
  }

  /** @internal pipe()'s `end`: the peer's FIN ends the connection piped to. */
  get pipeEnd(): boolean {
    return this.#extra === null ? true : this.#extra.pipeEnd;
  }
  /** @internal */
  set pipeEnd(on: boolean) {
    if (this.#extra !== null) this.#extra.pipeEnd = on;
    else if (!on) (this.#extra = new ConnExtra()).pipeEnd = on;
  }

  /** @internal The backend's relayed byte count (both ways) when the idle timer last looked. */
  get relayMark(): number {
    return this.#extra === null ? 0 : this.#extra.relayMark;
  }
  /** @internal */
  set relayMark(value: number) {
    if (this.#extra !== null) this.#extra.relayMark = value;
    else if (value !== 0) (this.#extra = new ConnExtra()).relayMark = value;
  }

  /** @internal Output the backend holds (its last onQueued report). */
  get queued(): number {
    return this.#extra === null ? 0 : this.#extra.queued;
  }
  /** @internal */
  set queued(value: number) {
    if (this.#extra !== null) this.#extra.queued = value;
    else if (value !== 0) (this.#extra = new ConnExtra()).queued = value;
  }

  /** @internal When the connection last made progress (input arrived, the kernel took output), while an idle timeout is armed. */
  get lastActiveMs(): number {
    return this.#extra === null ? 0 : this.#extra.lastActiveMs;
  }
  /** @internal */
  set lastActiveMs(value: number) {
    if (this.#extra !== null) this.#extra.lastActiveMs = value;
    else if (value !== 0) (this.#extra = new ConnExtra()).lastActiveMs = value;
  }

  /** @internal The idle timeout's timer, while armed. */
  get idleTimer(): Timer | null {
    return this.#extra === null ? null : this.#extra.idleTimer;
  }
  /** @internal */
  set idleTimer(value: Timer | null) {
    if (this.#extra !== null) this.#extra.idleTimer = value;
    else if (value !== null) (this.#extra = new ConnExtra()).idleTimer = value;
  }

  /** @internal Idle timeout set by setIdleTimeout(); -1 means the server's idle timeout. */
  get idleMs(): number {
    return this.#extra === null ? -1 : this.#extra.idleMs;
  }
  /** @internal */
  set idleMs(value: number) {
    if (this.#extra !== null) this.#extra.idleMs = value;
    else if (value !== -1) (this.#extra = new ConnExtra()).idleMs = value;
  }

  /** @internal The linger deadline's timer: while Lingering, or after end() once the output is written. */
  get lingerTimer(): Timer | null {
    return this.#extra === null ? null : this.#extra.lingerTimer;
  }
  /** @internal */
  set lingerTimer(value: Timer | null) {
    if (this.#extra !== null) this.#extra.lingerTimer = value;
    else if (value !== null) (this.#extra = new ConnExtra()).lingerTimer = value;
  }

  /** @internal The error `closed` receives when the loop closed the connection for one. */
  get closeError(): Error | null {
    return this.#extra === null ? null : this.#extra.closeError;
  }
  /** @internal */
  set closeError(value: Error | null) {
    if (this.#extra !== null) this.#extra.closeError = value;
    else if (value !== null) (this.#extra = new ConnExtra()).closeError = value;
  }

  /** Which of serve()'s addresses this connection came in on (its index in that list); -1 for an outbound connection. */
  get addrIndex(): number {
    return originListener(this.origin);
  }

  /** True for a connection this server dialled, false for one a listener accepted. */
  get outbound(): boolean {
    return originIsDial(this.origin);
  }

  /**
   * @internal A dialled UDP connection: every `data` call is one datagram (what it leaves unconsumed
   * is dropped), every write one datagram, end() a close, and no linger.
   */
  get datagram(): boolean {
    return originIsDatagram(this.origin);
  }

  /** The loop this connection is on: the object its `init` received (`c.loop.dial()` dials from here). */
  get loop(): LoopInit {
    return this.owner.handle;
  }

  /** The index of the loop this connection is on (0 with one loop). */
  get loopIndex(): number {
    return this.owner.index;
  }

  /** Bytes received on this connection, including input dropped during a lingering close and input piped on. */
  get bytesRead(): number {
    return this.relayed ? this.readBytes + this.owner.relayedBytes(this)[0] : this.readBytes;
  }

  /**
   * Bytes of output the kernel has taken: what was written minus what is still queued (as the
   * backend last reported it). Exact once the output has drained; output dropped by an abrupt
   * close is not counted.
   */
  get bytesWritten(): number {
    const handed = this.relayed ? this.handedBytes + this.owner.relayedBytes(this)[1] : this.handedBytes;
    return handed - this.queued - this.unflushed;
  }

  /** The server-side address of this connection. */
  get localAddr(): Addr {
    return (this.addrs ?? this.owner.recallAddrs(this)).local;
  }

  /** The peer's address. */
  get remoteAddr(): Addr {
    return (this.addrs ?? this.owner.recallAddrs(this)).remote;
  }

  /** What the PROXY protocol header said, on a `?proxy=true` listener; null otherwise. */
  get proxy(): ProxyInfo | null {
    return (this.addrs ?? this.owner.recallAddrs(this)).proxy ?? null;
  }

  /** What the TLS handshake settled, on a `tls://` listener or dial; null for a plain connection. */
  get tls(): TlsInfo | null {
    return (this.addrs ?? this.owner.recallAddrs(this)).tls ?? null;
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
    return this.owner.writeConn(this, data);
  }

  /** Bytes written to this connection that the kernel has not taken yet (as last known). */
  get queuedBytes(): number {
    return this.queued + this.unflushed;
  }

  /** Stops reading from this connection until resume(); writes go on. */
  pause(): void {
    this.owner.pauseConn(this, true);
  }

  /** Reads from this connection again after pause(). */
  resume(): void {
    this.owner.pauseConn(this, false);
  }

  /**
   * Half-closes: once everything queued is written, sends FIN; the peer may go on sending (with
   * `allowHalfOpen`). Writing after end() does nothing. Once the output and FIN are written, the
   * peer has the server's linger to end its side; then the connection closes.
   */
  end(): void {
    this.owner.endConn(this);
  }

  /**
   * Closes this connection as returning Action.Close does: the queued output is written, then FIN,
   * then the linger. Usable at any time on the loop's thread (a timer, after an `await`, another
   * connection's callback); the close starts at the end of the current batch, or in a microtask
   * outside one. Does nothing once the connection is closing or closed.
   */
  close(): void {
    this.owner.closeConn(this);
  }

  /**
   * Closes this connection at once, dropping output not yet written; `closed` gets `err`, or null.
   * Usable as close() is; on a connection already closing it cuts the close short. Does nothing
   * on a closed connection. Throws InvalidArgumentError when `err` is given and is not an Error.
   */
  destroy(err?: Error | null): void {
    this.owner.destroyConn(this, err);
  }

  /** Closes this connection after `ms` without progress (input, or output the kernel takes), instead of the server's idle timeout; 0 turns it off. */
  setIdleTimeout(ms: number): void {
    this.owner.setIdleTimeout(this, ms);
  }

  /**
   * Queues bytes to write, after everything queued before; they are written at the end of the
   * current batch of events, or in a microtask when called from outside one. Usable at any time on
   * the loop's thread, including after an `await`. Returns false (and writes nothing) when the
   * connection is closing or closed.
   */
  send(data: Output): boolean {
    return this.owner.send(this, data);
  }

  /** Runs `data` again for this connection, with its current input, in a microtask (once, however often it is called). */
  wake(): void {
    this.owner.wake(this);
  }

  /**
   * Relays this connection's input to `dest` from now on, without calling `data` for it: the input
   * it holds first, then whatever arrives. On the native backend the bytes move inside the loop's
   * C core and never reach JavaScript. While `dest` holds more than `highWaterMark` unsent, this
   * connection is not read. With `end` (the default) the peer's FIN ends `dest` once the bytes
   * before it are written. The pipe stops when either side closes or `dest` is ended; input then
   * reaches `data` again. Throws InvalidArgumentError when `dest` is not an open connection of this
   * loop that can be written to, or another connection already pipes into it.
   */
  pipe(dest: Conn, opts?: PipeOptions): void {
    this.owner.pipeConn(this, dest, opts);
  }

  /** Stops a pipe(): input reaches `data` again. Does nothing when nothing is piped. */
  unpipe(): void {
    this.owner.unpipeConn(this);
  }

  /** The connection this one's input is piped to (pipe()), or null. */
  get pipedTo(): Conn | null {
    return this.pipeTo;
  }
}

/** @internal A StreamConn constructor for `loop`'s connections: it keeps `owner` on its prototype rather than in every Conn. */
export function streamConnClass(loop: Loop): new (id: number, origin: number, addrs: AddrPair | null) => StreamConn {
  class LoopConn extends StreamConn {}
  Object.defineProperty(LoopConn.prototype, 'owner', { value: loop });
  return LoopConn;
}
