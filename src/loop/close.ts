/**
 * How a loop closes its connections: the plain close after a flush, the lingering close, and the
 * count that stop()'s grace wait watches.
 *
 * Lingering close (Action.Close, a handler's error): closing an fd whose kernel receive queue holds
 * unread bytes makes the kernel send RST, and a RST can destroy the reply still in the peer's
 * receive buffer. So such a close writes the queued output, half-closes (FIN), and goes on reading
 * and dropping input; once the output is all written, the fd closes when the peer's FIN or an
 * error arrives, or `lingerMs` later. Writing the output has no deadline of its own, as for any
 * close that flushes: the idle timeout (a peer that sends nothing), the shutdown's grace and
 * maxOutputBytes bound it. `closed` fires once, when the backend reports the fd closed.
 *
 *   Open ──Close──▶ Lingering ──output written──▶ Lingering, flushed ──peer FIN / error / lingerMs──▶ Closing ──▶ Closed
 *                      └──idle timeout (IdleTimeoutError) / error / grace deadline──▶ Closing ──▶ Closed
 *
 * c.end() is bounded the same way without leaving Open (with allowHalfOpen, `data` still fires):
 * once the output and FIN are written, the peer's FIN closes the connection, or `lingerMs` later
 * the loop does. Conn.close() is Action.Close; Conn.destroy() is closeNow().
 */
import type { Backend } from '../backend/backend.js';
import { ConnState, type StreamConn } from './conn.js';
import type { LoopTimers } from './timers.js';

export class ConnCloser {
  readonly #backend: Backend;
  /** The loop's connection table; read only, for its size. */
  readonly #conns: { readonly size: number };
  readonly #timers: LoopTimers;
  readonly #lingerMs: number;
  /** Makes sure the loop flushes soon, so that the backend acts on a close. */
  readonly #scheduleFlush: () => void;
  /** Told that `c` takes no more writes (ended or closing), before the backend hears of it: a pipe into it stops. */
  readonly #onWritesEnd: (c: StreamConn) => void;
  /** Lingering connections whose output is all written (lingerFlushed): stop()'s grace need not wait for them. */
  #lingerDone = 0;
  /** Resolves stop()'s grace wait once every connection has closed or is lingering with its output written. */
  #onSettled: (() => void) | null = null;

  constructor(
    backend: Backend,
    conns: { readonly size: number },
    timers: LoopTimers,
    lingerMs: number,
    scheduleFlush: () => void,
    onWritesEnd: (c: StreamConn) => void = () => undefined,
  ) {
    this.#backend = backend;
    this.#conns = conns;
    this.#timers = timers;
    this.#lingerMs = lingerMs;
    this.#scheduleFlush = scheduleFlush;
    this.#onWritesEnd = onWritesEnd;
  }

  /**
   * Closes after flushing what is queued, with no linger; `closed` fires when the backend reports
   * the fd closed. For closes where the peer has nothing left to send: it has sent FIN, or (idle
   * timeout) nothing for a whole timeout.
   */
  close(c: StreamConn): void {
    if (c.state !== ConnState.Open) return;
    this.#onWritesEnd(c);
    c.state = ConnState.Closing;
    this.#backend.close(c.id, true);
    this.#scheduleFlush();
  }

  /**
   * A lingering close (see the top of this file): FIN after the queued output, then read and drop
   * input, with reading resumed whatever paused it, until the peer's FIN, an error or the deadline.
   * A plain flushed close when lingerMs is 0, when the peer has already ended its side, or for a
   * dialled UDP connection (no FIN to wait for, no RST to fear).
   */
  closeLingering(c: StreamConn): void {
    if (c.state !== ConnState.Open) return;
    if (this.#lingerMs === 0 || c.peerEnded || c.datagram) {
      this.close(c);
      return;
    }
    this.#onWritesEnd(c);
    c.state = ConnState.Lingering;
    c.lingerTimer?.stop();
    c.lingerTimer = null;
    if (!c.ended) this.#backend.end(c.id);
    if (c.userPaused || c.bpPaused) {
      c.userPaused = false;
      c.bpPaused = false;
      this.#backend.pauseReading(c.id, false);
    }
    c.watching = true;
    this.#backend.watchQueue(c.id);
    this.#scheduleFlush();
  }

  /**
   * Closes at once, dropping what is not written yet: a drop past maxConnections, output past
   * maxOutputBytes, the end of a linger, Conn.destroy(), or the idle timeout while a lingering
   * reply is still being written (the peer neither reads nor writes).
   */
  closeNow(c: StreamConn): void {
    this.#onWritesEnd(c);
    c.state = ConnState.Closing;
    c.abrupt = true;
    c.lingerTimer?.stop();
    c.lingerTimer = null;
    this.#backend.close(c.id, false);
    this.#scheduleFlush();
  }

  /**
   * Conn.end() on an open connection whose peer has not ended: FIN after the queued output, and a
   * queue report once that is written (onEndWritten), which starts the linger deadline.
   */
  end(c: StreamConn): void {
    this.#onWritesEnd(c);
    this.#backend.end(c.id);
    c.watching = true;
    this.#backend.watchQueue(c.id);
    this.#scheduleFlush();
  }

  /** An ended, open connection's output (and FIN) is all written: the peer has lingerMs to end its side. */
  onEndWritten(c: StreamConn): void {
    if (c.lingerTimer !== null) return;
    if (this.#lingerMs === 0) {
      this.closeNow(c);
      return;
    }
    c.lingerTimer = this.#timers.after(this.#lingerMs, () => {
      c.lingerTimer = null;
      if (c.state === ConnState.Open) this.closeNow(c);
    });
  }

  /** The peer's FIN on a lingering connection. */
  onPeerEnd(c: StreamConn): void {
    // The linger is over once our output is written too; until then the backend finishes the
    // writing (and closes by itself once both sides are shut) or the deadline cuts it short.
    c.peerEnded = true;
    if (c.lingerFlushed) this.closeNow(c);
  }

  /** The backend's queue report for a lingering connection. */
  onQueued(c: StreamConn, bytes: number): void {
    if (bytes === 0 && c.unflushed === 0 && !c.lingerFlushed) this.#lingerWritten(c);
  }

  /**
   * The backend reported `c` closed (and the loop has forgotten it). Returns true when `c` was
   * lingering with its output all written: its close has succeeded, as a close right after the
   * flush would have, so a later error (the peer's RST) is not the handler's concern.
   */
  onClosed(c: StreamConn): boolean {
    c.lingerTimer?.stop();
    c.lingerTimer = null;
    const flushed = c.lingerFlushed;
    if (flushed) this.#lingerDone--;
    this.checkSettled();
    return flushed;
  }

  /** Starts stop()'s grace wait: the promise resolves at the first checkSettled() that finds it over. */
  whenSettled(): Promise<void> {
    return new Promise<void>((resolve) => (this.#onSettled = resolve));
  }

  /** Resolves stop()'s grace wait once every connection has closed or only lingers, its output written. */
  checkSettled(): void {
    if (this.#onSettled !== null && this.#conns.size === this.#lingerDone) this.#onSettled();
  }

  /** A lingering connection's output is all written: the peer's FIN (if it came already) now closes it. */
  #lingerWritten(c: StreamConn): void {
    c.lingerFlushed = true;
    this.#lingerDone++;
    this.#timers.disarmIdle(c);
    if (c.peerEnded) {
      this.closeNow(c);
      return;
    }
    c.lingerTimer = this.#timers.after(this.#lingerMs, () => this.#lingerExpired(c));
    this.checkSettled();
  }

  /** The linger deadline, `lingerMs` after the output was written: the peer has had its reply; close. */
  #lingerExpired(c: StreamConn): void {
    c.lingerTimer = null;
    if (c.state === ConnState.Lingering) this.closeNow(c);
  }
}
