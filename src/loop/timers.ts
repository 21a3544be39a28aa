/**
 * A loop's timers on one timing wheel: each connection's idle timeout, the linger deadlines of
 * a lingering close and of c.end() (armed by close.ts), and the connect timeouts of dials (dial.ts). The wheel is created when first needed,
 * with a tick fitted to the first timeout it serves.
 *
 * Idleness: a connection is idle while it makes no progress in either direction. The loop stamps
 * `lastActiveMs` (only while an idle timer is armed) when input arrives, when a flush hands output
 * to an empty queue (the kernel takes it then), and when a queue report shows the queue shrank.
 * Output stuck behind a peer that does not read is no progress. The timer itself is lazy: it
 * fires once per timeout and re-arms for what is left.
 */
import { TimingWheel, type Timer } from '../timingwheel/index.js';
import { ConnState, type StreamConn } from './conn.js';

/** The idle-timeout wheel's tick: a tenth of the timeout, kept between 10 ms and 1 s. */
function wheelTickFor(timeoutMs: number): number {
  return Math.min(1000, Math.max(10, Math.floor(timeoutMs / 10)));
}

export class LoopTimers {
  readonly #idleTimeoutMs: number;
  readonly #lingerMs: number;
  readonly #onIdle: (c: StreamConn, timeoutMs: number) => void;
  #wheel: TimingWheel | null = null;

  /**
   * `idleTimeoutMs` is the server's idle timeout (0: none unless a connection sets one); with it
   * the wheel is made at once, its tick fitted to the shorter of it and `lingerMs`. `onIdle`
   * closes a connection that made no progress for its whole timeout.
   */
  constructor(idleTimeoutMs: number, lingerMs: number, onIdle: (c: StreamConn, timeoutMs: number) => void) {
    this.#idleTimeoutMs = idleTimeoutMs;
    this.#lingerMs = lingerMs;
    this.#onIdle = onIdle;
    if (idleTimeoutMs > 0) this.#wheelFor(lingerMs > 0 ? Math.min(idleTimeoutMs, lingerMs) : idleTimeoutMs);
  }

  /** Runs `fn` once, `ms` from now. */
  after(ms: number, fn: () => void): Timer {
    return this.#wheelFor(ms).afterFunc(ms, fn);
  }

  /**
   * A dial's connect timeout: runs `fn` once, `ms` from now. A wheel made for it is fitted to the
   * shorter of `ms` and the linger, so that a long connect timeout does not coarsen the linger
   * deadlines that share the wheel.
   */
  afterConnect(ms: number, fn: () => void): Timer {
    return this.#wheelFor(this.#lingerMs > 0 ? Math.min(ms, this.#lingerMs) : ms).afterFunc(ms, fn);
  }

  /** Starts `c`'s idle timeout (its own, else the server's), if it has one. */
  armIdle(c: StreamConn): void {
    const ms = this.#idleMs(c);
    if (ms <= 0) return;
    c.lastActiveMs = performance.now();
    c.idleTimer = this.#wheelFor(ms).afterFunc(ms, () => this.#checkIdle(c));
  }

  /** Cancels `c`'s idle timeout. */
  disarmIdle(c: StreamConn): void {
    c.idleTimer?.stop();
    c.idleTimer = null;
  }

  /** Cancels every timer; none fires afterwards. */
  stop(): void {
    this.#wheel?.stop();
  }

  #wheelFor(timeoutMs: number): TimingWheel {
    if (this.#wheel === null) {
      this.#wheel = new TimingWheel({ tickMs: wheelTickFor(timeoutMs), wheelSize: 64 });
      this.#wheel.start();
    }
    return this.#wheel;
  }

  #idleMs(c: StreamConn): number {
    return c.idleMs >= 0 ? c.idleMs : this.#idleTimeoutMs;
  }

  #checkIdle(c: StreamConn): void {
    c.idleTimer = null;
    // Open, or lingering with its reply not yet written (input no longer counts as activity then).
    if (c.state !== ConnState.Open && !(c.state === ConnState.Lingering && !c.lingerFlushed)) return;
    const timeout = this.#idleMs(c);
    if (timeout <= 0) return;
    const idle = performance.now() - c.lastActiveMs;
    if (idle >= timeout) this.#onIdle(c, timeout);
    else c.idleTimer = this.#wheel!.afterFunc(timeout - idle, () => this.#checkIdle(c));
  }
}
