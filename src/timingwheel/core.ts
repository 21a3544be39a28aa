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
import { Bucket, DelayQueue, type EntryOwner, type TimerEntry } from './bucket.js';
import { TimerState } from './types.js';

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
export function nextRun(value: unknown): number {
  return typeof value === 'number' && value >= 0 && value <= Number.MAX_SAFE_INTEGER ? value : NaN;
}

/**
 * The wheel without its driver or argument checks: filing, cascading and firing. Timers reach it
 * through their `core` field, so it has no public surface of its own.
 */
export class WheelCore implements EntryOwner {
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
    entry.state = TimerState.Pending;
    if (this.#file(entry)) return entry.bucket!.expiration;
    this.due.push(entry);
    return this.root.current;
  }

  /** Puts `entry` in the bucket of the lowest level that covers its deadline; false if it is due now. */
  #file(entry: TimerEntry): boolean {
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
    if (entry.state === TimerState.Done) return false;
    if (entry.state === TimerState.Pending) {
      const bucket = entry.bucket!;
      bucket.unlink(entry);
      if (bucket.count === 0 && bucket.heapIndex >= 0) this.queue.remove(bucket);
    }
    entry.state = TimerState.Done;
    this.size--;
    return true;
  }

  /** Cancels every timer, including the rest of a batch being fired. */
  cancelAll(): void {
    for (const bucket of this.queue.heap) this.#dropAll(bucket);
    this.queue.clear();
    this.#dropAll(this.due);
    for (const entry of this.batch) entry.state = TimerState.Done;
    this.size = 0;
  }

  #dropAll(bucket: Bucket): void {
    let entry = bucket.detach();
    while (entry !== null) {
      const next = entry.next;
      entry.prev = entry.next = entry.bucket = null;
      entry.state = TimerState.Done;
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
        this.#moveToBatch(this.due);
        fired += this.#fireBatch();
      }
      const queue = this.queue;
      const tickMs = this.tickMs;
      while (queue.length > 0 && queue.peek().expiration * tickMs <= nowMs) {
        const tick = queue.peek().expiration;
        this.#advanceClock(tick);
        // Every bucket due at this tick (one per level at most) cascades before any timer fires,
        // so the batch holds all timers of the tick and fires in (expiration, seq) order. A
        // cascade only files timers into buckets due after `tick`.
        do {
          this.#cascade(queue.pop());
        } while (queue.length > 0 && queue.peek().expiration === tick);
        fired += this.#fireBatch();
      }
      this.#advanceClock(Math.floor(nowMs / tickMs));
    } finally {
      this.advancing = false;
    }
    return fired;
  }

  #advanceClock(tick: number): void {
    for (let level: Level | null = this.root; level !== null; level = level.overflow) {
      if (tick < level.current + level.tick) break;
      level.current = Math.floor(tick / level.tick) * level.tick;
    }
  }

  /** Re-files each timer of a popped bucket one level down, or into the batch when due. */
  #cascade(bucket: Bucket): void {
    let entry = bucket.detach();
    while (entry !== null) {
      const next = entry.next;
      entry.prev = entry.next = entry.bucket = null;
      if (!this.#file(entry)) {
        entry.state = TimerState.Firing;
        this.batch.push(entry);
      }
      entry = next;
    }
  }

  #moveToBatch(bucket: Bucket): void {
    let entry = bucket.detach();
    while (entry !== null) {
      const next = entry.next;
      entry.prev = entry.next = entry.bucket = null;
      entry.state = TimerState.Firing;
      this.batch.push(entry);
      entry = next;
    }
  }

  #fireBatch(): number {
    const batch = this.batch;
    if (batch.length > 1) batch.sort(byExpiration);
    let fired = 0;
    for (let i = 0; i < batch.length; i++) {
      const entry = batch[i]!;
      // Stopped by an earlier callback of this batch.
      if (entry.state !== TimerState.Firing) continue;
      fired++;
      this.#run(entry);
    }
    batch.length = 0;
    return fired;
  }

  /** Reschedules a repeating timer before its callback runs, so the callback may stop it. */
  #run(entry: TimerEntry): void {
    let next = NaN;
    if (entry.scheduler !== null) {
      try {
        next = nextRun(entry.scheduler.next(entry.expiration));
      } catch (err) {
        this.#noteError(err);
      }
    } else if (entry.periodMs > 0) {
      next = nextRun(entry.expiration + entry.periodMs);
    }
    if (next === next) {
      entry.expiration = next;
      entry.deadline = this.deadlineOf(next);
      this.add(entry);
    } else {
      entry.state = TimerState.Done;
      this.size--;
    }
    try {
      entry.fn();
    } catch (err) {
      this.#noteError(err);
    }
  }

  #noteError(err: unknown): void {
    if (this.hasError) return;
    this.hasError = true;
    this.firstError = err;
  }
}
