/**
 * Graceful shutdown (the `grace` option): when the signal aborts, the server stops accepting at
 * once, lets every connection finish writing what is queued for it, and closes whatever is left at
 * the grace deadline.
 * - 100 clients midway through 4 MiB replies (they read 1 MiB, then wait for the abort, then read
 *   slowly) each receive the whole reply, then EOF; connects during the grace period are refused;
 *   serve() settles once they are done, well before the deadline;
 * - a peer that never reads its reply is forced closed at the deadline: serve() settles about
 *   `grace` ms after the abort, not before, and no reader is cut off.
 * A peer that never reads has output still queued at the abort only if the kernel did not take all
 * of its reply, and how much a kernel takes depends on the machine's TCP tuning (a fixed 64 MiB
 * reply fits in the buffers of a machine tuned for long fat networks): the tests that need it
 * send the reply in pieces until the server reports output the kernel will not take.
 *
 * Size: 100 readers and a 6 s grace (for the case that waits it out) in CI; GEVENT_STRESS=1 runs
 * 500 readers (about 2 GiB in flight) with a 20 s grace.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { serve, type Conn, type Server } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectOutcome,
  openFdCount,
  sendUntilQueued,
  sized,
  sleep,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kReaders = sized(100, 500);
const kReplyBytes = 4 * 1024 * 1024;
const kMidwayBytes = 1024 * 1024;
/** Output a never-reading peer's connection must still hold, beyond what the kernel took, at the abort. */
const kStuckQueuedBytes = 1024 * 1024;
const kStuckPiece = Buffer.alloc(1024 * 1024, 0x4e);
/**
 * The grace when a peer never reads, which the test waits out: long enough for every reader to
 * take its remaining 3 MiB with room to spare. That takes about 1.2 s here with the default socket
 * buffers and 2.5 s with 256 KiB ones (tcp_rmem/tcp_wmem), longer on a loaded machine; more
 * readers, more time.
 */
const kGraceMs = sized(6000, 20_000);
/** The grace when every peer reads: serve() must settle as soon as they are done, long before it. */
const kReadersGraceMs = 60_000;
/** How long the readers may take to get midway (the stress size puts about 2 GiB in flight). */
const kMidwayMs = sized(10_000, 60_000);
/** Timers have millisecond granularity, and the abort is timed from this thread. */
const kEarlyMs = 20;
/** How late past the deadline serve() may settle (closing every fd, on a loaded 2-core machine). */
const kLateMs = 2000;

function reply(bytes: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32LE(i, i);
  return b;
}

const kReply = reply(kReplyBytes);
const kReplyHash = createHash('sha256').update(kReply).digest('hex');

interface Reader {
  s: Socket;
  bytes: number;
  midway: Promise<void>;
  finished: Promise<{ how: string; hash: string }>;
  go: () => void;
}

/** A client that asks for a 4 MiB reply, reads 1 MiB, waits for go(), then reads the rest slowly. */
function reader(port: number): Reader {
  const s = connect(port, '127.0.0.1', () => s.write('R'));
  const h = createHash('sha256');
  let onMidway!: () => void;
  let released = false;
  let since = 0;
  const r: Reader = {
    s,
    bytes: 0,
    midway: new Promise((resolve) => (onMidway = resolve)),
    finished: new Promise((resolve) => {
      s.on('data', (d: Buffer) => {
        h.update(d);
        r.bytes += d.length;
        since += d.length;
        if (!released && r.bytes >= kMidwayBytes) {
          s.pause();
          onMidway();
        } else if (released && since >= 256 * 1024) {
          since = 0;
          s.pause();
          setTimeout(() => s.resume(), 5);
        }
      });
      s.once('end', () => resolve({ how: 'eof', hash: h.digest('hex') }));
      s.once('error', (err: NodeJS.ErrnoException) => resolve({ how: err.code ?? err.message, hash: '' }));
      s.once('close', () => resolve({ how: `closed after ${r.bytes} bytes`, hash: '' }));
    }),
    go() {
      released = true;
      s.resume();
    },
  };
  return r;
}

interface ServerLog {
  closed: Map<string, { err: Error | null; at: number }[]>;
}

for (const backend of await backendsUnderTest()) {
  describe(`graceful shutdown (${backend})`, () => {
    for (const withStuck of [false, true]) {
      const name = withStuck
        ? `a peer that never reads its reply is forced closed at the ${kGraceMs} ms grace deadline and serve() settles then, while ${kReaders} readers still get their whole 4 MiB`
        : `${kReaders} clients midway through 4 MiB replies at the abort all get the whole reply then EOF; connects are refused during the grace; serve() settles when they are done, before the deadline`;
      test(name, async () => {
        const grace = withStuck ? kGraceMs : kReadersGraceMs;
        const fds = openFdCount();
        const log: ServerLog = { closed: new Map() };
        let stuckConn: Conn | null = null;
        let nextId = 0;
        const ac = new AbortController();
        let server!: Server;
        let onServing!: () => void;
        const serving = new Promise<void>((r) => (onServing = r));
        const done = serve(
          {
            serving(s) {
              server = s;
              onServing();
            },
            opened(c: Conn) {
              c.context = `#${nextId++}`;
              log.closed.set(c.context as string, []);
            },
            data(c, input) {
              const what = String.fromCharCode(input.readByte());
              input.retrieveAll();
              c.context = `${what}${c.context as string}`;
              log.closed.set(c.context as string, []);
              if (what === 'N') stuckConn = c;
              else c.write(kReply);
            },
            closed(c, err) {
              log.closed.get(c.context as string)!.push({ err, at: performance.now() });
            },
          },
          { backend, grace, signal: ac.signal },
          'tcp://127.0.0.1:0',
        );
        let settledAt = 0;
        const settled = done.then(() => void (settledAt = performance.now()));
        await serving;
        const port = server.addrs[0]!.port;
        const readers = Array.from({ length: kReaders }, () => reader(port));
        const clients = readers.map((r) => r.s);
        let stuckClient: Socket | null = null;
        let abortedAt = 0;
        let refusedDuringGrace = '';
        try {
          if (withStuck) {
            stuckClient = connect(port, '127.0.0.1', () => stuckClient!.write('N'));
            stuckClient.pause();
            stuckClient.on('error', () => undefined);
            clients.push(stuckClient);
          }
          await within(Promise.all(readers.map((r) => r.midway)), kMidwayMs, 'every reader midway');
          if (withStuck) {
            await waitFor(() => stuckConn !== null, 'the stuck peer to ask');
            await within(
              sendUntilQueued(stuckConn!, kStuckQueuedBytes, () => kStuckPiece),
              30_000,
              "the stuck peer's kernel buffers to fill",
            );
          }
          abortedAt = performance.now();
          ac.abort();
          await sleep(50);
          refusedDuringGrace = await within(connectOutcome(port), 5000, 'a connect during the grace period');
          for (const r of readers) r.go();
          await within(settled, grace + kLateMs + 1000, 'serve() to settle');
          await within(Promise.all(readers.map((r) => r.finished)), kMidwayMs, 'every reader to finish');
        } finally {
          for (const s of clients) s.destroy();
          await Promise.all(clients.map(socketClosed));
          ac.abort();
          await within(done, 5000, 'serve() to settle').catch(() => undefined);
        }
        const results = await Promise.all(readers.map((r) => r.finished));
        const bad = results.filter((r) => r.how !== 'eof' || r.hash !== kReplyHash);
        assert.deepEqual(
          bad.slice(0, 5).map((r) => r.how),
          [],
          `${bad.length} of ${kReaders} readers did not get their whole reply then EOF`,
        );
        assert.equal(refusedDuringGrace, 'ECONNREFUSED', 'a connect during the grace period is refused');
        const settledAfter = settledAt - abortedAt;
        for (const [key, closes] of log.closed) {
          if (key.startsWith('#')) continue;
          assert.equal(closes.length, 1, `${key}: closed fired ${closes.length} times`);
          if (key.startsWith('R')) assert.equal(closes[0]!.err, null, `${key} closed with ${String(closes[0]!.err)}`);
        }
        if (withStuck) {
          const [stuckKey] = [...log.closed.keys()].filter((k) => k.startsWith('N'));
          const stuckClosedAfter = log.closed.get(stuckKey!)![0]!.at - abortedAt;
          assert.ok(
            stuckClosedAfter >= kGraceMs - kEarlyMs,
            `the stuck peer was closed ${stuckClosedAfter.toFixed(0)} ms after the abort, before the grace deadline`,
          );
          assert.ok(
            settledAfter >= kGraceMs - kEarlyMs && settledAfter <= kGraceMs + kLateMs,
            `serve() settled ${settledAfter.toFixed(0)} ms after the abort (grace ${kGraceMs} ms)`,
          );
        } else {
          assert.ok(
            settledAfter < grace,
            `serve() settled ${settledAfter.toFixed(0)} ms after the abort, waiting out the grace with nothing left to write`,
          );
        }
        assertNoFdLeak(fds);
      });
    }

    test('a grace of 2^31 ms (longer than one setTimeout can wait) is not cut short: a peer with output still queued stays open after the abort', async () => {
      const fds = openFdCount();
      const printers = process.listeners('warning');
      process.removeAllListeners('warning');
      const quiet = (): void => undefined;
      process.on('warning', quiet);
      let stuckConn: Conn | null = null;
      const closedErrs: (Error | null)[] = [];
      const ac = new AbortController();
      let onServing!: (s: Server) => void;
      const serving = new Promise<Server>((r) => (onServing = r));
      const done = serve(
        {
          serving: (s) => onServing(s),
          data(c, input) {
            input.retrieveAll();
            stuckConn = c;
          },
          closed: (_c, err) => void closedErrs.push(err),
        },
        { backend, grace: 2 ** 31, signal: ac.signal },
        'tcp://127.0.0.1:0',
      );
      let settled = false;
      void done.then(
        () => (settled = true),
        () => (settled = true),
      );
      const s = connect((await serving).addrs[0]!.port, '127.0.0.1', () => s.write('N'));
      s.pause();
      s.on('error', () => undefined);
      let closedDuringGrace = -1;
      let settledDuringGrace = true;
      try {
        await waitFor(() => stuckConn !== null, 'the request');
        await within(
          sendUntilQueued(stuckConn!, kStuckQueuedBytes, () => kStuckPiece),
          30_000,
          "the peer's kernel buffers to fill",
        );
        ac.abort();
        await sleep(500);
        closedDuringGrace = closedErrs.length;
        settledDuringGrace = settled;
      } finally {
        s.destroy();
        await socketClosed(s);
        await within(done, 5000, 'serve() to settle').catch(() => undefined);
        process.off('warning', quiet);
        for (const l of printers) process.on('warning', l);
      }
      assert.equal(closedDuringGrace, 0, 'the connection was closed within 500 ms of a 2^31 ms grace');
      assert.equal(settledDuringGrace, false, 'serve() settled within 500 ms of a 2^31 ms grace');
      assertNoFdLeak(fds);
    });
  });
}
