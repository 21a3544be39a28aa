/**
 * Handlers that throw values no one expects (an object with no prototype, one whose toString
 * throws, a revoked Proxy, an Error whose message getter throws), return a revoked Proxy, or hide
 * their callbacks behind getters that throw: each closes only its connection (or reaches onError,
 * or rejects serve() with HandlerError), with the original value kept as `cause`, and the server
 * goes on serving everyone else.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, test } from 'node:test';
import {
  HandlerError,
  InvalidArgumentError,
  serve,
  type Conn,
  type Events,
  type RingBuffer,
  type Server,
} from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readEnd,
  readExactly,
  startServer,
  waitFor,
  assertNoFdLeak,
} from './helpers.js';

/** The odd values, made fresh for each use (a revoked Proxy cannot be un-revoked). */
const oddValues: Record<string, () => unknown> = {
  'Object.create(null)': () => Object.create(null),
  'an object whose toString throws': () => ({
    toString() {
      throw new Error('toString throws');
    },
  }),
  'a revoked Proxy': () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return proxy;
  },
  'an Error whose message getter throws': () => {
    const e = new Error('x');
    Object.defineProperty(e, 'message', {
      get() {
        throw new Error('message getter throws');
      },
    });
    return e;
  },
};

function echo(input: RingBuffer): Uint8Array {
  const out = input.bytes();
  input.retrieveAll();
  return out;
}

for (const backend of await backendsUnderTest()) {
  describe(`odd thrown values (${backend})`, () => {
    for (const [name, make] of Object.entries(oddValues)) {
      test(`data, opened and preWrite throwing ${name}: only that connection closes, with the value as cause`, async () => {
        const fds = openFdCount();
        const errs: (Error | null)[] = [];
        const onErrors: Error[] = [];
        let thrown: unknown[] = [];
        const throwFrom = { data: false, opened: false, preWrite: false };
        const run = await startServer(
          {
            opened() {
              if (throwFrom.opened) {
                const v = make();
                thrown.push(v);
                throw v;
              }
            },
            data(_c, input) {
              const text = Buffer.from(input.bytes()).toString();
              if (text === 'boom') {
                const v = make();
                thrown.push(v);
                throw v;
              }
              if (text === 'pre') throwFrom.preWrite = true;
              return echo(input);
            },
            preWrite() {
              if (throwFrom.preWrite) {
                throwFrom.preWrite = false;
                const v = make();
                thrown.push(v);
                throw v;
              }
            },
            closed(_c, err) {
              errs.push(err);
            },
          },
          { backend, onError: (e) => onErrors.push(e) },
          'tcp://127.0.0.1:0',
        );
        const good = await connectTo(run.server.addrs[0]!);
        good.write('ping');
        assert.equal((await readExactly(good, 4)).toString(), 'ping');

        // data throws.
        const bad = await connectTo(run.server.addrs[0]!);
        bad.write('boom');
        assert.equal((await readEnd(bad)).how, 'eof');
        await waitFor(() => errs.length === 1, 'closed for the throwing data');
        assert.ok(errs[0] instanceof HandlerError, `closed got ${String(errs[0])}`);
        assert.equal((errs[0] as HandlerError).handler, 'data');
        assert.equal(errs[0].cause, thrown[0]);
        assert.match(errs[0].message, /^gevent: the data handler threw: /);

        // opened throws.
        throwFrom.opened = true;
        thrown = [];
        const bad2 = await connectTo(run.server.addrs[0]!);
        assert.equal((await readEnd(bad2)).how, 'eof');
        await waitFor(() => errs.length === 2, 'closed for the throwing opened');
        throwFrom.opened = false;
        assert.ok(errs[1] instanceof HandlerError);
        assert.equal((errs[1] as HandlerError).handler, 'opened');
        assert.equal(errs[1].cause, thrown[0]);

        // preWrite throws: it goes to onError, the write still happens.
        thrown = [];
        good.write('pre');
        assert.equal((await readExactly(good, 3)).toString(), 'pre');
        await waitFor(() => onErrors.length === 1, 'onError for the throwing preWrite');
        assert.ok(onErrors[0] instanceof HandlerError);
        assert.equal(onErrors[0].cause, thrown[0]);

        // The first connection is still served.
        good.write('still');
        assert.equal((await readExactly(good, 5)).toString(), 'still');
        good.end();
        await socketClosed(good);
        await run.stop();
        assertNoFdLeak(fds);
      });

      test(`closed and UDP data throwing ${name} reach onError as HandlerError with the value as cause`, async () => {
        const onErrors: Error[] = [];
        const thrown: unknown[] = [];
        const run = await startServer(
          {
            data(_c, input) {
              if (Buffer.from(input.bytes()).toString() === 'boom') {
                const v = make();
                thrown.push(v);
                throw v;
              }
              return echo(input);
            },
            closed() {
              const v = make();
              thrown.push(v);
              throw v;
            },
          },
          { backend, onError: (e) => onErrors.push(e) },
          'tcp://127.0.0.1:0',
          'udp://127.0.0.1:0',
        );
        const s = await connectTo(run.server.addrs[0]!);
        s.end();
        await socketClosed(s);
        await waitFor(() => onErrors.length === 1, 'onError for the throwing closed');
        assert.ok(onErrors[0] instanceof HandlerError);
        assert.equal((onErrors[0] as HandlerError).handler, 'closed');
        assert.equal(onErrors[0].cause, thrown[0]);

        const u = createSocket('udp4');
        const replies: string[] = [];
        u.on('message', (m) => replies.push(m.toString()));
        await new Promise<void>((r) => u.bind(0, '127.0.0.1', () => r()));
        const udp = run.server.addrs[1]!;
        u.send('boom', udp.port, '127.0.0.1');
        await waitFor(() => onErrors.length === 2, 'onError for the throwing UDP data');
        assert.equal((onErrors[1] as HandlerError).handler, 'data');
        assert.equal(onErrors[1]!.cause, thrown[1]);
        u.send('after', udp.port, '127.0.0.1');
        await waitFor(() => replies.includes('after'), 'the UDP echo after the throw');
        u.close();
        await run.stop();
      });

      for (const handler of ['serving', 'tick'] as const) {
        test(`${handler} throwing ${name} rejects serve() with HandlerError`, async () => {
          let v: unknown;
          const events: Events = {
            [handler]() {
              v = make();
              throw v;
            },
          };
          await assert.rejects(serve(events, { backend }, 'tcp://127.0.0.1:0'), (err: unknown) => {
            assert.ok(err instanceof HandlerError, `rejected with ${String(err)}`);
            assert.equal(err.handler, handler);
            assert.equal(err.cause, v);
            return true;
          });
        });
      }
    }

    test('data returning a revoked Proxy closes that connection with HandlerError', async () => {
      const errs: (Error | null)[] = [];
      const run = await startServer(
        {
          data(_c, input) {
            input.retrieveAll();
            const { proxy, revoke } = Proxy.revocable({}, {});
            revoke();
            return proxy as unknown as Uint8Array;
          },
          closed(_c, err) {
            errs.push(err);
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.write('x');
      assert.equal((await readEnd(s)).how, 'eof');
      await waitFor(() => errs.length === 1, 'closed');
      assert.ok(errs[0] instanceof HandlerError, `closed got ${String(errs[0])}`);
      assert.ok(errs[0].cause instanceof TypeError);
      await run.stop();
    });

    test('a returned object whose out getter throws closes that connection with HandlerError, cause kept', async () => {
      const errs: (Error | null)[] = [];
      const boom = new Error('out getter');
      const run = await startServer(
        {
          data(_c, input) {
            input.retrieveAll();
            return {
              get out(): Uint8Array {
                throw boom;
              },
            };
          },
          closed(_c, err) {
            errs.push(err);
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.write('x');
      assert.equal((await readEnd(s)).how, 'eof');
      await waitFor(() => errs.length === 1, 'closed');
      assert.ok(errs[0] instanceof HandlerError);
      assert.equal(errs[0].cause, boom);
      await run.stop();
    });

    test('an events.data getter that starts throwing closes only the connection being served', async () => {
      const errs: (Error | null)[] = [];
      const boom = Object.create(null) as object;
      let broken = false;
      const ac = new AbortController();
      let onServing!: (s: Server) => void;
      const serving = new Promise<Server>((resolve) => (onServing = resolve));
      // Not through startServer: it copies the events object, which would read the getter once.
      const events = {
        get data() {
          if (broken) throw boom;
          return (_c: Conn, input: RingBuffer) => echo(input);
        },
        serving(srv: Server) {
          onServing(srv);
        },
        closed(_c: Conn, err: Error | null) {
          errs.push(err);
        },
      } as Events;
      const done = serve(events, { backend, signal: ac.signal }, 'tcp://127.0.0.1:0');
      const run = { server: await serving, stop: () => (ac.abort(), done) };
      const good = await connectTo(run.server.addrs[0]!);
      good.write('a');
      assert.equal((await readExactly(good, 1)).toString(), 'a');
      broken = true;
      const bad = await connectTo(run.server.addrs[0]!);
      bad.write('b');
      assert.equal((await readEnd(bad)).how, 'eof');
      await waitFor(() => errs.length === 1, 'closed');
      assert.ok(errs[0] instanceof HandlerError);
      assert.equal(errs[0].cause, boom);
      broken = false;
      good.write('c');
      assert.equal((await readExactly(good, 1)).toString(), 'c');
      good.end();
      await socketClosed(good);
      await run.stop();
    });

    test('an events getter that throws when serve() reads it rejects with InvalidArgumentError naming it', async () => {
      const boom = new Error('getter');
      const events = {
        get opened() {
          throw boom;
        },
      } as Events;
      await assert.rejects(serve(events, { backend }, 'tcp://127.0.0.1:0'), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, /events\.opened/);
        assert.equal(err.cause, boom);
        return true;
      });
    });
  });
}
