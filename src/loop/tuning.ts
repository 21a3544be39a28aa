/**
 * A loop's limits and settings, and their defaults: serve() builds them from its options and the
 * engine hands them to every loop, on the main thread or in a worker.
 */

/** A loop's limits and settings: plain values, so that they can cross to a worker thread. */
export interface LoopTuning {
  /** Close connections with no progress (no input, no output taken by the kernel) for this long; 0 disables. */
  readonly waitTimeoutMs: number;
  /** Queued output above which reading pauses and write() returns false (default kHighWaterMarkBytes). */
  readonly highWaterMark?: number;
  /** Queued output at which reading resumes and `drained` fires (default a quarter of the high mark). */
  readonly lowWaterMark?: number;
  /** Queued output past which the connection closes with OutputLimitError (default Infinity). */
  readonly maxOutputBytes?: number;
  /** Unconsumed input past which a connection closes with InputLimitError (default kMaxInputBytes). */
  readonly maxInputBytes?: number;
  /** Open connections past which new ones are dropped (default Infinity). */
  readonly maxConnections?: number;
  /** Keep a connection writable after the peer's FIN, and fire `end` (default false). */
  readonly allowHalfOpen?: boolean;
  /** How long a lingering close waits for the peer's FIN before closing the fd; 0 closes right after the flush (default kLingerMs). */
  readonly lingerMs?: number;
}

export const kHighWaterMarkBytes = 64 * 1024;

/**
 * The default bound on a connection's unconsumed input. A handler that waits for a whole message
 * keeps it in the connection's RingBuffer, so this is the largest message a server takes unless
 * told otherwise. 64 MiB is above what the usual protocols accept by default (node:http's 16 KiB
 * head, nginx's 1 MiB body, ws's 100 MiB payload being the outlier) and keeps one peer sending a
 * frame that never completes far from the typed-array limit that used to end the process; a
 * server that takes larger messages raises it, or sets Infinity.
 */
export const kMaxInputBytes = 64 * 1024 * 1024;

/**
 * The default linger deadline: Apache's lingering close gives up after 2 s without input
 * (SECONDS_TO_LINGER), nginx waits 5 s between reads (lingering_timeout). Ours is one deadline
 * for the whole linger, and a well-behaved peer answers our FIN within a round trip, so 2 s is
 * ample for a reply to be read on any route while keeping a peer that never closes from holding
 * its fd (and a maxConnections place) for long.
 */
export const kLingerMs = 2000;
