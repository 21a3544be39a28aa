/**
 * A loop's running totals, as slots of a Float64Array that the loop alone writes. The engine gives
 * each loop its array: a plain one for a loop on the calling thread, a view of a SharedArrayBuffer
 * for a loop on a worker thread, so that Server.stats() reads every loop's totals without a
 * message. A slot is one aligned 8-byte store, so a reader on another thread sees each total
 * whole (possibly a batch old), never torn.
 */
export const enum Counter {
  /** Connections open now. */
  Connections = 0,
  /** Connections this loop has accepted, including those dropped. */
  Accepted = 1,
  /** Connections closed (each fires `closed`, or `dropped` for a dropped one). */
  Closed = 2,
  /** Connections refused past maxConnections (a subset of Accepted and Closed). */
  Dropped = 3,
  /** Bytes received on stream connections. */
  BytesRead = 4,
  /** Bytes of stream output the kernel took. */
  BytesWritten = 5,
  /** accept() failures on this loop's listeners. */
  AcceptErrors = 6,
  /** Outbound connections opened (dials that connected). */
  Dialed = 7,
  /** Connections a PROXY protocol listener closed before they opened (never in Accepted). */
  ProxyRefused = 8,
  /** Connections a TLS listener closed because their handshake failed (never in Accepted). */
  TlsRefused = 9,
}

/** Slots in a loop's counter array (one spare, for growth without a new layout). */
const kCounterSlots = 11;

/** A counter array for one loop; shared when `shared` (for a worker's loop). */
export function newCounters(shared: boolean): Float64Array {
  const bytes = kCounterSlots * Float64Array.BYTES_PER_ELEMENT;
  return new Float64Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
}
