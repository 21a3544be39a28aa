/**
 * The HTTP example's cached Date line: built once per second, refreshed by `tick` (refreshDate)
 * or lazily by a reader once its second has passed, and `tick`'s delay lands on the next second.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dateGeneration, dateLine, refreshDate } from '../examples/http/date.js';
import { httpEvents } from '../examples/http/events.js';
import { kDefaultLimits } from '../examples/http/parser.js';

const t0 = Date.UTC(2026, 10, 25, 19, 10, 2, 0);

test('the line is an IMF-fixdate for the second, rebuilt only when the second changes', () => {
  assert.equal(refreshDate(t0 + 250), 750, 'the delay to the next second');
  const gen = dateGeneration();
  assert.equal(dateLine(t0 + 999), 'Date: Wed, 25 Nov 2026 19:10:02 GMT\r\n');
  assert.equal(dateGeneration(), gen, 'no rebuild within the second');
  assert.equal(refreshDate(t0 + 500), 500);
  assert.equal(dateGeneration(), gen, 'a tick within the same second rebuilds nothing');
  assert.equal(dateLine(t0 + 1000), 'Date: Wed, 25 Nov 2026 19:10:03 GMT\r\n', 'a reader refreshes lazily');
  assert.equal(dateGeneration(), gen + 1);
});

test('tick refreshes the cache and asks to run again at the start of the next second', () => {
  const events = httpEvents({ loops: 1, limits: kDefaultLimits, log: false });
  const reply = events.tick!() as { delay: number };
  assert.ok(reply.delay > 0 && reply.delay <= 1000);
  const line = dateLine();
  const now = Date.now();
  const at = (ms: number): string => `Date: ${new Date(Math.floor(ms / 1000) * 1000).toUTCString()}\r\n`;
  assert.ok(line === at(now) || line === at(now - 1000), `${line} is the current second's`);
});
