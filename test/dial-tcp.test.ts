/**
 * Outbound connections over TCP, on every backend:
 * - loop.dial() from `init` reaches a gevent echo server and a plain node:net one; 1 MiB echoes
 *   byte-exact; the Conn is outbound, has addrIndex -1, its addresses, the dial's context, and
 *   `c.loop` is the object `init` got; `opened` ran before the dial resolved.
 * - c.loop.dial() from `opened` makes a proxy: 1 MiB each way through it.
 * - localAddress/localPort bind the source: the peer sees that port.
 * - c.end() half-closes (the peer still answers, then its FIN closes the connection cleanly), and
 *   c.close() / the peer's close end the connection with `closed` once.
 * - opened returning Action.Close still resolves the dial (the Conn closing); the idle timeout
 *   closes an idle dialled connection.
 * - Server.dial() resolves with nothing once `opened` has seen the connection; stats count it as
 *   dialed, not accepted. No fd is left open.
 */
import assert from 'node:assert/strict';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { Action, IdleTimeoutError, listen, type Conn, type Events, type LoopInit, type Server } from '../src/index.js';
import {
  backendsUnderTest,
  closed,
  connectTo,
  freePort,
  openFdCount,
  readExactly,
  readToEnd,
  startServer,
  waitFor,
  within,
} from './helpers.js';

const kMiB = 1 << 20;

/** A node:net server on 127.0.0.1:0: `echo` pipes every socket back (half-open), else `onConn` gets it. */
/** What the running test must stop even when it fails (servers, peers), run after each test. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => {});
});

/** listen(), stopped after the test. */
async function listenHere(events: Events, opts: Parameters<typeof listen>[1]): Promise<Server> {
  const server = await listen(events, opts);
  cleanups.push(() => server.shutdown());
  return server;
}

async function netServer(
  onConn?: (s: Socket) => void,
): Promise<{ port: number; socks: Socket[]; close(): Promise<void> }> {
  const socks: Socket[] = [];
  const srv: NetServer = createServer({ allowHalfOpen: true }, (s) => {
    socks.push(s);
    if (onConn) onConn(s);
    else s.pipe(s);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    for (const s of socks) s.destroy();
    return (closing ??= new Promise<void>((resolve) => srv.close(() => resolve())));
  };
  cleanups.push(close);
  return { port: (srv.address() as { port: number }).port, socks, close };
}

/** Input collected per connection, and a `closed` record. */
interface Seen {
  input: Buffer[];
  opened: { outbound: boolean; addrIndex: number; context: unknown }[];
  closed: (Error | null)[];
}

function collector(seen: Seen): Pick<Events, 'opened' | 'data' | 'closed'> {
  return {
    opened(c) {
      seen.opened.push({ outbound: c.outbound, addrIndex: c.addrIndex, context: c.context });
    },
    data(_c, input) {
      seen.input.push(Buffer.from(input.bytes()));
      input.retrieveAll();
    },
    closed(_c, err) {
      seen.closed.push(err);
    },
  };
}

const received = (seen: Seen): number => seen.input.reduce((n, b) => n + b.length, 0);

const backends = await backendsUnderTest();
for (const backend of backends) {
  describe(`dial over TCP (${backend})`, () => {
    for (const peer of ['gevent', 'node:net'] as const) {
      test(`loop.dial() from init reaches a ${peer} echo server; 1 MiB echoes byte-exact`, async () => {
        const fds = openFdCount();
        const echoGevent =
          peer === 'gevent'
            ? await startServer(
                {
                  data(_c, input) {
                    const out = input.bytes();
                    input.retrieveAll();
                    return out;
                  },
                },
                { backend },
                'tcp://127.0.0.1:0',
              )
            : null;
        if (echoGevent) cleanups.push(() => echoGevent.stop());
        const echoNet = peer === 'node:net' ? await netServer() : null;
        const port = echoGevent ? echoGevent.server.addrs[0]!.port : echoNet!.port;
        const seen: Seen = { input: [], opened: [], closed: [] };
        let initLoop: LoopInit | null = null;
        let conn: Conn | null = null;
        const server = await listenHere(
          {
            ...collector(seen),
            async init(loop) {
              initLoop = loop;
              conn = await loop.dial(`tcp://127.0.0.1:${port}`, { context: { tag: 7 } });
              assert.equal(seen.opened.length, 1, 'opened ran before the dial resolved');
            },
          },
          { backend },
        );
        const c = conn!;
        assert.equal(c.outbound, true);
        assert.equal(c.addrIndex, -1);
        assert.equal(c.loopIndex, 0);
        assert.equal(c.loop, initLoop, 'c.loop is the object init got');
        assert.deepEqual(c.context, { tag: 7 });
        assert.deepEqual(seen.opened, [{ outbound: true, addrIndex: -1, context: { tag: 7 } }]);
        assert.equal(c.remoteAddr.port, port);
        assert.equal(c.remoteAddr.host, '127.0.0.1');
        assert.equal(c.localAddr.host, '127.0.0.1');
        assert.ok(c.localAddr.port > 0);
        if (echoNet) {
          await waitFor(() => echoNet.socks.length === 1, 'the peer to accept');
          assert.equal(echoNet.socks[0]!.remotePort, c.localAddr.port, 'the peer sees the local port');
        }
        const payload = randomBytes(kMiB);
        c.send(payload);
        await waitFor(() => received(seen) >= kMiB, '1 MiB echoed back', 20_000);
        assert.ok(Buffer.concat(seen.input).equals(payload), 'the echo is byte-exact');
        assert.equal(c.bytesWritten, kMiB);
        assert.equal(c.bytesRead, kMiB);
        const stats = server.stats();
        assert.equal(stats.dialed, 1);
        assert.equal(stats.accepted, 0);
        assert.equal(stats.connections, 1);
        c.close();
        await waitFor(() => seen.closed.length === 1, 'closed');
        assert.deepEqual(seen.closed, [null]);
        await within(server.shutdown(), 10_000, 'shutdown');
        await echoGevent?.stop();
        await echoNet?.close();
        await waitFor(() => openFdCount() <= fds, 'no fd left open');
      });
    }

    test('c.loop.dial() from opened makes a proxy: 1 MiB each way through it', async () => {
      const upstream = await netServer();
      const proxy = await startServer(
        {
          opened(c) {
            if (c.outbound) return;
            c.loop.dial(`tcp://127.0.0.1:${upstream.port}`, { context: c }).then(
              (up) => {
                c.context = up;
                c.wake();
              },
              (err: Error) => c.destroy(err),
            );
          },
          data(c, input) {
            const other = c.context as Conn | undefined;
            if (other === undefined) return; // kept until the upstream is there
            other.send(input.bytes());
            input.retrieveAll();
          },
          closed(c) {
            (c.context as Conn | undefined)?.close();
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      cleanups.push(() => proxy.stop());
      const client = await connectTo(proxy.server.addrs[0]!);
      cleanups.push(async () => client.destroy());
      const payload = randomBytes(kMiB);
      client.write(payload);
      const back = await within(readExactly(client, kMiB), 20_000, '1 MiB back through the proxy');
      assert.ok(back.equals(payload));
      const stats = proxy.server.stats();
      assert.equal(stats.accepted, 1);
      assert.equal(stats.dialed, 1);
      client.end();
      await closed(client);
      await waitFor(() => proxy.server.connections === 0, 'both sides of the proxy to close');
      await proxy.stop();
      await upstream.close();
    });

    test('a host name resolves (tcp4://localhost), and tcp6://[::1] reaches an IPv6 peer', async () => {
      const peer4 = await netServer((s) => s.end('four'));
      const seen: Seen = { input: [], opened: [], closed: [] };
      let loop: LoopInit | null = null;
      await listenHere(
        {
          ...collector(seen),
          init(l) {
            loop = l;
          },
        },
        { backend },
      );
      const c4 = await loop!.dial(`tcp4://localhost:${peer4.port}`);
      assert.equal(c4.remoteAddr.host, '127.0.0.1');
      assert.equal(c4.remoteAddr.family, 'IPv4');
      const v6 = createServer((s) => s.end('six'));
      const listening = await new Promise<boolean>((resolve) => {
        v6.once('error', () => resolve(false));
        v6.listen(0, '::1', () => resolve(true));
      });
      if (!listening) return; // no IPv6 loopback here
      cleanups.push(() => new Promise<void>((resolve) => v6.close(() => resolve())));
      const c6 = await loop!.dial(`tcp6://[::1]:${(v6.address() as { port: number }).port}`);
      assert.equal(c6.remoteAddr.host, '::1');
      assert.equal(c6.remoteAddr.family, 'IPv6');
      await waitFor(() => seen.closed.length === 2, 'both closed by their peers');
      assert.deepEqual(
        Buffer.concat(seen.input).toString().split('').sort().join(''),
        'fiorsux',
        'both peers were heard',
      );
    });

    test('localAddress and localPort bind the source; the peer sees that port', async () => {
      const peer = await netServer((s) => s.end());
      const localPort = await freePort();
      const seen: Seen = { input: [], opened: [], closed: [] };
      const server = await listenHere(collector(seen), { backend });
      await server.dial(`tcp://127.0.0.1:${peer.port}`, { localAddress: '127.0.0.1', localPort });
      await waitFor(() => peer.socks.length === 1, 'the peer to accept');
      assert.equal(peer.socks[0]!.remotePort, localPort);
      await waitFor(() => seen.closed.length === 1, 'closed after the peer ends');
      await server.shutdown();
      await peer.close();
    });

    test('c.end() half-closes: the peer sees FIN and still answers; its FIN then closes the connection cleanly', async () => {
      const peer = await netServer((s) => {
        void readToEnd(s).then((got) => s.end(`got ${got.toString()}`));
      });
      const seen: Seen = { input: [], opened: [], closed: [] };
      let conn: Conn | null = null;
      const server = await listenHere(
        {
          ...collector(seen),
          async init(loop) {
            conn = await loop.dial(`tcp://127.0.0.1:${peer.port}`);
          },
        },
        { backend, allowHalfOpen: true },
      );
      conn!.send('hello');
      conn!.end();
      await waitFor(() => seen.closed.length === 1, 'closed');
      assert.equal(Buffer.concat(seen.input).toString(), 'got hello');
      assert.deepEqual(seen.closed, [null]);
      await server.shutdown();
      await peer.close();
    });

    test('opened returning Action.Close: the dial still resolves with the Conn, closing; closed follows once', async () => {
      const peer = await netServer((s) => void readToEnd(s).then(() => s.end()));
      const seen: Seen = { input: [], opened: [], closed: [] };
      let loop: LoopInit | null = null;
      await listenHere(
        {
          ...collector(seen),
          init(l) {
            loop = l;
          },
          opened(c) {
            seen.opened.push({ outbound: c.outbound, addrIndex: c.addrIndex, context: c.context });
            return { out: 'bye', action: Action.Close };
          },
        },
        { backend },
      );
      const c = await loop!.dial(`tcp://127.0.0.1:${peer.port}`);
      assert.equal(seen.opened.length, 1);
      await waitFor(() => seen.closed.length === 1, 'closed');
      assert.equal(c.open, false);
      assert.deepEqual(seen.closed, [null]);
      assert.equal(c.bytesWritten, 3);
    });

    test('a dialled connection has the idle timeout: closed with IdleTimeoutError', async () => {
      const peer = await netServer((s) => s.resume());
      const seen: Seen = { input: [], opened: [], closed: [] };
      let loop: LoopInit | null = null;
      const server = await listenHere(
        {
          ...collector(seen),
          init(l) {
            loop = l;
          },
        },
        { backend, waitTimeout: 100 },
      );
      await loop!.dial(`tcp://127.0.0.1:${peer.port}`);
      await waitFor(() => seen.closed.length === 1, 'the idle close', 5000);
      assert.ok(seen.closed[0] instanceof IdleTimeoutError);
      assert.equal(server.connections, 0);
    });

    test('Server.dial() resolves with nothing after opened; c.close() and the peer closing both fire closed once', async () => {
      const peer = await netServer((s) => s.resume());
      const seen: Seen = { input: [], opened: [], closed: [] };
      const conns: Conn[] = [];
      const server: Server = await listenHere(
        {
          ...collector(seen),
          opened(c) {
            conns.push(c);
            seen.opened.push({ outbound: c.outbound, addrIndex: c.addrIndex, context: c.context });
          },
        },
        { backend },
      );
      const r = await server.dial(`tcp://127.0.0.1:${peer.port}`, { context: 'first' });
      assert.equal(r, undefined);
      await server.dial(`tcp4://127.0.0.1:${peer.port}`, { context: 'second' });
      assert.deepEqual(
        seen.opened.map((o) => o.context),
        ['first', 'second'],
      );
      assert.ok(seen.opened.every((o) => o.outbound && o.addrIndex === -1));
      await waitFor(() => peer.socks.length === 2, 'the peer to accept both');
      const peerEnded = new Promise<void>((resolve) => peer.socks[0]!.once('end', resolve));
      conns[0]!.close();
      await within(peerEnded, 5000, 'the peer to see FIN');
      peer.socks[1]!.destroy();
      await waitFor(() => seen.closed.length === 2, 'both closed');
      assert.equal(server.stats().dialed, 2);
      assert.equal(server.stats().closed, 2);
      await server.shutdown();
      await peer.close();
    });
  });
}
