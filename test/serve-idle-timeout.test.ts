/**
 * waitTimeout: a connection with no progress for that long is closed, and `closed` gets an
 * IdleTimeoutError, never before the timeout has passed since its last progress. Incoming data
 * keeps a connection open, and so does outgoing data the kernel takes (output stuck behind a peer
 * that does not read does not: see conn-idle-writes).
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { IdleTimeoutError, type Conn } from '../src/index.js';
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

const kTimeoutMs = 200;
/** Timer clocks have whole-millisecond granularity; allow that much on the lower bound. */
const kSlackMs = 2;

interface Log {
  opened: number;
  lastData: number;
  closedAt: number[];
  errs: (Error | null)[];
}

function idleEvents(log: Log) {
  return {
    opened: () => {
      log.opened++;
      log.lastData = performance.now();
    },
    data(_c: Conn, input: { bytes(): Uint8Array; retrieveAll(): void }) {
      log.lastData = performance.now();
      const out = input.bytes();
      input.retrieveAll();
      return out;
    },
    closed(_c: Conn, err: Error | null) {
      log.closedAt.push(performance.now());
      log.errs.push(err);
    },
  };
}

function assertIdleError(err: Error | null): void {
  assert.ok(err instanceof IdleTimeoutError, `closed got ${String(err)}`);
  assert.equal(err.code, 'ERR_GEVENT_IDLE_TIMEOUT');
  assert.equal(err.timeoutMs, kTimeoutMs);
}

for (const backend of await backendsUnderTest()) {
  describe(`idle timeout (${backend})`, () => {
    test('an idle connection is closed with IdleTimeoutError, no earlier than 200 ms after its last data', async () => {
      const fds = openFdCount();
      const log: Log = { opened: 0, lastData: 0, closedAt: [], errs: [] };
      const run = await startServer(idleEvents(log), { backend, waitTimeout: kTimeoutMs }, 'tcp://127.0.0.1:0');
      const s = await connectTo(run.server.addrs[0]!);
      const end = readEnd(s);
      s.write('ping');
      const got = await end;
      assert.equal(got.how, 'eof', 'the client sees EOF');
      assert.equal(got.data.toString(), 'ping');
      await waitFor(() => log.errs.length === 1, 'closed');
      const idle = log.closedAt[0]! - log.lastData;
      assert.ok(idle >= kTimeoutMs - kSlackMs, `closed after ${idle.toFixed(1)} ms idle`);
      assert.ok(idle < 5000, `closed after ${idle.toFixed(1)} ms idle`);
      assertIdleError(log.errs[0]!);
      await socketClosed(s);
      await run.stop();
      assert.equal(log.errs.length, 1);
      assertNoFdLeak(fds);
    });

    test('a connection that never sends is closed about 200 ms after it opened', async () => {
      const fds = openFdCount();
      const log: Log = { opened: 0, lastData: 0, closedAt: [], errs: [] };
      const run = await startServer(idleEvents(log), { backend, waitTimeout: kTimeoutMs }, 'tcp://127.0.0.1:0');
      const s = await connectTo(run.server.addrs[0]!);
      const got = await readEnd(s);
      assert.equal(got.how, 'eof');
      await waitFor(() => log.errs.length === 1, 'closed');
      const idle = log.closedAt[0]! - log.lastData;
      assert.ok(idle >= kTimeoutMs - kSlackMs, `closed after ${idle.toFixed(1)} ms`);
      assertIdleError(log.errs[0]!);
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('a byte every 50 ms for 600 ms keeps the connection open; once quiet it times out', async () => {
      const fds = openFdCount();
      const log: Log = { opened: 0, lastData: 0, closedAt: [], errs: [] };
      const run = await startServer(idleEvents(log), { backend, waitTimeout: kTimeoutMs }, 'tcp://127.0.0.1:0');
      const s = await connectTo(run.server.addrs[0]!);
      const end = readEnd(s);
      const start = performance.now();
      let sent = 0;
      while (performance.now() - start < 600) {
        s.write('.');
        sent++;
        await sleep(50);
        assert.equal(log.errs.length, 0, `closed after ${(performance.now() - start).toFixed(0)} ms of activity`);
      }
      const got = await end;
      assert.equal(got.how, 'eof');
      assert.equal(got.data.length, sent, 'every byte was echoed before the close');
      await waitFor(() => log.errs.length === 1, 'closed');
      assert.ok(log.closedAt[0]! - start >= 600, 'not closed while active');
      assert.ok(log.closedAt[0]! - log.lastData >= kTimeoutMs - kSlackMs);
      assertIdleError(log.errs[0]!);
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('output the kernel takes keeps a connection open: server sends every 50 ms for 600 ms to a silent client that reads; once quiet it times out', async () => {
      const fds = openFdCount();
      const log: Log = { opened: 0, lastData: 0, closedAt: [], errs: [] };
      let conn: Conn | null = null;
      const events = { ...idleEvents(log), opened: (c: Conn) => void ((conn = c), (log.lastData = performance.now())) };
      const run = await startServer(events, { backend, waitTimeout: kTimeoutMs }, 'tcp://127.0.0.1:0');
      const s = await connectTo(run.server.addrs[0]!);
      const end = readEnd(s);
      await waitFor(() => conn !== null, 'opened');
      const start = performance.now();
      let sent = 0;
      let lastSend = 0;
      while (performance.now() - start < 600) {
        conn!.send('tick');
        lastSend = performance.now();
        sent++;
        await sleep(50);
        assert.equal(log.errs.length, 0, `closed after ${(performance.now() - start).toFixed(0)} ms of output`);
      }
      const got = await end;
      assert.equal(got.how, 'eof');
      assert.equal(got.data.toString(), 'tick'.repeat(sent), 'every tick arrived before the close');
      await waitFor(() => log.errs.length === 1, 'closed');
      assertIdleError(log.errs[0]!);
      assert.ok(
        log.closedAt[0]! - lastSend >= kTimeoutMs - kSlackMs,
        `closed ${(log.closedAt[0]! - lastSend).toFixed(1)} ms after the last output`,
      );
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('waitTimeout 0 (the default) never closes an idle connection', async () => {
      const fds = openFdCount();
      const log: Log = { opened: 0, lastData: 0, closedAt: [], errs: [] };
      const run = await startServer(idleEvents(log), { backend }, 'tcp://127.0.0.1:0');
      const s = await connectTo(run.server.addrs[0]!);
      await waitFor(() => log.opened === 1, 'opened');
      await sleep(400);
      assert.equal(log.errs.length, 0);
      s.end();
      await socketClosed(s);
      await waitFor(() => log.errs.length === 1, 'closed');
      assert.deepEqual(log.errs, [null]);
      await run.stop();
      assertNoFdLeak(fds);
    });
  });
}
