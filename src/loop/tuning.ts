/**
 * A loop's limits and settings, resolved: every value is given (the defaults are applied once, by
 * resolveOptions() in engine/options.ts), and plain, so that they can cross to a worker thread.
 */

/** A loop's limits and settings. */
export interface LoopTuning {
  /** The server's idle timeout: close connections with no progress (no input, no output taken by the kernel) for this long; 0 disables. */
  readonly idleTimeoutMs: number;
  /** Queued output above which reading pauses and write() returns false. */
  readonly highWaterMark: number;
  /** Queued output at which reading resumes and `drained` fires. */
  readonly lowWaterMark: number;
  /** Queued output past which the connection closes with OutputLimitError (Infinity: none). */
  readonly maxOutputBytes: number;
  /** Unconsumed input past which a connection closes with InputLimitError (Infinity: none). */
  readonly maxInputBytes: number;
  /** Open connections past which new ones are dropped (Infinity: none). */
  readonly maxConnections: number;
  /** Keep a connection writable after the peer's FIN, and fire `end`. */
  readonly allowHalfOpen: boolean;
  /** How long a lingering close waits for the peer's FIN before closing the fd; 0 closes right after the flush. */
  readonly lingerMs: number;
}
