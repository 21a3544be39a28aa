/**
 * `?reuseport`: several servers in one process share one port; connections keep being served
 * while some of them stop; stopping all frees the port. Without the option a second bind is
 * EADDRINUSE.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ListenError, serve, type Events } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectOutcome,
  connectTo,
  freePort,
  openFdCount,
  readExactly,
  startServer,
  type Running,
  assertNoFdLeak,
} from './helpers.js';

/** An echo server that counts its connections in `tally[i]`. */
function echo(tally: number[], i: number): Events {
  return {
    opened: () => void tally[i]!++,
    data(_c, input) {
      const out = input.bytes();
      input.retrieveAll();
      return out;
    },
  };
}

/** Connects `n` clients to `port`, each echoing one message; resolves when all closed. */
async function echoClients(port: number, n: number): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const s = await connectTo({ network: 'tcp', port, path: '' });
      const msg = Buffer.from(`hello ${i} on ${port}`);
      s.write(msg);
      assert.ok((await readExactly(s, msg.length)).equals(msg), `client ${i} got its echo`);
      s.end();
      await socketClosed(s);
    }),
  );
}

function isAddrInUse(err: unknown): boolean {
  assert.ok(err instanceof ListenError, `expected a ListenError, got ${String(err)}`);
  assert.equal(err.code, 'ERR_GEVENT_LISTEN');
  assert.equal(err.errno, 'EADDRINUSE');
  return true;
}

for (const backend of await backendsUnderTest()) {
  describe(`reuseport (${backend})`, () => {
    test("the seed's test: 5 servers on one fixed port with ?reuseport=true / =1 all start and serve", async () => {
      const fds = openFdCount();
      const port = await freePort();
      const tally = [0, 0, 0, 0, 0];
      const runs: Running[] = [];
      for (let i = 0; i < 5; i++) {
        const q = i % 2 === 0 ? 'reuseport=true' : 'reuseport=1';
        runs.push(await startServer(echo(tally, i), { backend }, `tcp://127.0.0.1:${port}?${q}`));
      }
      for (const r of runs) assert.equal(r.server.addrs[0]!.port, port);
      await echoClients(port, 20);
      assert.equal(
        tally.reduce((a, b) => a + b, 0),
        20,
        `connections per server: ${tally.join(', ')}`,
      );
      for (const r of runs) await r.stop();
      assert.equal(await connectOutcome(port), 'ECONNREFUSED');
      assertNoFdLeak(fds);
    });

    test('5 servers: the first on port 0 with ?reuseport=true, 4 more on its port; all serve; stopping all frees it', async () => {
      const fds = openFdCount();
      const tally = [0, 0, 0, 0, 0];
      const runs: Running[] = [await startServer(echo(tally, 0), { backend }, 'tcp://127.0.0.1:0?reuseport=true')];
      const port = runs[0]!.server.addrs[0]!.port;
      try {
        for (let i = 1; i < 5; i++) {
          const q = i % 2 === 0 ? 'reuseport=true' : 'reuseport=1';
          runs.push(await startServer(echo(tally, i), { backend }, `tcp://127.0.0.1:${port}?${q}`));
        }
        for (const r of runs) assert.equal(r.server.addrs[0]!.port, port);
        await echoClients(port, 20);
        assert.equal(
          tally.reduce((a, b) => a + b, 0),
          20,
          `connections per server: ${tally.join(', ')}`,
        );
      } finally {
        for (const r of runs) await r.stop();
      }
      assert.equal(await connectOutcome(port), 'ECONNREFUSED');
      const again = await startServer({}, { backend }, `tcp://127.0.0.1:${port}`);
      await again.stop();
      assertNoFdLeak(fds);
    });

    test('after the first two of three stop, the last still serves the shared port', async () => {
      const fds = openFdCount();
      const tally = [0, 0, 0];
      const port = await freePort();
      const first = await startServer(echo(tally, 0), { backend }, `tcp://127.0.0.1:${port}?reuseport=yes`);
      const second = await startServer(echo(tally, 1), { backend }, `tcp://127.0.0.1:${port}?reuseport=yes`);
      const third = await startServer(echo(tally, 2), { backend }, `tcp://127.0.0.1:${port}?reuseport=yes`);
      await first.stop();
      await second.stop();
      const before = [...tally];
      await echoClients(port, 6);
      assert.deepEqual(tally, [before[0], before[1], before[2]! + 6], 'only the running server gets connections');
      await third.stop();
      assert.equal(await connectOutcome(port), 'ECONNREFUSED');
      assertNoFdLeak(fds);
    });

    test('without reuseport a second server on the same port rejects with EADDRINUSE', async () => {
      const fds = openFdCount();
      const first = await startServer({}, { backend }, 'tcp://127.0.0.1:0');
      const port = first.server.addrs[0]!.port;
      let serving = 0;
      await assert.rejects(
        serve({ serving: () => void serving++ }, { backend }, `tcp://127.0.0.1:${port}`),
        isAddrInUse,
      );
      await assert.rejects(
        serve({ serving: () => void serving++ }, { backend }, `tcp://127.0.0.1:${port}?reuseport=true`),
        isAddrInUse,
      );
      assert.equal(serving, 0);
      assert.equal(await connectOutcome(port), 'connected', 'the first server still listens');
      await first.stop();
      assertNoFdLeak(fds);
    });

    test('a server without reuseport cannot join a port shared with reuseport', async () => {
      const fds = openFdCount();
      const first = await startServer({}, { backend }, 'tcp://127.0.0.1:0?reuseport=true');
      const port = first.server.addrs[0]!.port;
      await assert.rejects(serve({}, { backend }, `tcp://127.0.0.1:${port}`), isAddrInUse);
      await first.stop();
      assertNoFdLeak(fds);
    });
  });
}
