/**
 * The Redis example served by gevent, on each backend, driven by the npm `redis` client and by raw
 * sockets: every command of the issue, SET's options, expiry (lazy and on the timing wheel), KEYS
 * globs, pipelining, errors worded as Redis words them, protocol errors that close only the
 * offending connection, large values arriving in pieces, and the CLI with several loops (one
 * keyspace per loop). Each test counts opened/closed callbacks and checks that no fd is left open.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createClient, ErrorReply, RESP_TYPES } from 'redis';
import type { Conn, Events } from '../src/index.js';
import { bannerLine, createRedisServer, type RedisServer } from '../examples/redis/server.js';
import {
  backendsUnderTest,
  closed,
  connectTo,
  openFdCount,
  readEnd,
  readExactly,
  sleep,
  startServer,
  type Running,
  assertNoFdLeak,
} from './helpers.js';

/** An npm `redis` client speaking RESP2 (the protocol this server speaks), with no reconnection. */
function newClient(port: number) {
  const c = createClient({ RESP: 2, socket: { host: '127.0.0.1', port, reconnectStrategy: false } });
  c.on('error', () => {});
  return c;
}
type Client = ReturnType<typeof newClient>;

interface Harness {
  port: number;
  redis: RedisServer;
  running: Running;
  counts: { opened: number; closed: number };
  clients: Client[];
  client(): Promise<Client>;
  /** Closes the clients, stops the server, and checks callbacks and fds. */
  end(): Promise<void>;
}

/** Starts a server on port 0; if the test fails before end(), its `after` hook still stops everything. */
async function start(t: TestContext, backend: 'native' | 'portable'): Promise<Harness> {
  const fds = openFdCount();
  const redis = createRedisServer({ log: null });
  const counts = { opened: 0, closed: 0 };
  const inner = redis.events;
  const events: Events = {
    ...inner,
    opened(c: Conn) {
      counts.opened++;
      return inner.opened!(c);
    },
    closed(c: Conn, err: Error | null) {
      counts.closed++;
      return inner.closed!(c, err);
    },
  };
  const running = await startServer(events, { backend }, 'tcp://127.0.0.1:0');
  const port = running.server.addrs[0]!.port;
  const h: Harness = {
    port,
    redis,
    running,
    counts,
    clients: [],
    async client() {
      const c = newClient(port);
      await c.connect();
      h.clients.push(c);
      return c;
    },
    async end() {
      await shutdown();
      assert.equal(counts.closed, counts.opened, 'every opened connection got closed');
      assertNoFdLeak(fds);
    },
  };
  const shutdown = async (): Promise<void> => {
    for (const c of h.clients) if (c.isOpen) c.destroy();
    await running.stop();
    redis.close();
  };
  t.after(shutdown);
  return h;
}

/** Sends raw bytes on a new socket and reads until the server closes it. */
async function rawUntilClose(port: number, bytes: string | Buffer): Promise<{ how: string; data: string }> {
  const s = await connectTo({ network: 'tcp', port, path: '' });
  const ended = readEnd(s);
  s.write(bytes);
  const r = await ended;
  s.destroy();
  await closed(s);
  return { how: r.how, data: r.data.toString('latin1') };
}

async function rejects(p: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ErrorReply, `an ErrorReply, got ${String(err)}`);
    assert.equal(err.message, message);
    return true;
  });
}

for (const backend of await backendsUnderTest()) {
  describe(`redis server (${backend})`, () => {
    test('every command of the issue answers as Redis 7 does, through the npm client', async (t) => {
      const h = await start(t, backend);
      const r = await h.client();
      assert.equal(await r.ping(), 'PONG');
      assert.equal(await r.sendCommand(['PING', 'hi']), 'hi');
      assert.equal(await r.echo('hello'), 'hello');
      assert.equal(await r.set('k', 'v'), 'OK');
      assert.equal(await r.get('k'), 'v');
      assert.equal(await r.get('missing'), null);
      assert.equal(await r.set('k', 'nx', { condition: 'NX' }), null);
      assert.equal(await r.set('n', 'nx', { condition: 'NX' }), 'OK');
      assert.equal(await r.set('absent', 'xx', { condition: 'XX' }), null);
      assert.equal(await r.set('k', 'xx', { condition: 'XX' }), 'OK');
      assert.equal(await r.get('k'), 'xx');
      assert.equal(await r.set('k', 'v2', { GET: true }), 'xx');
      assert.equal(await r.set('e', 'v', { expiration: { type: 'EX', value: 100 } }), 'OK');
      assert.equal(await r.ttl('e'), 100);
      assert.equal(await r.set('p', 'v', { expiration: { type: 'PX', value: 5000 } }), 'OK');
      const pttl = await r.pTTL('p');
      assert.ok(pttl > 4900 && pttl <= 5000, `PTTL ${pttl}`);
      assert.equal(await r.ttl('k'), -1);
      assert.equal(await r.ttl('missing'), -2);
      assert.equal(await r.pTTL('missing'), -2);
      assert.equal(await r.expire('k', 50), 1);
      assert.equal(await r.ttl('k'), 50);
      assert.equal(await r.expire('missing', 50), 0);
      assert.equal(await r.exists(['k', 'n', 'missing', 'k']), 3);
      assert.equal(await r.del(['k', 'missing']), 1);
      assert.equal(await r.incr('c'), 1);
      assert.equal(await r.incrBy('c', 41), 42);
      assert.equal(await r.decr('c'), 41);
      assert.equal(await r.incrBy('c', -50), -9);
      assert.equal(await r.mSet(['a', '1', 'b', '2']), 'OK');
      assert.deepEqual(await r.mGet(['a', 'missing', 'b']), ['1', null, '2']);
      assert.deepEqual((await r.keys('*')).sort(), ['a', 'b', 'c', 'e', 'n', 'p']);
      assert.deepEqual((await r.keys('[ab]')).sort(), ['a', 'b']);
      assert.equal(await r.dbSize(), 6);
      assert.equal(await r.sendCommand(['SELECT', '0']), 'OK');
      assert.equal(await r.flushAll(), 'OK');
      assert.equal(await r.dbSize(), 0);
      assert.deepEqual(await r.configGet('save'), { save: '' });
      assert.deepEqual(await r.configGet('appendonly'), { appendonly: 'no' });
      assert.equal(typeof (await r.commandCount()), 'number');
      await h.end();
    });

    test('SET PX 50: GET 150 ms later is null, and the timing wheel removes an expired key nobody reads', async (t) => {
      const h = await start(t, backend);
      const r = await h.client();
      await r.set('short', 'v', { expiration: { type: 'PX', value: 50 } });
      await r.set('unread', 'v', { expiration: { type: 'PX', value: 50 } });
      await r.set('kept', 'v', { expiration: { type: 'EX', value: 60 } });
      assert.equal(await r.get('short'), 'v');
      await sleep(150);
      assert.equal(await r.get('short'), null);
      assert.equal(await r.ttl('short'), -2);
      await sleep(150);
      assert.equal(
        await r.dbSize(),
        1,
        'DBSIZE counts keys not yet removed, so only the wheel can have removed "unread"',
      );
      assert.equal(await r.get('kept'), 'v');
      await h.end();
    });

    test('pipelining: 3000 commands sent at once come back in order, and large pipelines of raw bytes are answered', async (t) => {
      const h = await start(t, backend);
      const r = await h.client();
      const replies = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => [r.incr('seq'), r.set(`key:${i}`, String(i)), r.get(`key:${i}`)]).flat(),
      );
      for (let i = 0; i < 1000; i++) assert.deepEqual(replies.slice(3 * i, 3 * i + 3), [i + 1, 'OK', String(i)]);
      const s = await connectTo({ network: 'tcp', port: h.port, path: '' });
      const n = 5000;
      s.write('*1\r\n$4\r\nPING\r\n'.repeat(n));
      assert.equal((await readExactly(s, 7 * n)).toString(), '+PONG\r\n'.repeat(n));
      s.destroy();
      await closed(s);
      await h.end();
    });

    test('errors are worded as Redis words them, and the connection stays usable', async (t) => {
      const h = await start(t, backend);
      const r = await h.client();
      await r.set('str', 'abc');
      await rejects(r.sendCommand(['FOO', 'a', 'b']), "ERR unknown command 'FOO', with args beginning with: 'a' 'b' ");
      await rejects(r.sendCommand(['GET']), "ERR wrong number of arguments for 'get' command");
      await rejects(r.sendCommand(['MSET', 'a', '1', 'b']), "ERR wrong number of arguments for 'mset' command");
      await rejects(r.sendCommand(['PING', 'a', 'b']), "ERR wrong number of arguments for 'ping' command");
      await rejects(r.sendCommand(['SELECT', '1']), 'ERR DB index is out of range');
      await rejects(r.sendCommand(['SELECT', 'x']), 'ERR value is not an integer or out of range');
      await rejects(r.incr('str'), 'ERR value is not an integer or out of range');
      await rejects(r.sendCommand(['INCRBY', 'n', '1.5']), 'ERR value is not an integer or out of range');
      await r.set('max', '9223372036854775807');
      await rejects(r.incr('max'), 'ERR increment or decrement would overflow');
      await rejects(r.sendCommand(['SET', 'k', 'v', 'EX', '0']), "ERR invalid expire time in 'set' command");
      await rejects(r.sendCommand(['SET', 'k', 'v', 'NX', 'XX']), 'ERR syntax error');
      await rejects(r.sendCommand(['SET', 'k', 'v', 'EX', '10', 'PX', '10']), 'ERR syntax error');
      await rejects(r.sendCommand(['EXPIRE', 'str', '10', 'FOO']), 'ERR Unsupported option FOO');
      await rejects(r.sendCommand(['CONFIG', 'FOO']), "ERR unknown subcommand 'FOO'. Try CONFIG HELP.");
      await rejects(r.sendCommand(['CONFIG', 'GET']), "ERR wrong number of arguments for 'config|get' command");
      assert.equal(await r.get('str'), 'abc');
      await h.end();
    });

    test('malformed RESP gets "-ERR Protocol error" and a close, while another client keeps working', async (t) => {
      const h = await start(t, backend);
      const r = await h.client();
      await r.set('alive', '1');
      const bad = await rawUntilClose(h.port, '*1\r\n$4\r\nPING\r\n*2\r\n:1\r\n*1\r\n$4\r\nPING\r\n');
      assert.deepEqual(bad, { how: 'eof', data: "+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n" });
      assert.equal(await r.incr('alive'), 2);
      assert.deepEqual(await rawUntilClose(h.port, 'SET a "unbalanced\r\n'), {
        how: 'eof',
        data: '-ERR Protocol error: unbalanced quotes in request\r\n',
      });
      assert.equal(await r.incr('alive'), 3);
      await h.end();
    });

    test('oversized bulk, multibulk and inline input get the right error and a close; others are served', async (t) => {
      const h = await start(t, backend);
      const r = await h.client();
      const cases: [string, string][] = [
        ['*1\r\n$536870913\r\n', 'invalid bulk length'],
        ['*2147483648\r\n', 'invalid multibulk length'],
        ['x'.repeat(70_000), 'too big inline request'],
      ];
      for (const [input, message] of cases) {
        const [res, pong] = await Promise.all([rawUntilClose(h.port, input), r.ping()]);
        assert.deepEqual(res, { how: 'eof', data: `-ERR Protocol error: ${message}\r\n` });
        assert.equal(pong, 'PONG');
      }
      await h.end();
    });

    test('a 4 MB value sent in 1 KB pieces round-trips; inline commands work; QUIT answers +OK and closes', async (t) => {
      const h = await start(t, backend);
      const r = await h.client();
      const value = Buffer.alloc(4 * 1024 * 1024);
      for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
      const s = await connectTo({ network: 'tcp', port: h.port, path: '' });
      const wire = Buffer.concat([
        Buffer.from(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${value.length}\r\n`),
        value,
        Buffer.from('\r\n'),
      ]);
      for (let at = 0; at < wire.length; at += 1024) {
        if (!s.write(wire.subarray(at, at + 1024))) await once(s, 'drain');
      }
      assert.equal((await readExactly(s, 5)).toString(), '+OK\r\n');
      s.write('SET greeting "hello world"\r\nGET greeting\r\nQUIT\r\nPING\r\n');
      const rest = await readEnd(s);
      assert.deepEqual([rest.how, rest.data.toString()], ['eof', '+OK\r\n$11\r\nhello world\r\n+OK\r\n']);
      s.destroy();
      await closed(s);
      const back = (await r.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).get('big')) as unknown as Buffer;
      assert.ok(Buffer.isBuffer(back) && back.equals(value), 'the value came back byte for byte');
      await h.end();
    });
  });
}

describe('redis CLI (main.ts)', async () => {
  const native = (await backendsUnderTest()).includes('native');
  test(
    '--loops 2 prints the banner, and each loop has its own keyspace',
    { skip: native ? false : 'needs the native backend' },
    async () => {
      const main = fileURLToPath(new URL('../examples/redis/main.js', import.meta.url));
      const child = spawn(process.execPath, [main, '--port', '0', '--loops', '2', '--backend', 'native'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = once(child, 'exit');
      try {
        const lines = createInterface({ input: child.stdout });
        const [banner] = (await once(lines, 'line')) as [string];
        const port = Number(/port (\d+)/.exec(banner)?.[1]);
        assert.equal(banner, bannerLine(port, 2));
        assert.match(banner, /\(loops: 2, one keyspace per loop\)$/);
        const clients = [];
        for (let i = 0; i < 2; i++) {
          const c = newClient(port);
          await c.connect();
          clients.push(c);
        }
        const [a, b] = clients as [Client, Client];
        await a.set('where', 'a');
        assert.equal(await b.get('where'), null, 'the second connection went to the other loop, with its own keyspace');
        await b.set('where', 'b');
        assert.equal(await a.get('where'), 'a');
        assert.match(await a.info('server'), /gevent_loops:2/);
        for (const c of clients) await c.close();
        lines.close();
      } finally {
        child.kill('SIGTERM');
        const [code] = (await exited) as [number | null];
        assert.equal(code, 0);
      }
    },
  );
});
