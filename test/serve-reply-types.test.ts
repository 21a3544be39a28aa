/**
 * What a callback may return, and what happens to everything else. Any ArrayBuffer or view of one
 * is written as the bytes it covers; an array, a Map or a class instance closes the connection
 * with InvalidArgumentError; an async handler is not waited for: its rejection closes the
 * connection with HandlerError and a value it resolves to (a reply that would never be written)
 * closes it with InvalidArgumentError telling to use c.send(). Nothing is dropped without a word.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HandlerError, InvalidArgumentError, type Conn, type RingBuffer } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  readEnd,
  readExactly,
  startServer,
  waitFor,
} from './helpers.js';

/** A server whose data handler answers `reply(text)` for each message `text`. */
async function replying(backend: string, reply: (text: string, c: Conn) => unknown) {
  const errs: (Error | null)[] = [];
  const run = await startServer(
    {
      data(c: Conn, input: RingBuffer) {
        const text = Buffer.from(input.bytes()).toString();
        input.retrieveAll();
        return reply(text, c) as Uint8Array;
      },
      closed(_c, err) {
        errs.push(err);
      },
    },
    { backend: backend as 'native' },
    'tcp://127.0.0.1:0',
  );
  return { run, errs };
}

for (const backend of await backendsUnderTest()) {
  describe(`reply types (${backend})`, () => {
    test('typed arrays, DataViews and ArrayBuffers are written as their bytes', async () => {
      const { run } = await replying(backend, (text) => {
        const bytes = Buffer.from(`<${text}>`);
        const copy = new ArrayBuffer(bytes.length);
        new Uint8Array(copy).set(bytes);
        if (text === 'ab') return copy;
        if (text === 'dv') return new DataView(copy);
        if (text === 'u16') return new Uint16Array(copy.slice(0, 4)); // '<u16>' is 5 bytes: 2 whole uint16
        if (text === 'sub') return { out: new DataView(copy, 1, 3) };
        return bytes;
      });
      const s = await connectTo(run.server.addrs[0]!);
      for (const [msg, want] of [
        ['ab', '<ab>'],
        ['dv', '<dv>'],
        ['u16', '<u16'],
        ['sub', 'sub'],
      ]) {
        s.write(msg!);
        assert.equal((await readExactly(s, want!.length)).toString(), want);
      }
      s.end();
      await socketClosed(s);
      await run.stop();
    });

    for (const [what, make] of [
      ['a plain array', () => [1, 2, 3]],
      ['a Map', () => new Map()],
      ['a class instance', () => new (class Reply {})()],
    ] as const) {
      test(`returning ${what} closes the connection with InvalidArgumentError`, async () => {
        const { run, errs } = await replying(backend, () => make());
        const s = await connectTo(run.server.addrs[0]!);
        s.write('x');
        assert.equal((await readEnd(s)).how, 'eof');
        await waitFor(() => errs.length === 1, 'closed');
        assert.ok(errs[0] instanceof InvalidArgumentError, `closed got ${String(errs[0])}`);
        assert.match(errs[0].message, /the value returned by data/);
        await run.stop();
      });
    }

    test('an async data handler that writes with c.send() works, and its connection stays open', async () => {
      const { run, errs } = await replying(backend, async (text, c) => {
        await new Promise((r) => setTimeout(r, 5));
        c.send(`[${text}]`);
      });
      const s = await connectTo(run.server.addrs[0]!);
      s.write('a');
      assert.equal((await readExactly(s, 3)).toString(), '[a]');
      s.write('b');
      assert.equal((await readExactly(s, 3)).toString(), '[b]');
      s.end();
      await socketClosed(s);
      await waitFor(() => errs.length === 1, 'closed');
      assert.equal(errs[0], null);
      await run.stop();
    });

    test('an async data handler that resolves to a reply closes with InvalidArgumentError naming c.send()', async () => {
      const { run, errs } = await replying(backend, async (text) => `[${text}]`);
      const s = await connectTo(run.server.addrs[0]!);
      s.write('a');
      const end = await readEnd(s);
      assert.equal(end.how, 'eof');
      assert.equal(end.data.length, 0);
      await waitFor(() => errs.length === 1, 'closed');
      assert.ok(errs[0] instanceof InvalidArgumentError, `closed got ${String(errs[0])}`);
      assert.match(errs[0].message, /async data handler/);
      assert.match(errs[0].message, /c\.send\(\)/);
      await run.stop();
    });

    test('an async data handler that rejects closes that connection with HandlerError; the process stays up', async () => {
      const boom = new Error('async boom');
      const { run, errs } = await replying(backend, async (text, c) => {
        if (text === 'boom') throw boom;
        c.send(text);
      });
      const good = await connectTo(run.server.addrs[0]!);
      const bad = await connectTo(run.server.addrs[0]!);
      bad.write('boom');
      assert.equal((await readEnd(bad)).how, 'eof');
      await waitFor(() => errs.length === 1, 'closed');
      assert.ok(errs[0] instanceof HandlerError);
      assert.equal(errs[0].cause, boom);
      good.write('ok');
      assert.equal((await readExactly(good, 2)).toString(), 'ok');
      good.end();
      await socketClosed(good);
      await run.stop();
    });

    test('an async closed handler that rejects reaches onError', async () => {
      const onErrors: Error[] = [];
      const boom = new Error('closed boom');
      const run = await startServer(
        {
          async closed() {
            throw boom;
          },
        },
        { backend, onError: (e) => onErrors.push(e) },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.end();
      await socketClosed(s);
      await waitFor(() => onErrors.length === 1, 'onError');
      assert.ok(onErrors[0] instanceof HandlerError);
      assert.equal(onErrors[0].cause, boom);
      await run.stop();
    });
  });
}
