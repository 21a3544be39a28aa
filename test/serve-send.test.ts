/**
 * Conn.send(): the seed's "replies sent through Conn.send" echo, where the data handler only
 * consumes input and the reply is sent later, from a timer. Bytes arrive in order; send refuses a
 * closing or closed connection and a value that is not bytes or a string.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { describe, test } from 'node:test';
import { Action, InvalidArgumentError, type Conn } from '../src/index.js';
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

const sleep1 = (): Promise<void> => new Promise((r) => setTimeout(r, 1));

for (const backend of await backendsUnderTest()) {
  describe(`Conn.send (${backend})`, () => {
    test('replies sent later through send are echoed byte for byte, in order, to 10 clients', async () => {
      const fds = openFdCount();
      let sends = 0;
      let sendFalse = 0;
      let closed = 0;
      const run = await startServer(
        {
          closed: () => void closed++,
          data(c: Conn, input) {
            const bytes = input.bytes();
            input.retrieveAll();
            void sleep1().then(() => {
              sends++;
              if (!c.send(bytes)) sendFalse++;
            });
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const kClients = 10;
      await Promise.all(
        Array.from({ length: kClients }, async () => {
          const s = await connectTo(run.server.addrs[0]!);
          const sent = createHash('sha256');
          let total = 0;
          // Many writes without waiting, so several data calls (and sends) are in flight at once.
          for (let i = 0; i < 40; i++) {
            const chunk = randomBytes(randomInt(1, 32 * 1024));
            sent.update(chunk);
            total += chunk.length;
            s.write(chunk);
          }
          const back = await readExactly(s, total);
          assert.equal(
            createHash('sha256').update(back).digest('hex'),
            sent.digest('hex'),
            `${total} bytes came back changed or reordered`,
          );
          s.end();
          await socketClosed(s);
        }),
      );
      await waitFor(() => closed === kClients, 'all closed');
      await run.stop();
      assert.ok(sends >= kClients, `${sends} sends`);
      assert.equal(sendFalse, 0, 'send to an open connection returns true');
      assertNoFdLeak(fds);
    });

    test('send with a string writes it as UTF-8; several sends in one turn arrive in order', async () => {
      const fds = openFdCount();
      const run = await startServer(
        {
          data(c: Conn, input) {
            input.retrieveAll();
            setImmediate(() => {
              c.send('héllo ');
              c.send(Buffer.from('wörld'));
              c.send(new Uint8Array([0x21]));
            });
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.write('go');
      const want = Buffer.from('héllo wörld!', 'utf8');
      assert.ok((await readExactly(s, want.length)).equals(want));
      s.end();
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('send returns false, and writes nothing, once the connection is closing or closed', async () => {
      const fds = openFdCount();
      const results: Record<string, boolean> = {};
      let closedCalls = 0;
      let conn: Conn | null = null;
      const run = await startServer(
        {
          opened: (c) => void (conn = c),
          data(_c: Conn, input) {
            input.retrieveAll();
            return { out: 'last', action: Action.Close };
          },
          closed(c) {
            closedCalls++;
            results.inClosed = c.send('in closed');
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      const end = readEnd(s);
      await waitFor(() => conn !== null, 'opened');
      assert.equal(conn!.send('first '), true, 'open connection');
      s.write('x');
      const got = await end;
      assert.equal(got.how, 'eof');
      assert.equal(got.data.toString(), 'first last', 'nothing sent after Close reaches the client');
      await waitFor(() => closedCalls === 1, 'closed');
      results.afterClosed = conn!.send('after closed');
      assert.equal(conn!.open, false);
      assert.deepEqual(results, { inClosed: false, afterClosed: false });
      await socketClosed(s);
      await run.stop();
      assert.equal(closedCalls, 1);
      assertNoFdLeak(fds);
    });

    test('send right after data returned Close (while closing) returns false', async () => {
      const fds = openFdCount();
      let whileClosing: boolean | undefined;
      const run = await startServer(
        {
          data(c: Conn, input) {
            input.retrieveAll();
            queueMicrotask(() => (whileClosing = c.send('too late')));
            return Action.Close;
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      const end = readEnd(s);
      s.write('x');
      const got = await end;
      assert.equal(got.data.length, 0);
      assert.equal(whileClosing, false);
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('send with a number, an object, null or an array throws ERR_GEVENT_INVALID_ARGUMENT naming it', async () => {
      const fds = openFdCount();
      const errors: unknown[] = [];
      let closed = 0;
      const bad: unknown[] = [42, { out: 'x' }, null, [1, 2]];
      const run = await startServer(
        {
          closed: () => void closed++,
          data(c: Conn, input) {
            input.retrieveAll();
            for (const v of bad) {
              try {
                c.send(v as string);
                errors.push('no throw');
              } catch (err) {
                errors.push(err);
              }
            }
            return 'still open';
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.write('x');
      assert.equal((await readExactly(s, 10)).toString(), 'still open');
      assert.equal(errors.length, bad.length);
      for (const [i, err] of errors.entries()) {
        assert.ok(err instanceof InvalidArgumentError, `send(${JSON.stringify(bad[i])}) threw ${String(err)}`);
        assert.equal(err.code, 'ERR_GEVENT_INVALID_ARGUMENT');
      }
      assert.match((errors[0] as Error).message, /42/);
      s.end();
      await socketClosed(s);
      await run.stop();
      assert.equal(closed, 1);
      assertNoFdLeak(fds);
    });
  });
}
