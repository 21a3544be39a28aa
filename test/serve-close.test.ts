/**
 * Action.Close writes everything queued first (the seed dropped it), from data and from opened;
 * `closed` fires once with err null, also when the client is the one that closes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { Action, type Conn } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readEnd,
  sleep,
  startServer,
  waitFor,
  assertNoFdLeak,
} from './helpers.js';

const kBig = 8 * 1024 * 1024;

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32BE(i >>> 2, i);
  return b;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Counts closed calls and keeps their errors. */
function closeLog() {
  const errs: (Error | null)[] = [];
  return { errs, closed: (_c: Conn, err: Error | null) => void errs.push(err) };
}

/** Reads everything until EOF, pausing `pauseMs` before reading anything. */
async function readAllAfter(s: Socket, pauseMs: number): Promise<{ how: string; data: Buffer }> {
  s.pause();
  await sleep(pauseMs);
  return readEnd(s);
}

for (const backend of await backendsUnderTest()) {
  describe(`Action.Close (${backend})`, () => {
    test('Close from data after an 8 MiB reply: the client gets all 8 MiB, then EOF', async () => {
      const fds = openFdCount();
      const big = pattern(kBig);
      const log = closeLog();
      let dataCalls = 0;
      const run = await startServer(
        {
          closed: log.closed,
          data(_c, input) {
            dataCalls++;
            input.retrieveAll();
            return { out: big, action: Action.Close };
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      const end = readEnd(s);
      s.write('go');
      const got = await end;
      assert.equal(got.how, 'eof');
      assert.equal(got.data.length, kBig);
      assert.equal(sha(got.data), sha(big));
      await socketClosed(s);
      await waitFor(() => log.errs.length === 1, 'closed');
      await run.stop();
      assert.equal(dataCalls, 1);
      assert.deepEqual(log.errs, [null]);
      assertNoFdLeak(fds);
    });

    test('Close after a 16 MiB reply to a client that starts reading only 1.5 s later: all bytes still arrive', async () => {
      const fds = openFdCount();
      const big = pattern(2 * kBig);
      const log = closeLog();
      const run = await startServer(
        {
          closed: log.closed,
          data(_c, input) {
            input.retrieveAll();
            return { out: big, action: Action.Close };
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.write('go');
      const got = await readAllAfter(s, 1500);
      s.destroy();
      await socketClosed(s);
      await waitFor(() => log.errs.length === 1, 'closed');
      await run.stop();
      assertNoFdLeak(fds);
      assert.equal(got.how, 'eof');
      assert.equal(got.data.length, big.length, `got ${got.data.length} of ${big.length} bytes`);
      assert.equal(sha(got.data), sha(big));
      assert.deepEqual(log.errs, [null]);
    });

    test('Close from opened with a greeting: the client gets the greeting, then EOF; data never runs', async () => {
      const fds = openFdCount();
      const log = closeLog();
      let dataCalls = 0;
      const run = await startServer(
        {
          opened: () => ({ out: 'sweetness\r\n', action: Action.Close }),
          closed: log.closed,
          data: () => void dataCalls++,
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      const got = await readEnd(s);
      assert.equal(got.how, 'eof');
      assert.equal(got.data.toString(), 'sweetness\r\n');
      await socketClosed(s);
      await waitFor(() => log.errs.length === 1, 'closed');
      await run.stop();
      assert.equal(dataCalls, 0);
      assert.deepEqual(log.errs, [null]);
      assertNoFdLeak(fds);
    });

    test('Close with data sent through send before it: everything arrives in order, then EOF', async () => {
      const fds = openFdCount();
      const log = closeLog();
      const run = await startServer(
        {
          closed: log.closed,
          data(c: Conn, input) {
            input.retrieveAll();
            c.send('one ');
            c.send('two ');
            return { out: 'three', action: Action.Close };
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      const end = readEnd(s);
      s.write('go');
      const got = await end;
      assert.equal(got.how, 'eof');
      assert.equal(got.data.toString(), 'one two three');
      await socketClosed(s);
      await waitFor(() => log.errs.length === 1, 'closed');
      await run.stop();
      assert.deepEqual(log.errs, [null]);
      assertNoFdLeak(fds);
    });

    test('bytes the client sends after the server chose Close never reach data', async () => {
      const fds = openFdCount();
      const log = closeLog();
      let dataCalls = 0;
      const run = await startServer(
        {
          closed: log.closed,
          data(_c, input) {
            dataCalls++;
            input.retrieveAll();
            return { out: 'bye', action: Action.Close };
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      const end = readEnd(s);
      s.write('first');
      await waitFor(() => dataCalls === 1, 'first data');
      s.write('second', () => undefined);
      s.on('error', () => undefined);
      const got = await end;
      assert.equal(got.data.toString(), 'bye');
      await waitFor(() => log.errs.length === 1, 'closed');
      await sleep(20);
      assert.equal(dataCalls, 1);
      s.destroy();
      await socketClosed(s);
      await run.stop();
      assert.equal(log.errs.length, 1);
      assertNoFdLeak(fds);
    });

    test('the client ending its side fires closed once, with err null', async () => {
      const fds = openFdCount();
      const log = closeLog();
      const run = await startServer({ closed: log.closed }, { backend }, 'tcp://127.0.0.1:0');
      const s = await connectTo(run.server.addrs[0]!);
      const end = readEnd(s);
      s.end();
      assert.equal((await end).how, 'eof', 'the server closes its side in turn');
      await socketClosed(s);
      await waitFor(() => log.errs.length === 1, 'closed');
      await sleep(20);
      await run.stop();
      assert.deepEqual(log.errs, [null]);
      assertNoFdLeak(fds);
    });

    test('the client resetting the connection fires closed once', async () => {
      const fds = openFdCount();
      const log = closeLog();
      let opened = 0;
      const run = await startServer(
        { opened: () => void opened++, closed: log.closed },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      await waitFor(() => opened === 1, 'opened');
      s.resetAndDestroy();
      await socketClosed(s);
      await waitFor(() => log.errs.length === 1, 'closed');
      await sleep(20);
      await run.stop();
      assert.equal(log.errs.length, 1, 'closed fired exactly once');
      assertNoFdLeak(fds);
    });
  });
}
