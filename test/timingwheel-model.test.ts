import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Timer } from '../src/timingwheel/index.js';
import { TimingWheel } from '../src/timingwheel/index.js';

type Op =
  | { kind: 'add'; delay: number; onFire: 'nothing' | 'add' | 'stop' | 'stopSelf'; arg: number }
  | { kind: 'stop'; pick: number }
  | { kind: 'wait'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      delay: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 5_000 })),
      onFire: fc.constantFrom('nothing' as const, 'add' as const, 'stop' as const, 'stopSelf' as const),
      arg: fc.nat(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('stop' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 700 }) }) },
);

interface Model {
  timer: Timer;
  expiration: number;
  /** 'pending' until it fires or is stopped. */
  state: 'pending' | 'fired' | 'stopped';
}

test('random adds, stops and advances, also from inside callbacks, agree with a plain model', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(1, 5),
      fc.constantFrom(2, 4, 60),
      fc.array(op, { maxLength: 80 }),
      (tickMs, wheelSize, ops) => {
        const clock = { now: 0 };
        const wheel = new TimingWheel({ tickMs, wheelSize, now: () => clock.now });
        const timers: Model[] = [];
        const stopAt = (pick: number) => {
          const m = timers[pick % timers.length];
          if (m === undefined) return;
          const wasPending = m.state === 'pending';
          assert.equal(m.timer.stop(), wasPending, `stop() of a ${m.state} timer`);
          if (wasPending) m.state = 'stopped';
        };
        const add = (delay: number, onFire: Op & { kind: 'add' }) => {
          const m: Model = { timer: null as unknown as Timer, expiration: clock.now + delay, state: 'pending' };
          m.timer = wheel.afterFunc(delay, () => {
            assert.equal(m.state, 'pending', 'a timer fired twice or after stop()');
            assert.ok(clock.now >= m.expiration, `fired at ${clock.now}, before ${m.expiration}`);
            m.state = 'fired';
            if (onFire.onFire === 'add') add(onFire.arg % 50, { ...onFire, onFire: 'nothing' });
            else if (onFire.onFire === 'stop') stopAt(onFire.arg);
            else if (onFire.onFire === 'stopSelf') assert.equal(m.timer.stop(), false);
          });
          timers.push(m);
        };
        const check = () => {
          const pending = timers.filter((m) => m.state === 'pending');
          assert.equal(wheel.size, pending.length);
          const earliest = Math.min(...pending.map((m) => m.expiration));
          if (pending.length === 0) assert.equal(wheel.nextExpiration(), Infinity);
          else assert.ok(wheel.nextExpiration() <= Math.ceil(earliest / tickMs) * tickMs);
        };
        for (const o of ops) {
          if (o.kind === 'add') add(o.delay, o);
          else if (o.kind === 'stop') stopAt(o.pick);
          else {
            clock.now += o.ms;
            wheel.advance(clock.now);
          }
          check();
        }
        // Drain: timers added by callbacks may need a few more advances.
        for (let i = 0; i < 10 && wheel.size > 0; i++) {
          clock.now += 6_000;
          wheel.advance(clock.now);
        }
        check();
        assert.equal(wheel.size, 0);
        assert.ok(timers.every((m) => m.state !== 'pending'));
      },
    ),
    { numRuns: 300 },
  );
});
