/**
 * A peer that resets mid-stream (socket.resetAndDestroy(): SO_LINGER 0, then close, so the kernel
 * sends RST) while the server is writing to it: its connection gets exactly one `closed`, with a
 * ConnectionError whose errno is ECONNRESET or EPIPE; nothing fires for it afterwards, and write()
 * and send() on it return false. The other connections, streaming at the same time, are not
 * disturbed: each gets its whole 4 MiB stream and a clean close.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { ConnectionError, type Conn } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  openFdCount,
  sleep,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kResetters = 20;
const kSteady = 10;
const kChunk = 64 * 1024;
/** Bytes each steady connection receives before the server ends it. */
const kSteadyBytes = 4 * 1024 * 1024;
/** A resetter resets after this many bytes (the server never stops writing to it). */
const kResetAfterBytes = 512 * 1024;

/** Byte `offset` of every stream: a repeating pattern that a lost or repeated chunk would break. */
function streamChunk(offset: number): Buffer {
  const b = Buffer.allocUnsafe(kChunk);
  for (let i = 0; i < kChunk; i++) b[i] = ((offset + i) * 7) & 0xff;
  return b;
}

interface ConnLog {
  role: string;
  closed: (Error | null)[];
  after: string[];
  writeAfterClose: boolean[];
  timer: NodeJS.Timeout | null;
}

for (const backend of await backendsUnderTest()) {
  describe(`peer reset mid-stream (${backend})`, () => {
    test(`${kResetters} peers reset while the server writes: one closed each with ECONNRESET or EPIPE, no event or write after it; ${kSteady} other streams unaffected`, async () => {
      const fds = openFdCount();
      const logs: ConnLog[] = [];
      const log = (c: Conn): ConnLog => c.context as ConnLog;
      const seen = (c: Conn, ev: string): void => {
        if (log(c).closed.length > 0) log(c).after.push(ev);
      };
      const stream = (c: Conn): void => {
        const l = log(c);
        let offset = 0;
        const limit = l.role === 'N' ? kSteadyBytes : Infinity;
        const step = (): void => {
          l.timer = null;
          if (!c.open) return;
          while (offset < limit && c.queuedBytes < 4 * kChunk) {
            c.write(streamChunk(offset));
            offset += kChunk;
          }
          if (offset >= limit) c.end();
          else l.timer = setTimeout(step, 1);
        };
        step();
      };
      const run = await startServer(
        {
          opened(c) {
            const l: ConnLog = { role: '', closed: [], after: [], writeAfterClose: [], timer: null };
            logs.push(l);
            c.context = l;
          },
          data(c, input) {
            seen(c, 'data');
            if (log(c).role === '') {
              log(c).role = String.fromCharCode(input.readByte());
              stream(c);
            }
            input.retrieveAll();
          },
          drained: (c) => seen(c, 'drained'),
          end: (c) => seen(c, 'end'),
          closed(c, err) {
            const l = log(c);
            seen(c, 'closed');
            l.closed.push(err);
            if (l.timer) clearTimeout(l.timer);
            l.writeAfterClose.push(c.write('late'), c.send('late'));
            setTimeout(() => l.writeAfterClose.push(c.write('later'), c.send('later')), 5);
          },
        },
        { backend, allowHalfOpen: true },
        'tcp://127.0.0.1:0',
      );
      const port = run.server.addrs[0]!.port;
      const clients: Socket[] = [];
      /** Resolves with the bytes a steady client read (checking the pattern) when it sees EOF. */
      const steady = (): Promise<number> =>
        new Promise((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => s.write('N'));
          clients.push(s);
          let got = 0;
          s.on('data', (d: Buffer) => {
            for (let i = 0; i < d.length; i++) {
              if (d[i] !== (((got + i) * 7) & 0xff))
                return reject(new Error(`steady stream broken at byte ${got + i}`));
            }
            got += d.length;
          });
          s.once('end', () => {
            s.end();
            resolve(got);
          });
          s.once('error', reject);
        });
      /** Reads until kResetAfterBytes, then resets. */
      const resetter = (): Promise<void> =>
        new Promise((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => s.write('R'));
          clients.push(s);
          let got = 0;
          s.on('data', (d: Buffer) => {
            got += d.length;
            if (got >= kResetAfterBytes && !s.destroyed) {
              s.resetAndDestroy();
              resolve();
            }
          });
          s.once('end', () => reject(new Error('a resetter saw EOF')));
          s.once('error', reject);
        });
      try {
        const steadyDone = Promise.all(Array.from({ length: kSteady }, steady));
        await within(Promise.all(Array.from({ length: kResetters }, resetter)), 15_000, 'every resetter to reset');
        const steadyBytes = await within(steadyDone, 15_000, 'every steady stream');
        assert.deepEqual(steadyBytes, Array(kSteady).fill(kSteadyBytes));
        await within(
          waitFor(() => logs.every((l) => l.closed.length > 0), 'every closed', 10_000),
          10_000,
          'every closed',
        );
        await sleep(50);
      } finally {
        for (const s of clients) s.destroy();
        await Promise.all(clients.map(socketClosed));
        await within(run.stop(), 5000, 'serve() to settle');
      }
      assert.equal(logs.length, kResetters + kSteady);
      const wrong: string[] = [];
      for (const [i, l] of logs.entries()) {
        if (l.closed.length !== 1) wrong.push(`#${i} (${l.role}): closed fired ${l.closed.length} times`);
        if (l.after.length > 0) wrong.push(`#${i} (${l.role}): ${l.after.join(', ')} after closed`);
        if (l.writeAfterClose.some((ok) => ok)) wrong.push(`#${i} (${l.role}): write/send after closed returned true`);
        const err = l.closed[0];
        if (l.role === 'N' && err !== null) wrong.push(`#${i} (steady): closed with ${String(err)}`);
        if (
          l.role === 'R' &&
          !(err instanceof ConnectionError && (err.errno === 'ECONNRESET' || err.errno === 'EPIPE'))
        ) {
          wrong.push(
            `#${i} (resetter): closed with ${String(err)} (errno ${(err as { errno?: string } | null)?.errno})`,
          );
        }
      }
      assert.deepEqual(wrong, []);
      assertNoFdLeak(fds);
    });
  });
}
