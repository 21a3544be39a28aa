/**
 * preWrite: fires once before each batch of output reaches the sockets (replies, greetings, send,
 * UDP replies, the flush of a Close) and never when nothing is written.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, test } from 'node:test';
import { Action, type Conn } from '../src/index.js';
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

for (const backend of await backendsUnderTest()) {
  describe(`preWrite (${backend})`, () => {
    test('each reply is preceded by one preWrite, after the data call that made it', async () => {
      const fds = openFdCount();
      const log: string[] = [];
      const run = await startServer(
        {
          preWrite: () => void log.push('preWrite'),
          data(_c, input) {
            log.push('data');
            const out = input.bytes();
            input.retrieveAll();
            return out;
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      for (let k = 1; k <= 5; k++) {
        const msg = `message ${k}`;
        s.write(msg);
        assert.equal((await readExactly(s, msg.length)).toString(), msg);
        assert.deepEqual(log, Array(k).fill(['data', 'preWrite']).flat(), `when reply ${k} arrived`);
      }
      s.end();
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('data that writes nothing fires no preWrite; an accept with no greeting neither', async () => {
      const fds = openFdCount();
      let preWrites = 0;
      let dataCalls = 0;
      const run = await startServer(
        {
          preWrite: () => void preWrites++,
          data(_c, input) {
            dataCalls++;
            const text = Buffer.from(input.bytes()).toString();
            input.retrieveAll();
            return text === 'loud' ? 'LOUD' : undefined;
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.write('silent');
      await waitFor(() => dataCalls === 1, 'silent data call');
      await sleep(30);
      assert.equal(preWrites, 0);
      s.write('loud');
      assert.equal((await readExactly(s, 4)).toString(), 'LOUD');
      assert.equal(preWrites, 1);
      s.end();
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('a close with nothing queued (the client ends, or Close with no output) fires no preWrite', async () => {
      const fds = openFdCount();
      let preWrites = 0;
      let closed = 0;
      const run = await startServer(
        {
          preWrite: () => void preWrites++,
          closed: () => void closed++,
          data(_c, input) {
            input.retrieveAll();
            return Action.Close;
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const ender = await connectTo(run.server.addrs[0]!);
      ender.end();
      await socketClosed(ender);
      const closer = await connectTo(run.server.addrs[0]!);
      const end = readEnd(closer);
      closer.write('close me');
      assert.equal((await end).data.length, 0);
      await socketClosed(closer);
      await waitFor(() => closed === 2, 'both closed');
      await run.stop();
      assertNoFdLeak(fds);
      assert.equal(preWrites, 0);
    });

    test('send and a returned reply in one data call share one preWrite', async () => {
      const fds = openFdCount();
      let preWrites = 0;
      const run = await startServer(
        {
          preWrite: () => void preWrites++,
          data(c: Conn, input) {
            input.retrieveAll();
            c.send('a');
            c.send('b');
            return 'c';
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      s.write('x');
      assert.equal((await readExactly(s, 3)).toString(), 'abc');
      assert.equal(preWrites, 1);
      s.end();
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('a greeting from opened, a send from a timer, and a Close flush each fire preWrite first', async () => {
      const fds = openFdCount();
      let preWrites = 0;
      const seenAt: Record<string, number> = {};
      const run = await startServer(
        {
          preWrite: () => void preWrites++,
          opened: () => 'hi ',
          data(c: Conn, input) {
            const text = Buffer.from(input.bytes()).toString();
            input.retrieveAll();
            if (text === 'later') setTimeout(() => c.send('sent '), 5);
            if (text === 'close') return { out: 'bye', action: Action.Close };
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const s = await connectTo(run.server.addrs[0]!);
      assert.equal((await readExactly(s, 3)).toString(), 'hi ');
      seenAt.greeting = preWrites;
      s.write('later');
      assert.equal((await readExactly(s, 5)).toString(), 'sent ');
      seenAt.send = preWrites;
      const end = readEnd(s);
      s.write('close');
      const got = await end;
      assert.equal(got.data.toString(), 'bye');
      seenAt.close = preWrites;
      assert.deepEqual(seenAt, { greeting: 1, send: 2, close: 3 });
      await socketClosed(s);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('a UDP reply fires preWrite before it is sent', async () => {
      const fds = openFdCount();
      let preWrites = 0;
      let dataCalls = 0;
      const run = await startServer(
        {
          preWrite: () => void preWrites++,
          data(_c, input) {
            dataCalls++;
            const text = Buffer.from(input.bytes()).toString();
            return text === 'quiet' ? undefined : text.toUpperCase();
          },
        },
        { backend },
        'udp://127.0.0.1:0',
      );
      const sock = createSocket('udp4');
      const got: string[] = [];
      const preWritesAtReply: number[] = [];
      sock.on('message', (m) => {
        got.push(m.toString());
        preWritesAtReply.push(preWrites);
      });
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      const port = run.server.addrs[0]!.port;
      sock.send('quiet', port, '127.0.0.1');
      await waitFor(() => dataCalls === 1, 'quiet datagram');
      await sleep(20);
      assert.equal(preWrites, 0, 'no reply, no preWrite');
      sock.send('udp', port, '127.0.0.1');
      await waitFor(() => got.length === 1, 'reply');
      assert.deepEqual(got, ['UDP']);
      assert.deepEqual(preWritesAtReply, [1]);
      await new Promise<void>((r) => sock.close(() => r()));
      await run.stop();
      assertNoFdLeak(fds);
    });
  });
}
