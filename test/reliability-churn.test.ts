/**
 * Connection churn: many short connections (connect, send 1 byte, get the echo, close), 200 in
 * flight. Half are closed by the client (end), half by the server (Action.Close with the echo).
 * Every connection gets exactly one `opened` and one `closed`, fds return to their baseline, and
 * RSS does not creep: growth from the halfway point to the end stays under a generous 20 MiB
 * (a leak check, not a speed check).
 *
 * Size: 5,000 cycles in CI; GEVENT_STRESS=1 runs 20,000.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { Action, type Conn, type RingBuffer } from '../src/index.js';
import {
  backendsUnderTest,
  openFdCount,
  rssBytes,
  sized,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kCycles = sized(5000, 20_000);
const kInFlight = 200;
const kMaxRssGrowthBytes = 20 * 1024 * 1024;

/** One cycle: connect, write one byte, read it back, and close (or see the server close). */
function cycle(port: number, i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const byte = i % 2 === 0 ? 'c' : 's';
    let echoed = false;
    s.once('connect', () => s.write(byte));
    s.on('data', (d: Buffer) => {
      if (echoed || d.toString() !== byte)
        return reject(new Error(`cycle ${i}: unexpected ${JSON.stringify(d.toString())}`));
      echoed = true;
      if (byte === 'c') s.end();
    });
    s.once('error', reject);
    s.once('close', () => (echoed ? resolve() : reject(new Error(`cycle ${i}: closed before the echo`))));
  });
}

async function gc(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((r) => setImmediate(r));
}

for (const backend of await backendsUnderTest()) {
  describe(`connection churn (${backend})`, () => {
    test(`${kCycles} cycles of connect, 1 byte, echo, close (200 in flight): one opened and one closed each, fds back to baseline, RSS flat over the second half`, async () => {
      const fds = openFdCount();
      let opened = 0;
      let closedCount = 0;
      const errors: Error[] = [];
      const run = await startServer(
        {
          opened: () => void opened++,
          data(_c: Conn, input: RingBuffer) {
            const out = input.bytes();
            input.retrieveAll();
            return out[0] === 0x73 ? { out, action: Action.Close } : out;
          },
          closed(_c: Conn, err: Error | null) {
            closedCount++;
            if (err) errors.push(err);
          },
        },
        { backend, onError: (err) => errors.push(err) },
        'tcp://127.0.0.1:0',
      );
      const port = run.server.addrs[0]!.port;
      let next = 0;
      let done = 0;
      let rssHalf = 0;
      const worker = async (): Promise<void> => {
        while (next < kCycles) {
          await cycle(port, next++);
          done++;
          if (done === kCycles / 2) {
            await gc();
            rssHalf = rssBytes();
          }
        }
      };
      try {
        await within(Promise.all(Array.from({ length: kInFlight }, worker)), 60_000, `${kCycles} cycles`);
        await within(
          waitFor(() => closedCount === kCycles, 'every closed', 60_000),
          60_000,
          'every closed',
        );
      } finally {
        await within(run.stop(), 5000, 'serve() to settle');
      }
      await gc();
      const growth = rssBytes() - rssHalf;
      assert.deepEqual(errors, []);
      assert.equal(opened, kCycles);
      assert.equal(closedCount, kCycles);
      assertNoFdLeak(fds);
      assert.ok(growth < kMaxRssGrowthBytes, `RSS grew ${(growth / 1048576).toFixed(1)} MiB over the second half`);
    });
  });
}
