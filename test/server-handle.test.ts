/**
 * listen() and the Server handle: bound addresses, live connection counts and stats read without a
 * message to the loops, shutdown() and `await using`, broadcast() and `init` with workerData on one
 * loop and on several, and options or event members nobody defined refused by name.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { HandlerError, InvalidArgumentError, listen, serve, type Events, type Server } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readExactly,
  waitFor,
  assertNoFdLeak,
} from './helpers.js';

const backends = await backendsUnderTest();

async function endAll(socks: Socket[]): Promise<void> {
  for (const s of socks) s.end();
  await Promise.all(socks.map(socketClosed));
}

for (const backend of backends) {
  describe(`listen() and the Server handle (${backend})`, () => {
    test('resolves after serving with the bound addresses; serving got the same object', async () => {
      let seen: Server | null = null;
      const server = await listen({ serving: (s) => void (seen = s) }, { backend }, 'tcp://127.0.0.1:0');
      assert.equal(seen, server);
      assert.equal(server.numLoops, 1);
      assert.equal(server.backend, backend);
      assert.ok(server.addrs[0]!.port > 0);
      await server.shutdown();
      await server.closed;
    });

    test('connections and stats() count what the clients did', async () => {
      const fds = openFdCount();
      const server = await listen(
        {
          data(_c, input) {
            const out = input.bytes();
            input.retrieveAll();
            return out;
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const socks: Socket[] = [];
      for (let i = 0; i < 5; i++) socks.push(await connectTo(server.addrs[0]!));
      await waitFor(() => server.connections === 5, 'connections to reach 5');
      const payload = Buffer.alloc(256 * 1024, 9);
      for (const s of socks) s.write(payload);
      for (const s of socks) assert.equal((await readExactly(s, payload.length)).length, payload.length);
      await waitFor(
        () => server.stats().bytesWritten === 5 * payload.length,
        'bytesWritten to reach what the clients read',
      );
      let st = server.stats();
      assert.equal(st.connections, 5);
      assert.equal(st.accepted, 5);
      assert.equal(st.bytesRead, 5 * payload.length);
      assert.equal(st.loops.length, 1);
      assert.equal(st.loops[0]!.bytesRead, st.bytesRead);
      await endAll(socks.splice(0, 2));
      await waitFor(() => server.connections === 3, 'connections to fall to 3');
      st = server.stats();
      assert.equal(st.closed, 2);
      await endAll(socks);
      await waitFor(() => server.connections === 0, 'connections to fall to 0');
      await server.shutdown();
      assertNoFdLeak(fds);
    });

    test('shutdown() settles after every connection closed; closed settles; a second call waits the same', async () => {
      let closes = 0;
      const server = await listen({ closed: () => void closes++ }, { backend }, 'tcp://127.0.0.1:0');
      const s = await connectTo(server.addrs[0]!);
      await waitFor(() => server.connections === 1, 'the connection');
      const a = server.shutdown({ grace: 100 });
      const b = server.shutdown();
      await Promise.all([a, b, server.closed]);
      assert.equal(closes, 1);
      await socketClosed(s.resume());
    });

    test('await using shuts the server down at the end of the scope', async () => {
      let port = 0;
      {
        await using server = await listen({}, { backend }, 'tcp://127.0.0.1:0');
        port = server.addrs[0]!.port;
      }
      const c = await new Promise<string>((resolve) => {
        import('node:net').then(({ connect }) => {
          const s = connect(port, '127.0.0.1');
          s.once('connect', () => (s.destroy(), resolve('connected')));
          s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? ''));
        });
      });
      assert.equal(c, 'ECONNREFUSED');
    });

    test('broadcast() reaches message on the loop; init gets workerData (cloned) and can broadcast', async () => {
      const got: unknown[] = [];
      let initData: unknown;
      let fromInit: ((v: unknown) => void) | null = null;
      const sab = new SharedArrayBuffer(4);
      const server = await listen(
        {
          init(loop) {
            initData = loop.workerData;
            fromInit = loop.broadcast;
            assert.equal(loop.loopIndex, 0);
            assert.equal(loop.numLoops, 1);
          },
          message: (v) => void got.push(v),
        },
        { backend, workerData: { sab, n: 1 } },
        'tcp://127.0.0.1:0',
      );
      const d = initData as { sab: SharedArrayBuffer; n: number };
      assert.equal(d.n, 1);
      new Int32Array(d.sab)[0] = 42;
      assert.equal(new Int32Array(sab)[0], 42, 'a SharedArrayBuffer in workerData is shared');
      server.broadcast({ hello: 1 });
      fromInit!('from init');
      await waitFor(() => got.length === 2, 'both messages');
      assert.deepEqual(got, [{ hello: 1 }, 'from init']);
      await server.shutdown();
    });

    test('listen() rejects like serve(): a bad address, serving throwing, init throwing', async () => {
      await assert.rejects(listen({}, { backend }, 'tcp://127.0.0.1:99999'), { code: 'ERR_GEVENT_BAD_ADDRESS' });
      const boom = new Error('serving');
      await assert.rejects(
        listen(
          {
            serving() {
              throw boom;
            },
          },
          { backend },
          'tcp://127.0.0.1:0',
        ),
        (e: unknown) => e instanceof HandlerError && e.cause === boom,
      );
      await assert.rejects(
        listen(
          {
            init() {
              throw boom;
            },
          },
          { backend },
          'tcp://127.0.0.1:0',
        ),
        (e: unknown) => e instanceof HandlerError && e.handler === 'init',
      );
      await assert.rejects(
        listen(
          {
            async init() {
              throw boom;
            },
          },
          { backend },
          'tcp://127.0.0.1:0',
        ),
        (e: unknown) => e instanceof HandlerError && e.cause === boom,
      );
    });

    test('an unknown option or events member is refused, naming it', async () => {
      await assert.rejects(listen({}, { backend, maxConections: 5 } as never, 'tcp://127.0.0.1:0'), (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.match(e.message, /options\.maxConections/);
        return true;
      });
      await assert.rejects(serve({ opend() {} } as Events, { backend }, 'tcp://127.0.0.1:0'), (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.match(e.message, /events\.opend/);
        return true;
      });
      await assert.rejects(listen({}, { backend, workerData: () => 1 }, 'tcp://127.0.0.1:0'), /options\.workerData/);
    });
  });
}

if (backends.includes('native')) {
  describe('the Server handle over several loops (native)', () => {
    const fixture = new URL('./fixtures/shared-events.js', import.meta.url);

    test('connections and stats() across 2 loops; broadcast reaches connections on both', async () => {
      const fds = openFdCount();
      const counts = new SharedArrayBuffer(8);
      const server = await listen(
        new URL(`${fixture.href}?loops=2&t=count`),
        { workerData: { counts } },
        'tcp://127.0.0.1:0',
      );
      assert.equal(server.numLoops, 2);
      const socks: Socket[] = [];
      const greetings: string[] = [];
      for (let i = 0; i < 4; i++) {
        const s = await connectTo(server.addrs[0]!);
        const line = (await readExactly(s, 12)).toString();
        greetings.push(line);
        socks.push(s);
      }
      assert.deepEqual(greetings.sort(), ['loop 0 of 0\n', 'loop 0 of 0\n', 'loop 1 of 1\n', 'loop 1 of 1\n']);
      await waitFor(() => server.connections === 4, 'connections to reach 4 across loops');
      const st = server.stats();
      assert.equal(st.loops.length, 2);
      assert.equal(st.loops[0]!.connections + st.loops[1]!.connections, 4);
      assert.equal(new Int32Array(counts)[0], 4, 'every loop added to the shared counter');
      socks[0]!.write('say hi');
      for (const s of socks) assert.equal((await readExactly(s, 8)).toString(), 'heard hi');
      server.broadcast('all');
      for (const s of socks) assert.equal((await readExactly(s, 9)).toString(), 'heard all');
      await waitFor(() => server.stats().bytesRead === 6, 'bytesRead');
      await endAll(socks);
      await waitFor(() => server.connections === 0, 'connections to fall to 0');
      await server.shutdown();
      assertNoFdLeak(fds);
    });

    test("the seed's test across loops: shut down when as many connections have closed as opened", async () => {
      const counts = new SharedArrayBuffer(8);
      const server = await listen(
        new URL(`${fixture.href}?loops=2&shutdownWhenIdle=1&t=seed`),
        { workerData: { counts } },
        'tcp://127.0.0.1:0',
      );
      const socks: Socket[] = [];
      for (let i = 0; i < 6; i++) socks.push(await connectTo(server.addrs[0]!));
      for (const s of socks) await readExactly(s, 12);
      await endAll(socks);
      await server.closed;
      const c = new Int32Array(counts);
      assert.equal(c[0], 6);
      assert.equal(c[1], 6);
    });
  });
}
