import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Scheduler, Timer } from '../src/timingwheel/index.js';
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

test('scheduleFunc(N) runs every N ms until stopped', () => {
  const w = virtualWheel(1, 8);
  const runs: number[] = [];
  const timer = w.wheel.scheduleFunc(10, () => runs.push(w.clock.now));
  assert.equal(timer.expiration, 10);
  for (let t = 1; t <= 100; t++) w.advanceTo(t);
  assert.deepEqual(runs, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  assert.equal(timer.expiration, 110);
  assert.equal(w.wheel.size, 1);
  assert.equal(timer.stop(), true);
  assert.equal(timer.stop(), false);
  assert.equal(w.wheel.size, 0);
  assert.equal(w.advanceTo(1000), 0);
  assert.equal(runs.length, 10);
});

test('scheduleFunc(N) is fixed-rate: one long advance runs every missed period, in order with other timers', () => {
  const w = virtualWheel(1, 8);
  const order: string[] = [];
  w.wheel.scheduleFunc(10, () => order.push(`tick@${w.clock.now}`));
  w.wheel.afterFunc(25, () => order.push('once'));
  assert.equal(w.advanceTo(40), 5);
  assert.deepEqual(order, ['tick@40', 'tick@40', 'once', 'tick@40', 'tick@40']);
});

test('scheduleFunc with a Scheduler runs at the times it returns and ends on a negative value', () => {
  const w = virtualWheel(1, 8, 100);
  const asked: number[] = [];
  const plan = [105, 112, 130];
  const scheduler: Scheduler = {
    next(prevMs) {
      asked.push(prevMs);
      return plan.shift() ?? -1;
    },
  };
  const runs: number[] = [];
  const timer = w.wheel.scheduleFunc(scheduler, () => runs.push(w.clock.now));
  assert.equal(timer.expiration, 105);
  for (let t = 101; t <= 300; t++) w.advanceTo(t);
  assert.deepEqual(runs, [105, 112, 130]);
  assert.deepEqual(asked, [100, 105, 112, 130], 'next() gets the previous scheduled time');
  assert.equal(w.wheel.size, 0);
  assert.equal(timer.stop(), false);
});

test('a Scheduler that refuses the first run returns a stopped timer', () => {
  for (const first of [-1, NaN, Infinity]) {
    const w = virtualWheel(1, 8);
    const timer = w.wheel.scheduleFunc({ next: () => first }, () => assert.fail('ran'));
    assert.equal(w.wheel.size, 0);
    assert.equal(timer.stop(), false);
    assert.equal(w.advanceTo(1000), 0);
  }
});

test('a repeating timer stopped from its own callback runs no more', () => {
  const w = virtualWheel(1, 8);
  let runs = 0;
  let stopResult: boolean | null = null;
  const timer: Timer = w.wheel.scheduleFunc(7, () => {
    if (++runs === 3) stopResult = timer.stop();
  });
  for (let t = 1; t <= 200; t++) w.advanceTo(t);
  assert.equal(runs, 3);
  assert.equal(stopResult, true);
  assert.equal(w.wheel.size, 0);
});

test('a Scheduler that always answers "now" runs once per advance instead of spinning', () => {
  const w = virtualWheel(1, 8);
  let runs = 0;
  w.wheel.scheduleFunc({ next: () => w.clock.now }, () => runs++);
  assert.equal(runs, 0, 'never runs synchronously');
  assert.equal(w.advanceTo(0), 1);
  assert.equal(w.advanceTo(0), 1);
  // Rescheduled for 5 by the run that was due at 0, then due again: the second waits.
  assert.equal(w.advanceTo(5), 2);
  assert.equal(w.advanceTo(5), 1);
  assert.equal(runs, 5);
  w.wheel.stop();
});

test('a Scheduler whose next() throws ends its schedule after that run; advance rethrows', () => {
  const w = virtualWheel(1, 8);
  const boom = new Error('no next');
  let calls = 0;
  let runs = 0;
  w.wheel.scheduleFunc(
    {
      next: (prev) => {
        if (++calls === 3) throw boom;
        return prev + 10;
      },
    },
    () => runs++,
  );
  for (let t = 1; t < 20; t++) w.advanceTo(t);
  assert.throws(
    () => w.advanceTo(20),
    (err) => err === boom,
  );
  assert.equal(runs, 2);
  assert.equal(w.wheel.size, 0);
  assert.equal(w.advanceTo(100), 0);
});

test('wheel.stop() cancels repeating timers', () => {
  const w = virtualWheel(1, 8);
  let runs = 0;
  w.wheel.scheduleFunc(5, () => runs++);
  w.wheel.scheduleFunc({ next: (prev) => prev + 3 }, () => runs++);
  w.advanceTo(10);
  assert.equal(runs, 5);
  w.wheel.stop();
  assert.equal(w.wheel.size, 0);
  assert.equal(w.advanceTo(1000), 0);
  assert.equal(runs, 5);
});
