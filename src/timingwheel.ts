/**
 * A hierarchical timing wheel (Kafka-style) with overflow wheels created on demand, and one delay
 * queue shared by every level, so the driver always knows the next expiration and never scans an
 * empty slot.
 *
 *   level 2  tick T*W*W  [ b0 | b1 | ... | bW-1 ]  a due bucket re-files its timers one level down
 *   level 1  tick T*W    [ b0 | b1 | ... | bW-1 ]  (the cascade), or into the batch when due
 *   level 0  tick T      [ b0 | b1 | ... | bW-1 ]  a due bucket's timers go into the batch
 *                             \ every non-empty bucket of every level is also in:
 *   delay queue   min-heap of buckets by expiration; advance() pops while expiration <= now
 *   due list      timers already due when added; they fire at the start of the next advance()
 *   batch         the timers of one tick, sorted by (expiration, insertion order), then fired
 *
 * Time is kept in whole level-0 ticks. A timer's deadline is its expiration rounded UP to a tick
 * (so it never fires early and fires at most one tick late). A level with tick t covers deadlines
 * [current + t, current + t*W): the timer goes to bucket floor(deadline/t) % W, whose expiration
 * is floor(deadline/t)*t. A deadline past the level's span goes to the next level, of tick t*W.
 *
 * Invariants:
 *   - A bucket is in the delay queue exactly when it holds at least one timer.
 *   - Every level's `current` is a multiple of its tick, and level k+1's `current` is level k's
 *     rounded down to level k+1's tick.
 *   - Outside advance(), every queued bucket's expiration is greater than the `current` of its
 *     level and less than `current` + the level's span, so two live buckets never share a slot.
 *   - A timer is in exactly one place: a bucket, the due list, or the batch being fired, and its
 *     `bucket` field says which bucket (null while in the batch or once done).
 *   - `size` counts timers that are pending or in the batch and not yet fired or stopped.
 */
import { performance } from 'node:perf_hooks';

/** The longest delay setTimeout honours (2^31 - 1 ms); longer waits are taken in steps. */
const kMaxTimeoutMs = 2 ** 31 - 1;
import { InvalidArgumentError } from './errors.js';

/** Options of a TimingWheel; every field is optional. */
export interface TimingWheelOptions {
  /** Length of one level-0 slot in ms, a positive integer; also the firing precision. Default 1000. */
  tickMs?: number;
  /** Slots per level, an integer >= 2. Default 60. */
  wheelSize?: number;
  /** The clock, in ms. Default `performance.now()`. Virtual clocks are welcome. */
  now?: () => number;
}

/** A timer handle returned by afterFunc and scheduleFunc. */
export interface Timer {
  /** Cancels the timer: true if it was pending, false if it already fired or was stopped. A stopped timer never fires. */
  stop(): boolean;
  /** Absolute ms (on the wheel's clock) of the next run. */
  readonly expiration: number;
}

/** Decides when a repeating timer runs next. */
export interface Scheduler {
  /**
   * Given the previous run's scheduled time (or the clock's time for the first run), returns the
   * absolute ms of the next run. Anything but a finite number in [0, 2^53-1] (a negative number,
   * NaN, Infinity) ends the schedule.
   */
  next(prevMs: number): number;
}

/** Slot count of every level unless told otherwise. */
const kDefaultWheelSize = 60;
/** Level-0 tick unless told otherwise. */
const kDefaultTickMs = 1000;

const kPending = 0;
const kFiring = 1;
const kDone = 2;

/** One timer. Lives in one bucket's list at a time; the wheel owns it, the user holds it as a Timer. */
class TimerEntry implements Timer {
  expiration: number;
  /** expiration rounded up to whole level-0 ticks. */
  deadline: number;
  /** Insertion order, the tie-break between timers with equal expiration. */
  seq = 0;
  state = kPending;
  bucket: Bucket | null = null;
  prev: TimerEntry | null = null;
  next: TimerEntry | null = null;

  constructor(
    readonly core: WheelCore,
    readonly fn: () => void,
    expiration: number,
    /** Repeat period in ms for scheduleFunc(number); 0 otherwise. */
    readonly periodMs: number,
    readonly scheduler: Scheduler | null,
  ) {
    this.expiration = expiration;
    this.deadline = core.deadlineOf(expiration);
  }

  stop(): boolean {
    return this.core.cancel(this);
  }
}

/** A slot: an intrusive doubly linked list of timers, and the tick at which it is due. */
class Bucket {
  /** Due tick; meaningful while the bucket is queued. */
  expiration = 0;
  /** Position in the delay queue, -1 when not queued. */
  heapIndex = -1;
  count = 0;
  head: TimerEntry | null = null;
  tail: TimerEntry | null = null;

  push(entry: TimerEntry): void {
    entry.bucket = this;
    entry.prev = this.tail;
    entry.next = null;
    if (this.tail === null) this.head = entry;
    else this.tail.next = entry;
    this.tail = entry;
    this.count++;
  }

  unlink(entry: TimerEntry): void {
    if (entry.prev === null) this.head = entry.next;
    else entry.prev.next = entry.next;
    if (entry.next === null) this.tail = entry.prev;
    else entry.next.prev = entry.prev;
    entry.prev = entry.next = entry.bucket = null;
    this.count--;
  }

  /** Empties the bucket and returns its old head; the entries keep their `next` links. */
  detach(): TimerEntry | null {
    const head = this.head;
    this.head = this.tail = null;
    this.count = 0;
    return head;
  }
}

/** Binary min-heap of buckets keyed by expiration; each bucket knows its index, so removal is O(log n). */
class DelayQueue {
  readonly heap: Bucket[] = [];

  get length(): number {
    return this.heap.length;
  }

  peek(): Bucket {
    return this.heap[0]!;
  }

  push(bucket: Bucket): void {
    bucket.heapIndex = this.heap.length;
    this.heap.push(bucket);
    this.up(bucket.heapIndex);
  }

  pop(): Bucket {
    const top = this.heap[0]!;
    this.remove(top);
    return top;
  }

  remove(bucket: Bucket): void {
    const heap = this.heap;
    const i = bucket.heapIndex;
    const last = heap.pop()!;
    bucket.heapIndex = -1;
    if (last === bucket) return;
    heap[i] = last;
    last.heapIndex = i;
    this.down(i);
    this.up(last.heapIndex);
  }

  clear(): void {
    for (const bucket of this.heap) bucket.heapIndex = -1;
    this.heap.length = 0;
  }

  private up(i: number): void {
    const heap = this.heap;
    const item = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (p.expiration <= item.expiration) break;
      heap[i] = p;
      p.heapIndex = i;
      i = parent;
    }
    heap[i] = item;
    item.heapIndex = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const item = heap[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap[child + 1]!.expiration < heap[child]!.expiration) child++;
      const c = heap[child]!;
      if (c.expiration >= item.expiration) break;
      heap[i] = c;
      c.heapIndex = i;
      i = child;
    }
    heap[i] = item;
    item.heapIndex = i;
  }
}

/** One wheel of the hierarchy. All times are in level-0 ticks. */
class Level {
  readonly interval: number;
  readonly buckets: Bucket[];
  overflow: Level | null = null;
  current: number;

  constructor(
    readonly tick: number,
    wheelSize: number,
    startTick: number,
  ) {
    this.interval = tick * wheelSize;
    this.current = Math.floor(startTick / tick) * tick;
    this.buckets = new Array<Bucket>(wheelSize);
    for (let i = 0; i < wheelSize; i++) this.buckets[i] = new Bucket();
  }
}

function byExpiration(a: TimerEntry, b: TimerEntry): number {
  return a.expiration - b.expiration || a.seq - b.seq;
}

/** Reads a Scheduler's answer: the next run in ms, or NaN when the schedule ends. */
function nextRun(value: unknown): number {
  return typeof value === 'number' && value >= 0 && value <= Number.MAX_SAFE_INTEGER ? value : NaN;
}

/**
 * The wheel without its driver or argument checks: filing, cascading and firing. Timers reach it
 * through their `core` field, so it has no public surface of its own.
 */
class WheelCore {
  readonly root: Level;
  readonly queue = new DelayQueue();
  /** Timers that were due when added; they fire at the start of the next advance. */
  readonly due = new Bucket();
  /** The batch of one tick being fired, sorted by (expiration, seq). Reused across advances. */
  readonly batch: TimerEntry[] = [];
  size = 0;
  seq = 0;
  advancing = false;
  hasError = false;
  firstError: unknown = undefined;

  constructor(
    readonly tickMs: number,
    readonly wheelSize: number,
    startMs: number,
  ) {
    this.root = new Level(1, wheelSize, Math.floor(startMs / tickMs));
  }

  /** expiration (ms) rounded up to whole ticks, guarding against division rounding down. */
  deadlineOf(expiration: number): number {
    let d = Math.ceil(expiration / this.tickMs);
    if (d * this.tickMs < expiration) d++;
    return d;
  }

  /** Queues a new or rescheduled timer; returns the tick at which it will next be looked at. */
  add(entry: TimerEntry): number {
    entry.seq = this.seq++;
    entry.state = kPending;
    if (this.file(entry)) return entry.bucket!.expiration;
    this.due.push(entry);
    return this.root.current;
  }

  /** Puts `entry` in the bucket of the lowest level that covers its deadline; false if it is due now. */
  private file(entry: TimerEntry): boolean {
    const d = entry.deadline;
    let level = this.root;
    if (d <= level.current) return false;
    while (d >= level.current + level.interval) {
      level = level.overflow ??= new Level(level.interval, this.wheelSize, level.current);
    }
    const slot = Math.floor(d / level.tick);
    let index = slot % this.wheelSize;
    if (index < 0) index += this.wheelSize;
    const bucket = level.buckets[index]!;
    if (bucket.count === 0) {
      bucket.expiration = slot * level.tick;
      bucket.push(entry);
      this.queue.push(bucket);
    } else {
      bucket.push(entry);
    }
    return true;
  }

  /** Timer.stop(): O(1) unlink, plus O(log buckets) to dequeue a bucket it leaves empty. */
  cancel(entry: TimerEntry): boolean {
    if (entry.state === kDone) return false;
    if (entry.state === kPending) {
      const bucket = entry.bucket!;
      bucket.unlink(entry);
      if (bucket.count === 0 && bucket.heapIndex >= 0) this.queue.remove(bucket);
    }
    entry.state = kDone;
    this.size--;
    return true;
  }

  /** Cancels every timer, including the rest of a batch being fired. */
  cancelAll(): void {
    for (const bucket of this.queue.heap) this.dropAll(bucket);
    this.queue.clear();
    this.dropAll(this.due);
    for (const entry of this.batch) entry.state = kDone;
    this.size = 0;
  }

  private dropAll(bucket: Bucket): void {
    let entry = bucket.detach();
    while (entry !== null) {
      const next = entry.next;
      entry.prev = entry.next = entry.bucket = null;
      entry.state = kDone;
      entry = next;
    }
  }

  /** Absolute ms at which advance() next has work to do, or Infinity. */
  nextExpirationMs(): number {
    if (this.due.count > 0) return this.root.current * this.tickMs;
    if (this.queue.length === 0) return Infinity;
    return this.queue.peek().expiration * this.tickMs;
  }

  /** See TimingWheel.advance. Callback errors are kept in firstError, never thrown from here. */
  advance(nowMs: number): number {
    if (this.advancing) return 0;
    this.advancing = true;
    let fired = 0;
    try {
      if (this.due.count > 0) {
        this.moveToBatch(this.due);
        fired += this.fireBatch();
      }
      const queue = this.queue;
      const tickMs = this.tickMs;
      while (queue.length > 0 && queue.peek().expiration * tickMs <= nowMs) {
        const tick = queue.peek().expiration;
        this.advanceClock(tick);
        // Every bucket due at this tick (one per level at most) cascades before any timer fires,
        // so the batch holds all timers of the tick and fires in (expiration, seq) order. A
        // cascade only files timers into buckets due after `tick`.
        do {
          this.cascade(queue.pop());
        } while (queue.length > 0 && queue.peek().expiration === tick);
        fired += this.fireBatch();
      }
      this.advanceClock(Math.floor(nowMs / tickMs));
    } finally {
      this.advancing = false;
    }
    return fired;
  }

  private advanceClock(tick: number): void {
    for (let level: Level | null = this.root; level !== null; level = level.overflow) {
      if (tick < level.current + level.tick) break;
      level.current = Math.floor(tick / level.tick) * level.tick;
    }
  }

  /** Re-files each timer of a popped bucket one level down, or into the batch when due. */
  private cascade(bucket: Bucket): void {
    let entry = bucket.detach();
    while (entry !== null) {
      const next = entry.next;
      entry.prev = entry.next = entry.bucket = null;
      if (!this.file(entry)) {
        entry.state = kFiring;
        this.batch.push(entry);
      }
      entry = next;
    }
  }

  private moveToBatch(bucket: Bucket): void {
    let entry = bucket.detach();
    while (entry !== null) {
      const next = entry.next;
      entry.prev = entry.next = entry.bucket = null;
      entry.state = kFiring;
      this.batch.push(entry);
      entry = next;
    }
  }

  private fireBatch(): number {
    const batch = this.batch;
    if (batch.length > 1) batch.sort(byExpiration);
    let fired = 0;
    for (let i = 0; i < batch.length; i++) {
      const entry = batch[i]!;
      // Stopped by an earlier callback of this batch.
      if (entry.state !== kFiring) continue;
      fired++;
      this.run(entry);
    }
    batch.length = 0;
    return fired;
  }

  /** Reschedules a repeating timer before its callback runs, so the callback may stop it. */
  private run(entry: TimerEntry): void {
    let next = NaN;
    if (entry.scheduler !== null) {
      try {
        next = nextRun(entry.scheduler.next(entry.expiration));
      } catch (err) {
        this.noteError(err);
      }
    } else if (entry.periodMs > 0) {
      next = nextRun(entry.expiration + entry.periodMs);
    }
    if (next === next) {
      entry.expiration = next;
      entry.deadline = this.deadlineOf(next);
      this.add(entry);
    } else {
      entry.state = kDone;
      this.size--;
    }
    try {
      entry.fn();
    } catch (err) {
      this.noteError(err);
    }
  }

  private noteError(err: unknown): void {
    if (this.hasError) return;
    this.hasError = true;
    this.firstError = err;
  }
}

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
    throw new InvalidArgumentError(what, delayMs, `a finite number ${min === 'zero' ? '>= 0' : '> 0'} (at most 2^53-1)`);
  }
}

/**
 * A hierarchical timing wheel. It runs on the thread that created it and is not safe to share;
 * callbacks run inside advance(), either called by the owner on its own clock or by the
 * self-driver after start(). Callbacks may add and stop timers, including their own.
 */
export class TimingWheel {
  private readonly kTickMs: number;
  private readonly kNow: () => number;
  private readonly kCore: WheelCore;
  private readonly kOnTimeout: () => void;
  private kRunning = false;
  private kUnref = false;
  private kTimeout: NodeJS.Timeout | null = null;
  /** The expiration (ms) the armed timeout was set for. */
  private kArmedAtMs = Infinity;

  constructor(options: TimingWheelOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', options, 'an object');
    }
    this.kTickMs = positiveInteger('tickMs', options.tickMs, kDefaultTickMs, 1);
    const wheelSize = positiveInteger('wheelSize', options.wheelSize, kDefaultWheelSize, 2);
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new InvalidArgumentError('now', options.now, 'a function returning ms');
    }
    this.kNow = options.now ?? (() => performance.now());
    this.kCore = new WheelCore(this.kTickMs, wheelSize, this.clock());
    this.kOnTimeout = () => {
      this.kTimeout = null;
      this.kArmedAtMs = Infinity;
      this.advance();
    };
  }

  /** Pending timers: added, not yet fired (for a repeating timer: not yet ended) and not stopped. */
  get size(): number {
    return this.kCore.size;
  }

  /**
   * Runs `fn` once, no earlier than `delayMs` after now() and at most one tick later (on an
   * advance() at that time). Never calls `fn` synchronously: a timer already due fires on the
   * next advance().
   */
  afterFunc(delayMs: number, fn: () => void): Timer {
    checkDelay('delayMs', delayMs, 'zero');
    checkFn(fn);
    return this.enqueue(new TimerEntry(this.kCore, fn, this.clock() + delayMs, 0, null));
  }

  /**
   * Runs `fn` repeatedly: every `schedule` ms (fixed rate, measured from each scheduled time), or
   * at the times a Scheduler returns until it ends the schedule. The returned Timer's stop() ends
   * further runs; `expiration` is the next run. If the first run is refused, the timer is
   * returned already stopped.
   */
  scheduleFunc(schedule: Scheduler | number, fn: () => void): Timer {
    checkFn(fn);
    const now = this.clock();
    let entry: TimerEntry;
    if (typeof schedule === 'number') {
      checkDelay('schedule', schedule, 'positive');
      entry = new TimerEntry(this.kCore, fn, now + schedule, schedule, null);
    } else {
      if (typeof schedule !== 'object' || schedule === null || typeof schedule.next !== 'function') {
        throw new InvalidArgumentError('schedule', schedule, 'a period in ms or a Scheduler');
      }
      const first = nextRun(schedule.next(now));
      entry = new TimerEntry(this.kCore, fn, first, 0, schedule);
      if (first !== first) {
        entry.state = kDone;
        return entry;
      }
    }
    return this.enqueue(entry);
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
    const core = this.kCore;
    if (core.advancing) return 0;
    let now: number;
    if (nowMs === undefined) {
      now = this.clock();
    } else {
      if (typeof nowMs !== 'number' || !Number.isFinite(nowMs)) {
        throw new InvalidArgumentError('nowMs', nowMs, 'a finite number of ms');
      }
      now = nowMs;
    }
    const fired = core.advance(now);
    if (this.kRunning) this.arm();
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
    return this.kCore.nextExpirationMs();
  }

  /**
   * Drives the wheel from real time with one setTimeout armed for nextExpiration(): re-armed
   * when an earlier timer is added and after each advance, and not armed at all while no timer
   * is pending. A callback's error surfaces as an uncaught exception, after the wheel re-armed.
   */
  start(): void {
    if (this.kRunning) return;
    this.kRunning = true;
    this.arm();
  }

  /** Stops driving and cancels every pending timer; none of them fires afterwards. The wheel stays usable. */
  stop(): void {
    this.kRunning = false;
    this.disarm();
    this.kCore.cancelAll();
  }

  /** The driving timeout, now and later, does not keep the process alive. */
  unref(): void {
    this.kUnref = true;
    this.kTimeout?.unref();
  }

  private clock(): number {
    const now = this.kNow();
    if (typeof now !== 'number' || !Number.isFinite(now)) {
      throw new InvalidArgumentError('now()', now, 'a finite number of ms');
    }
    return now;
  }

  private enqueue(entry: TimerEntry): Timer {
    const core = this.kCore;
    core.size++;
    const tick = core.add(entry);
    if (this.kRunning && !core.advancing && tick * this.kTickMs < this.kArmedAtMs) this.arm();
    return entry;
  }

  /** Arms the driving timeout for nextExpiration() (in steps of at most kMaxTimeoutMs, the longest setTimeout waits), unless it is already armed for that time or earlier. */
  private arm(): void {
    const next = this.kCore.nextExpirationMs();
    if (next === Infinity) {
      this.disarm();
      return;
    }
    if (this.kTimeout !== null && this.kArmedAtMs <= next) return;
    this.disarm();
    const now = this.clock();
    const delayMs = Math.min(kMaxTimeoutMs, Math.max(0, Math.ceil(next - now)));
    this.kTimeout = setTimeout(this.kOnTimeout, delayMs);
    this.kArmedAtMs = delayMs === kMaxTimeoutMs ? now + delayMs : next;
    if (this.kUnref) this.kTimeout.unref();
  }

  private disarm(): void {
    if (this.kTimeout !== null) clearTimeout(this.kTimeout);
    this.kTimeout = null;
    this.kArmedAtMs = Infinity;
  }
}
