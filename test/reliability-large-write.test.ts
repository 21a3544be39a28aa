/**
 * One very large write: a single 64 MiB c.write() to a client that reads 4 KiB at a time arrives
 * byte-exact (sha256), then EOF. The write is handed over whole, so the backend must carry its
 * partial writes across many wake-ups without losing or repeating a byte.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { Action } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kBytes = 64 * 1024 * 1024;
const kReadBytes = 4096;

/** 64 MiB whose every 4-byte word holds its own index, so a shifted or repeated block changes the hash. */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(i >>> 2, i);
  return b;
}

/** Reads with s.read(4096) from 'readable' until EOF; resolves with the byte count and sha256. */
function readSmall(s: Socket): Promise<{ bytes: number; reads: number; hash: string }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    let reads = 0;
    const take = (chunk: Buffer): void => {
      h.update(chunk);
      bytes += chunk.length;
      reads++;
    };
    s.on('readable', () => {
      let chunk: Buffer | null;
      while ((chunk = s.read(kReadBytes) as Buffer | null) !== null) take(chunk);
    });
    s.once('end', () => resolve({ bytes, reads, hash: h.digest('hex') }));
    s.once('error', reject);
  });
}

for (const backend of await backendsUnderTest()) {
  describe(`one large write (${backend})`, () => {
    test('a single 64 MiB c.write() to a client reading 4 KiB at a time arrives byte-exact, then EOF', async () => {
      const fds = openFdCount();
      const big = pattern(kBytes);
      const want = createHash('sha256').update(big).digest('hex');
      let wrote: boolean | undefined;
      const closedErrs: (Error | null)[] = [];
      const run = await startServer(
        {
          data(c, input) {
            input.retrieveAll();
            wrote = c.write(big);
            return Action.Close;
          },
          closed: (_c, err) => void closedErrs.push(err),
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      try {
        const reading = readSmall(s);
        s.write('go');
        const got = await within(reading, 60_000, '64 MiB and EOF');
        assert.equal(got.bytes, kBytes);
        assert.equal(got.hash, want, 'the 64 MiB arrived changed');
        assert.ok(got.reads >= kBytes / kReadBytes, `${got.reads} reads of at most 4 KiB`);
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
      assert.equal(wrote, false, 'write() of 64 MiB reports the queue over the high-water mark');
      assert.deepEqual(closedErrs, [null]);
      assertNoFdLeak(fds);
    });
  });
}
