import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../src/errors.js';
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

test('a throwing callback does not stop the others; advance rethrows the first error afterwards', () => {
  const w = virtualWheel(1, 8);
  const first = new Error('first');
  const second = new Error('second');
  const order: string[] = [];
  w.wheel.afterFunc(5, () => order.push('a'));
  w.wheel.afterFunc(5, () => {
    order.push('b');
    throw first;
  });
  w.wheel.afterFunc(5, () => order.push('c'));
  w.wheel.afterFunc(9, () => {
    order.push('d');
    throw second;
  });
  w.wheel.afterFunc(70, () => order.push('e'));
  w.wheel.afterFunc(200, () => order.push('f'));
  assert.throws(
    () => w.advanceTo(100),
    (err) => err === first,
  );
  assert.deepEqual(order, ['a', 'b', 'c', 'd', 'e']);
  assert.equal(w.wheel.size, 1);
  // The wheel still works, and the dropped second error is not rethrown later.
  assert.equal(w.advanceTo(300), 1);
  assert.deepEqual(order, ['a', 'b', 'c', 'd', 'e', 'f']);
});

test('a thrown non-Error value (even undefined) is rethrown as is', () => {
  const w = virtualWheel(1, 8);
  w.wheel.afterFunc(1, () => {
    throw undefined;
  });
  let caught: unknown = 'nothing';
  try {
    w.advanceTo(1);
  } catch (err) {
    caught = err;
  }
  assert.equal(caught, undefined);
  assert.equal(w.advanceTo(2), 0);
});

function assertInvalid(fn: () => unknown, name: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, `got ${String(err)}`);
    assert.equal(err.code, 'ERR_GEVENT_INVALID_ARGUMENT');
    assert.match(err.message, /^gevent: /);
    assert.ok(err.message.includes(name), `${err.message} should name ${name}`);
    return true;
  });
}

test('bad arguments throw InvalidArgumentError naming the value', () => {
  const wheel = new TimingWheel({ tickMs: 1, now: () => 0 });
  const noop = () => {};
  for (const delay of [-1, NaN, Infinity, 2 ** 60, '5', null, undefined]) {
    assertInvalid(() => wheel.afterFunc(delay as number, noop), 'delayMs');
  }
  for (const fn of [undefined, null, 'f', {}]) {
    assertInvalid(() => wheel.afterFunc(1, fn as () => void), 'fn');
    assertInvalid(() => wheel.scheduleFunc(1, fn as () => void), 'fn');
  }
  for (const schedule of [0, -5, NaN, Infinity, null, {}, { next: 1 }, 'x']) {
    assertInvalid(() => wheel.scheduleFunc(schedule as number, noop), 'schedule');
  }
  for (const tickMs of [0, -1, 1.5, NaN, '10']) {
    assertInvalid(() => new TimingWheel({ tickMs: tickMs as number }), 'tickMs');
  }
  for (const wheelSize of [0, 1, 2.5, '60']) {
    assertInvalid(() => new TimingWheel({ wheelSize: wheelSize as number }), 'wheelSize');
  }
  assertInvalid(() => new TimingWheel({ now: 5 as unknown as () => number }), 'now');
  assertInvalid(() => new TimingWheel(null as unknown as object), 'options');
  for (const now of [NaN, Infinity, '1']) {
    assertInvalid(() => wheel.advance(now as number), 'nowMs');
  }
  assertInvalid(() => new TimingWheel({ now: () => NaN }), 'now()');
  assert.equal(wheel.size, 0);
});
