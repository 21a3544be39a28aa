import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimingWheel } from '../src/timingwheel/index.js';

/** Deterministic 32-bit PRNG (mulberry32), so a failure reproduces. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const kTimers = 100_000;
const kMaxDelayMs = 600_000;

test('100,000 timers with random delays each fire exactly once, in order, never early', () => {
  const random = prng(42);
  const clock = { now: 0 };
  const wheel = new TimingWheel({ tickMs: 1, wheelSize: 64, now: () => clock.now });
  const delays = new Float64Array(kTimers);
  const firedCount = new Uint8Array(kTimers);
  let lastExpiration = -1;
  let lastId = -1;
  let outOfOrder = 0;
  let early = 0;
  for (let id = 0; id < kTimers; id++) {
    const delay = Math.floor(random() * kMaxDelayMs);
    delays[id] = delay;
    wheel.afterFunc(delay, () => {
      firedCount[id]!++;
      if (clock.now < delay) early++;
      if (delay < lastExpiration || (delay === lastExpiration && id < lastId)) outOfOrder++;
      lastExpiration = delay;
      lastId = id;
    });
  }
  assert.equal(wheel.size, kTimers);
  let total = 0;
  while (clock.now < kMaxDelayMs) {
    clock.now += 997;
    total += wheel.advance(clock.now);
  }
  assert.equal(total, kTimers);
  assert.equal(early, 0);
  assert.equal(outOfOrder, 0);
  assert.ok(firedCount.every((n) => n === 1));
  assert.equal(wheel.size, 0);
  assert.equal(wheel.nextExpiration(), Infinity);
});

test('100,000 timers, every other one stopped: only the rest fire', () => {
  const random = prng(7);
  const clock = { now: 0 };
  const wheel = new TimingWheel({ tickMs: 10, wheelSize: 60, now: () => clock.now });
  let fired = 0;
  let firedStopped = 0;
  const timers = [];
  for (let id = 0; id < kTimers; id++) {
    const stopped = id % 2 === 0;
    timers.push(wheel.afterFunc(random() * kMaxDelayMs, () => (stopped ? firedStopped++ : fired++)));
  }
  for (let id = 0; id < kTimers; id += 2) assert.equal(timers[id]!.stop(), true);
  assert.equal(wheel.size, kTimers / 2);
  clock.now = kMaxDelayMs;
  assert.equal(wheel.advance(), kTimers / 2);
  assert.equal(fired, kTimers / 2);
  assert.equal(firedStopped, 0);
  assert.equal(wheel.size, 0);
});
