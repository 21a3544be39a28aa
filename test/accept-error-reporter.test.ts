/**
 * AcceptErrorReporter: the first accept failure is reported at once; failures inside the next
 * second are held and reported together (with their count and the last errno) when that second
 * is over, even if no failure follows; stop() drops what is held.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Addr } from '../src/addr.js';
import { type AcceptError } from '../src/errors.js';
import { AcceptErrorReporter, kAcceptErrorReportMs } from '../src/loop/accept-errors.js';
import { sleep, waitFor } from './helpers.js';

function collector() {
  const got: { err: AcceptError; at: number }[] = [];
  const r = new AcceptErrorReporter((err) => got.push({ err: err as AcceptError, at: performance.now() }));
  r.setListenerAddrs([new Addr('tcp', '127.0.0.1', 5007)]);
  return { got, r };
}

test('the first failure is reported at once; the held ones follow a second later with their count', async () => {
  const { got, r } = collector();
  const t0 = performance.now();
  r.onAcceptError(0, 'EMFILE');
  assert.equal(got.length, 1);
  assert.equal(got[0]!.err.code, 'ERR_GEVENT_ACCEPT');
  assert.equal(got[0]!.err.errno, 'EMFILE');
  assert.equal(got[0]!.err.count, 1);
  assert.match(got[0]!.err.message, /127\.0\.0\.1:5007/);
  for (let i = 0; i < 5; i++) r.onAcceptError(0, i < 4 ? 'EMFILE' : 'ENFILE');
  assert.equal(got.length, 1, 'held inside the second');
  await waitFor(() => got.length === 2, 'the held failures reported', 3 * kAcceptErrorReportMs);
  assert.ok(got[1]!.at - t0 >= kAcceptErrorReportMs - 1, `reported ${(got[1]!.at - t0).toFixed(0)} ms after the first`);
  assert.equal(got[1]!.err.count, 5);
  assert.equal(got[1]!.err.errno, 'ENFILE', 'the last errno');
  await sleep(kAcceptErrorReportMs + 100);
  assert.equal(got.length, 2, 'nothing more without new failures');
  r.stop();
});

test('stop() drops held failures and later ones', async () => {
  const { got, r } = collector();
  r.onAcceptError(0, 'ENOBUFS');
  r.onAcceptError(0, 'ENOBUFS');
  r.stop();
  r.onAcceptError(0, 'ENOBUFS');
  await sleep(kAcceptErrorReportMs + 100);
  assert.equal(got.length, 1);
});
