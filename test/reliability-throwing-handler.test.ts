/**
 * A `data` handler that throws on 1% of its calls (chosen deterministically from the message, so
 * the test knows which) closes only the connection it threw for, with a HandlerError (handler
 * 'data', cause the thrown error) in its `closed`; every other connection goes on being served to
 * the end of its conversation, and a client arriving afterwards is served too.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { HandlerError, type Conn, type RingBuffer } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectMany,
  connectTo,
  openFdCount,
  readExactly,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kConns = 100;
const kRounds = 50;
const kMsgBytes = 16;

/** Whether the handler throws for message (conn, round): about 1 call in 100, fixed by the pair. */
function throwsFor(conn: number, round: number): boolean {
  let h = Math.imul(conn + 1, 0x9e3779b1) ^ Math.imul(round + 1, 0x85ebca77);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return ((h ^ (h >>> 13)) >>> 0) % 100 === 0;
}

/** The round at which connection `conn` is expected to be closed by a throw, or -1. */
function throwRound(conn: number): number {
  for (let r = 0; r < kRounds; r++) if (throwsFor(conn, r)) return r;
  return -1;
}

function message(conn: number, round: number): Buffer {
  const b = Buffer.alloc(kMsgBytes, 0x2e);
  b.writeUInt32BE(conn, 0);
  b.writeUInt32BE(round, 4);
  return b;
}

/** Ping-pongs kRounds messages; returns the round at which the server closed on it, or -1. */
async function converse(s: Socket, conn: number): Promise<number> {
  for (let r = 0; r < kRounds; r++) {
    s.write(message(conn, r));
    try {
      const back = await readExactly(s, kMsgBytes);
      if (!back.equals(message(conn, r))) throw new Error(`connection ${conn} round ${r}: wrong echo`);
    } catch (err) {
      if ((err as Error).message.startsWith('stream ended') || (err as NodeJS.ErrnoException).code === 'ECONNRESET')
        return r;
      throw err;
    }
  }
  return -1;
}

for (const backend of await backendsUnderTest()) {
  describe(`throwing data handler (${backend})`, () => {
    test(`data throws on 1% of ${kConns * kRounds} calls: only those connections close, each with a HandlerError; the rest are served to the end`, async () => {
      const fds = openFdCount();
      const closedBy = new Map<number, Error | null>();
      const thrown = new Map<number, Error>();
      let calls = 0;
      const run = await startServer(
        {
          data(c: Conn, input: RingBuffer) {
            calls++;
            const out: Uint8Array[] = [];
            while (input.length >= kMsgBytes) {
              const msg = Buffer.alloc(kMsgBytes);
              input.read(msg);
              const conn = msg.readUInt32BE(0);
              const round = msg.readUInt32BE(4);
              c.context = conn;
              if (throwsFor(conn, round)) {
                const err = new Error(`planned throw: connection ${conn} round ${round}`);
                thrown.set(conn, err);
                throw err;
              }
              out.push(msg);
            }
            return out.length > 0 ? Buffer.concat(out) : null;
          },
          closed(c, err) {
            closedBy.set(c.context as number, err);
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const port = run.server.addrs[0]!.port;
      const clients = await connectMany(port, kConns);
      let lateRound = 0;
      while (throwsFor(kConns, lateRound)) lateRound++;
      let endedAt: number[] = [];
      let late = '';
      try {
        endedAt = await within(Promise.all(clients.map((s, i) => converse(s, i))), 20_000, 'every conversation');
        for (const s of clients) s.end();
        await Promise.all(clients.map(socketClosed));
        await within(
          waitFor(() => closedBy.size === kConns, 'every closed'),
          5000,
          'every closed',
        );
        const s = await connectTo(run.server.addrs[0]!);
        s.write(message(kConns, lateRound));
        late = (await within(readExactly(s, kMsgBytes), 5000, 'a late client')).toString('latin1');
        s.destroy();
        await socketClosed(s);
      } finally {
        for (const s of clients) s.destroy();
        await within(run.stop(), 5000, 'serve() to settle');
      }
      const expected = Array.from({ length: kConns }, (_, i) => throwRound(i));
      const throwers = expected.filter((r) => r >= 0).length;
      assert.ok(throwers > 0 && throwers < kConns, `the selection picks ${throwers} connections`);
      assert.deepEqual(endedAt, expected, 'each client was cut off exactly at its planned throw, and only then');
      for (let i = 0; i < kConns; i++) {
        const err = closedBy.get(i);
        if (expected[i]! >= 0) {
          assert.ok(err instanceof HandlerError, `connection ${i}: closed got ${String(err)}`);
          assert.equal(err.code, 'ERR_GEVENT_HANDLER');
          assert.equal(err.handler, 'data');
          assert.equal(err.cause, thrown.get(i));
        } else {
          assert.equal(err, null, `connection ${i} (no throw) closed with ${String(err)}`);
        }
      }
      assert.equal(late, message(kConns, lateRound).toString('latin1'), 'a client arriving afterwards is served');
      assert.ok(calls >= kConns * kRounds - throwers * kRounds);
      assertNoFdLeak(fds);
    });
  });
}
