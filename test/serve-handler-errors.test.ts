/**
 * Callbacks that throw or return values of the wrong shape: a connection-level failure closes only
 * that connection and reaches `closed` as its error; serving throwing rejects serve(); closed,
 * preWrite and UDP data throwing go to options.onError while the server keeps serving.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import {
  GeventError,
  HandlerError,
  InvalidArgumentError,
  serve,
  type Conn,
  type Events,
  type RingBuffer,
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

function echoBytes(input: RingBuffer): Uint8Array {
  const out = input.bytes();
  input.retrieveAll();
  return out;
}

async function roundTrip(s: Socket, msg: string): Promise<void> {
  s.write(msg);
  assert.equal((await readExactly(s, msg.length)).toString(), msg);
}

async function endClient(s: Socket): Promise<void> {
  s.end();
  await socketClosed(s);
}

interface Closes {
  errs: Map<Conn, Error | null>;
  count: number;
}

function closes(): Closes & { closed(c: Conn, err: Error | null): void } {
  const o = {
    errs: new Map<Conn, Error | null>(),
    count: 0,
    closed(c: Conn, err: Error | null) {
      o.count++;
      o.errs.set(c, err);
    },
  };
  return o;
}

for (const backend of await backendsUnderTest()) {
  describe(`handler errors (${backend})`, () => {
    test('data throwing closes only that connection; closed gets HandlerError with the thrown error as cause', async () => {
      const fds = openFdCount();
      const boom = new Error('data boom');
      const log = closes();
      let onError = 0;
      const run = await startServer(
        {
          closed: log.closed,
          data(_c, input) {
            if (Buffer.from(input.bytes()).toString() === 'boom') throw boom;
            return echoBytes(input);
          },
        },
        { backend, onError: () => void onError++ },
        'tcp://127.0.0.1:0',
      );
      const good = await connectTo(run.server.addrs[0]!);
      const bad = await connectTo(run.server.addrs[0]!);
      await roundTrip(good, 'before');
      const badEnd = readEnd(bad);
      bad.write('boom');
      const how = (await badEnd).how;
      assert.ok(how === 'eof' || how === 'ECONNRESET', `bad client read ended with ${how}`);
      await waitFor(() => log.count === 1, 'closed for the bad connection');
      await roundTrip(good, 'after');
      const [err] = [...log.errs.values()];
      assert.ok(err instanceof HandlerError, String(err));
      assert.equal(err.code, 'ERR_GEVENT_HANDLER');
      assert.equal(err.handler, 'data');
      assert.equal(err.cause, boom);
      assert.ok(err.message.includes('data boom'), err.message);
      await endClient(good);
      await socketClosed(bad);
      await waitFor(() => log.count === 2, 'closed for the good connection');
      await run.stop();
      assert.equal(onError, 0, 'a connection error is not also sent to onError');
      assertNoFdLeak(fds);
    });

    test('a thrown non-Error value is kept as the cause', async () => {
      const fds = openFdCount();
      const log = closes();
      const run = await startServer(
        {
          closed: log.closed,
          data() {
            throw 'a string';
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      const end = readEnd(s);
      s.write('x');
      await end;
      await waitFor(() => log.count === 1, 'closed');
      const [err] = [...log.errs.values()];
      assert.ok(err instanceof HandlerError, String(err));
      assert.equal(err.cause, 'a string');
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('opened throwing closes that connection with HandlerError; others are served', async () => {
      const fds = openFdCount();
      const boom = new Error('opened boom');
      const log = closes();
      let opened = 0;
      const run = await startServer(
        {
          opened() {
            if (++opened === 1) throw boom;
          },
          closed: log.closed,
          data: (_c, input) => echoBytes(input),
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const first = await connectTo(run.server.addrs[0]!);
      const how = (await readEnd(first)).how;
      assert.ok(how === 'eof' || how === 'ECONNRESET', how);
      await waitFor(() => log.count === 1, 'closed');
      const [err] = [...log.errs.values()];
      assert.ok(err instanceof HandlerError, String(err));
      assert.equal(err.code, 'ERR_GEVENT_HANDLER');
      assert.equal(err.handler, 'opened');
      assert.equal(err.cause, boom);
      const second = await connectTo(run.server.addrs[0]!);
      await roundTrip(second, 'served');
      await endClient(second);
      await socketClosed(first);
      await waitFor(() => log.count === 2, 'second closed');
      await run.stop();
      assertNoFdLeak(fds);
    });

    for (const [what, value] of [
      ['a number (42)', 42],
      ['{ out: 5 }', { out: 5 }],
      ['{ action: 7 }', { action: 7 }],
      ['a boolean', true],
    ] as [string, unknown][]) {
      test(`data returning ${what} closes that connection with ERR_GEVENT_INVALID_ARGUMENT`, async () => {
        const fds = openFdCount();
        const log = closes();
        const run = await startServer(
          {
            closed: log.closed,
            data(_c, input) {
              if (Buffer.from(input.bytes()).toString() === 'bad') {
                input.retrieveAll();
                return value as Uint8Array;
              }
              return echoBytes(input);
            },
          },
          { backend },
          'tcp://127.0.0.1:0',
        );
        const good = await connectTo(run.server.addrs[0]!);
        const bad = await connectTo(run.server.addrs[0]!);
        const end = readEnd(bad);
        bad.write('bad');
        await end;
        await waitFor(() => log.count === 1, 'closed for the bad connection');
        await roundTrip(good, 'still served');
        await endClient(good);
        await socketClosed(bad);
        await waitFor(() => log.count === 2, 'closed for the good connection');
        await run.stop();
        assertNoFdLeak(fds);
        const err = [...log.errs.values()][0];
        assert.ok(err instanceof GeventError, String(err));
        const inner =
          err instanceof HandlerError ? `${err.code} wrapping ${String((err.cause as GeventError)?.code)}` : err.code;
        assert.ok(err instanceof InvalidArgumentError, `closed got ${inner}: ${err.message}`);
        assert.equal(err.code, 'ERR_GEVENT_INVALID_ARGUMENT');
      });
    }

    test('opened returning a bad value ({ opts: { tcpKeepAlive: -1 } }) closes that connection with ERR_GEVENT_INVALID_ARGUMENT', async () => {
      const fds = openFdCount();
      const log = closes();
      const run = await startServer(
        { opened: () => ({ opts: { tcpKeepAlive: -1 } }), closed: log.closed },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      await readEnd(s);
      await socketClosed(s);
      await waitFor(() => log.count === 1, 'closed');
      await run.stop();
      assertNoFdLeak(fds);
      const err = [...log.errs.values()][0];
      assert.ok(err instanceof InvalidArgumentError, `closed got ${String(err)}`);
      assert.ok(err.message.includes('-1'), err.message);
    });

    test('serving throwing rejects serve() with HandlerError and leaves nothing listening', async () => {
      const fds = openFdCount();
      const boom = new Error('serving boom');
      let ticks = 0;
      await assert.rejects(
        serve(
          {
            serving() {
              throw boom;
            },
            tick: () => void ticks++,
          },
          { backend },
          'tcp://127.0.0.1:0',
        ),
        (err: unknown) => {
          assert.ok(err instanceof HandlerError, String(err));
          assert.equal(err.code, 'ERR_GEVENT_HANDLER');
          assert.equal(err.handler, 'serving');
          assert.equal(err.cause, boom);
          return true;
        },
      );
      assert.equal(ticks, 0, 'no tick after serving failed');
      assertNoFdLeak(fds);
    });

    test('closed throwing goes to options.onError and the server keeps serving', async () => {
      const fds = openFdCount();
      const boom = new Error('closed boom');
      const errors: Error[] = [];
      let closedCalls = 0;
      const run = await startServer(
        {
          closed() {
            closedCalls++;
            throw boom;
          },
          data: (_c, input) => echoBytes(input),
        },
        { backend, onError: (e) => void errors.push(e) },
        'tcp://127.0.0.1:0',
      );
      const first = await connectTo(run.server.addrs[0]!);
      await roundTrip(first, 'one');
      await endClient(first);
      await waitFor(() => errors.length === 1, 'onError');
      const second = await connectTo(run.server.addrs[0]!);
      await roundTrip(second, 'two');
      await endClient(second);
      await waitFor(() => errors.length === 2, 'second onError');
      await run.stop();
      assert.equal(closedCalls, 2);
      for (const e of errors) {
        assert.ok(e instanceof HandlerError, String(e));
        assert.equal(e.handler, 'closed');
        assert.equal(e.cause, boom);
      }
      assertNoFdLeak(fds);
    });

    test('preWrite throwing goes to options.onError and the reply is still written', async () => {
      const fds = openFdCount();
      const errors: Error[] = [];
      const run = await startServer(
        {
          preWrite() {
            throw new Error('preWrite boom');
          },
          data: (_c, input) => echoBytes(input),
        },
        { backend, onError: (e) => void errors.push(e) },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      await roundTrip(s, 'hello');
      await endClient(s);
      await run.stop();
      assert.ok(errors.length >= 1);
      assert.ok(errors[0] instanceof HandlerError);
      assert.equal(errors[0].handler, 'preWrite');
      assertNoFdLeak(fds);
    });

    test('UDP data throwing goes to options.onError and later datagrams are served', async () => {
      const fds = openFdCount();
      const errors: Error[] = [];
      const events: Events = {
        data(_c, input) {
          const text = Buffer.from(input.bytes()).toString();
          if (text === 'boom') throw new Error('udp boom');
          return text;
        },
      };
      const run = await startServer(events, { backend, onError: (e) => void errors.push(e) }, 'udp://127.0.0.1:0');
      const sock = createSocket('udp4');
      const got: string[] = [];
      sock.on('message', (m) => got.push(m.toString()));
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      const port = run.server.addrs[0]!.port;
      sock.send('boom', port, '127.0.0.1');
      await waitFor(() => errors.length === 1, 'onError');
      sock.send('fine', port, '127.0.0.1');
      await waitFor(() => got.length === 1, 'reply');
      assert.deepEqual(got, ['fine']);
      assert.ok(errors[0] instanceof HandlerError);
      assert.equal(errors[0].handler, 'data');
      await new Promise<void>((r) => sock.close(() => r()));
      await run.stop();
      assertNoFdLeak(fds);
    });
  });
}
