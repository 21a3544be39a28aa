/**
 * PROXY protocol listeners (`?proxy=true`), on every backend, with raw node:net clients:
 * - v1 and v2 headers: `opened` sees remoteAddr/localAddr from the header and c.proxy set, and
 *   `data` gets exactly the payload, also when the header is split across writes and when the
 *   payload comes in the header's segment; an IPv4-mapped IPv6 source reads as plain IPv4;
 * - a v2 LOCAL header (a health check): the socket's real addresses, c.proxy.command 'local';
 * - garbage: no `opened`, the client sees the connection closed, onError gets one
 *   ProxyProtocolError('signature') naming the listener, stats().proxyRefused counts it;
 * - a silent client with proxyHeaderTimeout 200: closed, 'timeout'; a client that leaves mid-header: 'closed';
 * - a listener without the option keeps c.proxy null; `?proxy=true` on udp is a BadAddressError.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { parseAddress } from '../src/addr.js';
import { BadAddressError, ProxyProtocolError, type Conn, type ProxyInfo } from '../src/index.js';
import { encodeProxyHeaderV1, encodeProxyHeaderV2 } from '../src/proxy-header.js';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  backendsUnderTest,
  closed,
  connectTo,
  readEnd,
  sleep,
  socketDir,
  startServer,
  waitFor,
  within,
} from './helpers.js';

interface Opened {
  remote: string;
  local: string;
  proxy: ProxyInfo | null;
  data: Buffer[];
}

/** A server on `addr` that records every connection's addresses, proxy info and input. */
async function recorder(backend: string, addr: string, extra: Record<string, unknown> = {}) {
  const opened: Opened[] = [];
  const errors: Error[] = [];
  const byConn = new Map<Conn, Opened>();
  const running = await startServer(
    {
      opened(c) {
        const o: Opened = { remote: String(c.remoteAddr), local: String(c.localAddr), proxy: c.proxy, data: [] };
        opened.push(o);
        byConn.set(c, o);
      },
      data(c, input) {
        const bytes = Buffer.from(input.bytes());
        input.retrieveAll();
        byConn.get(c)?.data.push(bytes);
        c.write(Buffer.from(`ok:${bytes.length}\n`));
      },
    },
    { backend: backend as 'native' | 'portable', onError: (e) => errors.push(e), ...extra },
    addr,
  );
  return { running, opened, errors, bound: running.server.addrs[0]! };
}

async function send(s: Socket, ...parts: (string | Uint8Array)[]): Promise<void> {
  for (const p of parts) {
    s.write(p);
    await sleep(30);
  }
}

for (const backend of await backendsUnderTest()) {
  describe(`PROXY protocol listeners (${backend})`, () => {
    test('v1: addresses from the header, c.proxy set, data exactly the payload (header split across writes)', async () => {
      const r = await recorder(backend, 'tcp://127.0.0.1:0?proxy=true');
      try {
        const s = await connectTo(r.bound);
        const line = encodeProxyHeaderV1({ host: '192.0.2.7', port: 40001 }, { host: '198.51.100.9', port: 443 });
        const reply = new Promise<string>((resolve) => s.once('data', (b: Buffer) => resolve(b.toString())));
        await send(s, line.slice(0, 9), line.slice(9, 30), line.slice(30) + 'hello');
        assert.equal(await within(reply, 5000, 'a reply'), 'ok:5\n');
        assert.equal(r.opened.length, 1);
        const o = r.opened[0]!;
        assert.equal(o.remote, 'tcp://192.0.2.7:40001');
        assert.equal(o.local, 'tcp://198.51.100.9:443');
        assert.deepEqual(o.proxy, { version: 1, command: 'proxy', tlvs: [] });
        assert.equal(Buffer.concat(o.data).toString(), 'hello');
        s.destroy();
        assert.equal(r.errors.length, 0, String(r.errors[0]));
      } finally {
        await r.running.stop();
      }
    });

    test('v2 (IPv6 and IPv4-mapped sources, TLVs): header in its own write, then the payload', async () => {
      const r = await recorder(backend, 'tcp://127.0.0.1:0?proxy=true');
      try {
        const cases = [
          {
            src: { host: '2001:db8::1', port: 5000 },
            dst: { host: '2001:db8::2', port: 80 },
            remote: 'tcp://[2001:db8::1]:5000',
            local: 'tcp://[2001:db8::2]:80',
          },
          {
            src: { host: '::ffff:203.0.113.5', port: 6000 },
            dst: { host: '::ffff:203.0.113.6', port: 8080 },
            remote: 'tcp://203.0.113.5:6000',
            local: 'tcp://203.0.113.6:8080',
          },
        ];
        for (const [i, k] of cases.entries()) {
          const s = await connectTo(r.bound);
          const tlv = { type: 0xe0, value: new Uint8Array([1, 2, 3]) };
          const header = encodeProxyHeaderV2({ command: 'proxy', source: k.src, destination: k.dst, tlvs: [tlv] });
          const reply = new Promise<string>((resolve) => s.once('data', (b: Buffer) => resolve(b.toString())));
          // Split inside the fixed part and inside the addresses.
          await send(s, header.subarray(0, 7), header.subarray(7, 20), header.subarray(20));
          await send(s, 'payload!');
          assert.equal(await within(reply, 5000, 'a reply'), 'ok:8\n');
          const o = r.opened[i]!;
          assert.equal(o.remote, k.remote);
          assert.equal(o.local, k.local);
          assert.equal(o.proxy?.version, 2);
          assert.equal(o.proxy?.command, 'proxy');
          assert.deepEqual(
            o.proxy?.tlvs.map((t) => ({ type: t.type, value: [...t.value] })),
            [{ type: 0xe0, value: [1, 2, 3] }],
          );
          assert.equal(Buffer.concat(o.data).toString(), 'payload!');
          s.destroy();
        }
        assert.equal(r.errors.length, 0, String(r.errors[0]));
      } finally {
        await r.running.stop();
      }
    });

    test('v2 LOCAL (a health check): the real addresses, command local', async () => {
      const r = await recorder(backend, 'tcp://127.0.0.1:0?proxy=true');
      try {
        const s = await connectTo(r.bound);
        const reply = new Promise<string>((resolve) => s.once('data', (b: Buffer) => resolve(b.toString())));
        s.write(Buffer.concat([encodeProxyHeaderV2({ command: 'local' }), Buffer.from('ping')]));
        assert.equal(await within(reply, 5000, 'a reply'), 'ok:4\n');
        const o = r.opened[0]!;
        assert.equal(o.remote, `tcp://127.0.0.1:${s.localPort}`);
        assert.equal(o.local, `tcp://127.0.0.1:${r.bound.port}`);
        assert.deepEqual(o.proxy, { version: 2, command: 'local', tlvs: [] });
        s.destroy();
      } finally {
        await r.running.stop();
      }
    });

    test('garbage: no opened, the client sees the close, one ProxyProtocolError(signature)', async () => {
      const r = await recorder(backend, 'tcp://127.0.0.1:0?proxy=true');
      try {
        const s = await connectTo(r.bound);
        const clientPort = s.localPort;
        const end = readEnd(s);
        s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        const how = await within(end, 5000, 'the server closing the connection');
        assert.ok(['eof', 'ECONNRESET', 'EPIPE'].includes(how.how), how.how);
        assert.equal(how.data.length, 0);
        await closed(s);
        await waitFor(() => r.errors.length === 1, 'a ProxyProtocolError');
        const e = r.errors[0] as ProxyProtocolError;
        assert.ok(e instanceof ProxyProtocolError, String(e));
        assert.equal(e.code, 'ERR_GEVENT_PROXY_PROTOCOL');
        assert.equal(e.reason, 'signature');
        assert.equal(e.count, 1);
        assert.equal(String(e.listener), String(r.bound));
        assert.equal(e.peer.host.replace(/^::ffff:/, ''), '127.0.0.1');
        assert.equal(e.peer.port, clientPort);
        assert.equal(r.opened.length, 0);
        const stats = r.running.server.stats();
        assert.equal(stats.proxyRefused, 1);
        assert.equal(stats.accepted, 0);
        assert.equal(stats.connections, 0);
      } finally {
        await r.running.stop();
      }
    });

    test('a silent client with proxyHeaderTimeout 200: closed, reason timeout', async () => {
      const r = await recorder(backend, 'tcp://127.0.0.1:0?proxy=true', { proxyHeaderTimeout: 200 });
      try {
        const s = await connectTo(r.bound);
        const t0 = Date.now();
        const end = readEnd(s);
        s.write('PROXY TCP4 1.2.3.4'); // a valid prefix, never finished
        await within(end, 5000, 'the server closing a silent connection');
        const took = Date.now() - t0;
        assert.ok(took >= 150 && took < 3000, `closed after ${took} ms`);
        await waitFor(() => r.errors.length === 1, 'a ProxyProtocolError');
        assert.equal((r.errors[0] as ProxyProtocolError).reason, 'timeout');
        assert.equal(r.opened.length, 0);
      } finally {
        await r.running.stop();
      }
    });

    test('a client that leaves mid-header: reason closed', async () => {
      const r = await recorder(backend, 'tcp://127.0.0.1:0?proxy=true');
      try {
        const s = await connectTo(r.bound);
        s.end('PROXY TCP4 ');
        await waitFor(() => r.errors.length === 1, 'a ProxyProtocolError');
        assert.equal((r.errors[0] as ProxyProtocolError).reason, 'closed');
        assert.equal(r.opened.length, 0);
        s.destroy();
      } finally {
        await r.running.stop();
      }
    });

    test('refusals inside a second are reported once, then with their count', async () => {
      const r = await recorder(backend, 'tcp://127.0.0.1:0?proxy=true');
      try {
        for (let i = 0; i < 4; i++) {
          const s = await connectTo(r.bound);
          const end = readEnd(s);
          s.write('nope');
          await within(end, 5000, 'a refused connection closing');
        }
        await waitFor(() => r.errors.length === 2, 'the held refusals reported', 4000);
        assert.deepEqual(
          r.errors.map((e) => (e as ProxyProtocolError).count),
          [1, 3],
        );
        assert.equal(r.running.server.stats().proxyRefused, 4);
      } finally {
        await r.running.stop();
      }
    });

    test('a unix listener: a v1 header gives the inet addresses; LOCAL keeps the unix ones', async () => {
      const dir = socketDir('proxy');
      const path = join(dir, 's.sock');
      const r = await recorder(backend, `unix://${path}?proxy=true`);
      try {
        const a = await connectTo(r.bound);
        const replyA = new Promise<string>((resolve) => a.once('data', (b: Buffer) => resolve(b.toString())));
        a.write('PROXY TCP4 192.0.2.1 192.0.2.2 1111 2222\r\nx');
        assert.equal(await within(replyA, 5000, 'a reply'), 'ok:1\n');
        assert.equal(r.opened[0]!.remote, 'tcp://192.0.2.1:1111');
        assert.equal(r.opened[0]!.local, 'tcp://192.0.2.2:2222');
        const b = await connectTo(r.bound);
        const replyB = new Promise<string>((resolve) => b.once('data', (d: Buffer) => resolve(d.toString())));
        b.write('PROXY UNKNOWN\r\nyz');
        assert.equal(await within(replyB, 5000, 'a reply'), 'ok:2\n');
        assert.equal(r.opened[1]!.local, `unix://${path}`);
        assert.deepEqual(r.opened[1]!.proxy, { version: 1, command: 'local', tlvs: [] });
        a.destroy();
        b.destroy();
      } finally {
        await r.running.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('a v2 AF_UNIX header: both paths reported, TLVs after them kept', async () => {
      const r = await recorder(backend, 'tcp://127.0.0.1:0?proxy=true');
      try {
        const s = await connectTo(r.bound);
        const reply = new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
        const tlv = { type: 0xe0, value: new Uint8Array([1, 2, 3]) };
        const source = { path: '/run/clients/é-42.sock' };
        const destination = { path: `/run/${'d'.repeat(100)}` }; // 105 bytes: near the 108-byte field
        s.write(
          Buffer.concat([
            encodeProxyHeaderV2({ command: 'proxy', source, destination, tlvs: [tlv] }),
            Buffer.from('hi'),
          ]),
        );
        assert.equal(await within(reply, 5000, 'a reply'), 'ok:2\n');
        const o = r.opened[0]!;
        assert.equal(o.remote, `unix://${source.path}`);
        assert.equal(o.local, `unix://${destination.path}`);
        assert.equal(o.proxy?.tlvs.length, 1);
        assert.equal(o.proxy?.tlvs[0]!.type, 0xe0);
        assert.deepEqual([...o.proxy!.tlvs[0]!.value], [1, 2, 3]);
        s.destroy();
      } finally {
        await r.running.stop();
      }
    });

    test('a listener without ?proxy keeps c.proxy null and reads a PROXY line as data', async () => {
      const r = await recorder(backend, 'tcp://127.0.0.1:0');
      try {
        const s = await connectTo(r.bound);
        const reply = new Promise<string>((resolve) => s.once('data', (b: Buffer) => resolve(b.toString())));
        s.write('PROXY UNKNOWN\r\n');
        assert.equal(await within(reply, 5000, 'a reply'), 'ok:15\n');
        assert.equal(r.opened[0]!.proxy, null);
        assert.equal(r.opened[0]!.remote, `tcp://127.0.0.1:${s.localPort}`);
        s.destroy();
      } finally {
        await r.running.stop();
      }
    });
  });
}

describe('the proxy address option', () => {
  test('true/1/yes on tcp, tcp4, tcp6 and unix; off by default and with false/0', () => {
    for (const a of ['tcp://:1?proxy=true', 'tcp4://:1?proxy=1', 'tcp6://[::1]:1?proxy=yes', 'unix:///tmp/x?proxy=t'])
      assert.equal(parseAddress(a).proxyProtocol, true, a);
    for (const a of ['tcp://:1', 'tcp://:1?proxy=false', 'tcp://:1?proxy=0', 'unix:///tmp/x', 'udp://:1'])
      assert.equal(parseAddress(a).proxyProtocol, false, a);
    const both = parseAddress('tcp://:1?reuseport=1&proxy=1');
    assert.equal(both.reusePort && both.proxyProtocol, true);
  });

  test('udp with proxy is refused, naming it; a bad value and an unknown option list the options', () => {
    assert.throws(
      () => parseAddress('udp://:53?proxy=true'),
      (e: unknown) =>
        e instanceof BadAddressError && /udp:\/\/:53\?proxy=true/.test(e.message) && /not supported/.test(e.message),
    );
    assert.throws(() => parseAddress('tcp://:1?proxy=maybe'), /proxy="maybe" is neither/);
    assert.throws(
      () => parseAddress('tcp://:1?proxi=1'),
      /unknown option "proxi" \(the options are reuseport, proxy\)/,
    );
  });
});
