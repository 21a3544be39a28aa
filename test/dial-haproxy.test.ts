/**
 * Dialing through a proxy nobody here wrote: Debian's HAProxy in mode tcp (test/haproxy.ts) in
 * front of plain node:net upstreams, reached with loop.dial() from a server with no listener, on
 * every backend:
 * - several messages, one of 300 KiB, come back from an echo upstream byte-exact, in order;
 *   c.close() fires `closed` once, with no error;
 * - c.end() half-closes through HAProxy: the upstream sees EOF after the request and its reply
 *   still arrives; its FIN then closes the connection with `closed` once;
 * - a frontend whose backend is down accepts the dial, then closes the connection: `closed` fires
 *   once, nothing arrives, and the loop dials on as before.
 * No fd is left open. Skipped without HAProxy (CI installs it).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { listen, type Conn, type Events, type LoopInit, type Server, type ServeOptions } from '../src/index.js';
import { haproxySkip, startHaproxy, type Haproxy } from './haproxy.js';
import { assertNoFdLeak, backendsUnderTest, freePort, openFdCount, readToEnd, waitFor, within } from './helpers.js';

const kKiB = 1024;

/** A node:net server on 127.0.0.1:0 (half-open) that hands every socket to `onConn`. */
interface Upstream {
  port: number;
  /** Sockets that have seen the client's FIN. */
  ended: number;
  close(): Promise<void>;
}

async function netUpstream(onConn: (s: Socket, up: Upstream) => void): Promise<Upstream> {
  const socks = new Set<Socket>();
  const srv: NetServer = createServer({ allowHalfOpen: true }, (s) => {
    socks.add(s);
    s.once('close', () => socks.delete(s));
    s.once('end', () => up.ended++);
    s.on('error', () => {}); // HAProxy may reset a connection it gives up on
    onConn(s, up);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const up: Upstream = {
    port: (srv.address() as { port: number }).port,
    ended: 0,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
  return up;
}

/** What a test's dialing server saw: input per connection, and every `closed` with its error. */
interface Seen {
  input: Map<Conn, Buffer[]>;
  closed: { conn: Conn; err: Error | null }[];
}

const inputOf = (seen: Seen, c: Conn): Buffer => Buffer.concat(seen.input.get(c) ?? []);
const closesOf = (seen: Seen, c: Conn): number => seen.closed.filter((x) => x.conn === c).length;

/** Events that record what arrives and every close, and keep the loop for dialing. */
function recorder(seen: Seen, got: { loop: LoopInit | null }): Events {
  return {
    init(loop) {
      got.loop = loop;
    },
    data(c, input) {
      const chunks = seen.input.get(c) ?? [];
      chunks.push(Buffer.from(input.bytes()));
      seen.input.set(c, chunks);
      input.retrieveAll();
    },
    closed(c, err) {
      seen.closed.push({ conn: c, err });
    },
  };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const backends = await backendsUnderTest();
for (const backend of backends) {
  describe(`dial through HAProxy (${backend})`, { skip: haproxySkip }, () => {
    let echo: Upstream;
    let replier: Upstream;
    let haproxy: Haproxy;
    let server: Server | null = null;

    before(async () => {
      echo = await netUpstream((s) => s.pipe(s));
      // Answers once the request has ended: with its length and digest, then its own FIN.
      replier = await netUpstream((s) => {
        void readToEnd(s).then(
          (got) => s.end(`got ${got.length} ${sha256(got)}`),
          () => s.destroy(),
        );
      });
      const down = await freePort(); // nothing listens there
      haproxy = await startHaproxy([
        { target: { host: '127.0.0.1', port: echo.port }, server: '' },
        { target: { host: '127.0.0.1', port: replier.port }, server: '' },
        { target: { host: '127.0.0.1', port: down }, server: '' },
      ]);
    });

    afterEach(async () => {
      await server?.shutdown();
      server = null;
    });

    after(async () => {
      await haproxy?.stop();
      await echo?.close();
      await replier?.close();
    });

    /** A server with no listener on this backend, recording into `seen`; its loop for dialing. */
    async function dialer(seen: Seen, opts: Partial<ServeOptions> = {}): Promise<LoopInit> {
      const got: { loop: LoopInit | null } = { loop: null };
      server = await listen(recorder(seen, got), { backend, ...opts });
      assert.deepEqual(server.addrs, []);
      assert.ok(got.loop !== null, 'init ran before listen resolved');
      return got.loop;
    }

    /** Shuts the dialing server down and waits for every fd opened since `fds` to close. */
    async function settle(fds: number): Promise<void> {
      await within(server!.shutdown(), 10_000, 'shutdown');
      server = null;
      await waitFor(() => openFdCount() <= fds, 'every fd to close', 10_000);
      assertNoFdLeak(fds);
    }

    test('several messages, one of 300 KiB, echo back byte-exact; c.close() fires closed once', async () => {
      const fds = openFdCount();
      const seen: Seen = { input: new Map(), closed: [] };
      const loop = await dialer(seen);
      const c = await loop.dial(`tcp://127.0.0.1:${haproxy.ports[0]}`);
      assert.equal(c.outbound, true);
      assert.equal(c.remoteAddr.port, haproxy.ports[0]);
      const messages = [Buffer.from('hello'), randomBytes(64 * kKiB), randomBytes(300 * kKiB), Buffer.from('!')];
      let expected = Buffer.alloc(0);
      for (const m of messages) {
        c.send(m);
        expected = Buffer.concat([expected, m]);
        await waitFor(() => inputOf(seen, c).length >= expected.length, `${expected.length} bytes back`, 20_000);
        assert.ok(inputOf(seen, c).equals(expected), `byte-exact after ${expected.length} bytes (${haproxy.output()})`);
      }
      assert.equal(c.bytesWritten, expected.length);
      assert.equal(c.bytesRead, expected.length);
      c.close();
      await waitFor(() => closesOf(seen, c) === 1, 'closed');
      assert.equal(c.open, false);
      await settle(fds);
      assert.deepEqual(seen.closed, [{ conn: c, err: null }], 'closed fired once, without an error');
    });

    test('c.end() half-closes through HAProxy: the upstream sees EOF and its reply still arrives', async () => {
      const fds = openFdCount();
      const seen: Seen = { input: new Map(), closed: [] };
      const loop = await dialer(seen, { allowHalfOpen: true });
      const endedBefore = replier.ended;
      const c = await loop.dial(`tcp://127.0.0.1:${haproxy.ports[1]}`);
      const request = randomBytes(200 * kKiB);
      c.send(request.subarray(0, 1000));
      c.send(request.subarray(1000));
      c.end();
      await waitFor(() => closesOf(seen, c) === 1, 'the reply and the upstream FIN to close the connection', 20_000);
      assert.equal(inputOf(seen, c).toString(), `got ${request.length} ${sha256(request)}`);
      assert.equal(replier.ended, endedBefore + 1, 'the upstream saw EOF');
      await settle(fds);
      assert.deepEqual(seen.closed, [{ conn: c, err: null }], 'closed fired once, without an error');
    });

    test('a frontend whose backend is down closes the dialled connection cleanly; the loop dials on', async () => {
      const fds = openFdCount();
      const seen: Seen = { input: new Map(), closed: [] };
      const loop = await dialer(seen);
      const c = await loop.dial(`tcp://127.0.0.1:${haproxy.ports[2]}`);
      c.send('anyone there?');
      // HAProxy retries the backend (3 times by default, a second apart) before it gives up.
      await waitFor(() => closesOf(seen, c) === 1, 'HAProxy to close the connection', 30_000);
      assert.equal(c.open, false);
      assert.equal(inputOf(seen, c).length, 0, 'nothing arrived');
      const after = await loop.dial(`tcp://127.0.0.1:${haproxy.ports[0]}`);
      after.send('still here');
      await waitFor(() => inputOf(seen, after).length >= 10, 'the echo on a second dial', 10_000);
      assert.equal(inputOf(seen, after).toString(), 'still here');
      after.close();
      await waitFor(() => closesOf(seen, after) === 1, 'the second connection to close');
      await settle(fds);
      assert.equal(closesOf(seen, c), 1, 'closed fired once for the refused connection');
      assert.equal(closesOf(seen, after), 1, 'closed fired once for the second connection');
      assert.equal(seen.closed.length, 2);
    });
  });
}
