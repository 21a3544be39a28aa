/**
 * A handler that never consumes its input (a frame that never completes) cannot grow a
 * connection's RingBuffer without bound: past `maxInputBytes` the connection closes with
 * InputLimitError (ERR_GEVENT_INPUT_LIMIT), its replies still written, and the server goes on.
 * Without the bound the input grew until a typed-array RangeError ended the process.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InputLimitError, InvalidArgumentError, serve, type Conn, type RingBuffer } from '../src/index.js';
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

const kLimit = 1024 * 1024;

for (const backend of await backendsUnderTest()) {
  describe(`maxInputBytes (${backend})`, () => {
    test('a peer whose input is never consumed is closed past the limit; others are served', async () => {
      const fds = openFdCount();
      const errs: (Error | null)[] = [];
      let largestKept = 0;
      const run = await startServer(
        {
          opened(c) {
            c.context = 'new';
          },
          data(c: Conn, input: RingBuffer) {
            if (c.context === 'new') {
              c.context = Buffer.from(input.peek(1)[0]).toString() === 'H' ? 'hoard' : 'echo';
              if (c.context === 'hoard') return 'ack';
            }
            if (c.context === 'hoard') {
              largestKept = Math.max(largestKept, input.length);
              return; // waits for a frame that never completes
            }
            const out = input.bytes();
            input.retrieveAll();
            return out;
          },
          closed(_c, err) {
            errs.push(err);
          },
        },
        { backend, maxInputBytes: kLimit },
        'tcp://127.0.0.1:0',
      );
      const good = await connectTo(run.server.addrs[0]!);
      const hoarder = await connectTo(run.server.addrs[0]!);
      hoarder.on('error', () => {});
      hoarder.write('H');
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const ended = readEnd(hoarder);
      // Writes until the server closes it; the server's own reply comes first.
      let sent = 1;
      while (!hoarder.destroyed && sent < 8 * kLimit) {
        if (!hoarder.write(chunk)) await new Promise((r) => setTimeout(r, 1));
        sent += chunk.length;
        if (sent > 2 * kLimit) await new Promise((r) => setTimeout(r, 1));
        if (errs.length > 0) break;
      }
      await waitFor(() => errs.length === 1, 'closed for the hoarding connection', 10_000);
      const end = await ended;
      assert.equal(end.data.subarray(0, 3).toString(), 'ack', 'the reply written before the limit reaches the peer');
      const err = errs[0];
      assert.ok(err instanceof InputLimitError, `closed got ${String(err)}`);
      assert.equal(err.code, 'ERR_GEVENT_INPUT_LIMIT');
      assert.equal(err.limitBytes, kLimit);
      assert.ok(err.inputBytes > kLimit);
      assert.match(err.message, /maxInputBytes 1048576/);
      assert.ok(largestKept <= kLimit, `the connection kept ${largestKept} bytes, over the limit`);

      good.write('still here');
      assert.equal((await readExactly(good, 10)).toString(), 'still here');
      good.end();
      await socketClosed(good);
      hoarder.destroy();
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('input consumed as it comes is never limited, whatever the total', async () => {
      let total = 0;
      const errs: (Error | null)[] = [];
      const run = await startServer(
        {
          data(_c, input) {
            total += input.length;
            input.retrieveAll();
            if (total >= 4 * kLimit) return 'done';
          },
          closed(_c, err) {
            errs.push(err);
          },
        },
        { backend, maxInputBytes: kLimit },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.write(Buffer.alloc(4 * kLimit, 1));
      assert.equal((await readExactly(s, 4)).toString(), 'done');
      s.end();
      await socketClosed(s);
      await waitFor(() => errs.length === 1, 'closed');
      assert.equal(errs[0], null);
      await run.stop();
    });
  });
}

describe('maxInputBytes option', () => {
  test('bad values are refused, naming the option', async () => {
    for (const v of [0, -1, 1.5, 'big', Number.NaN]) {
      await assert.rejects(serve({}, { maxInputBytes: v as number }, 'tcp://127.0.0.1:0'), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, /options\.maxInputBytes/);
        return true;
      });
    }
  });
});
