/**
 * One loop and its backend, hosted on the current thread: used directly for a single-loop server,
 * and inside each worker thread of a multi-loop server. It binds listeners, fires `serving` and
 * runs the ticker when it is loop 0, and stops everything when asked.
 */
import type { Addr, ListenSpec } from '../addr.js';
import type { Backend } from '../backend/backend.js';
import { HandlerError } from '../errors.js';
import { Action, type Events, type LoopInit, type Server } from '../events.js';
import { Loop, type LoopOptions } from '../loop/loop.js';
import { asHandlerError, checkSettledValue, isThenable, parseReply, watchSettled } from '../loop/reply.js';
import { Ticker } from './ticker.js';

export class LoopHost {
  readonly loop: Loop;
  readonly backend: Backend;
  readonly #events: Events;
  readonly #ticker: Ticker;
  readonly #requestShutdown: (err?: Error) => void;
  readonly #onError: (err: Error) => void;
  #stopped = false;

  constructor(backend: Backend, events: Events, opts: LoopOptions) {
    this.backend = backend;
    this.#events = events;
    this.#requestShutdown = opts.requestShutdown;
    this.#onError = opts.onError;
    this.loop = new Loop(backend, events, opts);
    this.#ticker = new Ticker(events, opts.requestShutdown);
    backend.start(this.loop);
  }

  /** Binds every spec in order; on failure, what was bound stays for stop() to close. */
  async listenAll(specs: readonly ListenSpec[]): Promise<Addr[]> {
    const addrs: Addr[] = [];
    for (const spec of specs) addrs.push(await this.backend.listen(spec));
    return addrs;
  }

  /**
   * Loop 0's start: fires `serving` once, then starts serving connections and fires the first
   * tick. Returns false when the server is to stop instead (Shutdown, or `serving` failed).
   */
  begin(server: Server): boolean {
    let r: unknown;
    try {
      r = this.#events.serving?.call(this.#events, server);
    } catch (err) {
      this.#requestShutdown(new HandlerError('serving', err));
      return false;
    }
    try {
      if (isThenable(r)) {
        // An async serving: the server starts now; a rejection (or a value) shuts it down.
        watchSettled('serving', r, this.#requestShutdown);
      } else if (parseReply('serving', r).action === Action.Shutdown) {
        this.#requestShutdown();
        return false;
      }
    } catch (err) {
      this.#requestShutdown(asHandlerError('serving', err));
      return false;
    }
    this.loop.start();
    this.#ticker.start();
    return true;
  }

  /**
   * Runs `init` on this loop (before `serving` and before any connection is served) and waits
   * for a promise it returns; rejects with HandlerError when it throws or rejects.
   */
  async init(info: Omit<LoopInit, 'dial'>): Promise<void> {
    const handle = this.loop.setHandle(info);
    let r: unknown;
    try {
      const init = this.#events.init;
      if (!init) return;
      r = init.call(this.#events, handle);
      if (isThenable(r)) {
        const v = await r;
        checkSettledValue('init', v);
      }
    } catch (err) {
      throw asHandlerError('init', err);
    }
  }

  /** A broadcast value arrived for this loop: runs `message`; a throw goes to onError. */
  deliver(value: unknown): void {
    if (this.#stopped) return;
    try {
      const message = this.#events.message;
      if (!message) return;
      const r: unknown = message.call(this.#events, value);
      if (isThenable(r)) watchSettled('message', r, this.#onError);
    } catch (err) {
      this.#onError(asHandlerError('message', err));
    }
  }

  /** The start of every other loop: serve the connections accepted so far, and those to come. */
  startServing(): void {
    this.loop.start();
  }

  /**
   * Stops the ticker and the loop: every connection closes (firing `closed`), every listener too.
   * With `graceMs`, connections first get that long to finish writing (see Loop.stop).
   */
  async stop(graceMs = 0): Promise<void> {
    this.#stopped = true;
    this.#ticker.stop();
    await this.loop.stop(graceMs);
  }
}
