/**
 * c.write() keeps order under backpressure: 100,000 sequence-numbered frames of 16-255 bytes
 * (about 13 MB, more than the kernel's socket buffers hold) written to a client that keeps
 * pausing its socket arrive in order, with no gap and no duplicate. The server honours
 * backpressure: it writes while write() returns true and goes on from `drained`, so write() must
 * have returned false and `drained` must have fired.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import type { Conn } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  sized,
  sleep,
  startServer,
  waitFor,
  within,
  type Running,
  assertNoFdLeak,
} from './helpers.js';

const kFrames = sized(100_000, 1_000_000);
/** Frame: u32 sequence number, u8 payload length, then `len` bytes of (seq + i) & 0xff. */
const kHeader = 5;
/** A reader that gets nothing for this long has been stalled (it pauses for 3 ms at a time). */
const kStallMs = 3000;

function frame(seq: number): Buffer {
  const len = 11 + (((seq * 2654435761) >>> 0) % 240);
  const b = Buffer.allocUnsafe(kHeader + len);
  b.writeUInt32BE(seq, 0);
  b[4] = len;
  for (let i = 0; i < len; i++) b[kHeader + i] = (seq + i) & 0xff;
  return b;
}

interface Check {
  next: number;
  errors: string[];
}

/** Parses frames from a client socket that pauses for a few ms every ~256 KiB; resolves at EOF, rejects on a stall. */
function slowReader(s: Socket): Promise<Check> {
  const check: Check = { next: 0, errors: [] };
  let pending: Buffer = Buffer.alloc(0);
  let sincePause = 0;
  return new Promise((resolve, reject) => {
    let stall: NodeJS.Timeout | undefined;
    const watch = (): void => {
      clearTimeout(stall);
      stall = setTimeout(() => reject(new Error(`no data for ${kStallMs} ms after frame ${check.next - 1}`)), kStallMs);
    };
    watch();
    s.on('data', (d: Buffer) => {
      watch();
      pending = pending.length ? Buffer.concat([pending, d]) : d;
      let at = 0;
      while (pending.length - at >= kHeader && pending.length - at >= kHeader + pending[at + 4]!) {
        const seq = pending.readUInt32BE(at);
        const len = pending[at + 4]!;
        if (seq !== check.next && check.errors.length < 10)
          check.errors.push(`expected frame ${check.next}, got ${seq}`);
        for (let i = 0; i < len; i++) {
          if (pending[at + kHeader + i] !== ((seq + i) & 0xff)) {
            if (check.errors.length < 10) check.errors.push(`frame ${seq} payload byte ${i} is wrong`);
            break;
          }
        }
        check.next = seq + 1;
        at += kHeader + len;
      }
      pending = pending.subarray(at);
      sincePause += d.length;
      if (sincePause >= 256 * 1024) {
        sincePause = 0;
        s.pause();
        setTimeout(() => s.resume(), 3);
      }
    });
    s.once('end', () => {
      clearTimeout(stall);
      if (pending.length > 0) check.errors.push(`${pending.length} bytes of a partial frame at EOF`);
      resolve(check);
    });
    s.once('error', (err) => {
      clearTimeout(stall);
      reject(err);
    });
    s.resume();
  });
}

/** Connects, reads every frame with pauses, then closes; always stops the server. */
async function readAllFrames(run: Running, closedErrs: (Error | null)[]): Promise<Check> {
  const s = await connectTo(run.server.addrs[0]!);
  s.pause();
  await sleep(50);
  try {
    return await within(slowReader(s), 30_000, 'the last frame');
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
}

for (const backend of await backendsUnderTest()) {
  describe(`write order under backpressure (${backend})`, () => {
    test(`${kFrames} frames written with c.write() while it returns true, resumed from drained, arrive at a pausing reader in order, no gap, no duplicate`, async () => {
      const fds = openFdCount();
      let seq = 0;
      let falses = 0;
      let drainedCalls = 0;
      const closedErrs: (Error | null)[] = [];
      /** Writes frames until write() says stop; ends the connection after the last one. */
      const pump = (c: Conn): void => {
        while (seq < kFrames) {
          if (!c.write(frame(seq++))) {
            falses++;
            return;
          }
        }
        c.end();
      };
      const run = await startServer(
        {
          opened: (c) => void setImmediate(() => pump(c)),
          drained(c) {
            drainedCalls++;
            pump(c);
          },
          closed: (_c, err) => void closedErrs.push(err),
        },
        { backend, allowHalfOpen: true },
        'tcp://127.0.0.1:0',
      );
      const check = await readAllFrames(run, closedErrs);
      assert.deepEqual(check.errors, []);
      assert.equal(check.next, kFrames, 'every frame arrived');
      assert.ok(falses >= 1, 'write() returned false at least once');
      assert.ok(drainedCalls >= 1, 'drained fired at least once');
      assert.equal(drainedCalls, falses, 'each false write() is followed by one drained');
      assert.deepEqual(closedErrs, [null]);
      assertNoFdLeak(fds);
    });

    test(`${kFrames} frames queued with c.write() in bursts from timers, past the high-water mark, arrive at a pausing reader in order`, async () => {
      const fds = openFdCount();
      let falses = 0;
      const closedErrs: (Error | null)[] = [];
      const run = await startServer(
        {
          opened(c) {
            let seq = 0;
            const burst = (): void => {
              for (let i = 0; i < 2000 && seq < kFrames; i++) if (!c.write(frame(seq++))) falses++;
              if (seq < kFrames) setTimeout(burst, 1);
              else c.end();
            };
            setTimeout(burst, 1);
          },
          closed: (_c, err) => void closedErrs.push(err),
        },
        { backend, allowHalfOpen: true },
        'tcp://127.0.0.1:0',
      );
      const check = await readAllFrames(run, closedErrs);
      assert.deepEqual(check.errors, []);
      assert.equal(check.next, kFrames, 'every frame arrived');
      assert.ok(falses >= 1, 'write() returned false past the high-water mark');
      assert.deepEqual(closedErrs, [null]);
      assertNoFdLeak(fds);
    });
  });
}
