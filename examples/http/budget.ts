/**
 * The bytes of request bodies a loop may hold at once, shared by all of its connections: a bound
 * on memory however many clients are part-way through an upload. The parser takes a body's room
 * from it before reading the body (a Content-Length body's whole length; a chunked body's buffer
 * as it grows) and gives it back when the request is complete, refused, or its connection closes.
 * A body that does not fit is refused with 503 (see BodyBudgetError).
 *
 * Invariant: 0 <= usedBytes <= limitBytes. Owned by one loop's thread.
 */
export class BodyBudget {
  #used = 0;

  /** `limitBytes`: an integer >= 0 (0 refuses every body). */
  constructor(readonly limitBytes: number) {}

  /** Bytes taken and not yet given back. */
  get usedBytes(): number {
    return this.#used;
  }

  /** Takes `n` bytes and returns true if they fit; otherwise takes nothing and returns false. */
  take(n: number): boolean {
    if (this.#used + n > this.limitBytes) return false;
    this.#used += n;
    return true;
  }

  /** Gives back `n` bytes taken before. */
  give(n: number): void {
    this.#used -= n;
  }
}
