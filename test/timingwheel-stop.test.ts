import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Timer } from '../src/timingwheel/index.js';
import { TimingWheel } from '../src/timingwheel/index.js';

function virtualWheel(tickMs: number, wheelSize: number) {
  const clock = { now: 0 };
  const wheel = new TimingWheel({ tickMs, wheelSize, now: () => clock.now });
  const advanceTo = (ms: number) => {
    clock.now = ms;
    return wheel.advance(ms);
  };
  return { clock, wheel, advanceTo };
}

test('a stopped timer never fires; stop() returns true once, then false', () => {
  const w = virtualWheel(1, 8);
  let fired = 0;
  const timer = w.wheel.afterFunc(5, () => fired++);
  const other = w.wheel.afterFunc(5, () => fired++);
  assert.equal(timer.stop(), true);
  assert.equal(timer.stop(), false);
  assert.equal(w.wheel.size, 1);
  assert.equal(w.advanceTo(100), 1);
  assert.equal(fired, 1);
  assert.equal(other.stop(), false, 'stop() after firing');
});

test('stopping the only timer of a bucket leaves nothing to wake up for', () => {
  const w = virtualWheel(1, 8);
  const timer = w.wheel.afterFunc(500, () => assert.fail('stopped timer fired'));
  assert.equal(w.wheel.nextExpiration(), 448);
  timer.stop();
  assert.equal(w.wheel.nextExpiration(), Infinity);
  assert.equal(w.wheel.size, 0);
});

test('a timer stopped after it cascaded to a lower wheel never fires', () => {
  const w = virtualWheel(1, 8);
  const timer = w.wheel.afterFunc(100, () => assert.fail('stopped timer fired'));
  let witness = 0;
  w.wheel.afterFunc(100, () => witness++);
  // 100 starts in the 64 ms wheel (bucket 64..127), moves to the 8 ms wheel at 64 and to the
  // 1 ms wheel at 96.
  w.advanceTo(64);
  assert.equal(w.wheel.nextExpiration(), 96);
  w.advanceTo(97);
  assert.equal(w.wheel.nextExpiration(), 100);
  assert.equal(timer.stop(), true);
  assert.equal(timer.stop(), false);
  assert.equal(w.advanceTo(1000), 1);
  assert.equal(witness, 1);
});

test('a timer stopped by another callback of the same expiration never fires', () => {
  const w = virtualWheel(1, 8);
  const order: string[] = [];
  let victim: Timer | null = null;
  let stopResult: boolean | null = null;
  // The killer sits in the overflow wheel since t=0; the victim is added at t=13 for the same
  // instant and fits the lowest wheel directly. The killer was added first, so it fires first.
  w.wheel.afterFunc(20, () => {
    order.push('killer');
    stopResult = victim!.stop();
  });
  w.advanceTo(13);
  victim = w.wheel.afterFunc(7, () => order.push('victim'));
  w.wheel.afterFunc(7, () => order.push('bystander'));
  assert.equal(w.advanceTo(20), 2);
  assert.deepEqual(order, ['killer', 'bystander']);
  assert.equal(stopResult, true);
  assert.equal(w.wheel.size, 0);
});

test('a timer stopping itself from its own callback gets false; a later one it stops gets true', () => {
  const w = virtualWheel(1, 8);
  const results: boolean[] = [];
  let later: Timer | null = null;
  const self: Timer = w.wheel.afterFunc(3, () => {
    results.push(self.stop());
    results.push(later!.stop());
  });
  later = w.wheel.afterFunc(30, () => assert.fail('stopped timer fired'));
  assert.equal(w.advanceTo(100), 1);
  assert.deepEqual(results, [false, true]);
});

test('a zero-delay timer stopped before the next advance never fires', () => {
  const w = virtualWheel(1, 8);
  const timer = w.wheel.afterFunc(0, () => assert.fail('stopped timer fired'));
  assert.equal(w.wheel.size, 1);
  assert.equal(timer.stop(), true);
  assert.equal(w.advanceTo(10), 0);
});

test('wheel.stop() cancels every pending timer on every level and in the due list', () => {
  const w = virtualWheel(1, 8);
  let fired = 0;
  const timers = [0, 1, 7, 9, 63, 65, 600, 5000].map((d) => w.wheel.afterFunc(d, () => fired++));
  const repeating = w.wheel.scheduleFunc(10, () => fired++);
  w.advanceTo(8);
  const firedBefore = fired;
  assert.equal(firedBefore, 3, 'the 0, 1 and 7 ms timers');
  w.wheel.stop();
  assert.equal(w.wheel.size, 0);
  assert.equal(w.wheel.nextExpiration(), Infinity);
  assert.equal(w.advanceTo(100_000), 0);
  assert.equal(fired, firedBefore);
  assert.deepEqual(
    timers.map((t) => t.stop()),
    timers.map(() => false),
  );
  assert.equal(repeating.stop(), false);
  // The wheel stays usable.
  w.wheel.afterFunc(5, () => fired++);
  assert.equal(w.advanceTo(100_005), 1);
  assert.equal(fired, firedBefore + 1);
});

test('wheel.stop() from inside a callback cancels the rest of the same batch', () => {
  const w = virtualWheel(1, 8);
  const order: number[] = [];
  w.wheel.afterFunc(10, () => order.push(0));
  w.wheel.afterFunc(10, () => {
    order.push(1);
    w.wheel.stop();
  });
  w.wheel.afterFunc(10, () => order.push(2));
  w.wheel.afterFunc(11, () => order.push(3));
  assert.equal(w.advanceTo(20), 2);
  assert.deepEqual(order, [0, 1]);
  assert.equal(w.wheel.size, 0);
});
