/**
 * Conn.close() and Conn.destroy() from code outside a callback: a timer, a promise continuation
 * after an `await`, another connection's callback.
 * - close() is Action.Close: the peer reads every byte queued before it, then EOF; `closed` gets null;
 * - destroy(err) closes at once, queued output dropped: `closed` gets err (or null), promptly even
 *   with 64 MiB queued for a peer that does not read, and the peer sees EOF or a reset;
 * - both do nothing on a closed connection (inside `closed` and after it), and destroy() refuses an
 *   err that is not an Error.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidArgumentError, type Conn, type Events } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readEnd,
  readExactly,
  sleep,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kBig = Buffer.alloc(64 * 1024 * 1024, 0x61);

/** Counts `closed` per connection and keeps each error. */
function closedLog(): { errs: (Error | null)[]; conns: Conn[]; closed: Events['closed'] } {
  const log = {
    errs: [] as (Error | null)[],
    conns: [] as Conn[],
    closed(c: Conn, err: Error | null) {
      log.conns.push(c);
      log.errs.push(err);
    },
  };
  return log;
}

for (const backend of await backendsUnderTest()) {
  describe(`Conn.close() / Conn.destroy() (${backend})`, () => {
    test('close() from a timer: the peer reads the queued reply, then EOF; closed gets null once', async () => {
      const fds = openFdCount();
      const log = closedLog();
      const run = await startServer(
        {
          opened(c) {
            c.send('queued before close');
            setTimeout(() => {
              c.send(' and after');
              c.close();
              c.close();
            }, 30);
          },
          closed: log.closed,
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      try {
        const end = await within(readEnd(s), 5000, 'EOF after close()');
        assert.equal(end.how, 'eof');
        assert.equal(end.data.toString(), 'queued before close and after');
        s.end();
        await within(
          waitFor(() => log.errs.length === 1, 'closed'),
          6000,
          'closed',
        );
        assert.deepEqual(log.errs, [null]);
      } finally {
        s.destroy();
        await socketClosed(s);
        await run.stop();
      }
      assert.equal(log.errs.length, 1, 'closed fired once');
      assertNoFdLeak(fds);
    });

    test('close() after an await in an async data handler, and close() of another connection from a callback', async () => {
      const fds = openFdCount();
      const log = closedLog();
      const byName = new Map<string, Conn>();
      const run = await startServer(
        {
          async data(c, input) {
            const text = Buffer.from(input.bytes()).toString();
            input.retrieveAll();
            if (text.startsWith('name ')) {
              byName.set(text.slice(5), c);
              c.context = text.slice(5);
              c.send('ok');
              return;
            }
            if (text.startsWith('kick ')) {
              byName.get(text.slice(5))?.send('kicked');
              byName.get(text.slice(5))?.close();
              return;
            }
            await sleep(20);
            c.send(`later ${text}`);
            c.close();
          },
          closed: log.closed,
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const a = await connectTo(run.server.addrs[0]!);
      const b = await connectTo(run.server.addrs[0]!);
      const d = await connectTo(run.server.addrs[0]!);
      try {
        a.write('name a');
        assert.equal((await readExactly(a, 2)).toString(), 'ok');
        b.write('kick a');
        const endA = await within(readEnd(a), 5000, 'EOF on the kicked connection');
        assert.deepEqual([endA.how, endA.data.toString()], ['eof', 'kicked']);
        d.write('x');
        const endD = await within(readEnd(d), 5000, 'EOF after an awaited close()');
        assert.deepEqual([endD.how, endD.data.toString()], ['eof', 'later x']);
        a.end();
        d.end();
        await within(
          waitFor(() => log.errs.length === 2, 'two closed'),
          6000,
          'closed',
        );
        assert.deepEqual(log.errs, [null, null]);
        assert.equal(
          log.conns.some((c) => c === byName.get('a')),
          true,
        );
        assert.equal(byName.get('a')!.open, false);
      } finally {
        for (const s of [a, b, d]) s.destroy();
        await Promise.all([a, b, d].map(socketClosed));
        await run.stop();
      }
      assertNoFdLeak(fds);
    });

    test('destroy(err) from a timer with 64 MiB queued for a peer that does not read: closed gets err at once, the peer sees EOF or a reset', async () => {
      const fds = openFdCount();
      const log = closedLog();
      const boom = new Error('boom');
      let queuedAtDestroy = -1;
      const run = await startServer(
        {
          opened(c) {
            c.write(kBig);
            const poll = setInterval(() => {
              if (c.queuedBytes === 0) return;
              clearInterval(poll);
              queuedAtDestroy = c.queuedBytes;
              c.destroy(boom);
              c.destroy(new Error('second'));
              c.close();
            }, 10);
          },
          closed: log.closed,
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.pause();
      try {
        await within(
          waitFor(() => log.errs.length === 1, 'closed after destroy', 10_000),
          12_000,
          'closed',
        );
        assert.ok(queuedAtDestroy > 0, 'output was still queued when destroy() ran');
        assert.equal(log.errs[0], boom, 'closed gets the error given to destroy()');
        const end = await within(readEnd(s), 10_000, 'the peer to see the close');
        assert.ok(end.how === 'eof' || end.how === 'ECONNRESET', `the peer saw ${end.how}`);
        assert.ok(end.data.length < kBig.length, 'the queued output was dropped');
      } finally {
        s.destroy();
        await socketClosed(s);
        await run.stop();
      }
      assert.equal(log.errs.length, 1, 'closed fired once');
      assertNoFdLeak(fds);
    });

    test('destroy() after an await: closed gets null, even after a reply was queued', async () => {
      const fds = openFdCount();
      const log = closedLog();
      const run = await startServer(
        {
          async data(c, input) {
            input.retrieveAll();
            c.send('maybe');
            await sleep(10);
            c.destroy();
          },
          closed: log.closed,
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      try {
        s.write('go');
        const end = await within(readEnd(s), 5000, 'the peer to see the close');
        assert.ok(end.how === 'eof' || end.how === 'ECONNRESET', `the peer saw ${end.how}`);
        await within(
          waitFor(() => log.errs.length === 1, 'closed'),
          6000,
          'closed',
        );
        assert.deepEqual(log.errs, [null]);
      } finally {
        s.destroy();
        await socketClosed(s);
        await run.stop();
      }
      assertNoFdLeak(fds);
    });

    test('close() and destroy() do nothing on a closed connection, inside closed and after it; destroy() refuses a non-Error', async () => {
      const fds = openFdCount();
      const log = closedLog();
      let refused: unknown = null;
      let later: Conn | null = null;
      const run = await startServer(
        {
          data(c, input) {
            input.retrieveAll();
            try {
              c.destroy('not an error' as unknown as Error);
            } catch (err) {
              refused = err;
            }
            return 'bye';
          },
          closed(c, err) {
            log.closed!(c, err);
            c.close();
            c.destroy(new Error('inside closed'));
            later = c;
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      try {
        s.write('hi');
        assert.equal((await readExactly(s, 3)).toString(), 'bye');
        s.end();
        await within(
          waitFor(() => log.errs.length === 1, 'closed'),
          6000,
          'closed',
        );
        later!.close();
        later!.destroy(new Error('after closed'));
        assert.equal(later!.send('x'), false);
        await sleep(50);
      } finally {
        s.destroy();
        await socketClosed(s);
        await run.stop();
      }
      assert.ok(refused instanceof InvalidArgumentError, `destroy('not an error') threw ${String(refused)}`);
      assert.deepEqual(log.errs, [null], 'closed fired once, with null');
      assertNoFdLeak(fds);
    });
  });
}
