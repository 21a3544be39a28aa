/**
 * The public timing wheel: argument checks, the clock, and the setTimeout driver around the core
 * in core.ts (which opens with the wheel's diagram and invariants).
 */
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError } from '../errors.js';
import { TimerEntry } from './bucket.js';
import { nextRun, WheelCore } from './core.js';
import { TimerState, type Scheduler, type Timer, type TimingWheelOptions } from './types.js';

export type { Scheduler, Timer, TimingWheelOptions } from './types.js';

/** The longest delay setTimeout honours (2^31 - 1 ms); longer waits are taken in steps. */
const kMaxTimeoutMs = 2 ** 31 - 1;

/** Slot count of every level unless told otherwise. */
const kDefaultWheelSize = 60;
/** Level-0 tick unless told otherwise. */
const kDefaultTickMs = 1000;

function positiveInteger(what: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(what, value, min === 1 ? 'a positive integer' : `an integer >= ${min}`);
  }
  return value;
}

function checkFn(fn: unknown): void {
  if (typeof fn !== 'function') throw new InvalidArgumentError('fn', fn, 'a function');
}

function checkDelay(what: string, delayMs: unknown, min: 'zero' | 'positive'): void {
  if (
    typeof delayMs !== 'number' ||
    !(min === 'zero' ? delayMs >= 0 : delayMs > 0) ||
    !(delayMs <= Number.MAX_SAFE_INTEGER)
  ) {
    throw new InvalidArgumentError(
      what,
      delayMs,
      `a finite number ${min === 'zero' ? '>= 0' : '> 0'} (at most 2^53-1)`,
    );
  }
}

/**
 * A hierarchical timing wheel. It runs on the thread that created it and is not safe to share;
 * callbacks run inside advance(), either called by the owner on its own clock or by the
 * self-driver after start(). Callbacks may add and stop timers, including their own.
 */
export class TimingWheel {
  readonly #tickMs: number;
  readonly #now: () => number;
  readonly #core: WheelCore;
  readonly #onTimeout: () => void;
  #running = false;
  #unref = false;
  #timeout: NodeJS.Timeout | null = null;
  /** The expiration (ms) the armed timeout was set for. */
  #armedAtMs = Infinity;

  constructor(options: TimingWheelOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', options, 'an object');
    }
    this.#tickMs = positiveInteger('tickMs', options.tickMs, kDefaultTickMs, 1);
    const wheelSize = positiveInteger('wheelSize', options.wheelSize, kDefaultWheelSize, 2);
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new InvalidArgumentError('now', options.now, 'a function returning ms');
    }
    this.#now = options.now ?? (() => performance.now());
    this.#core = new WheelCore(this.#tickMs, wheelSize, this.#clock());
    this.#onTimeout = () => {
      this.#timeout = null;
      this.#armedAtMs = Infinity;
      this.advance();
    };
  }

  /** Pending timers: added, not yet fired (for a repeating timer: not yet ended) and not stopped. */
  get size(): number {
    return this.#core.size;
  }

  /**
   * Runs `fn` once, no earlier than `delayMs` after now() and at most one tick later (on an
   * advance() at that time). Never calls `fn` synchronously: a timer already due fires on the
   * next advance().
   */
  afterFunc(delayMs: number, fn: () => void): Timer {
    checkDelay('delayMs', delayMs, 'zero');
    checkFn(fn);
    return this.#enqueue(new TimerEntry(this.#core, fn, this.#clock() + delayMs, 0, null));
  }

  /**
   * Runs `fn` repeatedly: every `schedule` ms (fixed rate, measured from each scheduled time), or
   * at the times a Scheduler returns until it ends the schedule. The returned Timer's stop() ends
   * further runs; `expiration` is the next run. If the first run is refused, the timer is
   * returned already stopped.
   */
  scheduleFunc(schedule: Scheduler | number, fn: () => void): Timer {
    checkFn(fn);
    const now = this.#clock();
    let entry: TimerEntry;
    if (typeof schedule === 'number') {
      checkDelay('schedule', schedule, 'positive');
      entry = new TimerEntry(this.#core, fn, now + schedule, schedule, null);
    } else {
      if (typeof schedule !== 'object' || schedule === null || typeof schedule.next !== 'function') {
        throw new InvalidArgumentError('schedule', schedule, 'a period in ms or a Scheduler');
      }
      const first = nextRun(schedule.next(now));
      entry = new TimerEntry(this.#core, fn, first, 0, schedule);
      if (first !== first) {
        entry.state = TimerState.Done;
        return entry;
      }
    }
    return this.#enqueue(entry);
  }

  /**
   * Fires every timer due at `nowMs` (default now(); use the same clock as the wheel), in
   * expiration order, timers of equal expiration in the order they were added, cascading timers
   * down from overflow wheels as their time comes. Returns how many fired.
   *
   * Timers a callback adds that are already due fire on the next advance, so a callback that
   * re-arms itself with a zero delay cannot spin forever; timers it adds for later times up to
   * `nowMs` fire in this call. A callback that throws does not stop the others: every due timer
   * still fires, then the first error is rethrown unchanged (the rest are dropped). Called from
   * inside a callback, advance does nothing and returns 0.
   */
  advance(nowMs?: number): number {
    const core = this.#core;
    if (core.advancing) return 0;
    let now: number;
    if (nowMs === undefined) {
      now = this.#clock();
    } else {
      if (typeof nowMs !== 'number' || !Number.isFinite(nowMs)) {
        throw new InvalidArgumentError('nowMs', nowMs, 'a finite number of ms');
      }
      now = nowMs;
    }
    const fired = core.advance(now);
    if (this.#running) this.#arm();
    if (core.hasError) {
      const err = core.firstError;
      core.hasError = false;
      core.firstError = undefined;
      throw err;
    }
    return fired;
  }

  /** Absolute ms (on the wheel's clock) when advance() next has a timer to fire, or Infinity. */
  nextExpiration(): number {
    return this.#core.nextExpirationMs();
  }

  /**
   * Drives the wheel from real time with one setTimeout armed for nextExpiration(): re-armed
   * when an earlier timer is added and after each advance, and not armed at all while no timer
   * is pending. A callback's error surfaces as an uncaught exception, after the wheel re-armed.
   */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#arm();
  }

  /** Stops driving and cancels every pending timer; none of them fires afterwards. The wheel stays usable. */
  stop(): void {
    this.#running = false;
    this.#disarm();
    this.#core.cancelAll();
  }

  /** The driving timeout, now and later, does not keep the process alive. */
  unref(): void {
    this.#unref = true;
    this.#timeout?.unref();
  }

  #clock(): number {
    const now = this.#now();
    if (typeof now !== 'number' || !Number.isFinite(now)) {
      throw new InvalidArgumentError('now()', now, 'a finite number of ms');
    }
    return now;
  }

  #enqueue(entry: TimerEntry): Timer {
    const core = this.#core;
    core.size++;
    const tick = core.add(entry);
    if (this.#running && !core.advancing && tick * this.#tickMs < this.#armedAtMs) this.#arm();
    return entry;
  }

  /** Arms the driving timeout for nextExpiration() (in steps of at most kMaxTimeoutMs, the longest setTimeout waits), unless it is already armed for that time or earlier. */
  #arm(): void {
    const next = this.#core.nextExpirationMs();
    if (next === Infinity) {
      this.#disarm();
      return;
    }
    if (this.#timeout !== null && this.#armedAtMs <= next) return;
    this.#disarm();
    const now = this.#clock();
    const delayMs = Math.min(kMaxTimeoutMs, Math.max(0, Math.ceil(next - now)));
    this.#timeout = setTimeout(this.#onTimeout, delayMs);
    this.#armedAtMs = delayMs === kMaxTimeoutMs ? now + delayMs : next;
    if (this.#unref) this.#timeout.unref();
  }

  #disarm(): void {
    if (this.#timeout !== null) clearTimeout(this.#timeout);
    this.#timeout = null;
    this.#armedAtMs = Infinity;
  }
}
