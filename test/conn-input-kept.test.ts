/**
 * A connection's input between `data` calls, on every backend. The loop lends one buffer to every
 * `data` call of a connection that holds no input and gives a connection a buffer of its own only
 * when its handler leaves bytes unconsumed (or returns a promise), so these are the edges that
 * would show a buffer given to the wrong connection: bytes left unconsumed come back in the next
 * call byte-exact while other connections consume theirs; a buffer a closed connection held is
 * reused without its bytes; an async handler's input stays its own across an await; pipe()
 * called inside `data` hands on the input that call left.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import type { Conn, Events, RingBuffer, ServeOptions } from '../src/index.js';
import {
  assertNoFdLeak,
  backendsUnderTest,
  closed,
  connectTo,
  openFdCount,
  readExactly,
  sleep,
  startServer,
  waitFor,
  within,
  type Running,
} from './helpers.js';

/** Replies with the payload of every whole frame (2-byte big-endian length, then the payload); leaves a partial frame in `input`. */
function replyFrames(input: RingBuffer): Uint8Array | undefined {
  const out: Buffer[] = [];
  while (input.length >= 2) {
    const len = input.peekUint16();
    if (input.length < 2 + len) break;
    input.retrieve(2);
    const payload = new Uint8Array(len);
    input.read(payload);
    out.push(Buffer.from(payload));
  }
  return out.length > 0 ? Buffer.concat(out) : undefined;
}

/** `count` frames of random payloads, and what their replies add up to. */
function frames(count: number): { wire: Buffer; payloads: Buffer } {
  const wire: Buffer[] = [];
  const payloads: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const payload = randomBytes(1 + ((i * 37) % 300));
    const head = Buffer.alloc(2);
    head.writeUInt16BE(payload.length);
    wire.push(head, payload);
    payloads.push(payload);
  }
  return { wire: Buffer.concat(wire), payloads: Buffer.concat(payloads) };
}

/** Writes `bytes` in pieces of 1 to 7 bytes, pausing now and then so that the server reads them apart. */
async function dribble(s: Socket, bytes: Buffer): Promise<void> {
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = 1 + (i % 7);
    s.write(bytes.subarray(at, at + n));
    at += n;
    if (i % 5 === 0) await sleep(1);
  }
}

async function start(backend: string, events: Events): Promise<Running> {
  return startServer(events, { backend: backend as ServeOptions['backend'] }, 'tcp://127.0.0.1:0');
}

const backends = await backendsUnderTest();
for (const backend of backends) {
  describe(`input kept between data calls (${backend})`, () => {
    test('bytes left unconsumed come back byte-exact while other connections consume all of theirs', async () => {
      const fds = openFdCount();
      let seen = 0;
      const run = await start(backend, {
        opened(c) {
          // The first two connections parse frames (and keep partial ones); the others echo all.
          if (seen < 2) c.context = 'frames';
          seen++;
        },
        data(c, input) {
          if (c.context === 'frames') return replyFrames(input);
          const out = input.bytes();
          input.retrieveAll();
          return out;
        },
      });
      const addr = run.server.addrs[0]!;
      const framers = [await connectTo(addr)];
      await waitFor(() => seen === 1, 'the first frame connection to open');
      framers.push(await connectTo(addr));
      await waitFor(() => seen === 2, 'the second frame connection to open');
      const echoes = await Promise.all([connectTo(addr), connectTo(addr), connectTo(addr)]);
      const sent = framers.map(() => frames(60));
      const echoBytes = echoes.map(() => randomBytes(4000));
      try {
        const got = within(
          Promise.all([
            ...framers.map((s, i) => readExactly(s, sent[i]!.payloads.length)),
            ...echoes.map((s, i) => readExactly(s, echoBytes[i]!.length)),
          ]),
          20_000,
          'every reply',
        );
        await Promise.all([
          ...framers.map((s, i) => dribble(s, sent[i]!.wire)),
          ...echoes.map((s, i) => dribble(s, echoBytes[i]!)),
        ]);
        const replies = await got;
        framers.forEach((_, i) => assert.ok(replies[i]!.equals(sent[i]!.payloads), `frames ${i} byte-exact, in order`));
        echoes.forEach((_, i) => assert.ok(replies[2 + i]!.equals(echoBytes[i]!), `echo ${i} byte-exact`));
      } finally {
        for (const s of [...framers, ...echoes]) s.destroy();
        await run.stop();
        await Promise.all([...framers, ...echoes].map(closed));
      }
      assertNoFdLeak(fds);
    });

    test('a buffer a closed connection held is reused without its bytes', async () => {
      const fds = openFdCount();
      const firstInputs: string[] = [];
      let closedCount = 0;
      const run = await start(backend, {
        data(c, input) {
          // Lines: whole lines are echoed, a partial line stays in `input`.
          if (c.context === undefined) {
            c.context = true;
            firstInputs.push(Buffer.from(input.bytes()).toString());
          }
          const text = Buffer.from(input.bytes()).toString();
          const end = text.lastIndexOf('\n');
          if (end < 0) return undefined;
          input.retrieve(Buffer.byteLength(text.slice(0, end + 1)));
          return text.slice(0, end + 1);
        },
        closed() {
          closedCount++;
        },
      });
      const addr = run.server.addrs[0]!;
      try {
        // Connections that close holding a partial line, each with a buffer of its own.
        for (let i = 0; i < 8; i++) {
          const s = await connectTo(addr);
          s.write(`line ${i}\npartial ${i} never ended`);
          assert.equal((await readExactly(s, `line ${i}\n`.length)).toString(), `line ${i}\n`);
          s.destroy();
          await closed(s);
        }
        await waitFor(() => closedCount === 8, 'the holders to close');
        firstInputs.length = 0;
        // New connections, one at a time and then together: each sees its own bytes only.
        for (let i = 0; i < 8; i++) {
          const s = await connectTo(addr);
          s.write(`new ${i}\n`);
          assert.equal((await readExactly(s, `new ${i}\n`.length)).toString(), `new ${i}\n`);
          s.destroy();
          await closed(s);
        }
        assert.deepEqual(
          firstInputs,
          Array.from({ length: 8 }, (_, i) => `new ${i}\n`),
          "each new connection's first input holds its own bytes and nothing a closed one left",
        );
      } finally {
        await run.stop();
      }
      assertNoFdLeak(fds);
    });

    test('an async handler keeps its own input across an await while other connections leave bytes in theirs', async () => {
      const fds = openFdCount();
      let opened = 0;
      const afterAwait: string[] = [];
      const run = await start(backend, {
        opened(c) {
          c.context = opened++;
        },
        data(c, input) {
          if (c.context !== 0) {
            // B: lines; a partial line stays in its input.
            const text = Buffer.from(input.bytes()).toString();
            const end = text.lastIndexOf('\n');
            if (end < 0) return undefined;
            input.retrieve(end + 1);
            return text.slice(0, end + 1);
          }
          // A: consumes everything at once, then looks at its input again after an await.
          const out = input.bytes();
          input.retrieveAll();
          return (async () => {
            await sleep(200);
            afterAwait.push(Buffer.from(input.bytes()).toString());
            c.send(out);
          })();
        },
      });
      const addr = run.server.addrs[0]!;
      const a = await connectTo(addr);
      await waitFor(() => opened === 1, 'A to open');
      const b = await connectTo(addr);
      await waitFor(() => opened === 2, 'B to open');
      try {
        const mine = Buffer.from('all of A at once');
        const gotA = within(readExactly(a, mine.length), 10_000, 'A reply');
        a.write(mine);
        await sleep(50);
        // While A's handler waits, B's bytes arrive and B leaves them unconsumed.
        const line = 'B keeps this until the newline';
        const gotB = within(readExactly(b, line.length + 1), 10_000, 'B line');
        await dribble(b, Buffer.from(line));
        assert.ok((await gotA).equals(mine), 'A got its bytes back after the await');
        // B's line ends only after A's handler has looked at its input again.
        b.write('\n');
        assert.equal((await gotB).toString(), `${line}\n`, "B's line byte-exact");
        assert.deepEqual(afterAwait, [''], "A's input after the await is still its own, empty, with none of B's bytes");
      } finally {
        a.destroy();
        b.destroy();
        await run.stop();
        await Promise.all([closed(a), closed(b)]);
      }
      assertNoFdLeak(fds);
    });

    test('pipe() called inside data hands on the input that call left, then what follows', async () => {
      const fds = openFdCount();
      const conns: Conn[] = [];
      let dataCalls = 0;
      const run = await start(backend, {
        opened(c) {
          conns.push(c);
        },
        data(c, input) {
          dataCalls++;
          if (c === conns[1]) {
            // A: drop the first byte, pipe the rest (left in input) to B.
            input.retrieve(1);
            c.pipe(conns[0]!);
            return undefined;
          }
          input.retrieveAll();
          return undefined;
        },
      });
      const addr = run.server.addrs[0]!;
      const b = await connectTo(addr);
      await waitFor(() => conns.length === 1, 'B to open');
      const a = await connectTo(addr);
      await waitFor(() => conns.length === 2, 'A to open');
      try {
        const first = Buffer.from('xheld when piped|');
        const rest = randomBytes(20_000);
        const got = within(readExactly(b, first.length - 1 + rest.length), 10_000, 'the piped bytes');
        a.write(first);
        await waitFor(() => dataCalls === 1, 'the data call that pipes');
        a.write(rest);
        const all = await got;
        assert.ok(all.equals(Buffer.concat([first.subarray(1), rest])), 'the input left, then the rest, byte-exact');
        assert.equal(dataCalls, 1, 'data is not called for a piped connection');
      } finally {
        a.destroy();
        b.destroy();
        await run.stop();
        await Promise.all([closed(a), closed(b)]);
      }
      assertNoFdLeak(fds);
    });
  });
}
