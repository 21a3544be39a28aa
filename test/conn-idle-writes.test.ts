/**
 * The idle timeout counts progress both ways: output the kernel takes is activity, as input is.
 * - a client downloading 48 MiB at about 16 MiB/s (reading with pause/resume) and sending nothing
 *   gets every byte, then EOF from the 1 s idle timeout only once the download is over (before, it
 *   got about a second's worth of bytes and a clean EOF). The server writes with backpressure
 *   (write() until false, more on `drained`), and also as one 48 MiB write (which the portable
 *   backend hands to its socket in slices, so that its progress shows);
 * - a server writing a heartbeat every 150 ms to a client that reads and sends nothing is not cut
 *   by a 500 ms timeout;
 * - output stuck behind a peer that neither reads nor sends is no progress: that peer is still
 *   closed by the idle timeout, with IdleTimeoutError and the output still queued.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { IdleTimeoutError, type Conn, type Events } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readEnd,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kDownloadBytes = 48 * 1024 * 1024;
/** The client reads this much, then pauses for this long: 256 KiB per 16 ms is 16 MiB/s at most. */
const kSliceBytes = 256 * 1024;
const kPauseMs = 16;

/** Chunks written by the backpressured server. */
const kChunkBytes = 1024 * 1024;

/** A server that sends `body` with backpressure: write() until it returns false, the rest on `drained`. */
function streamer(body: Buffer, errs: (Error | null)[]): Events {
  const pump = (c: Conn): void => {
    let sent = c.context as number;
    while (sent < body.length) {
      const chunk = body.subarray(sent, sent + kChunkBytes);
      sent += chunk.length;
      c.context = sent;
      if (!c.write(chunk)) return;
    }
  };
  return {
    opened(c) {
      c.context = 0;
      pump(c);
    },
    drained: pump,
    closed: (_c, err) => void errs.push(err),
  };
}

function payload(bytes: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32LE(i >>> 2, i);
  return b;
}

for (const backend of await backendsUnderTest()) {
  describe(`idle timeout and writes (${backend})`, () => {
    for (const oneWrite of [false, true]) {
      test(`a 48 MiB download read at about 16 MiB/s is not cut by a 1 s idle timeout; EOF comes only after the last byte (${oneWrite ? 'one write' : 'written with backpressure'})`, async () => {
        const fds = openFdCount();
        const body = payload(kDownloadBytes);
        const want = createHash('sha256').update(body).digest('hex');
        const errs: (Error | null)[] = [];
        const events: Events = oneWrite
          ? { opened: () => body, closed: (_c, err) => void errs.push(err) }
          : streamer(body, errs);
        const run = await startServer(events, { backend, waitTimeout: 1000 }, 'tcp://127.0.0.1:0');
        const s = await connectTo(run.server.addrs[0]!);
        let got = 0;
        const hash = createHash('sha256');
        let gotAtEof = -1;
        try {
          const how = await within(
            new Promise<string>((resolve) => {
              let slice = 0;
              s.on('data', (d: Buffer) => {
                hash.update(d);
                got += d.length;
                slice += d.length;
                if (slice >= kSliceBytes) {
                  slice = 0;
                  s.pause();
                  setTimeout(() => s.resume(), kPauseMs);
                }
              });
              s.once('end', () => {
                gotAtEof = got;
                resolve('eof');
              });
              s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
            }),
            120_000,
            'the download and EOF',
          );
          assert.equal(how, 'eof');
          assert.equal(gotAtEof, kDownloadBytes, `EOF came after ${gotAtEof} of ${kDownloadBytes} bytes`);
          assert.equal(hash.digest('hex'), want, 'every byte arrived, in order');
          await within(
            waitFor(() => errs.length === 1, 'closed'),
            5000,
            'closed',
          );
          assert.ok(
            errs[0] instanceof IdleTimeoutError,
            `closed got ${String(errs[0])}: the idle timeout, once the download was over`,
          );
        } finally {
          s.destroy();
          await socketClosed(s);
          await run.stop();
        }
        assertNoFdLeak(fds);
      });
    }

    test('a heartbeat every 150 ms to a client that only reads keeps a 500 ms idle timeout from firing', async () => {
      const fds = openFdCount();
      const errs: (Error | null)[] = [];
      const run = await startServer(
        {
          opened(c) {
            let beats = 0;
            const t = setInterval(() => {
              if (!c.open) return clearInterval(t);
              c.send('beat\n');
              if (++beats === 10) {
                clearInterval(t);
                c.close();
              }
            }, 150);
          },
          closed: (_c, err) => void errs.push(err),
        },
        { backend, waitTimeout: 500 },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      try {
        const end = await within(readEnd(s), 10_000, 'ten beats then EOF');
        assert.equal(end.how, 'eof');
        assert.equal(end.data.toString(), 'beat\n'.repeat(10), 'every beat arrived before EOF');
        await within(
          waitFor(() => errs.length === 1, 'closed'),
          5000,
          'closed',
        );
        assert.deepEqual(errs, [null], 'the server closed it, not the idle timeout');
      } finally {
        s.destroy();
        await socketClosed(s);
        await run.stop();
      }
      assertNoFdLeak(fds);
    });

    test('output stuck behind a peer that neither reads nor sends is no progress: the idle timeout closes it', async () => {
      const fds = openFdCount();
      const big = Buffer.alloc(64 * 1024 * 1024, 0x63);
      const errs: (Error | null)[] = [];
      let queuedAtClose = -1;
      const run = await startServer(
        {
          opened: () => big,
          closed(c, err) {
            queuedAtClose = c.queuedBytes;
            errs.push(err);
          },
        },
        { backend, waitTimeout: 500 },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.pause();
      try {
        await within(
          waitFor(() => errs.length === 1, 'the idle close', 20_000),
          25_000,
          'the idle close',
        );
        assert.ok(errs[0] instanceof IdleTimeoutError, `closed got ${String(errs[0])}`);
        assert.ok(queuedAtClose > 0, 'output was still queued');
      } finally {
        s.destroy();
        await socketClosed(s);
        await run.stop();
      }
      assertNoFdLeak(fds);
    });
  });
}
