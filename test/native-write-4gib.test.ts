/**
 * A write of 4 GiB arrives whole. The native backend used to put a write's length in one u32
 * command slot, where 2^32 wrapped to 0: nothing went out, yet send() succeeded and `drained`
 * fired. Here c.send() of a 2^32-byte buffer (the largest Uint8Array Node 20 makes;
 * allocUnsafeSlow, so only the marked pages are ever touched) and then of 5 more bytes must reach
 * a client as exactly 2^32 + 5 bytes, each marked byte at its own offset, then EOF. Run on both
 * backends; the buffer is shared and the client reads into one reused buffer, so the portable run
 * costs no more memory and the native run one copy of what the kernel did not take at once.
 *
 * The same u32 held a datagram's length, so a 4 GiB reply went out as an empty datagram. No
 * datagram can be that large: it must be dropped as the kernel drops any oversized one, and the
 * next reply must be the first thing the sender gets (native backend).
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { Action } from '../src/index.js';
import { backendsUnderTest, closed as socketClosed, startServer, waitFor, within } from './helpers.js';

const kBigBytes = 2 ** 32;
const kTailBytes = 5;
const kBytes = kBigBytes + kTailBytes;

/** Offsets that get a byte of their own: both sides of every 2^31 boundary, the ends, and some between. */
const kMarks = [
  0,
  1,
  4095,
  4096,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 31 + 1,
  3 * 2 ** 30 + 12345,
  2 ** 32 - 2,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 32 + 2,
  2 ** 32 + 3,
  2 ** 32 + 4,
];

/** The byte expected at a marked offset: never 0, so an untouched (zero) page cannot pass for it. */
function markByte(offset: number): number {
  return (Math.floor(offset / 7) % 251) + 1;
}

let big: Buffer | null = null;

/** The 2^32-byte buffer with its marks, made once for both backends. */
function bigBuffer(): Buffer {
  if (big === null) {
    big = Buffer.allocUnsafeSlow(kBigBytes);
    for (const m of kMarks) if (m < kBigBytes) big[m] = markByte(m);
  }
  return big;
}

/** The 5 bytes sent after it, every one marked. */
function tailBuffer(): Buffer {
  return Buffer.from(Array.from({ length: kTailBytes }, (_, i) => markByte(kBigBytes + i)));
}

/**
 * A client that reads into one reused 1 MiB buffer (net's `onread`, so 4 GiB cost no allocation),
 * counts bytes until EOF and checks each marked offset as it streams past.
 */
function countingClient(
  port: number,
): Promise<{ socket: Socket; result: Promise<{ bytes: number; wrongMarks: string[] }> }> {
  let bytes = 0;
  let next = 0;
  const wrongMarks: string[] = [];
  const buffer = Buffer.alloc(1 << 20);
  const callback = (n: number, d: Uint8Array): boolean => {
    while (next < kMarks.length && kMarks[next]! < bytes + n) {
      const m = kMarks[next]!;
      if (d[m - bytes] !== markByte(m)) wrongMarks.push(`${m}: ${d[m - bytes]} not ${markByte(m)}`);
      next++;
    }
    bytes += n;
    return true;
  };
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', onread: { buffer, callback } }, () => {
      socket.off('error', reject);
      const result = new Promise<{ bytes: number; wrongMarks: string[] }>((done, fail) => {
        socket.once('end', () => done({ bytes, wrongMarks }));
        socket.once('error', fail);
      });
      resolve({ socket, result });
    });
    socket.once('error', reject);
  });
}

for (const backend of await backendsUnderTest()) {
  describe(`a 4 GiB write (${backend})`, () => {
    test('send() of 2^32 bytes, then of 5, arrives whole: every byte counted, each mark at its offset, then EOF', async () => {
      const data = bigBuffer();
      const tail = tailBuffer();
      const closedErrs: (Error | null)[] = [];
      const run = await startServer(
        {
          data(c, input) {
            input.retrieveAll();
            c.send(data);
            c.send(tail);
            return Action.Close;
          },
          closed: (_c, err) => void closedErrs.push(err),
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const { socket: s, result } = await countingClient(run.server.addrs[0]!.port);
      try {
        s.write('go');
        const got = await within(result, 90_000, `${kBytes} bytes and EOF`);
        assert.equal(got.bytes, kBytes, `the client got ${got.bytes} of ${kBytes} bytes`);
        assert.deepEqual(got.wrongMarks, []);
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
      assert.deepEqual(closedErrs, [null]);
    });
  });
}

for (const backend of await backendsUnderTest())
  describe(`a 4 GiB datagram (${backend})`, () => {
    test('is dropped, never sent as an empty datagram; the next reply arrives first', async () => {
      const data = bigBuffer();
      const run = await startServer(
        {
          data(_c, input) {
            const text = Buffer.from(input.bytes()).toString();
            input.retrieveAll();
            return text === 'big' ? data : 'ok';
          },
        },
        { backend },
        'udp://127.0.0.1:0',
      );
      const client = createSocket('udp4');
      const lengths: number[] = [];
      try {
        const gotOk = new Promise<void>((resolve) => {
          client.on('message', (m) => {
            lengths.push(m.length);
            if (m.toString() === 'ok') resolve();
          });
        });
        await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', () => resolve()));
        const port = run.server.addrs[0]!.port;
        client.send('big', port, '127.0.0.1');
        await new Promise((resolve) => setTimeout(resolve, 100));
        client.send('small', port, '127.0.0.1');
        await within(gotOk, 5000, 'the reply to the second datagram');
        assert.deepEqual(lengths, [2], 'the client got only the second reply');
      } finally {
        await new Promise<void>((resolve) => client.close(() => resolve()));
        await within(run.stop(), 5000, 'serve() to settle');
      }
    });
  });
