/**
 * How long the HTTP server waits for a client, after node:http's three timeouts, and the timing
 * wheel a loop's connections keep their deadlines on.
 *
 *   opened       first byte       head complete       last body byte    next first byte
 *     |--- a request's clock starts (the first request's at the open) ---...
 *     |<------------- headersMs ------------>|
 *     |<-------------------------- requestMs ------------------------>|
 *                                                                      |<-- keepAliveMs -->|
 *   past headersMs or requestMs: 408 Request Timeout, then close; past keepAliveMs: close.
 *
 * A request's clock starts at its first byte and is not reset by later bytes, so a client sending
 * one byte a second (slowloris) is cut at headersMs all the same. The first request's clock
 * starts when the connection opens, so a client that connects and sends nothing is cut too.
 */
import { TimingWheel, type Timer } from '../../src/index.js';

/** The three timeouts, in ms; 0 turns one off. */
export interface HttpTimeouts {
  /** From a request's first byte (the first request's: the connection's open) to the end of its head. */
  headersMs: number;
  /** From a request's first byte (the first request's: the connection's open) to its last body byte. */
  requestMs: number;
  /** From the last request's end to the next request's first byte, with nothing in between. */
  keepAliveMs: number;
}

/** node:http's defaults: headersTimeout 60 s, requestTimeout 300 s, keepAliveTimeout 5 s. */
export const kDefaultTimeouts: Readonly<HttpTimeouts> = Object.freeze({
  headersMs: 60_000,
  requestMs: 300_000,
  keepAliveMs: 5_000,
});

/**
 * One loop's wheel for its connections' deadlines. The wheel is made on first use, its tick a
 * tenth of the shortest timeout (10 ms to 1 s), so a deadline is acted on at most that late. It
 * does not keep the process alive. Owned by the loop's thread.
 */
export class DeadlineWheel {
  readonly #tickMs: number;
  #wheel: TimingWheel | null = null;

  constructor(timeouts: HttpTimeouts) {
    const shortest = Math.min(
      ...[timeouts.headersMs, timeouts.requestMs, timeouts.keepAliveMs].filter((ms) => ms > 0),
      10_000,
    );
    this.#tickMs = Math.min(1000, Math.max(10, Math.floor(shortest / 10)));
  }

  /** Runs `fn` once, no earlier than `ms` from now. */
  after(ms: number, fn: () => void): Timer {
    if (this.#wheel === null) {
      this.#wheel = new TimingWheel({ tickMs: this.#tickMs, wheelSize: 64 });
      this.#wheel.unref();
      this.#wheel.start();
    }
    return this.#wheel.afterFunc(Math.max(0, ms), fn);
  }
}
