/**
 * The cached `Date:` header line. Formatting a date per response costs more than answering
 * /plaintext, so the line is built once a second.
 *
 * Each loop (worker thread) has its own copy of this module, and `tick` runs on loop 0 only, so
 * the cache is refreshed two ways: `tick` refreshes it on loop 0 just after each second starts
 * (off the request path), and every caller of dateLine() refreshes it lazily when the second it
 * was built for has passed. Other loops rely on the lazy refresh; loop 0 rarely needs it.
 *
 * Invariant: `line` is the IMF-fixdate of a time in [expiresMs - 1000, expiresMs).
 */

let line = '';
let expiresMs = 0;
let generation = 0;

/** Rebuilds the line for `nowMs` and returns the ms until the next second starts (the next tick). */
export function refreshDate(nowMs: number = Date.now()): number {
  const second = Math.floor(nowMs / 1000) * 1000;
  if (second + 1000 !== expiresMs) {
    line = `Date: ${new Date(second).toUTCString()}\r\n`;
    expiresMs = second + 1000;
    generation++;
  }
  return expiresMs - nowMs;
}

/** `Date: <IMF-fixdate>\r\n` for the current second, refreshed if a second has passed. */
export function dateLine(nowMs: number = Date.now()): string {
  if (nowMs >= expiresMs) refreshDate(nowMs);
  return line;
}

/** Changes whenever the line changes, so callers can rebuild what they derived from it. */
export function dateGeneration(): number {
  return generation;
}
