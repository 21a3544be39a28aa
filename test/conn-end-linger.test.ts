/**
 * c.end() is bounded by the linger deadline, as Action.Close is: once the output and FIN are
 * written, a peer that never ends its side is closed `linger` ms later (before, an ended
 * connection stayed open for as long as the peer kept it). A peer that ends its side in time
 * closes the connection at once; with allowHalfOpen, `data` still fires after end() until then.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import type { Conn } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readEnd,
  readExactly,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kLingerMs = 300;

/** A client that keeps its side open after the server's FIN (node:net would answer it with its own). */
function halfOpenClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

for (const backend of await backendsUnderTest()) {
  describe(`Conn.end() and the linger deadline (${backend})`, () => {
    for (const allowHalfOpen of [false, true]) {
      test(`a peer that never closes after end() is closed about linger ms after the FIN (allowHalfOpen ${allowHalfOpen})`, async () => {
        const fds = openFdCount();
        const errs: (Error | null)[] = [];
        let closedAt = 0;
        let endedAt = 0;
        const run = await startServer(
          {
            data(c, input) {
              input.retrieveAll();
              c.send('reply');
              c.end();
              c.end();
            },
            closed(_c, err) {
              errs.push(err);
              closedAt = performance.now();
            },
          },
          { backend, linger: kLingerMs, allowHalfOpen },
          'tcp://127.0.0.1:0',
        );
        const s = await halfOpenClient(run.server.addrs[0]!.port);
        try {
          s.write('hi');
          const end = await within(readEnd(s), 5000, 'the reply and EOF');
          endedAt = performance.now();
          assert.deepEqual([end.how, end.data.toString()], ['eof', 'reply']);
          await within(
            waitFor(() => errs.length === 1, 'closed after the linger', 10_000),
            12_000,
            'closed',
          );
          assert.deepEqual(errs, [null]);
          // The deadline starts once the FIN is written, a little before the client saw it.
          assert.ok(
            closedAt - endedAt >= kLingerMs - 100,
            `closed ${(closedAt - endedAt).toFixed(0)} ms after the peer saw EOF, linger ${kLingerMs}`,
          );
        } finally {
          s.destroy();
          await socketClosed(s);
          await run.stop();
        }
        assertNoFdLeak(fds);
      });
    }

    test('with allowHalfOpen, data still arrives after end(), and the peer ending its side within the linger closes at once', async () => {
      const fds = openFdCount();
      const errs: (Error | null)[] = [];
      const got: string[] = [];
      let conn: Conn | null = null;
      const run = await startServer(
        {
          data(c, input) {
            got.push(Buffer.from(input.bytes()).toString());
            input.retrieveAll();
            if (conn === null) {
              conn = c;
              c.send('bye');
              c.end();
            }
          },
          closed: (_c, err) => void errs.push(err),
        },
        { backend, linger: 5000, allowHalfOpen: true },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      try {
        s.write('one');
        assert.equal((await readExactly(s, 3)).toString(), 'bye');
        s.write('two');
        await within(
          waitFor(() => got.join('') === 'onetwo', 'data after end()'),
          6000,
          'data after end()',
        );
        const start = performance.now();
        s.end();
        await within(
          waitFor(() => errs.length === 1, 'closed on the peer FIN'),
          6000,
          'closed',
        );
        assert.ok(performance.now() - start < 2500, 'the peer FIN closed the connection, not the 5 s linger');
        assert.deepEqual(errs, [null]);
      } finally {
        s.destroy();
        await socketClosed(s);
        await run.stop();
      }
      assertNoFdLeak(fds);
    });

    test('end() after a reply the peer reads only later: the linger starts when the output is written, not at end()', async () => {
      const fds = openFdCount();
      const big = Buffer.alloc(64 * 1024 * 1024, 0x62);
      const errs: (Error | null)[] = [];
      let queuedAtEnd = -1;
      const run = await startServer(
        {
          opened(c) {
            c.write(big);
            const poll = setInterval(() => {
              if (c.queuedBytes === 0) return;
              clearInterval(poll);
              queuedAtEnd = c.queuedBytes;
              c.end();
            }, 10);
          },
          closed: (_c, err) => void errs.push(err),
        },
        { backend, linger: 200 },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.pause();
      try {
        await within(
          waitFor(() => queuedAtEnd >= 0, 'end() with output queued'),
          10_000,
          'end()',
        );
        assert.ok(queuedAtEnd > 0);
        await new Promise((r) => setTimeout(r, 600));
        assert.equal(errs.length, 0, 'the connection stays open while its output waits, past the linger');
        const end = await within(readEnd(s), 30_000, 'the whole reply and EOF');
        assert.equal(end.how, 'eof');
        assert.equal(end.data.length, big.length);
        s.end();
        await within(
          waitFor(() => errs.length === 1, 'closed'),
          6000,
          'closed',
        );
        assert.deepEqual(errs, [null]);
      } finally {
        s.destroy();
        await socketClosed(s);
        await run.stop();
      }
      assertNoFdLeak(fds);
    });
  });
}
