/**
 * The Redis example's limits, as redis-server 7.0 has them (issue 9, items 11, 7 and 2):
 * HELLO SETNAME refuses the names CLIENT SETNAME refuses; a multibulk count over 1024*1024 is
 * taken (up to INT_MAX, as Redis 7 takes it from a client that needs no password); and a
 * connection whose unconsumed input passes the query limit (Redis's client-query-buffer-limit)
 * is closed without a reply while the others are served, which bounds a command that never
 * completes. Both backends; every test checks that no connection or fd is left behind.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import type { Events } from '../src/index.js';
import { createRedisServer, kMaxQueryBytes, type RedisServerOptions } from '../examples/redis/server.js';
import {
  backendsUnderTest,
  closed,
  connectTo,
  openFdCount,
  readEnd,
  readExactly,
  startServer,
  waitFor,
  assertNoFdLeak,
} from './helpers.js';

interface Harness {
  open(): Promise<Socket>;
  counts: { opened: number; closed: number; contextsLeft: number };
  log: string[];
  end(): Promise<void>;
}

/** Starts the example on port 0 with `options`; end() closes everything and checks callbacks and fds. */
async function start(
  t: TestContext,
  backend: 'native' | 'portable',
  options: RedisServerOptions = {},
): Promise<Harness> {
  const fds = openFdCount();
  const log: string[] = [];
  const redis = createRedisServer({ log: (line) => log.push(line), ...options });
  const counts = { opened: 0, closed: 0, contextsLeft: 0 };
  const inner = redis.events;
  const events: Events = {
    ...inner,
    opened(c) {
      counts.opened++;
      return inner.opened!(c);
    },
    closed(c, err) {
      counts.closed++;
      const r = inner.closed!(c, err);
      if (c.context !== undefined) counts.contextsLeft++;
      return r;
    },
  };
  const running = await startServer(events, { backend }, 'tcp://127.0.0.1:0');
  const sockets: Socket[] = [];
  const shutdown = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await Promise.all(sockets.map(closed));
    await running.stop();
    redis.close();
  };
  t.after(shutdown);
  return {
    counts,
    log,
    async open() {
      const s = await connectTo(running.server.addrs[0]!);
      sockets.push(s);
      return s;
    },
    async end() {
      await shutdown();
      assert.equal(counts.closed, counts.opened, 'every opened connection got closed');
      assert.equal(counts.contextsLeft, 0, 'closed() dropped every connection state');
      assertNoFdLeak(fds);
    },
  };
}

function multibulk(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('')}`;
}

/** Sends `command` and reads a reply as long as `expected`, returning what came. */
async function reply(s: Socket, command: string, expected: string): Promise<string> {
  s.write(command, 'latin1');
  return (await readExactly(s, expected.length)).toString('latin1');
}

/** Reads from `s` up to and including `suffix`. */
async function readUntil(s: Socket, suffix: string): Promise<string> {
  let got = '';
  while (!got.endsWith(suffix)) got += (await readExactly(s, 1)).toString('latin1');
  return got;
}

const kNameError = '-ERR Client names cannot contain spaces, newlines or special characters.\r\n';
/** HELLO's reply (RESP2: a flat array of 14), up to its id. */
const kHelloMap = /^\*14\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n.*\$7\r\nmodules\r\n\*0\r\n$/s;

for (const backend of await backendsUnderTest()) {
  describe(`redis protocol limits (${backend})`, () => {
    test('HELLO SETNAME refuses what CLIENT SETNAME refuses, after the version check, as redis-server 7.0 does', async (t) => {
      const h = await start(t, backend);
      const s = await h.open();
      const cases: [string[], string][] = [
        [['HELLO', '2', 'SETNAME', 'a b'], kNameError],
        [['CLIENT', 'GETNAME'], '$-1\r\n'],
        [['HELLO', '2', 'SETNAME', 'a\nb'], kNameError],
        [['HELLO', '3', 'SETNAME', 'a b'], kNameError],
        [['HELLO', '2', 'SETNAME', 'ok', 'SETNAME', '\x7f'], kNameError],
        [['CLIENT', 'GETNAME'], '$2\r\nok\r\n'],
        [['HELLO', '2', 'SETNAME', 'ok2', 'FOO'], "-ERR Syntax error in HELLO option 'FOO'\r\n"],
        [['CLIENT', 'GETNAME'], '$3\r\nok2\r\n'],
        [['HELLO', '4', 'SETNAME', 'a b'], '-NOPROTO unsupported protocol version\r\n'],
        [['HELLO', '1'], '-NOPROTO unsupported protocol version\r\n'],
        [['HELLO', 'x', 'SETNAME', 'a b'], '-ERR Protocol version is not an integer or out of range\r\n'],
        [['CLIENT', 'SETNAME', 'a b'], kNameError],
        [['CLIENT', 'GETNAME'], '$3\r\nok2\r\n'],
      ];
      for (const [args, expected] of cases) {
        assert.equal(await reply(s, multibulk(...args), expected), expected, JSON.stringify(args));
      }
      s.write(multibulk('HELLO', '2', 'AUTH', 'default', 'pw', 'SETNAME', 'n1'));
      assert.match(await readUntil(s, '$7\r\nmodules\r\n*0\r\n'), kHelloMap);
      assert.equal(await reply(s, multibulk('CLIENT', 'GETNAME'), '$2\r\nn1\r\n'), '$2\r\nn1\r\n');
      s.write(multibulk('HELLO', '2', 'SETNAME', ''));
      assert.match(await readUntil(s, '$7\r\nmodules\r\n*0\r\n'), kHelloMap);
      assert.equal(await reply(s, multibulk('CLIENT', 'GETNAME'), '$-1\r\n'), '$-1\r\n', 'an empty name clears it');
      await h.end();
    });

    test('a multibulk count over 1024*1024 is taken, as Redis 7 takes it: EXISTS with 1048576 keys runs', async (t) => {
      const h = await start(t, backend);
      const s = await h.open();
      assert.equal(await reply(s, multibulk('SET', 'k', 'v'), '+OK\r\n'), '+OK\r\n');
      const n = 1024 * 1024;
      const wire = Buffer.from(`*${n + 1}\r\n$6\r\nEXISTS\r\n${'$1\r\nk\r\n'.repeat(n)}`);
      for (let at = 0; at < wire.length; at += 1024 * 1024) s.write(wire.subarray(at, at + 1024 * 1024));
      assert.equal((await readExactly(s, 10)).toString(), `:${n}\r\n`);
      assert.equal(await reply(s, multibulk('PING'), '+PONG\r\n'), '+PONG\r\n');
      await h.end();
    });

    test('a command that never completes is closed past the query limit, without a reply; other clients are served', async (t) => {
      assert.equal(kMaxQueryBytes, 1024 * 1024 * 1024, 'the default is 1 GiB, as client-query-buffer-limit');
      const limit = 1024 * 1024;
      const h = await start(t, backend, { maxQueryBytes: limit });
      const other = await h.open();
      const value = 'v'.repeat(limit - 64 * 1024);
      assert.equal(
        await reply(other, multibulk('SET', 'near', value), '+OK\r\n'),
        '+OK\r\n',
        'a command under the limit runs',
      );

      const s = await h.open();
      const ended = readEnd(s);
      let gone = false;
      void ended.then(() => (gone = true));
      const chunk = Buffer.from(`$${64 * 1024}\r\n${'x'.repeat(64 * 1024)}\r\n`);
      s.write('*1000000\r\n');
      let sent = 0;
      // Up to 8 times the limit; the server must close the connection long before.
      while (!gone && sent < 8 * limit) {
        if (!s.write(chunk)) await Promise.race([new Promise((r) => s.once('drain', r)), ended]);
        sent += chunk.length;
        await new Promise((r) => setImmediate(r));
      }
      await waitFor(() => gone, 'the server to close the connection over its query limit', 10_000);
      const end = await ended;
      assert.ok(end.how === 'eof' || end.how === 'ECONNRESET' || end.how === 'EPIPE', end.how);
      assert.equal(end.data.length, 0, 'no reply');
      assert.ok(sent <= 4 * limit, `closed after ${sent} bytes`);
      assert.ok(
        h.log.some((l) => /^closing client \d+: \d+ bytes of query buffer, over the 1048576 byte limit$/.test(l)),
        h.log.join('\n'),
      );
      assert.equal(await reply(other, multibulk('EXISTS', 'near'), ':1\r\n'), ':1\r\n');
      assert.equal(await reply(other, multibulk('PING'), '+PONG\r\n'), '+PONG\r\n');
      await h.end();
    });
  });
}
