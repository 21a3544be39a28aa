/**
 * A server with no address at all (a loop for outbound connections, once they exist): `serving`
 * fires with no addrs, `tick` runs, broadcast reaches every loop's `message`, and both
 * Server.shutdown() and Action.Shutdown from tick settle it, leaving no fd and no worker thread;
 * with one loop and with two (the acceptor then has no listener).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { listen, serve } from '../src/index.js';
import { backendsUnderTest, openFdCount, waitFor, within, assertNoFdLeak } from './helpers.js';

const fixture = new URL('./fixtures/no-listener-events.js', import.meta.url);
let runs = 0;

/** The fixture's URL for `loops` loops (a fresh query each time, so each run has its own module state). */
function eventsUrl(loops: number, stopAfter = 0): URL {
  const url = new URL(fixture);
  url.searchParams.set('loops', String(loops));
  url.searchParams.set('stopAfter', String(stopAfter));
  url.searchParams.set('run', String(runs++));
  return url;
}

/** The threads of this process (the main thread, libuv's pool, V8's helpers, worker threads). */
function threadCount(): number {
  return readdirSync('/proc/self/task').length;
}

const backends = await backendsUnderTest();
for (const backend of backends) {
  for (const loops of backend === 'native' ? [1, 2] : [1]) {
    describe(`no listener (${backend}, ${loops} loop${loops > 1 ? 's' : ''})`, () => {
      test('serving sees no addrs, tick runs, broadcast reaches every loop, Server.shutdown() settles with no fd or thread left', async () => {
        const fds = openFdCount();
        const threads = threadCount();
        const counts = new Int32Array(new SharedArrayBuffer(4 * (1 + loops)));
        const server = await listen(eventsUrl(loops), { backend, workerData: { counts: counts.buffer } });
        assert.deepEqual(server.addrs, []);
        assert.equal(server.numLoops, loops);
        assert.equal(server.backend, backend);
        await waitFor(() => Atomics.load(counts, 0) >= 3, 'three ticks');
        server.broadcast('ping');
        await waitFor(() => counts.slice(1).every((n) => n === 1), 'the broadcast on every loop');
        assert.equal(server.connections, 0);
        await within(server.shutdown(), 10_000, 'shutdown to settle');
        await server.closed;
        const ticks = Atomics.load(counts, 0);
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(Atomics.load(counts, 0), ticks, 'no tick after the shutdown');
        assertNoFdLeak(fds);
        assert.ok(threadCount() <= threads, `threads ${threadCount()} after, ${threads} before`);
      });

      test('Action.Shutdown from tick settles serve() with no addresses', async () => {
        const fds = openFdCount();
        const counts = new Int32Array(new SharedArrayBuffer(4 * (1 + loops)));
        await within(
          serve(eventsUrl(loops, 5), { backend, workerData: { counts: counts.buffer } }),
          10_000,
          'serve() to settle',
        );
        assert.equal(Atomics.load(counts, 0), 5);
        assertNoFdLeak(fds);
      });
    });
  }
}
