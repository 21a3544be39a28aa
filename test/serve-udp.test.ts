/**
 * UDP: each datagram fires `data` once with exactly its bytes, and the reply goes back to its
 * sender only. No opened/closed. TCP and UDP on one server, each with its address index.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { describe, test } from 'node:test';
import { type Conn, type Events } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readExactly,
  startServer,
  waitFor,
  assertNoFdLeak,
} from './helpers.js';

interface Seen {
  bytes: Buffer;
  remotePort: number;
  remoteHost: string;
  remoteNetwork: string;
  localPort: number;
  addrIndex: number;
}

/** A UDP client bound to 127.0.0.1 that collects what it receives. */
async function udpClient(): Promise<{ sock: DgramSocket; port: number; got: Buffer[]; close(): Promise<void> }> {
  const sock = createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { sock, port: sock.address().port, got, close: () => new Promise<void>((r) => sock.close(() => r())) };
}

function send(sock: DgramSocket, port: number, msg: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => sock.send(msg, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

/** An echo server that records every datagram it sees. */
function recordingEcho(seen: Seen[], counts: { opened: number; closed: number }): Events {
  return {
    opened: () => void counts.opened++,
    closed: () => void counts.closed++,
    data(c: Conn, input) {
      const bytes = Buffer.from(input.bytes());
      input.retrieveAll();
      seen.push({
        bytes,
        remotePort: c.remoteAddr.port,
        remoteHost: c.remoteAddr.host,
        remoteNetwork: c.remoteAddr.network,
        localPort: c.localAddr.port,
        addrIndex: c.addrIndex,
      });
      return bytes;
    },
  };
}

for (const backend of await backendsUnderTest()) {
  describe(`udp (${backend})`, () => {
    test('two senders: each datagram fires data once with its bytes, each sender gets only its own replies', async () => {
      const fds = openFdCount();
      const seen: Seen[] = [];
      const counts = { opened: 0, closed: 0 };
      const run = await startServer(recordingEcho(seen, counts), { backend }, 'udp://127.0.0.1:0');
      const addr = run.server.addrs[0]!;
      assert.equal(addr.network, 'udp');
      assert.ok(addr.port > 0);
      const a = await udpClient();
      const b = await udpClient();
      const kEach = 20;
      for (let i = 0; i < kEach; i++) {
        // One at a time per sender, so loss (never expected on loopback) cannot hide as reordering.
        await send(a.sock, addr.port, `a-${i}-${'x'.repeat(i * 50)}`);
        await send(b.sock, addr.port, `b-${i}`);
        await waitFor(() => a.got.length === i + 1 && b.got.length === i + 1, `reply ${i}`);
      }
      assert.equal(seen.length, 2 * kEach, 'data fires once per datagram');
      assert.deepEqual(
        a.got.map((m) => m.toString()),
        Array.from({ length: kEach }, (_, i) => `a-${i}-${'x'.repeat(i * 50)}`),
      );
      assert.deepEqual(
        b.got.map((m) => m.toString()),
        Array.from({ length: kEach }, (_, i) => `b-${i}`),
      );
      for (const s of seen) {
        const from = s.bytes.toString().startsWith('a-') ? a.port : b.port;
        assert.equal(s.remotePort, from, 'remoteAddr is the sender');
        assert.equal(s.remoteHost, '127.0.0.1');
        assert.equal(s.remoteNetwork, 'udp');
        assert.equal(s.localPort, addr.port);
        assert.equal(s.addrIndex, 0);
      }
      assert.deepEqual(counts, { opened: 0, closed: 0 }, 'no opened/closed for UDP');
      await a.close();
      await b.close();
      await run.stop();
      assert.deepEqual(counts, { opened: 0, closed: 0 }, 'not even at shutdown');
      assertNoFdLeak(fds);
    });

    test('a 60 KB datagram arrives whole in one data call and comes back whole', async () => {
      const fds = openFdCount();
      const seen: Seen[] = [];
      const run = await startServer(recordingEcho(seen, { opened: 0, closed: 0 }), { backend }, 'udp://127.0.0.1:0');
      const c = await udpClient();
      const big = Buffer.alloc(60_000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
      await send(c.sock, run.server.addrs[0]!.port, big);
      await waitFor(() => c.got.length === 1, 'reply');
      assert.equal(seen.length, 1);
      assert.ok(seen[0]!.bytes.equals(big));
      assert.ok(c.got[0]!.equals(big));
      await c.close();
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('bytes a handler leaves unconsumed do not leak into the next datagram', async () => {
      const fds = openFdCount();
      const inputs: string[] = [];
      const run = await startServer(
        {
          data(_c: Conn, input) {
            inputs.push(Buffer.from(input.bytes()).toString());
          },
        },
        { backend },
        'udp://127.0.0.1:0',
      );
      const c = await udpClient();
      for (const m of ['one', 'two', 'three']) await send(c.sock, run.server.addrs[0]!.port, m);
      await waitFor(() => inputs.length === 3, 'three datagrams');
      assert.deepEqual(inputs, ['one', 'two', 'three']);
      await c.close();
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('an empty datagram fires data once with empty input', async () => {
      const fds = openFdCount();
      const seen: Seen[] = [];
      const run = await startServer(recordingEcho(seen, { opened: 0, closed: 0 }), { backend }, 'udp://127.0.0.1:0');
      const c = await udpClient();
      await send(c.sock, run.server.addrs[0]!.port, Buffer.alloc(0));
      await send(c.sock, run.server.addrs[0]!.port, 'after');
      await waitFor(() => seen.length === 2, 'two datagrams');
      assert.equal(seen[0]!.bytes.length, 0);
      assert.equal(seen[1]!.bytes.toString(), 'after');
      await c.close();
      await run.stop();
      assertNoFdLeak(fds);
    });

    test("c.send from a later turn replies to that datagram's sender", async () => {
      const fds = openFdCount();
      const run = await startServer(
        {
          data(c: Conn, input) {
            const text = Buffer.from(input.bytes()).toString();
            input.retrieveAll();
            setTimeout(() => c.send(`later:${text}`), 5);
          },
        },
        { backend },
        'udp://127.0.0.1:0',
      );
      const a = await udpClient();
      const b = await udpClient();
      const port = run.server.addrs[0]!.port;
      await send(a.sock, port, 'A');
      await send(b.sock, port, 'B');
      await waitFor(() => a.got.length === 1 && b.got.length === 1, 'both replies');
      assert.equal(a.got[0]!.toString(), 'later:A');
      assert.equal(b.got[0]!.toString(), 'later:B');
      await a.close();
      await b.close();
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('tcp and udp on one server: each knows its address index', async () => {
      const fds = openFdCount();
      const seen: Seen[] = [];
      const counts = { opened: 0, closed: 0 };
      const run = await startServer(recordingEcho(seen, counts), { backend }, 'tcp://127.0.0.1:0', 'udp://127.0.0.1:0');
      const [tcpAddr, udpAddr] = run.server.addrs;
      assert.equal(tcpAddr!.network, 'tcp');
      assert.equal(udpAddr!.network, 'udp');
      const s = await connectTo(tcpAddr!);
      s.write('over tcp');
      assert.equal((await readExactly(s, 8)).toString(), 'over tcp');
      const u = await udpClient();
      await send(u.sock, udpAddr!.port, 'over udp');
      await waitFor(() => u.got.length === 1, 'udp reply');
      assert.equal(u.got[0]!.toString(), 'over udp');
      assert.deepEqual(
        seen.map((x) => [x.bytes.toString(), x.addrIndex, x.remoteNetwork]),
        [
          ['over tcp', 0, 'tcp'],
          ['over udp', 1, 'udp'],
        ],
      );
      s.end();
      await socketClosed(s);
      await u.close();
      await run.stop();
      assert.deepEqual(counts, { opened: 1, closed: 1 }, 'opened/closed only for the tcp connection');
      assertNoFdLeak(fds);
    });
  });
}
