/**
 * Outbound UDP connections (`udp://`, `udp4://`, `udp6://`), on every backend, against a node:dgram
 * echo peer on port 0:
 * - loop.dial() resolves with an outbound Conn over a connected datagram socket ('udp' addresses,
 *   addrIndex -1, the dial's context); several writes in one batch leave as as many datagrams (the
 *   peer sees each alone) and each echo arrives as its own `data` call holding exactly that
 *   datagram, even when the handler consumes nothing (the unconsumed rest is dropped, not joined
 *   to the next datagram); a reply returned from `data` is one datagram too.
 * - a 60 KiB datagram goes and comes back whole; a write larger than a UDP payload can be throws
 *   InvalidArgumentError and sends nothing, the connection staying open; returned from `data`, it
 *   closes the connection with that error.
 * - nothing is queued: past highWaterMark write() says false, and `drained` follows the flush.
 * - a datagram to a port nobody listens on comes back as ICMP port unreachable: `closed` gets an
 *   error with code ECONNREFUSED naming the peer.
 * - close() and end() close once (`closed` with null) and release the fd; pause()/resume() hold
 *   the datagrams and deliver them one by one after; the idle timeout closes an idle one.
 * - localPort binds the source; udp4 and udp6 literal targets.
 * - Server.dial() with two loops (native): each loop's dialled UDP connection exchanges datagrams.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket as DgramSocket } from 'node:dgram';
import { afterEach, describe, test } from 'node:test';
import {
  IdleTimeoutError,
  InvalidArgumentError,
  listen,
  type Conn,
  type Events,
  type LoopInit,
  type Server,
} from '../src/index.js';
import { assertNoFdLeak, backendsUnderTest, openFdCount, waitFor, within } from './helpers.js';

/** What the running test must stop even when it fails, run after each test. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => {});
});

/** listen() with no listener, shut down after the test. */
async function client(events: Events, backend: string): Promise<Server> {
  const server = await listen(events, { backend: backend as 'native' });
  cleanups.push(() => server.shutdown());
  return server;
}

interface Peer {
  readonly port: number;
  /** Every datagram the peer received, in order. */
  readonly got: Buffer[];
  readonly senders: RemoteInfo[];
  readonly sock: DgramSocket;
  /** Sends a datagram to the last sender. */
  sendBack(data: Buffer): void;
  close(): Promise<void>;
}

/** A node:dgram socket on `host`:0; with `echo` it sends every datagram back to its sender. */
async function dgramPeer(host: '127.0.0.1' | '::1', echo = true): Promise<Peer> {
  const sock = createSocket(host === '::1' ? 'udp6' : 'udp4');
  const got: Buffer[] = [];
  const senders: RemoteInfo[] = [];
  sock.on('message', (msg, rinfo) => {
    got.push(msg);
    senders.push(rinfo);
    if (echo) sock.send(msg, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, host, () => resolve());
  });
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => (closing ??= new Promise<void>((resolve) => sock.close(() => resolve())));
  cleanups.push(close);
  return {
    port: sock.address().port,
    got,
    senders,
    sock,
    sendBack(data) {
      const to = senders[senders.length - 1]!;
      sock.send(data, to.port, to.address);
    },
    close,
  };
}

/** A UDP port on 127.0.0.1 nobody listens on (bound to port 0, then released). */
async function closedUdpPort(): Promise<number> {
  const p = await dgramPeer('127.0.0.1', false);
  const port = p.port;
  await p.close();
  return port;
}

/** Whether this host can bind ::1. */
async function haveIPv6(): Promise<boolean> {
  const sock = createSocket('udp6');
  return new Promise<boolean>((resolve) => {
    sock.once('error', () => resolve(false));
    sock.bind(0, '::1', () => sock.close(() => resolve(true)));
  });
}

/** What a dialled connection saw: each `data` call's input, whole, and `closed`. */
interface Seen {
  calls: Buffer[];
  closed: (Error | null)[];
  opened: number;
}

/**
 * Events that record each `data` call's whole input and consume none of it (so a datagram left
 * over would show in the next call), and dial `target` from init into `conn`.
 */
function recorder(seen: Seen, target: string, box: { conn?: Conn; loop?: LoopInit }, opts?: object): Events {
  return {
    async init(loop) {
      box.loop = loop;
      box.conn = await loop.dial(target, { context: { tag: 'udp' }, ...opts });
    },
    opened() {
      seen.opened++;
    },
    data(_c, input) {
      seen.calls.push(Buffer.from(input.bytes()));
    },
    closed(_c, err) {
      seen.closed.push(err);
    },
  };
}

const text = (bufs: Buffer[]): string[] => bufs.map((b) => b.toString());
const v6 = await haveIPv6();

for (const backend of await backendsUnderTest()) {
  describe(`dial over UDP (${backend})`, () => {
    test('datagrams keep their boundaries both ways, even when data consumes nothing', async () => {
      const fds = openFdCount();
      const peer = await dgramPeer('127.0.0.1');
      const seen: Seen = { calls: [], closed: [], opened: 0 };
      const box: { conn?: Conn; loop?: LoopInit } = {};
      const server = await client(recorder(seen, `udp://127.0.0.1:${peer.port}`, box), backend);
      const c = box.conn!;
      assert.equal(seen.opened, 1, 'opened ran before the dial resolved');
      assert.equal(c.outbound, true);
      assert.equal(c.addrIndex, -1);
      assert.equal(c.loop, box.loop);
      assert.deepEqual(c.context, { tag: 'udp' });
      assert.equal(c.remoteAddr.network, 'udp');
      assert.equal(c.remoteAddr.host, '127.0.0.1');
      assert.equal(c.remoteAddr.port, peer.port);
      assert.equal(c.localAddr.network, 'udp');
      assert.equal(c.localAddr.host, '127.0.0.1');
      assert.ok(c.localAddr.port > 0);
      assert.equal(String(c.remoteAddr), `udp://127.0.0.1:${peer.port}`);

      // Three writes in one batch: three datagrams, never one joined one.
      assert.equal(c.write('one'), true);
      assert.equal(c.send('two!'), true);
      assert.equal(c.write(Buffer.from('three')), true);
      await waitFor(() => seen.calls.length === 3, 'three echoes');
      assert.deepEqual(text(peer.got), ['one', 'two!', 'three'], 'the peer got three datagrams');
      assert.equal(peer.senders[0]!.port, c.localAddr.port, 'the peer sees the local port');
      assert.deepEqual(text(seen.calls), ['one', 'two!', 'three'], 'each data call holds one datagram alone');

      // Datagrams from the peer, sent apart: still one call each, nothing carried over.
      peer.sendBack(Buffer.from('x'));
      peer.sendBack(Buffer.from('yy'));
      await waitFor(() => seen.calls.length === 5, 'two more datagrams');
      assert.deepEqual(text(seen.calls.slice(3)), ['x', 'yy']);
      assert.equal(c.bytesWritten, 12);
      assert.equal(c.bytesRead, 15);
      assert.equal(server.stats().dialed, 1);
      assert.deepEqual(seen.closed, []);

      c.close();
      await waitFor(() => seen.closed.length === 1, 'closed');
      assert.deepEqual(seen.closed, [null]);
      assert.equal(c.open, false);
      await within(server.shutdown(), 10_000, 'shutdown');
      assert.equal(seen.closed.length, 1, 'closed fired once');
      await peer.close();
      await waitFor(() => openFdCount() <= fds, 'no fd left open');
      assertNoFdLeak(fds);
    });

    test('a reply returned from data is one datagram; a 60 KiB datagram goes and comes back whole', async () => {
      const peer = await dgramPeer('127.0.0.1');
      const calls: Buffer[] = [];
      let conn: Conn | undefined;
      await client(
        {
          async init(loop) {
            conn = await loop.dial(`udp://127.0.0.1:${peer.port}`);
          },
          data(_c, input) {
            const b = Buffer.from(input.bytes());
            calls.push(b);
            input.retrieveAll();
            // The peer echoes: answer 'ping' once with two replies, a write and a returned one.
            if (b.toString() === 'ping') {
              _c.write('pong-1');
              return Buffer.from('pong-2');
            }
            return undefined;
          },
        },
        backend,
      );
      conn!.send('ping');
      await waitFor(() => peer.got.length === 3 && calls.length === 3, 'ping and both pongs, echoed');
      assert.deepEqual(text(peer.got), ['ping', 'pong-1', 'pong-2']);
      assert.deepEqual(text(calls), ['ping', 'pong-1', 'pong-2']);

      const big = randomBytes(60 * 1024);
      conn!.send(big);
      await waitFor(() => calls.length === 4, 'the 60 KiB datagram echoed', 10_000);
      assert.equal(peer.got[3]!.length, big.length, 'the peer got it as one datagram');
      assert.ok(calls[3]!.equals(big), 'it came back whole, in one data call');
    });

    test('a write larger than a UDP payload throws InvalidArgumentError; the connection stays open', async () => {
      const peer = await dgramPeer('127.0.0.1');
      const seen: Seen = { calls: [], closed: [], opened: 0 };
      const box: { conn?: Conn } = {};
      await client(recorder(seen, `udp://127.0.0.1:${peer.port}`, box), backend);
      const c = box.conn!;
      assert.throws(
        () => c.send(Buffer.alloc(65_508)),
        (err: unknown) =>
          err instanceof InvalidArgumentError && /a datagram must be at most 65507 bytes/.test(err.message),
      );
      assert.throws(() => c.write(Buffer.alloc(100_000)), InvalidArgumentError);
      c.send(Buffer.alloc(65_507, 1)); // the largest IPv4 payload goes
      c.send('after');
      await waitFor(() => seen.calls.length === 2, 'the largest datagram and the next one echoed', 10_000);
      assert.equal(seen.calls[0]!.length, 65_507);
      assert.equal(seen.calls[1]!.toString(), 'after');
      assert.equal(peer.got.length, 2, 'nothing of the refused writes was sent');
      assert.deepEqual(seen.closed, []);
      assert.equal(c.open, true);
    });

    test('a too-large reply returned from data closes the connection with the InvalidArgumentError', async () => {
      const peer = await dgramPeer('127.0.0.1');
      const closedWith: (Error | null)[] = [];
      let conn: Conn | undefined;
      await client(
        {
          async init(loop) {
            conn = await loop.dial(`udp://127.0.0.1:${peer.port}`);
          },
          data() {
            return Buffer.alloc(70_000);
          },
          closed(_c, err) {
            closedWith.push(err);
          },
        },
        backend,
      );
      conn!.send('provoke');
      await waitFor(() => closedWith.length === 1, 'closed');
      assert.ok(closedWith[0] instanceof InvalidArgumentError);
      assert.match(closedWith[0].message, /a datagram must be at most 65507 bytes/);
      assert.equal(peer.got.length, 1, 'only the first datagram was sent');
    });

    test('past highWaterMark write() says false, and drained follows the flush (nothing is queued)', async () => {
      const peer = await dgramPeer('127.0.0.1', false);
      let conn: Conn | undefined;
      let drained = 0;
      const server = await listen(
        {
          async init(loop) {
            conn = await loop.dial(`udp://127.0.0.1:${peer.port}`);
          },
          drained() {
            drained++;
          },
        },
        { backend: backend as 'native', highWaterMark: 1024, lowWaterMark: 0 },
      );
      cleanups.push(() => server.shutdown());
      const c = conn!;
      assert.equal(c.write(Buffer.alloc(1000)), true);
      assert.equal(c.write(Buffer.alloc(1000)), false, 'two writes of one batch pass the mark');
      await waitFor(() => drained === 1, 'drained');
      assert.equal(c.queuedBytes, 0);
      await waitFor(() => peer.got.length === 2, 'both datagrams');
      assert.deepEqual(
        peer.got.map((b) => b.length),
        [1000, 1000],
      );
    });

    test('a datagram to a closed port closes the connection with ECONNREFUSED naming the peer', async () => {
      const fds = openFdCount();
      const port = await closedUdpPort();
      const seen: Seen = { calls: [], closed: [], opened: 0 };
      const box: { conn?: Conn } = {};
      const server = await client(recorder(seen, `udp://127.0.0.1:${port}`, box), backend);
      const c = box.conn!;
      assert.equal(c.open, true, 'the dial resolves: UDP connect does not handshake');
      c.send('anyone there?');
      await waitFor(() => seen.closed.length > 0, 'closed after the ICMP port unreachable');
      assert.equal(seen.closed.length, 1);
      const err = seen.closed[0] as (Error & { code?: string; port?: number; address?: string }) | null;
      assert.ok(err instanceof Error, 'closed got an error');
      assert.equal(err.code, 'ECONNREFUSED');
      assert.equal(err.address, '127.0.0.1');
      assert.equal(err.port, port);
      assert.match(err.message, new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
      assert.equal(c.open, false);
      await within(server.shutdown(), 10_000, 'shutdown');
      assert.equal(seen.closed.length, 1, 'closed fired once');
      await waitFor(() => openFdCount() <= fds, 'no fd left open');
    });

    for (const how of ['end', 'destroy'] as const) {
      test(`${how}() closes once with null and releases the fd`, async () => {
        const peer = await dgramPeer('127.0.0.1');
        const seen: Seen = { calls: [], closed: [], opened: 0 };
        const box: { conn?: Conn } = {};
        const server = await client(recorder(seen, `udp://127.0.0.1:${peer.port}`, box), backend);
        const c = box.conn!;
        await waitFor(() => openFdCount() > 0, 'fd count');
        const withConn = openFdCount();
        c.send('last');
        if (how === 'end') c.end();
        else c.destroy();
        assert.equal(c.send('too late'), false);
        await waitFor(() => seen.closed.length === 1, 'closed');
        assert.deepEqual(seen.closed, [null]);
        if (how === 'end') {
          await waitFor(() => peer.got.length === 1, 'the write before end() went out');
          assert.deepEqual(text(peer.got), ['last']);
        }
        await waitFor(() => openFdCount() < withConn, 'the socket released');
        assert.equal(server.stats().connections, 0);
        await within(server.shutdown(), 10_000, 'shutdown');
        assert.equal(seen.closed.length, 1, 'closed fired once');
      });
    }

    test('pause() holds datagrams; resume() delivers them, one data call each', async () => {
      const peer = await dgramPeer('127.0.0.1', false);
      const seen: Seen = { calls: [], closed: [], opened: 0 };
      const box: { conn?: Conn } = {};
      await client(recorder(seen, `udp://127.0.0.1:${peer.port}`, box), backend);
      const c = box.conn!;
      c.send('hello');
      await waitFor(() => peer.got.length === 1, 'the peer learns our address');
      c.pause();
      // A round trip through the loop so the pause has reached the backend before the peer sends.
      c.send('paused now');
      await waitFor(() => peer.got.length === 2, 'the write after pause()');
      for (const m of ['p1', 'p2', 'p3']) peer.sendBack(Buffer.from(m));
      c.resume();
      await waitFor(() => seen.calls.length === 3, 'the held datagrams after resume()');
      assert.deepEqual(text(seen.calls), ['p1', 'p2', 'p3']);
      assert.deepEqual(seen.closed, []);
    });

    test('the idle timeout closes an idle dialled UDP connection', async () => {
      const peer = await dgramPeer('127.0.0.1');
      const seen: Seen = { calls: [], closed: [], opened: 0 };
      const box: { conn?: Conn } = {};
      await client(recorder(seen, `udp://127.0.0.1:${peer.port}`, box), backend);
      box.conn!.setIdleTimeout(50);
      await waitFor(() => seen.closed.length === 1, 'the idle timeout');
      assert.ok(seen.closed[0] instanceof IdleTimeoutError);
    });

    test('localPort binds the source port; udp4 literal target', async () => {
      const peer = await dgramPeer('127.0.0.1');
      const local = await closedUdpPort();
      const seen: Seen = { calls: [], closed: [], opened: 0 };
      const box: { conn?: Conn } = {};
      await client(
        recorder(seen, `udp4://127.0.0.1:${peer.port}`, box, { localAddress: '127.0.0.1', localPort: local }),
        backend,
      );
      assert.equal(box.conn!.localAddr.port, local);
      box.conn!.send('from a fixed port');
      await waitFor(() => seen.calls.length === 1, 'the echo');
      assert.equal(peer.senders[0]!.port, local, 'the peer sees the bound port');
    });

    test('udp6 literal target', { skip: v6 ? false : 'no IPv6 loopback here' }, async () => {
      const peer = await dgramPeer('::1');
      const seen: Seen = { calls: [], closed: [], opened: 0 };
      const box: { conn?: Conn } = {};
      await client(recorder(seen, `udp6://[::1]:${peer.port}`, box), backend);
      const c = box.conn!;
      assert.equal(c.remoteAddr.host, '::1');
      assert.equal(c.remoteAddr.port, peer.port);
      assert.equal(c.localAddr.network, 'udp');
      c.send('over v6');
      c.send('twice');
      await waitFor(() => seen.calls.length === 2, 'two echoes over IPv6');
      assert.deepEqual(text(seen.calls), ['over v6', 'twice']);
      // IPv6 takes up to 65,527 bytes; one more is refused.
      assert.throws(() => c.send(Buffer.alloc(65_528)), /at most 65527 bytes/);
    });
  });
}

const native = (await backendsUnderTest()).includes('native');
describe('Server.dial() of UDP with two loops (native)', { skip: native ? false : 'needs the native backend' }, () => {
  test('each loop dials a UDP peer and exchanges whole datagrams', async () => {
    const peer = await dgramPeer('127.0.0.1');
    const cells = new Int32Array(new SharedArrayBuffer(4 * 4));
    const url = new URL('./fixtures/dial-udp-events.js', import.meta.url);
    const server = await listen(url, { backend: 'native', workerData: { cells: cells.buffer } });
    try {
      assert.equal(server.numLoops, 2);
      for (let n = 0; n < 4; n++) {
        await within(server.dial(`udp://127.0.0.1:${peer.port}`, { context: { n } }), 10_000, `dial ${n}`);
      }
      await waitFor(() => cells.every((v) => v !== 0), 'every connection got its echo');
      // 1 + loop index (dials go to loops 0, 1, 0, 1), + 100 for the whole datagram echoed back
      // alone, + 1000 when outbound.
      assert.deepEqual([...cells], [1101, 1102, 1101, 1102]);
      assert.deepEqual(
        server.stats().loops.map((l) => l.dialed),
        [2, 2],
      );
      assert.equal(server.stats().dialed, 4);
      assert.equal(peer.got.length, 4);
    } finally {
      await within(server.shutdown(), 10_000, 'shutdown');
    }
  });
});
