/**
 * Runs the `tick` callback: right after the server starts, then again after each returned delay.
 */
import { InvalidArgumentError } from '../errors.js';
import { Action, type Events } from '../events.js';
import { asHandlerError, checkAction, isThenable, watchSettled } from '../loop/reply.js';

/** The delay before the next tick when `tick` returns no delay and none was returned before. */
const kDefaultTickDelayMs = 1000;

export class Ticker {
  readonly #events: Events;
  readonly #requestShutdown: (err?: Error) => void;
  #timer: NodeJS.Timeout | null = null;
  #delayMs = kDefaultTickDelayMs;
  #stopped = false;

  constructor(events: Events, requestShutdown: (err?: Error) => void) {
    this.#events = events;
    this.#requestShutdown = requestShutdown;
  }

  /** Fires the first tick now (when `tick` is defined). */
  start(): void {
    if (this.#events.tick) this.#run();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #run(): void {
    this.#timer = null;
    if (this.#stopped) return;
    let action = Action.None;
    try {
      const r: unknown = this.#events.tick!();
      if (isThenable(r)) this.#settle(r);
      else if (typeof r === 'number') action = checkAction('tick', r);
      else if (r !== null && typeof r === 'object') {
        const { delay, action: a } = r as { delay?: unknown; action?: unknown };
        if (delay !== undefined) {
          if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0) {
            throw new InvalidArgumentError('the delay returned by tick', delay, 'a finite number of milliseconds >= 0');
          }
          this.#delayMs = delay;
        }
        action = checkAction('tick', a);
      } else if (r !== undefined && r !== null) {
        throw new InvalidArgumentError('the value returned by tick', r, 'nothing, an Action or { delay, action }');
      }
    } catch (err) {
      this.#requestShutdown(asHandlerError('tick', err));
      return;
    }
    if (action === Action.Shutdown) {
      this.#requestShutdown();
      return;
    }
    if (!this.#stopped) this.#timer = setTimeout(() => this.#run(), this.#delayMs);
  }

  /** An async tick: the next one comes after the same delay; a rejection, or a value, shuts the server down as a throw would. */
  #settle(p: PromiseLike<unknown>): void {
    watchSettled('tick', p, this.#requestShutdown);
  }
}
