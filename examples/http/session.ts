/**
 * One connection's HTTP session: its parser, its answers to every complete request, and its
 * deadlines (timeouts.ts).
 *
 *   opened --first byte--> in a request --last body byte, nothing after it--> idle
 *     (the first request's    | 408 past headersMs / requestMs                  | close past keepAliveMs
 *      clock runs from here)  +<-----------------first byte of the next one-----+
 *
 * Every response of one `data` call (pipelined requests, in order) goes out in one write. After a
 * response with `Connection: close`, an error response (400, 408, 413, 431, 503) or a keep-alive
 * timeout, `data` returns Action.Close, which lingers: the library half-closes and drops the rest
 * of the upload until the client closes, so that unread input does not turn the close into a RST
 * that destroys the response.
 *
 * A deadline is acted on from `data`: the wheel's timer only wakes the connection (`c.wake()`),
 * and `data` sees that the deadline has passed. Input that arrives after a request's deadline, before
 * the timer fires, gets the 408 as well; a request that arrives after the keep-alive deadline is
 * served (its client was not idle).
 *
 * Invariants: `timer`, when set, expires no later than `deadlineMs` (an earlier one re-arms when it
 * fires); `startMs` is kIdle exactly when no request has begun since the last one ended.
 */
import { Action, type Conn, type Reply, type RingBuffer, type Timer } from '../../src/index.js';
import type { BodyBudget } from './budget.js';
import { RequestTimeoutError } from './errors.js';
import { kContinue, respond, respondError, ResponseBuffer } from './handler.js';
import { HttpParser, type HttpLimits, type HttpRequest } from './parser.js';
import type { DeadlineWheel, HttpTimeouts } from './timeouts.js';

/** What one loop's sessions share: the settings, the body budget and the deadline wheel. */
export interface HttpLoop {
  readonly limits: HttpLimits;
  readonly timeouts: HttpTimeouts;
  /** Null: bodies are bounded only by maxBodyBytes each. */
  readonly budget: BodyBudget | null;
  readonly wheel: DeadlineWheel;
}

/** `startMs` between requests. */
const kIdle = -1;

/** The responses of one `data` call; one per loop, as each loop has its own copy of this module. */
const kOut = new ResponseBuffer();

/** One connection's HTTP state. Owned by the connection's loop; kept in `Conn.context`. */
export class HttpSession {
  readonly #conn: Conn;
  readonly #loop: HttpLoop;
  readonly #parser: HttpParser;
  readonly #requests: HttpRequest[] = [];
  #continued: HttpRequest | null = null;
  /** When the current request's clock started (performance.now()), or kIdle. */
  #startMs: number;
  /** When the current wait runs out: a request's (408) or the keep-alive's (close); Infinity for never. */
  #deadlineMs = Infinity;
  #timer: Timer | null = null;
  readonly #onTimer = (): void => this.#timerFired();

  /** For a connection that has just opened: the first request's clock starts now. */
  constructor(conn: Conn, loop: HttpLoop) {
    this.#conn = conn;
    this.#loop = loop;
    this.#parser = new HttpParser(loop.limits, loop.budget);
    const now = performance.now();
    this.#startMs = now;
    this.#setDeadline(this.#requestDeadline(), now);
  }

  /** The `data` callback's work: parse what arrived and answer every complete request. */
  onData(input: RingBuffer): Reply {
    const now = performance.now();
    if (now >= this.#deadlineMs) {
      const expired = this.#expire(input, now);
      if (expired !== null) return expired;
    }
    const requests = this.#requests;
    requests.length = 0;
    const err = this.#parser.parse(input, requests);
    const out = kOut;
    out.clear();
    const answered = requests.length;
    for (let i = 0; i < answered; i++) {
      const req = requests[i]!;
      respond(out, req, this.#conn);
      if (!req.keepAlive) {
        requests.length = 0;
        input.retrieveAll();
        return { out: out.take(), action: Action.Close };
      }
    }
    requests.length = 0;
    if (err !== null) {
      respondError(out, err);
      input.retrieveAll();
      return { out: out.take(), action: Action.Close };
    }
    const pending = this.#parser.pending;
    if (pending !== null && pending.expectContinue && this.#continued !== pending) {
      this.#continued = pending;
      out.push(kContinue);
    }
    if (!this.#parser.awaitingHead || input.length > 0) {
      if (this.#startMs === kIdle || answered > 0) this.#startMs = now;
      this.#setDeadline(this.#requestDeadline(), now);
    } else {
      this.#startMs = kIdle;
      const keepAlive = this.#loop.timeouts.keepAliveMs;
      this.#setDeadline(keepAlive > 0 ? now + keepAlive : Infinity, now);
    }
    return out.take();
  }

  /** The `closed` callback's work: no more timer, and the body's room goes back to the budget. */
  dispose(): void {
    this.#timer?.stop();
    this.#timer = null;
    this.#deadlineMs = Infinity;
    this.#parser.dispose();
  }

  /** The deadline of the request in progress: its head's, while the head is arriving, or its whole. */
  #requestDeadline(): number {
    const { headersMs, requestMs } = this.#loop.timeouts;
    const head = headersMs > 0 && this.#parser.awaitingHead ? this.#startMs + headersMs : Infinity;
    return Math.min(head, requestMs > 0 ? this.#startMs + requestMs : Infinity);
  }

  /**
   * `data` at or past the deadline: a request in progress gets its 408 and the connection closes;
   * an idle connection closes without a word, unless a new request has just arrived (null: serve it).
   */
  #expire(input: RingBuffer, now: number): Reply | null {
    if (this.#startMs === kIdle) {
      if (input.length > 0) return null;
      return Action.Close;
    }
    const { headersMs, requestMs } = this.#loop.timeouts;
    const headLate = headersMs > 0 && this.#parser.awaitingHead && now >= this.#startMs + headersMs;
    const out = kOut;
    out.clear();
    respondError(
      out,
      headLate ? new RequestTimeoutError('head', headersMs) : new RequestTimeoutError('request', requestMs),
    );
    input.retrieveAll();
    this.dispose();
    return { out: out.take(), action: Action.Close };
  }

  /** Moves the deadline; arms the timer unless one already expires no later. */
  #setDeadline(deadlineMs: number, now: number): void {
    this.#deadlineMs = deadlineMs;
    if (deadlineMs === Infinity) return;
    const timer = this.#timer;
    if (timer !== null) {
      if (timer.expiration <= deadlineMs) return;
      timer.stop();
    }
    this.#timer = this.#loop.wheel.after(deadlineMs - now, this.#onTimer);
  }

  #timerFired(): void {
    this.#timer = null;
    if (!this.#conn.open || this.#deadlineMs === Infinity) return;
    const now = performance.now();
    if (now >= this.#deadlineMs) this.#conn.wake();
    else this.#timer = this.#loop.wheel.after(this.#deadlineMs - now, this.#onTimer);
  }
}
