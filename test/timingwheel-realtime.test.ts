import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TimingWheel } from '../src/timingwheel/index.js';

function activeTimeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

test('start() fires real-time timers in order, never before their delay; stop() leaves no timeout behind', async () => {
  const baseline = activeTimeouts();
  const wheel = new TimingWheel({ tickMs: 1, wheelSize: 16 });
  wheel.start();
  assert.equal(activeTimeouts(), baseline, 'an idle wheel arms nothing');
  const fired: { delay: number; elapsed: number }[] = [];
  let done!: () => void;
  const allFired = new Promise<void>((resolve) => (done = resolve));
  const start = performance.now();
  // Added latest-first, so the driver must re-arm for each earlier timer.
  for (const delay of [30, 20, 10]) {
    wheel.afterFunc(delay, () => {
      fired.push({ delay, elapsed: performance.now() - start });
      if (fired.length === 3) done();
    });
  }
  assert.equal(activeTimeouts(), baseline + 1, 'one timeout drives the wheel');
  await allFired;
  assert.deepEqual(
    fired.map((f) => f.delay),
    [10, 20, 30],
  );
  for (const f of fired) assert.ok(f.elapsed >= f.delay, `the ${f.delay} ms timer fired after ${f.elapsed} ms`);
  assert.equal(wheel.size, 0);
  wheel.afterFunc(60_000, () => assert.fail('cancelled timer fired'));
  wheel.stop();
  assert.equal(wheel.size, 0);
  assert.equal(activeTimeouts(), baseline);
});

test('unref(): a started wheel with a far timer does not keep the process alive', async () => {
  const moduleUrl = new URL('../src/timingwheel/index.js', import.meta.url).href;
  const script = `
    import { TimingWheel } from ${JSON.stringify(moduleUrl)};
    const wheel = new TimingWheel({ tickMs: 10 });
    wheel.start();
    wheel.unref();
    wheel.afterFunc(60000, () => process.exit(3));
  `;
  const started = performance.now();
  await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    timeout: 10_000,
    cwd: fileURLToPath(new URL('.', import.meta.url)),
  });
  assert.ok(performance.now() - started < 10_000);
});
