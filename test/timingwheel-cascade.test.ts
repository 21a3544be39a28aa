import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimingWheel } from '../src/timingwheel/index.js';

function virtualWheel(tickMs: number, wheelSize: number, startMs = 0) {
  const clock = { now: startMs };
  const wheel = new TimingWheel({ tickMs, wheelSize, now: () => clock.now });
  const advanceTo = (ms: number) => {
    clock.now = ms;
    return wheel.advance(ms);
  };
  return { clock, wheel, advanceTo };
}

for (const start of [0, 1234]) {
  test(`timers in overflow wheels cascade down and fire on time (tick 1, size 8, clock starting at ${start})`, () => {
    // Spans: 8 ms, then 64, 512, 4096, 32768: these delays land on five different levels.
    const delays = [7, 9, 63, 65, 600, 5000];
    const w = virtualWheel(1, 8, start);
    const firedAt = new Map<number, number>();
    for (const d of delays) w.wheel.afterFunc(d, () => firedAt.set(d, w.clock.now));
    assert.equal(w.wheel.size, delays.length);
    for (let t = start + 1; t <= start + 5001; t++) {
      const before = w.wheel.size;
      const fired = w.advanceTo(t);
      assert.equal(w.wheel.size, before - fired);
      for (const d of delays) {
        if (start + d < t && !firedAt.has(d)) assert.fail(`timer ${d} had not fired at ${t}`);
      }
    }
    assert.equal(firedAt.size, delays.length);
    for (const d of delays) {
      const at = firedAt.get(d)! - start;
      assert.ok(at >= d, `timer ${d} fired early, at ${at}`);
      assert.ok(at <= d + 1, `timer ${d} fired late, at ${at}`);
    }
    assert.equal(w.wheel.size, 0);
  });
}

test('jumping from nextExpiration to nextExpiration reaches a far timer in a few hops, never scanning empty slots', () => {
  const w = virtualWheel(1, 8);
  let firedAt = -1;
  w.wheel.afterFunc(5000, () => (firedAt = w.clock.now));
  const hops: number[] = [];
  while (w.wheel.size > 0) {
    const next = w.wheel.nextExpiration();
    assert.ok(next <= 5000 && next > (hops.at(-1) ?? 0), `hop to ${next}`);
    hops.push(next);
    w.advanceTo(next);
  }
  assert.equal(firedAt, 5000);
  // One hop per level the timer passes through: 4096, 4608, 4992, 5000.
  assert.deepEqual(hops, [4096, 4608, 4992, 5000]);
  assert.equal(w.wheel.nextExpiration(), Infinity);
});

test('nextExpiration never lies past the earliest pending timer while timers cascade', () => {
  const w = virtualWheel(1, 4);
  const pending = new Set<number>();
  for (const d of [3, 17, 18, 70, 255, 256, 1025, 4000]) {
    pending.add(d);
    w.wheel.afterFunc(d, () => pending.delete(d));
  }
  while (pending.size > 0) {
    const next = w.wheel.nextExpiration();
    assert.ok(next <= Math.min(...pending), `nextExpiration ${next} is after pending timer ${Math.min(...pending)}`);
    w.advanceTo(next);
  }
  assert.equal(w.wheel.size, 0);
});
