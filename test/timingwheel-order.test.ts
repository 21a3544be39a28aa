import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TimingWheel } from '../src/timingwheel/index.js';

interface Fired {
  id: number;
  expiration: number;
  at: number;
}

function virtualWheel(tickMs: number, wheelSize: number, startMs = 0) {
  const clock = { now: startMs };
  const wheel = new TimingWheel({ tickMs, wheelSize, now: () => clock.now });
  const fired: Fired[] = [];
  const add = (id: number, delayMs: number) => {
    const timer = wheel.afterFunc(delayMs, () => fired.push({ id, expiration: timer.expiration, at: clock.now }));
    return timer;
  };
  const advanceTo = (ms: number) => {
    clock.now = ms;
    return wheel.advance(ms);
  };
  return { clock, wheel, fired, add, advanceTo };
}

/** Fired timers must be sorted by expiration, equal expirations by the order they were added (id). */
function assertOrdered(fired: Fired[]): void {
  for (let i = 1; i < fired.length; i++) {
    const a = fired[i - 1]!;
    const b = fired[i]!;
    assert.ok(
      a.expiration < b.expiration || (a.expiration === b.expiration && a.id < b.id),
      `timer ${b.id} (expiration ${b.expiration}) fired after ${a.id} (expiration ${a.expiration})`,
    );
  }
}

test('random delays fire in expiration order, never early, all by advance(max rounded up to the tick)', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(1, 3, 10, 1000),
      fc.constantFrom(2, 3, 8, 60),
      fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 200 }),
      fc.array(fc.integer({ min: 1, max: 2_500 }), { minLength: 1, maxLength: 20 }),
      (tickMs, wheelSize, delays, steps) => {
        const w = virtualWheel(tickMs, wheelSize);
        delays.forEach((d, id) => w.add(id, d));
        let now = 0;
        for (const step of steps) {
          now += step;
          w.advanceTo(now);
          for (const f of w.fired)
            assert.ok(f.at >= f.expiration, `timer ${f.id} fired at ${f.at}, before ${f.expiration}`);
        }
        // Deadlines round up to the tick, so with tickMs 1 this is exactly advance(max).
        const last = Math.ceil(Math.max(...delays) / tickMs) * tickMs;
        w.advanceTo(Math.max(now, last));
        assert.equal(w.fired.length, delays.length);
        assert.equal(w.wheel.size, 0);
        assert.equal(w.wheel.nextExpiration(), Infinity);
        assert.deepEqual(new Set(w.fired.map((f) => f.id)).size, delays.length);
        for (const f of w.fired) assert.ok(f.at >= f.expiration);
        assertOrdered(w.fired);
      },
    ),
    { numRuns: 200 },
  );
});

test('adds interleaved with 1 ms steps fire no earlier than their delay and at most one tick late', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('add' as const), delay: fc.integer({ min: 0, max: 3_000 }) }),
    fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 300 }) }),
  );
  fc.assert(
    fc.property(
      fc.constantFrom(1, 4, 10),
      fc.constantFrom(2, 8, 60),
      fc.integer({ min: 0, max: 10_000 }),
      fc.array(op, { maxLength: 60 }),
      (tickMs, wheelSize, start, ops) => {
        const w = virtualWheel(tickMs, wheelSize, start);
        let id = 0;
        let now = start;
        let last = start;
        const step = (to: number) => {
          while (now < to) w.advanceTo(++now);
        };
        for (const o of ops) {
          if (o.kind === 'add') {
            w.add(id++, o.delay);
            last = Math.max(last, now + o.delay);
          } else {
            step(now + o.ms);
          }
        }
        step(last + tickMs);
        assert.equal(w.fired.length, id);
        for (const f of w.fired) {
          assert.ok(f.at >= f.expiration, `timer ${f.id} fired at ${f.at}, before ${f.expiration}`);
          assert.ok(
            f.at <= f.expiration + tickMs,
            `timer ${f.id} fired at ${f.at}, more than a tick after ${f.expiration}`,
          );
        }
        assertOrdered(w.fired);
      },
    ),
    { numRuns: 150 },
  );
});

test('fractional delays within one tick fire in expiration order, not in insertion order', () => {
  const w = virtualWheel(10, 8);
  w.add(0, 9.5);
  w.add(1, 1.25);
  w.add(2, 5);
  w.add(3, 1.25);
  assert.equal(w.advanceTo(9), 0);
  assert.equal(w.advanceTo(10), 4);
  assert.deepEqual(
    w.fired.map((f) => f.id),
    [1, 3, 2, 0],
  );
});

test('equal expirations fire in insertion order even when one arrives by cascade', () => {
  // tickMs 1, wheelSize 8: at t=0 a 20 ms timer goes to the overflow wheel (bucket 16..23); at
  // t=13 a 7 ms timer for the same instant fits the lowest wheel directly. The older one still
  // fires first.
  const w = virtualWheel(1, 8);
  w.add(0, 20);
  w.advanceTo(13);
  w.add(1, 7);
  w.add(2, 7);
  assert.equal(w.advanceTo(19), 0);
  assert.equal(w.advanceTo(20), 3);
  assert.deepEqual(
    w.fired.map((f) => f.id),
    [0, 1, 2],
  );
});

test('a single advance over a long gap fires everything in order, with the clock far from 0', () => {
  const start = 1_700_000_000_000;
  const w = virtualWheel(1, 16, start);
  const delays = [50_000, 3, 70, 70, 999, 0, 65_536, 4_096, 3];
  delays.forEach((d, id) => w.add(id, d));
  assert.equal(w.advanceTo(start + 100_000), delays.length);
  assertOrdered(w.fired);
  assert.deepEqual(
    w.fired.map((f) => f.id),
    [5, 1, 8, 2, 3, 4, 7, 0, 6],
  );
});
