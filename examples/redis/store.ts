/**
 * One keyspace: string values by key, and expiry times on a gevent TimingWheel.
 *
 *   values   Map<key, Value>            every live key
 *   expires  Map<key, Expiry>           keys with a TTL: absolute time (ms, on the clock) + wheel timer
 *
 * Keys are latin1 strings (one char per byte), so binary keys work; so are values up to
 * kStringValueMaxBytes (a string costs less to allocate than a Buffer), and larger values are
 * Buffers. A key expires in two ways:
 * lazily, when a lookup finds its time has come (so TTL, GET and EXISTS are exact between wheel
 * ticks), and actively, when its wheel timer fires (at most one tick late), so an expired key that
 * nobody reads does not stay in memory.
 *
 * Invariants:
 *   - Every key in `expires` is in `values`, and its timer (when it has one) is pending.
 *   - Deleting or overwriting a key without KEEPTTL drops its Expiry and stops its timer.
 *
 * A Keyspace belongs to one loop (one thread); close() stops its wheel.
 */
import { performance } from 'node:perf_hooks';
import { TimingWheel, type Timer } from '../../src/index.js';
import { globMatch } from './glob.js';

/** The wheel's tick: the most an unread key outlives its TTL. */
const kWheelTickMs = 100;
const kWheelSize = 64;
/** Delays beyond this get no timer (the wheel takes up to 2^53-1 ms); lazy expiry still applies. */
const kMaxTimerDelayMs = 2 ** 40;

/** Values longer than this are kept as Buffers rather than latin1 strings. */
export const kStringValueMaxBytes = 16 * 1024;

/** A stored value: a latin1 string (one char per byte), or a Buffer for a large one. */
export type Value = string | Buffer;

interface Expiry {
  /** Absolute ms on the keyspace clock. */
  at: number;
  timer: Timer | null;
}

/** Options of a Keyspace. */
export interface KeyspaceOptions {
  /** The clock in ms (default performance.now()); the wheel uses the same one. */
  now?: () => number;
  /** Whether the wheel's timeout may keep the thread alive (default false: it is unref'd). */
  ref?: boolean;
}

/** A string keyspace with expiry; see the file comment. */
export class Keyspace {
  readonly #values = new Map<string, Value>();
  readonly #expires = new Map<string, Expiry>();
  readonly #wheel: TimingWheel;
  readonly #now: () => number;
  readonly #ref: boolean;

  constructor(options: KeyspaceOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#ref = options.ref ?? false;
    this.#wheel = new TimingWheel({ tickMs: kWheelTickMs, wheelSize: kWheelSize, now: this.#now });
    this.startWheel();
  }

  /** The keyspace clock, in ms. */
  now(): number {
    return this.#now();
  }

  /** Number of keys, including expired ones not yet removed (as Redis's DBSIZE). */
  get size(): number {
    return this.#values.size;
  }

  /** Number of keys with a TTL. */
  get expiresCount(): number {
    return this.#expires.size;
  }

  /** The value of a live key, or undefined. */
  get(key: string): Value | undefined {
    const v = this.#values.get(key);
    if (v === undefined || this.#expires.size === 0 || !this.expireIfDue(key)) return v;
    return undefined;
  }

  /** Whether `key` is live. */
  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /**
   * Stores `value` under `key`. `expireAt` is an absolute time on the clock, `undefined` to clear
   * any TTL, or `null` to keep the current one (KEEPTTL). The keyspace owns `value` afterwards.
   */
  set(key: string, value: Value, expireAt?: number | null): void {
    this.#values.set(key, value);
    if (expireAt === null) return;
    if (this.#expires.size > 0) this.dropExpiry(key);
    if (expireAt !== undefined) this.setExpireAt(key, expireAt);
  }

  /** Removes `key`; returns whether it was live. */
  delete(key: string): boolean {
    if (this.get(key) === undefined) return false;
    this.remove(key);
    return true;
  }

  /** The absolute expiry time of a live key, -1 when it has no TTL, -2 when it does not exist. */
  expireAt(key: string): number {
    if (this.get(key) === undefined) return -2;
    return this.#expires.get(key)?.at ?? -1;
  }

  /**
   * Sets the TTL of a live key to the absolute time `at`; a time already past deletes the key.
   * Returns false when the key does not exist.
   */
  setExpireAt(key: string, at: number): boolean {
    if (this.get(key) === undefined) return false;
    const delay = at - this.#now();
    if (delay <= 0) {
      this.remove(key);
      return true;
    }
    const old = this.#expires.get(key);
    old?.timer?.stop();
    const e: Expiry = old ?? { at, timer: null };
    e.at = at;
    e.timer = delay <= kMaxTimerDelayMs ? this.#wheel.afterFunc(delay, () => this.onTimer(key, e)) : null;
    if (old === undefined) this.#expires.set(key, e);
    return true;
  }

  /** Removes the TTL of a live key; returns whether it had one. */
  persist(key: string): boolean {
    if (this.get(key) === undefined) return false;
    return this.dropExpiry(key);
  }

  /** Live keys matching the glob `pattern`. */
  keys(pattern: string): string[] {
    const out: string[] = [];
    const all = pattern === '*';
    const now = this.#now();
    for (const key of this.#values.keys()) {
      const e = this.#expires.get(key);
      if (e !== undefined && e.at <= now) continue;
      if (all || globMatch(pattern, key)) out.push(key);
    }
    return out;
  }

  /** Removes every key and every timer. */
  flush(): void {
    this.#values.clear();
    this.#expires.clear();
    this.#wheel.stop();
    this.startWheel();
  }

  /** Stops the wheel; the keyspace must not be used afterwards. */
  close(): void {
    this.#wheel.stop();
  }

  // ---- internals -------------------------------------------------------------------------------

  private startWheel(): void {
    this.#wheel.start();
    if (!this.#ref) this.#wheel.unref();
  }

  /** Deletes `key` if its time has come; returns whether it did. */
  private expireIfDue(key: string): boolean {
    const e = this.#expires.get(key);
    if (e === undefined || e.at > this.#now()) return false;
    this.remove(key);
    return true;
  }

  private onTimer(key: string, e: Expiry): void {
    e.timer = null;
    if (this.#expires.get(key) !== e) return;
    if (e.at <= this.#now()) this.remove(key);
    else e.timer = this.#wheel.afterFunc(e.at - this.#now(), () => this.onTimer(key, e));
  }

  private remove(key: string): void {
    this.#values.delete(key);
    if (this.#expires.size > 0) this.dropExpiry(key);
  }

  private dropExpiry(key: string): boolean {
    const e = this.#expires.get(key);
    if (e === undefined) return false;
    e.timer?.stop();
    this.#expires.delete(key);
    return true;
  }
}
