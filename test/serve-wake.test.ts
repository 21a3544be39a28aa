/**
 * Input the data handler leaves unconsumed stays for its next call, and Conn.wake() runs data
 * again with that input. Wakes do nothing once the connection is closing or closed, and several
 * wakes in one turn run data once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Action, type Conn, type Events, type RingBuffer } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readEnd,
  readExactly,
  sleep,
  startServer,
  waitFor,
  assertNoFdLeak,
} from './helpers.js';

function frame(body: string): Buffer {
  const b = Buffer.from(body);
  const h = Buffer.alloc(4);
  h.writeUInt32BE(b.length);
  return Buffer.concat([h, b]);
}

/** Takes one whole length-prefixed frame off `input`, or returns null and leaves input as it is. */
function takeFrame(input: RingBuffer): Buffer | null {
  if (input.length < 4) return null;
  const n = input.peekUint32();
  if (input.length < 4 + n) return null;
  const all = Buffer.from(input.bytes());
  input.retrieve(4 + n);
  return all.subarray(4, 4 + n);
}

/** A frame server that replies only while `gate.open`; counts data calls and input lengths seen. */
function gatedFrames(gate: { open: boolean }) {
  const seen: number[] = [];
  const state = { conn: null as Conn | null, dataCalls: 0, closed: 0, seen };
  const events: Events = {
    opened: (c) => void (state.conn = c),
    closed: () => void state.closed++,
    data(_c, input) {
      state.dataCalls++;
      seen.push(input.length);
      if (!gate.open) return;
      const f = takeFrame(input);
      return f ? Buffer.from(f.toString().toUpperCase()) : undefined;
    },
  };
  return { events, state };
}

for (const backend of await backendsUnderTest()) {
  describe(`wake and unconsumed input (${backend})`, () => {
    test('a frame sent in three pieces: input keeps the unconsumed bytes, one reply when it is whole', async () => {
      const fds = openFdCount();
      const { events, state } = gatedFrames({ open: true });
      const run = await startServer(events, { backend }, 'tcp://127.0.0.1:0');
      const s = await connectTo(run.server.addrs[0]!);
      const f = frame('0123456789');
      const pieces = [f.subarray(0, 2), f.subarray(2, 7), f.subarray(7)];
      for (const [i, p] of pieces.entries()) {
        s.write(p);
        await waitFor(() => state.dataCalls === i + 1, `data call ${i + 1}`);
      }
      assert.deepEqual(state.seen, [2, 7, 14]);
      assert.equal((await readExactly(s, 10)).toString(), '0123456789');
      s.end();
      await socketClosed(s);
      await run.stop();
      assert.equal(state.closed, 1);
      assertNoFdLeak(fds);
    });

    test('wake() runs data again with the input it left, with no new bytes from the client', async () => {
      const fds = openFdCount();
      const gate = { open: false };
      const { events, state } = gatedFrames(gate);
      const run = await startServer(events, { backend }, 'tcp://127.0.0.1:0');
      const s = await connectTo(run.server.addrs[0]!);
      s.write(frame('wake me'));
      await waitFor(() => state.seen.at(-1) === 11, 'the whole frame in input');
      const callsBefore = state.dataCalls;
      gate.open = true;
      state.conn!.wake();
      assert.equal((await readExactly(s, 7)).toString(), 'WAKE ME');
      assert.equal(state.dataCalls, callsBefore + 1);
      assert.equal(state.seen.at(-1), 11, 'the woken call saw the same input');
      s.end();
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('wake() with nothing unconsumed still runs data, with empty input', async () => {
      const fds = openFdCount();
      const { events, state } = gatedFrames({ open: true });
      const run = await startServer(events, { backend }, 'tcp://127.0.0.1:0');
      const s = await connectTo(run.server.addrs[0]!);
      await waitFor(() => state.conn !== null, 'opened');
      state.conn!.wake();
      await waitFor(() => state.dataCalls === 1, 'woken data call');
      assert.deepEqual(state.seen, [0]);
      s.end();
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('several wakes in one turn run data once', async () => {
      const fds = openFdCount();
      const { events, state } = gatedFrames({ open: false });
      const run = await startServer(events, { backend }, 'tcp://127.0.0.1:0');
      const s = await connectTo(run.server.addrs[0]!);
      s.write('abc');
      await waitFor(() => state.dataCalls === 1, 'first data call');
      const c = state.conn!;
      c.wake();
      c.wake();
      c.wake();
      await sleep(30);
      assert.equal(state.dataCalls, 2, 'three wakes in one turn, one data call');
      c.wake();
      await sleep(30);
      assert.equal(state.dataCalls, 3, 'a wake in a later turn runs data again');
      assert.deepEqual(state.seen, [3, 3, 3]);
      s.end();
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('wake() after the connection closed does nothing', async () => {
      const fds = openFdCount();
      const { events, state } = gatedFrames({ open: false });
      const run = await startServer(events, { backend }, 'tcp://127.0.0.1:0');
      const s = await connectTo(run.server.addrs[0]!);
      s.write('abc');
      await waitFor(() => state.dataCalls === 1, 'first data call');
      s.end();
      await waitFor(() => state.closed === 1, 'closed');
      state.conn!.wake();
      state.conn!.wake();
      await sleep(30);
      assert.equal(state.dataCalls, 1);
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('wake() after data returned Close does not run data again', async () => {
      const fds = openFdCount();
      let dataCalls = 0;
      let closed = 0;
      const run = await startServer(
        {
          closed: () => void closed++,
          data(c: Conn) {
            dataCalls++;
            c.wake();
            return Action.Close;
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      const end = readEnd(s);
      s.write('x');
      assert.equal((await end).how, 'eof');
      await sleep(30);
      assert.equal(dataCalls, 1);
      await socketClosed(s);
      await run.stop();
      assert.equal(closed, 1);
      assertNoFdLeak(fds);
    });
  });
}
