/**
 * The Redis example under a pipeline of large replies (issue 9, item 8): 300 pipelined GETs of a
 * 1 MiB value from one client must not stall the others, nor queue 300 MiB for a client that does
 * not read. Replies go out as they are built, the commands after a full output queue wait unrun in
 * the input, and `drained` resumes them; so a client that reads nothing holds about one reply of
 * queued output, a second client's PINGs are answered meanwhile, and once the first reads it gets
 * all 300 replies byte for byte. Before the fix the server spent minutes in one `data` call,
 * copying the growing reply over and over, and answered nobody. Both backends.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import type { Conn, Events, ServeOptions } from '../src/index.js';
import { createRedisServer } from '../examples/redis/server.js';
import {
  backendsUnderTest,
  closed,
  connectTo,
  openFdCount,
  readEnd,
  readExactly,
  sleep,
  startServer,
  assertNoFdLeak,
} from './helpers.js';

const kValueBytes = 1024 * 1024;
const kGets = 300;
/** The most output the server may queue for a client that reads nothing: the high-water mark (64 KiB) and a reply or two past it. */
const kQueueBoundBytes = 4 * kValueBytes;

function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

/** Sends one command on `s` and reads its reply of `length` bytes. */
async function ask(s: Socket, command: string, length: number): Promise<string> {
  s.write(command);
  return (await readExactly(s, length)).toString('latin1');
}

/** total_commands_processed from INFO stats, asked on `s`. */
async function commandsProcessed(s: Socket): Promise<number> {
  s.write('INFO stats\r\n');
  const head = (await readExactly(s, 4)).toString();
  let line = head;
  while (!line.endsWith('\r\n')) line += (await readExactly(s, 1)).toString();
  const body = (await readExactly(s, Number(line.slice(1, -2)) + 2)).toString();
  return Number(/total_commands_processed:(\d+)/.exec(body)![1]);
}

/**
 * Reads `count` replies of `$<len>\r\n<value>\r\n` from `s`, checking every byte as it arrives
 * (without holding them all), and counts the bytes received into `progress.bytes`. Bytes after the
 * last reply are left unread on `s`, which is paused again.
 */
function expectBulkReplies(s: Socket, value: Buffer, count: number, progress: { bytes: number }): Promise<void> {
  const header = Buffer.from(`$${value.length}\r\n`);
  const unit = header.length + value.length + 2;
  const total = unit * count;
  return new Promise((resolve, reject) => {
    const finish = (err: Error | null): void => {
      s.off('data', onData);
      s.off('error', finish);
      s.pause();
      if (err === null) resolve();
      else reject(err);
    };
    const onData = (d: Buffer): void => {
      const n = Math.min(d.length, total - progress.bytes);
      for (let i = 0; i < n; i++) {
        const o = (progress.bytes + i) % unit;
        const want =
          o < header.length
            ? header[o]!
            : o < header.length + value.length
              ? value[o - header.length]!
              : o === unit - 2
                ? 0x0d
                : 0x0a;
        if (d[i] !== want) {
          finish(new Error(`byte ${progress.bytes + i} of ${total}: got ${d[i]}, expected ${want}`));
          return;
        }
      }
      progress.bytes += n;
      if (progress.bytes < total) return;
      finish(null);
      if (n < d.length) s.unshift(d.subarray(n));
    };
    s.on('data', onData);
    s.once('error', finish);
    s.resume();
  });
}

interface Harness {
  /** The server's Conn for each client, by the client's local port. */
  conns: Map<number, Conn>;
  open(): Promise<Socket>;
  /** Closes the clients, stops the server, and checks callbacks and fds. */
  end(): Promise<void>;
}

/** Starts the example on port 0 with `options`; if the test fails first, its `after` hook still stops everything. */
async function start(t: TestContext, options: ServeOptions): Promise<Harness> {
  const fds = openFdCount();
  const redis = createRedisServer({ log: null });
  const conns = new Map<number, Conn>();
  const counts = { opened: 0, closed: 0 };
  const inner = redis.events;
  const events: Events = {
    ...inner,
    opened(c) {
      counts.opened++;
      conns.set(c.remoteAddr.port, c);
      return inner.opened!(c);
    },
    closed(c, err) {
      counts.closed++;
      return inner.closed!(c, err);
    },
  };
  const running = await startServer(events, options, 'tcp://127.0.0.1:0');
  const sockets: Socket[] = [];
  const shutdown = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await Promise.all(sockets.map(closed));
    await running.stop();
    redis.close();
  };
  t.after(shutdown);
  return {
    conns,
    async open() {
      const s = await connectTo(running.server.addrs[0]!);
      sockets.push(s);
      return s;
    },
    async end() {
      await shutdown();
      assert.equal(counts.closed, counts.opened, 'every opened connection got closed');
      assertNoFdLeak(fds);
    },
  };
}

/** SET big <value> on `s`. */
async function setBig(s: Socket, value: Buffer): Promise<void> {
  s.write(
    Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${value.length}\r\n`), value, Buffer.from('\r\n')]),
  );
  assert.equal((await readExactly(s, 5)).toString(), '+OK\r\n');
}

const kGetBig = '*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n';

for (const backend of await backendsUnderTest()) {
  describe(`redis pipelined big replies (${backend})`, () => {
    test(
      '300 pipelined GETs of 1 MiB: a client that reads nothing holds ~1 reply of output, PINGs are answered, then all 300 replies arrive byte-exact',
      { timeout: 120_000 },
      async (t: TestContext) => {
        const h = await start(t, { backend });
        const value = pattern(kValueBytes);
        const pinger = await h.open();
        await setBig(pinger, value);
        const before = await commandsProcessed(pinger);
        /** Commands the PING client sent after `before` (INFO counts itself). */
        let mine = 0;
        const ping = async (): Promise<void> => {
          mine++;
          assert.equal(await ask(pinger, 'PING\r\n', 7), '+PONG\r\n');
        };
        const getsRun = async (): Promise<number> => (await commandsProcessed(pinger)) - before - ++mine;

        const big = await h.open();
        big.pause();
        big.write(kGetBig.repeat(kGets));
        const server = h.conns.get(big.localPort!)!;
        for (let i = 0; i < 20; i++) await ping();

        // The big client reads nothing: the server fills the socket buffers, queues past the
        // high-water mark, and stops running its GETs; PINGs are still answered.
        let ran = -1;
        for (;;) {
          await sleep(50);
          await ping();
          const now = await getsRun();
          if (now === ran && server.queuedBytes > 64 * 1024) break;
          assert.ok(now < kGets, `all ${kGets} GETs ran for a client that reads nothing`);
          ran = now;
        }
        t.diagnostic(`${ran} GETs ran and ${server.queuedBytes} bytes were queued while the client read nothing`);
        assert.ok(ran > 0, 'the first GETs ran');
        assert.ok(
          server.queuedBytes <= kQueueBoundBytes,
          `${server.queuedBytes} bytes queued for a client that reads nothing`,
        );

        // Now it reads: every reply arrives, in order and byte-exact, and PINGs on the other
        // connection are answered while the transfer is still going on.
        const progress = { bytes: 0 };
        const all = expectBulkReplies(big, value, kGets, progress);
        let done = false;
        void all.then(
          () => (done = true),
          () => (done = true),
        );
        let pongsDuring = 0;
        while (!done) {
          await ping();
          if (!done) pongsDuring++;
          await sleep(1);
        }
        await all;
        t.diagnostic(`${pongsDuring} PINGs answered while the big client read its replies`);
        assert.ok(pongsDuring > 0, 'the PING client was answered before the big client had all of its replies');
        assert.equal(await getsRun(), kGets, 'every GET ran exactly once');

        await h.end();
      },
    );

    test(
      'a client that pipelines GETs of 1 MiB and half-closes gets every reply, then EOF (allowHalfOpen)',
      { timeout: 120_000 },
      async (t) => {
        const h = await start(t, { backend, allowHalfOpen: true });
        const value = pattern(kValueBytes);
        const setup = await h.open();
        await setBig(setup, value);
        const big = await h.open();
        const n = 50;
        big.end(kGetBig.repeat(n) + 'PING\r\n');
        const progress = { bytes: 0 };
        await expectBulkReplies(big, value, n, progress);
        const rest = await readEnd(big);
        assert.deepEqual(
          [rest.how, rest.data.toString()],
          ['eof', '+PONG\r\n'],
          'the command after the GETs ran too, then our side ended',
        );
        await h.end();
      },
    );
  });
}
