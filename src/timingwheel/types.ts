/**
 * The timing wheel's shared types: the public options, Timer and Scheduler, and the state a timer
 * entry moves through. Every other file of the wheel imports these; this file imports nothing.
 */

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

/** Where a timer is in its life. */
export const enum TimerState {
  /** In a bucket or the due list. */
  Pending = 0,
  /** In the batch being fired. */
  Firing = 1,
  /** Fired (and not rescheduled) or stopped. */
  Done = 2,
}
