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

test('an empty wheel has size 0 and nextExpiration Infinity, and advance fires nothing', () => {
  const w = virtualWheel(1, 8);
  assert.equal(w.wheel.size, 0);
  assert.equal(w.wheel.nextExpiration(), Infinity);
  assert.equal(w.advanceTo(1_000_000), 0);
  assert.equal(new TimingWheel().nextExpiration(), Infinity);
});

test('nextExpiration is the earliest bucket, rounded up to the tick; size counts pending timers', () => {
  const w = virtualWheel(10, 60, 3);
  const a = w.wheel.afterFunc(45, () => {});
  assert.equal(a.expiration, 48);
  assert.equal(w.wheel.nextExpiration(), 50);
  const b = w.wheel.afterFunc(20, () => {});
  assert.equal(w.wheel.nextExpiration(), 30);
  w.wheel.scheduleFunc(100, () => {});
  assert.equal(w.wheel.size, 3);
  b.stop();
  assert.equal(w.wheel.size, 2);
  assert.equal(w.wheel.nextExpiration(), 50);
  assert.equal(w.advanceTo(49), 0, 'the 10 ms tick holds the 48 ms timer until 50');
  assert.equal(w.advanceTo(50), 1);
  assert.equal(w.wheel.size, 1);
  assert.equal(w.wheel.nextExpiration(), 110);
  assert.equal(w.advanceTo(110), 1);
  assert.equal(w.wheel.size, 1, 'a repeating timer stays pending');
  assert.equal(w.wheel.nextExpiration(), 210);
});

test('a zero-delay timer never runs synchronously; it fires on the next advance, even at the same time', () => {
  const w = virtualWheel(1, 8, 10);
  w.advanceTo(10);
  let fired = 0;
  w.wheel.afterFunc(0, () => fired++);
  assert.equal(fired, 0);
  assert.ok(w.wheel.nextExpiration() <= 10);
  assert.equal(w.advanceTo(10), 1);
  assert.equal(fired, 1);
  assert.equal(w.wheel.nextExpiration(), Infinity);
});

test('callbacks may add timers; those due by the advance time fire in the same advance, in order', () => {
  const w = virtualWheel(1, 8);
  const order: string[] = [];
  w.wheel.afterFunc(10, () => {
    order.push(`a@${w.clock.now}`);
    // The clock reads 50 during this advance: this one expires at 50, after b (20).
    w.wheel.afterFunc(0, () => order.push(`zero@${w.clock.now}`));
    w.wheel.afterFunc(30, () => order.push(`later@${w.clock.now}`));
  });
  w.wheel.afterFunc(20, () => order.push(`b@${w.clock.now}`));
  assert.equal(w.advanceTo(50), 3);
  assert.deepEqual(order, ['a@50', 'b@50', 'zero@50']);
  assert.equal(w.advanceTo(79), 0);
  assert.equal(w.advanceTo(80), 1);
  assert.deepEqual(order, ['a@50', 'b@50', 'zero@50', 'later@80']);
});

test('a callback re-arming itself with zero delay waits for the next advance instead of spinning', () => {
  const w = virtualWheel(1, 8);
  let runs = 0;
  const rearm = () => {
    runs++;
    w.wheel.afterFunc(0, rearm);
  };
  w.wheel.afterFunc(0, rearm);
  for (let i = 0; i < 5; i++) assert.equal(w.advanceTo(0), 1);
  assert.equal(runs, 5);
  // The one due at 0, then the one it re-armed for 10; that one's own re-arm is due, so it waits.
  assert.equal(w.advanceTo(10), 2);
  assert.equal(w.wheel.size, 1);
  assert.ok(w.wheel.nextExpiration() <= 10);
  w.wheel.stop();
});

test('advance called from inside a callback does nothing and returns 0', () => {
  const w = virtualWheel(1, 8);
  const nested: number[] = [];
  w.wheel.afterFunc(1, () => nested.push(w.wheel.advance(100)));
  w.wheel.afterFunc(50, () => nested.push(-1));
  assert.equal(w.advanceTo(1), 1);
  assert.deepEqual(nested, [0]);
  assert.equal(w.wheel.size, 1);
});

test('advance() without an argument reads the injected clock', () => {
  const w = virtualWheel(1, 8);
  let fired = 0;
  w.wheel.afterFunc(5, () => fired++);
  w.clock.now = 4;
  assert.equal(w.wheel.advance(), 0);
  w.clock.now = 5;
  assert.equal(w.wheel.advance(), 1);
  assert.equal(fired, 1);
});
