/**
 * Half-close, both ways:
 * - with allowHalfOpen, a client that sends 1 MiB and then FIN gets `end` only after all 1 MiB has
 *   reached `data`; the server can still write a 1 MiB reply, and c.end() delivers it whole, then EOF;
 * - without allowHalfOpen, the peer's FIN closes the connection only after the reply queued for it
 *   has been written (the client gets it all, then EOF), and `end` never fires;
 * - data and FIN arriving together (the client's s.end(buf)) lose no byte, in either mode.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { Action, type Conn, type RingBuffer } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  openFdCount,
  readEnd,
  startServer,
  waitFor,
  within,
  type Running,
  assertNoFdLeak,
} from './helpers.js';

const kMiB = 1024 * 1024;
const kClients = 20;
const kTogether = 100;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface PerConn {
  hash: ReturnType<typeof createHash>;
  bytes: number;
}

/** Runs `n` clients through `body` in parallel; destroys them all and stops the server however it ends. */
async function withClients<T>(run: Running, n: number, body: (s: Socket, i: number) => Promise<T>): Promise<T[]> {
  const port = run.server.addrs[0]!.port;
  const clients: Socket[] = [];
  try {
    return await within(
      Promise.all(
        Array.from({ length: n }, (_, i) => {
          const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
          clients.push(s);
          return new Promise<void>((resolve, reject) => {
            s.once('connect', resolve);
            s.once('error', reject);
          }).then(() => body(s, i));
        }),
      ),
      20_000,
      `${n} clients`,
    );
  } finally {
    for (const s of clients) s.destroy();
    await Promise.all(clients.map(socketClosed));
  }
}

async function stopped(run: Running, closedCount: () => number, n: number): Promise<void> {
  await within(
    waitFor(() => closedCount() === n, `${n} closed`, 5000),
    5000,
    `${n} closed`,
  ).catch(() => undefined);
  await within(run.stop(), 5000, 'serve() to settle');
}

for (const backend of await backendsUnderTest()) {
  describe(`half-close (${backend})`, () => {
    test(`allowHalfOpen: ${kClients} clients send 1 MiB then FIN; end fires after all of it reached data; the 1 MiB reply written after it arrives whole, then EOF`, async () => {
      const fds = openFdCount();
      const closedErrs: (Error | null)[] = [];
      const run = await startServer(
        {
          opened(c) {
            c.context = { hash: createHash('sha256'), bytes: 0 } satisfies PerConn;
          },
          data(c: Conn, input: RingBuffer) {
            const p = c.context as PerConn;
            p.bytes += input.length;
            p.hash.update(input.bytes());
            input.retrieveAll();
          },
          end(c) {
            const digest = (c.context as PerConn).hash.digest();
            const reply = Buffer.alloc(kMiB);
            for (let i = 0; i < kMiB; i += 32) digest.copy(reply, i);
            c.write(reply);
            c.end();
          },
          closed: (_c, err) => void closedErrs.push(err),
        },
        { backend, allowHalfOpen: true },
        'tcp://127.0.0.1:0',
      );
      let results: { sentHash: Buffer; got: { how: string; data: Buffer } }[] = [];
      try {
        results = await withClients(run, kClients, async (s) => {
          const payload = randomBytes(kMiB);
          const ended = readEnd(s);
          s.write(payload.subarray(0, kMiB / 2));
          s.end(payload.subarray(kMiB / 2));
          return { sentHash: createHash('sha256').update(payload).digest(), got: await ended };
        });
      } finally {
        await stopped(run, () => closedErrs.length, kClients);
      }
      for (const r of results) {
        assert.equal(r.got.how, 'eof');
        assert.equal(r.got.data.length, kMiB, 'the whole 1 MiB reply arrived before EOF');
        for (let i = 0; i < kMiB; i += 32) {
          if (!r.got.data.subarray(i, i + 32).equals(r.sentHash))
            assert.fail(
              `the reply differs at byte ${i}: the server's end fired before all 1 MiB arrived, or lost some`,
            );
        }
      }
      assert.deepEqual(closedErrs, Array(kClients).fill(null));
      assertNoFdLeak(fds);
    });

    test(`without allowHalfOpen: the peer's FIN closes the connection after its queued 1 MiB reply is written; end does not fire`, async () => {
      const fds = openFdCount();
      const closedErrs: (Error | null)[] = [];
      let ends = 0;
      const reply = randomBytes(kMiB);
      const run = await startServer(
        {
          data(_c, input) {
            input.retrieveAll();
            return reply;
          },
          end: () => void ends++,
          closed: (_c, err) => void closedErrs.push(err),
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      let results: { how: string; data: Buffer }[] = [];
      try {
        results = await withClients(run, kClients, async (s) => {
          const ended = readEnd(s);
          s.write('request');
          s.end();
          return ended;
        });
      } finally {
        await stopped(run, () => closedErrs.length, kClients);
      }
      for (const r of results) {
        assert.equal(r.how, 'eof');
        assert.equal(r.data.length, kMiB);
        assert.equal(sha(r.data), sha(reply));
      }
      assert.equal(ends, 0);
      assert.deepEqual(closedErrs, Array(kClients).fill(null));
      assertNoFdLeak(fds);
    });

    test(`data and FIN in one go (s.end(buf), 1 B-256 KiB) lose no byte: allowHalfOpen counts every byte before end`, async () => {
      const fds = openFdCount();
      const closedErrs: (Error | null)[] = [];
      const run = await startServer(
        {
          opened(c) {
            c.context = { hash: createHash('sha256'), bytes: 0 } satisfies PerConn;
          },
          data(c: Conn, input: RingBuffer) {
            const p = c.context as PerConn;
            p.bytes += input.length;
            p.hash.update(input.bytes());
            input.retrieveAll();
          },
          end(c) {
            const p = c.context as PerConn;
            return { out: `${p.bytes} ${p.hash.digest('hex')}`, action: Action.Close };
          },
          closed: (_c, err) => void closedErrs.push(err),
        },
        { backend, allowHalfOpen: true },
        'tcp://127.0.0.1:0',
      );
      let results: { want: string; got: { how: string; data: Buffer } }[] = [];
      try {
        results = await withClients(run, kTogether, async (s) => {
          const payload = randomBytes(randomInt(1, 256 * 1024 + 1));
          const ended = readEnd(s);
          s.end(payload);
          return { want: `${payload.length} ${sha(payload)}`, got: await ended };
        });
      } finally {
        await stopped(run, () => closedErrs.length, kTogether);
      }
      for (const r of results) {
        assert.equal(r.got.how, 'eof');
        assert.equal(r.got.data.toString(), r.want);
      }
      assert.deepEqual(closedErrs, Array(kTogether).fill(null));
      assertNoFdLeak(fds);
    });

    test(`data and FIN in one go (s.end(buf), 1 B-256 KiB) lose no byte: without allowHalfOpen the echo of all of it arrives before EOF`, async () => {
      const fds = openFdCount();
      const closedErrs: (Error | null)[] = [];
      const run = await startServer(
        {
          data(_c, input) {
            const out = input.bytes();
            input.retrieveAll();
            return out;
          },
          closed: (_c, err) => void closedErrs.push(err),
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      let results: { want: string; got: { how: string; data: Buffer } }[] = [];
      try {
        results = await withClients(run, kTogether, async (s) => {
          const payload = randomBytes(randomInt(1, 256 * 1024 + 1));
          const ended = readEnd(s);
          s.end(payload);
          return { want: sha(payload), got: await ended };
        });
      } finally {
        await stopped(run, () => closedErrs.length, kTogether);
      }
      for (const r of results) {
        assert.equal(r.got.how, 'eof');
        assert.equal(sha(r.got.data), r.want, `echo of ${r.got.data.length} bytes differs`);
      }
      assert.deepEqual(closedErrs, Array(kTogether).fill(null));
      assertNoFdLeak(fds);
    });
  });
}
