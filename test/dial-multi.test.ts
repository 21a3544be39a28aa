/**
 * Server.dial() on a client-only server with two loops (worker threads; native backend only):
 * RoundRobin puts successive dials on loops 0, 1, 0, 1, and so does LeastConnections, since each
 * loop counts the connections it dialled (all four would land on loop 0 otherwise); each `opened` sees `c.outbound` and the
 * dial's context, structured-cloned to its thread; Server.dial resolves with nothing once it has
 * opened; a refused dial rejects with a DialError that kept its class across the thread; stats
 * count the dials per loop. A pending Server.dial is cancelled on its worker by its AbortSignal
 * and by a shutdown (DialError ECANCELED).
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { DialError, LoadBalance, listen } from '../src/index.js';
import { backendsUnderTest, freePort, hangingListener, havePython, waitFor, within } from './helpers.js';

const fixture = new URL('./fixtures/dial-events.js', import.meta.url);
const native = (await backendsUnderTest()).includes('native');

describe('Server.dial() with two loops (native)', { skip: native ? false : 'needs the native backend' }, () => {
  for (const lb of [LoadBalance.RoundRobin, LoadBalance.LeastConnections]) {
    test(`${LoadBalance[lb]} spreads dials over the loops (LeastConnections counts the dialled ones); opened sees outbound and the cloned context`, async () => {
      const socks: Socket[] = [];
      const peer = createServer((s) => void socks.push(s.resume()));
      await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
      const port = (peer.address() as { port: number }).port;
      const cells = new Int32Array(new SharedArrayBuffer(4 * 4));
      const url = new URL(fixture);
      url.searchParams.set('loops', '2');
      url.searchParams.set('lb', String(lb));
      const server = await listen(url, { backend: 'native', workerData: { cells: cells.buffer } });
      try {
        assert.equal(server.numLoops, 2);
        for (let n = 0; n < 4; n++) {
          const r = await within(
            server.dial(`tcp://127.0.0.1:${port}`, { context: { n, tag: 'clone me' } }),
            10_000,
            `dial ${n}`,
          );
          assert.equal(r, undefined);
          assert.notEqual(Atomics.load(cells, n), 0, `opened ran for dial ${n} before it resolved`);
        }
        assert.deepEqual([...cells], [1101, 1102, 1101, 1102]);
        const stats = server.stats();
        assert.equal(stats.dialed, 4);
        assert.deepEqual(
          stats.loops.map((l) => l.dialed),
          [2, 2],
        );
        await waitFor(() => socks.length === 4, 'the peer to accept all four');
        const target = `tcp://127.0.0.1:${await freePort()}`;
        await assert.rejects(
          server.dial(target, { context: { n: 0 } }),
          (err: unknown) => err instanceof DialError && err.errno === 'ECONNREFUSED' && err.address === target,
        );
        await assert.rejects(
          server.dial(`tcp://127.0.0.1:${port}`, { context: () => 1 }),
          /dial option context must be a structured-clonable value/,
        );
      } finally {
        await within(server.shutdown(), 10_000, 'shutdown');
        for (const s of socks) s.destroy();
        await new Promise<void>((resolve) => peer.close(() => resolve()));
      }
    });
  }

  test(
    'a pending dial on a worker loop: its AbortSignal and a shutdown cancel it (ECANCELED)',
    { skip: havePython ? false : 'needs python3 for a listener that never accepts' },
    async () => {
      const h = await hangingListener();
      const cells = new Int32Array(new SharedArrayBuffer(4 * 4));
      const url = new URL(fixture);
      url.searchParams.set('loops', '2');
      url.searchParams.set('lb', String(LoadBalance.RoundRobin));
      url.searchParams.set('run', 'cancel');
      const server = await listen(url, { backend: 'native', workerData: { cells: cells.buffer } });
      try {
        const target = `tcp://127.0.0.1:${h.port}`;
        const isCancel = (err: unknown): boolean =>
          err instanceof DialError && err.errno === 'ECANCELED' && err.address === target;
        const ac = new AbortController();
        const aborted = server.dial(target, { context: { n: 0 }, signal: ac.signal });
        setTimeout(() => ac.abort(), 50);
        await assert.rejects(within(aborted, 10_000, 'the abort'), isCancel);
        const pending = [server.dial(target, { context: { n: 1 } }), server.dial(target, { context: { n: 2 } })];
        await new Promise((r) => setTimeout(r, 50));
        const stopping = server.shutdown();
        await Promise.all(pending.map((p) => assert.rejects(within(p, 10_000, 'the shutdown'), isCancel)));
        await within(stopping, 10_000, 'shutdown');
        assert.deepEqual([...cells], [0, 0, 0, 0], 'opened never ran');
      } finally {
        await within(server.shutdown(), 10_000, 'shutdown');
        await h.close();
      }
    },
  );
});
