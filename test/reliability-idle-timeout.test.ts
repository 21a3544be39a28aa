/**
 * Idle timeouts at scale, on time: with waitTimeout 500 ms, each of 300 idle connections closes
 * with IdleTimeoutError between 500 ms and 500 ms + one wheel tick (50 ms) + 250 ms after its last
 * incoming data, while connections that send every 100 ms stay open. c.setIdleTimeout(ms)
 * overrides the server's timeout per connection: one set to 200 ms closes first, and 0 keeps a
 * connection open past everyone else's timeout.
 *
 * A timeout too long for one setTimeout (2^32 ms, about 50 days; setTimeout takes at most 2^31-1)
 * is still honoured quietly: no TimeoutOverflowWarning, no timer spinning every millisecond.
 *
 * Size: 300 idle connections in CI; GEVENT_STRESS=1 runs 1,000 (both backends within the bound).
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { IdleTimeoutError, type Conn } from '../src/index.js';
import {
  backendsUnderTest,
  needFds,
  closed as socketClosed,
  connectMany,
  openFdCount,
  sized,
  sleep,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kTimeoutMs = 500;
/** The idle wheel's tick: waitTimeout / 10, clamped to [10, 1000] ms. */
const kWheelTickMs = Math.min(1000, Math.max(10, kTimeoutMs / 10));
const kLateMs = kWheelTickMs + 250;
/** Timers have whole-millisecond granularity; allow that much early. */
const kEarlyMs = 2;
const kIdle = sized(300, 1000);
const kActive = 20;

interface Track {
  role: string;
  lastData: number;
  closedAt: number;
  err: Error | null;
  closes: number;
}

for (const backend of await backendsUnderTest()) {
  describe(`idle timeouts at scale (${backend})`, { skip: needFds(2 * (kIdle + kActive) + 100) }, () => {
    test(`${kIdle} idle connections close 500-800 ms after their last data with IdleTimeoutError; ${kActive} sending every 100 ms stay open; setIdleTimeout(200) closes first, setIdleTimeout(0) never`, async () => {
      const fds = openFdCount();
      const tracks: Track[] = [];
      const run = await startServer(
        {
          opened(c) {
            const t: Track = { role: '', lastData: performance.now(), closedAt: 0, err: null, closes: 0 };
            tracks.push(t);
            c.context = t;
          },
          data(c: Conn, input) {
            const t = c.context as Track;
            t.lastData = performance.now();
            const text = Buffer.from(input.bytes()).toString();
            input.retrieveAll();
            if (t.role === '') {
              t.role = text[0]!;
              if (t.role === 'f') c.setIdleTimeout(200);
              if (t.role === 'z') c.setIdleTimeout(0);
            }
          },
          closed(c, err) {
            const t = c.context as Track;
            t.closedAt = performance.now();
            t.err = err;
            t.closes++;
          },
        },
        { backend, waitTimeout: kTimeoutMs },
        'tcp://127.0.0.1:0',
      );
      const port = run.server.addrs[0]!.port;
      const clients: Socket[] = [];
      const timers: NodeJS.Timeout[] = [];
      try {
        /** Connects `n` clients that send `role` as soon as they connect (their last data, unless they keep sending). */
        const open = async (n: number, role: string): Promise<Socket[]> => {
          return connectMany(port, n, 100, (s) => {
            s.on('error', () => undefined);
            s.write(role);
            clients.push(s);
          });
        };
        await open(1, 'f');
        await open(1, 'z');
        for (const s of await open(kActive, 'a')) timers.push(setInterval(() => s.write('a'), 100));
        await open(kIdle, 'i');
        await within(
          waitFor(
            () => tracks.filter((t) => t.role === 'i' && t.closes > 0).length === kIdle,
            'every idle connection closed',
            10_000,
          ),
          10_000,
          'idle closes',
        );
        await sleep(kTimeoutMs + kLateMs);
      } finally {
        for (const t of timers) clearInterval(t);
        for (const s of clients) s.destroy();
        await Promise.all(clients.map(socketClosed));
        await within(run.stop(), 5000, 'serve() to settle');
      }
      const byRole = (r: string): Track[] => tracks.filter((t) => t.role === r);
      const wrong: string[] = [];
      for (const t of byRole('i')) {
        const idleFor = t.closedAt - t.lastData;
        if (!(t.err instanceof IdleTimeoutError) || t.err.timeoutMs !== kTimeoutMs)
          wrong.push(`idle connection closed with ${String(t.err)}`);
        else if (idleFor < kTimeoutMs - kEarlyMs || idleFor > kTimeoutMs + kLateMs)
          wrong.push(`idle connection closed after ${idleFor.toFixed(0)} ms idle`);
      }
      assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} of ${kIdle} idle connections closed wrongly`);
      assert.equal(byRole('i').length, kIdle);
      for (const t of byRole('a')) assert.equal(t.err, null, `an active connection closed with ${String(t.err)}`);
      const [fastT] = byRole('f');
      const [zeroT] = byRole('z');
      assert.ok(
        fastT!.err instanceof IdleTimeoutError && fastT!.err.timeoutMs === 200,
        `setIdleTimeout(200): closed with ${String(fastT!.err)}`,
      );
      const fastIdle = fastT!.closedAt - fastT!.lastData;
      assert.ok(
        fastIdle >= 200 - kEarlyMs && fastIdle <= 200 + kLateMs,
        `setIdleTimeout(200) closed after ${fastIdle.toFixed(0)} ms idle`,
      );
      assert.ok(
        byRole('i').every((t) => t.closedAt > fastT!.closedAt),
        'the 200 ms connection closed before every 500 ms one',
      );
      assert.equal(zeroT!.err, null, `setIdleTimeout(0) closed with ${String(zeroT!.err)} instead of staying open`);
      assert.ok(
        tracks.every((t) => t.closes === 1),
        'one closed per connection',
      );
      assertNoFdLeak(fds);
    });

    test('waitTimeout 2^32 ms (longer than one setTimeout can wait) keeps an idle connection open without a TimeoutOverflowWarning or a spinning timer', async () => {
      const fds = openFdCount();
      const printers = process.listeners('warning');
      process.removeAllListeners('warning');
      let overflows = 0;
      const onWarning = (w: Error): void => void (w.name === 'TimeoutOverflowWarning' && overflows++);
      process.on('warning', onWarning);
      const closedErrs: (Error | null)[] = [];
      const run = await startServer(
        { closed: (_c, err) => void closedErrs.push(err) },
        { backend, waitTimeout: 2 ** 32 },
        'tcp://127.0.0.1:0',
      );
      const s = await connectMany(run.server.addrs[0]!.port, 1, 1, (c) => c.write('x'));
      let cpuMs = 0;
      try {
        const cpu = process.cpuUsage();
        await sleep(500);
        const used = process.cpuUsage(cpu);
        cpuMs = (used.user + used.system) / 1000;
      } finally {
        s[0]!.destroy();
        await socketClosed(s[0]!);
        await within(run.stop(), 5000, 'serve() to settle');
        process.off('warning', onWarning);
        for (const l of printers) process.on('warning', l);
      }
      assert.deepEqual(closedErrs, [null], 'the connection stayed open until the client left');
      assert.equal(
        overflows,
        0,
        `${overflows} TimeoutOverflowWarnings in 500 ms (${cpuMs.toFixed(0)} ms of CPU while idle)`,
      );
      assertNoFdLeak(fds);
    });
  });
}
