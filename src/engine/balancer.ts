/**
 * Picks the loop for a new connection: Random, RoundRobin, or LeastConnections over per-loop
 * counters in shared memory (the acceptor adds on hand-off, each loop subtracts on close).
 */
import { LoadBalance } from '../events.js';

export class Balancer {
  readonly #mode: LoadBalance;
  readonly #counts: Int32Array;
  #next = 0;

  /** `counts` has one cell per loop, shared with the loops (Atomics). */
  constructor(mode: LoadBalance, counts: Int32Array) {
    this.#mode = mode;
    this.#counts = counts;
  }

  /** The loop that takes the next connection. The caller then records the hand-off with `assigned`. */
  pick(): number {
    const n = this.#counts.length;
    switch (this.#mode) {
      case LoadBalance.RoundRobin:
        return this.#next++ % n;
      case LoadBalance.LeastConnections: {
        let best = 0;
        let bestCount = Atomics.load(this.#counts, 0);
        for (let i = 1; i < n; i++) {
          const c = Atomics.load(this.#counts, i);
          if (c < bestCount) {
            best = i;
            bestCount = c;
          }
        }
        return best;
      }
      default:
        return Math.floor(Math.random() * n);
    }
  }

  /** Counts a connection handed to loop `i`. */
  assigned(i: number): void {
    Atomics.add(this.#counts, i, 1);
  }
}
