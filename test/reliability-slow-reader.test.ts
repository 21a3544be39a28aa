/**
 * Backpressure against peers that read slowly or never:
 * - a server writing `while (c.write(chunk))` stops when write() returns false (with the queue just
 *   past the high-water mark) and goes on from `drained` (with the queue at the low-water mark);
 * - an echo server whose peer keeps sending and never reads stops reading from it (the peer's
 *   writes block), so the server's memory grows by less than 16 MiB instead of by everything the
 *   peer sends; the peer sends until it blocks, not a fixed amount, since the kernel buffers take
 *   more or less of the echo depending on the machine's TCP tuning;
 * - with maxOutputBytes (1 MiB), 200 peers that never read their big replies are each closed with
 *   OutputLimitError (ERR_GEVENT_OUTPUT_LIMIT), whether the reply is queued in one burst or
 *   trickles out from a timer.
 *
 * Size: 200 non-reading peers in CI; GEVENT_STRESS=1 runs 1,000.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { OutputLimitError, type Conn } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectMany,
  connectTo,
  openFdCount,
  rssBytes,
  sized,
  sleep,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kHighWater = 64 * 1024;
const kLowWater = 16 * 1024;
const kChunk = 16 * 1024;
const kPumpBytes = 16 * 1024 * 1024;
/** A bound on what the flooding peer sends, far above what any kernel buffers before it blocks. */
const kFloodCapBytes = 1024 * 1024 * 1024;
const kMaxRssGrowthBytes = 16 * 1024 * 1024;
const kPeers = sized(200, 1000);
/** Every tenth non-reading peer gets its reply from a timer instead of in one burst. */
const kTrickleEvery = 10;
const kMaxOutput = 1024 * 1024;

function chunkFor(i: number): Buffer {
  return Buffer.alloc(kChunk, i & 0xff);
}

/** Reads to EOF, pausing 2 ms every 128 KiB; rejects when nothing arrives for 3 s. */
function slowRead(s: Socket): Promise<{ bytes: number; hash: string }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    let since = 0;
    let stall: NodeJS.Timeout | undefined;
    const watch = (): void => {
      clearTimeout(stall);
      stall = setTimeout(() => reject(new Error(`no data for 3000 ms after ${bytes} bytes`)), 3000);
    };
    watch();
    s.on('data', (d: Buffer) => {
      watch();
      h.update(d);
      bytes += d.length;
      since += d.length;
      if (since >= 128 * 1024) {
        since = 0;
        s.pause();
        setTimeout(() => s.resume(), 2);
      }
    });
    s.once('end', () => {
      clearTimeout(stall);
      resolve({ bytes, hash: h.digest('hex') });
    });
    s.once('error', (err) => {
      clearTimeout(stall);
      reject(err);
    });
    s.resume();
  });
}

for (const backend of await backendsUnderTest()) {
  describe(`slow and silent readers (${backend})`, () => {
    test('while (c.write(chunk)) stops just past the high-water mark and resumes from drained at the low-water mark; a slow reader gets all 16 MiB in order', async () => {
      const fds = openFdCount();
      let index = 0;
      const falseAt: number[] = [];
      const drainedAt: number[] = [];
      const closedErrs: (Error | null)[] = [];
      const want = createHash('sha256');
      for (let i = 0; i < kPumpBytes / kChunk; i++) want.update(chunkFor(i));
      const pump = (c: Conn): void => {
        while (index < kPumpBytes / kChunk) {
          if (!c.write(chunkFor(index++))) {
            falseAt.push(c.queuedBytes);
            return;
          }
        }
        c.end();
      };
      const run = await startServer(
        {
          opened: (c) => pump(c),
          drained(c) {
            drainedAt.push(c.queuedBytes);
            pump(c);
          },
          closed: (_c, err) => void closedErrs.push(err),
        },
        { backend, highWaterMark: kHighWater, lowWaterMark: kLowWater, allowHalfOpen: true },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      let got: { bytes: number; hash: string };
      try {
        got = await slowRead(s);
      } finally {
        s.destroy();
        await socketClosed(s);
        await within(
          waitFor(() => closedErrs.length === 1, 'closed'),
          5000,
          'closed',
        ).catch(() => undefined);
        await within(run.stop(), 5000, 'serve() to settle');
      }
      assert.equal(got.bytes, kPumpBytes);
      assert.equal(got.hash, want.digest('hex'));
      assert.ok(falseAt.length >= 1, 'write() returned false');
      for (const q of falseAt)
        assert.ok(q > kHighWater && q <= kHighWater + kChunk, `write() returned false with ${q} bytes queued`);
      assert.equal(drainedAt.length, falseAt.length, 'one drained per false write()');
      for (const q of drainedAt) assert.ok(q <= kLowWater, `drained fired with ${q} bytes queued`);
      assert.deepEqual(closedErrs, [null]);
      assertNoFdLeak(fds);
    });

    test("an echo server whose peer keeps sending and never reads stops reading from it (the peer's writes block): server memory grows by less than 16 MiB", async () => {
      const fds = openFdCount();
      let received = 0;
      let maxQueued = 0;
      const closedErrs: (Error | null)[] = [];
      const run = await startServer(
        {
          data(c, input) {
            received += input.length;
            const out = input.bytes();
            input.retrieveAll();
            c.write(out);
            maxQueued = Math.max(maxQueued, c.queuedBytes);
          },
          closed: (_c, err) => void closedErrs.push(err),
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.pause();
      s.on('error', () => undefined);
      await sleep(20);
      const rssBefore = rssBytes();
      const block = Buffer.alloc(64 * 1024, 0x5a);
      let sent = 0;
      let stop = false;
      let blocked = false;
      const sending = (async () => {
        while (sent < kFloodCapBytes && !stop) {
          sent += block.length;
          if (!s.write(block)) {
            blocked = true;
            await new Promise((r) => (s.once('drain', r), s.once('close', r)));
            blocked = false;
          }
        }
      })();
      let growth = 0;
      let blockedAtEnd = false;
      try {
        let last = -1;
        let sameFor = 0;
        const deadline = Date.now() + 60_000;
        while (sameFor < 10 && sent < kFloodCapBytes && Date.now() < deadline) {
          await sleep(100);
          sameFor = received === last ? sameFor + 1 : 0;
          last = received;
        }
        blockedAtEnd = blocked;
        growth = rssBytes() - rssBefore;
      } finally {
        stop = true;
        s.destroy();
        await socketClosed(s);
        await within(sending, 5000, 'the sender to stop').catch(() => undefined);
        await within(
          waitFor(() => closedErrs.length === 1, 'closed'),
          5000,
          'closed',
        ).catch(() => undefined);
        await within(run.stop(), 5000, 'serve() to settle');
      }
      assert.ok(
        blockedAtEnd && received < sent,
        `the server read ${received} of the ${sent} bytes sent and the client's writes were ${blockedAtEnd ? '' : 'not '}blocked: it did not stop reading`,
      );
      assert.ok(
        growth < kMaxRssGrowthBytes,
        `RSS grew ${(growth / 1048576).toFixed(1)} MiB while the server read ${(received / 1048576).toFixed(1)} MiB (most queued output ${maxQueued} bytes)`,
      );
      assert.equal(closedErrs.length, 1);
      assertNoFdLeak(fds);
    });

    test(`${kPeers} peers that never read their big replies are each closed with OutputLimitError (maxOutputBytes 1 MiB)`, async () => {
      const fds = openFdCount();
      const closedErrs = new Map<number, (Error | null)[]>();
      const timers = new Set<NodeJS.Timeout>();
      let opened = 0;
      const big = Buffer.alloc(1024 * 1024, 0x42);
      const slice = big.subarray(0, 256 * 1024);
      const run = await startServer(
        {
          opened(c) {
            c.context = opened++;
            closedErrs.set(c.context as number, []);
          },
          data(c, input) {
            input.retrieveAll();
            if ((c.context as number) % kTrickleEvery === 0) {
              const t: NodeJS.Timeout = setInterval(() => {
                if (!c.open) {
                  clearInterval(t);
                  timers.delete(t);
                  return;
                }
                c.write(slice);
              }, 5);
              timers.add(t);
            } else {
              for (let i = 0; i < 4 && c.open; i++) c.write(big);
            }
          },
          closed: (c, err) => void closedErrs.get(c.context as number)!.push(err),
        },
        { backend, maxOutputBytes: kMaxOutput },
        'tcp://127.0.0.1:0',
      );
      const clients = await connectMany(run.server.addrs[0]!.port, kPeers);
      for (const s of clients) {
        s.pause();
        s.on('error', () => undefined);
        s.write('send me everything');
      }
      let allClosed = false;
      try {
        await within(
          waitFor(
            () => [...closedErrs.values()].filter((e) => e.length > 0).length === kPeers,
            `${kPeers} closed`,
            20_000,
          ),
          20_000,
          `${kPeers} closed`,
        );
        allClosed = true;
      } finally {
        for (const t of timers) clearInterval(t);
        for (const s of clients) s.destroy();
        await Promise.all(clients.map(socketClosed));
        await within(run.stop(), 5000, 'serve() to settle');
      }
      assert.ok(allClosed);
      assert.equal(opened, kPeers);
      const wrong: string[] = [];
      for (const [i, errs] of closedErrs) {
        const e = errs[0];
        if (errs.length !== 1) wrong.push(`connection ${i}: closed fired ${errs.length} times`);
        else if (
          !(e instanceof OutputLimitError) ||
          e.code !== 'ERR_GEVENT_OUTPUT_LIMIT' ||
          e.limitBytes !== kMaxOutput ||
          !(e.queuedBytes > kMaxOutput)
        ) {
          wrong.push(`connection ${i}: closed with ${String(e)}`);
        }
      }
      assert.deepEqual(wrong.slice(0, 10), []);
      assertNoFdLeak(fds);
    });
  });
}
