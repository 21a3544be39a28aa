/**
 * NativeBackend with PROXY protocol listeners (ListenSpec.proxyProtocol) against the Backend
 * contract, driven directly with a recording handler: a v2 header with TLVs opens with the header's
 * source as remote, its destination as local and `proxy` set, and only the payload reaches onData;
 * a v1 header likewise; a LOCAL header keeps the socket's own addresses; garbage is
 * onProxyRefused('signature') with the balancer's address and no onOpen; a silent client is refused
 * with 'timeout' after proxyHeaderTimeoutMs; a hand-off listener's connection is adopted with its
 * header still unread and opened by the adopting backend; a unix listener reports the header's TCP
 * addresses; stop() closes a pending one silently.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Addr, ListenSpec } from '../src/addr.js';
import type { AddrPair, BackendHandler, ProxyRefusal } from '../src/backend/backend.js';
import { NativeBackend, nativeAvailable, type NativeBackendHandler } from '../src/backend/native.js';
import { encodeProxyHeaderV2 } from '../src/proxy-header.js';

const skip = nativeAvailable() ? false : 'native addon not built';

interface Refused {
  readonly listener: number;
  readonly reason: ProxyRefusal;
  readonly peer: Addr;
}

/** Records every callback; flushes at the end of each batch, as the loop does. */
class Recorder implements BackendHandler {
  readonly opened = new Map<number, AddrPair>();
  readonly closed = new Map<number, Error | null>();
  readonly input = new Map<number, Buffer[]>();
  readonly refused: Refused[] = [];
  constructor(readonly b: NativeBackend) {}
  onOpen(id: number, _origin: number, addrs: AddrPair): void {
    assert.ok(!this.opened.has(id), `one onOpen for ${id}`);
    this.opened.set(id, addrs);
  }
  onData(id: number, bytes: Uint8Array): void {
    assert.ok(this.opened.has(id), 'onData only after onOpen');
    const list = this.input.get(id) ?? [];
    list.push(Buffer.from(bytes));
    this.input.set(id, list);
  }
  onEnd(id: number): void {
    this.b.close(id, true);
  }
  onClose(id: number, err: Error | null): void {
    assert.ok(this.opened.has(id), 'onClose only for an id that opened');
    this.closed.set(id, err);
  }
  onDatagram(): void {
    assert.fail('no datagrams');
  }
  onBatchEnd(): void {
    this.b.flush();
  }
  onQueued(): void {}
  onAcceptError(_listener: number, errno: string): void {
    assert.fail(`unexpected accept error ${errno}`);
  }
  onProxyRefused(listener: number, reason: ProxyRefusal, peer: Addr): void {
    this.refused.push({ listener, reason, peer });
  }
  text(id: number): string {
    return Buffer.concat(this.input.get(id) ?? []).toString();
  }
  only(): [number, AddrPair] {
    assert.equal(this.opened.size, 1);
    return [...this.opened][0]!;
  }
}

async function until(cond: () => boolean, what: string, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function spec(index: number): ListenSpec {
  return {
    text: 'tcp4://127.0.0.1:0?proxy=true',
    index,
    network: 'tcp',
    family: 4,
    host: '127.0.0.1',
    port: 0,
    path: '',
    reusePort: false,
    proxyProtocol: true,
  };
}

async function connect(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

/** Resolves once the server closed `s` (EOF or reset). */
function closedByServer(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) resolve();
    s.once('close', () => resolve());
    s.resume();
  });
}

async function withBackend(
  timeoutMs: number,
  fn: (b: NativeBackend, h: Recorder, port: number) => Promise<void>,
): Promise<void> {
  const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: timeoutMs });
  const h = new Recorder(b);
  try {
    b.start(h);
    const addr = await b.listen(spec(2));
    await fn(b, h, addr.port);
  } finally {
    await b.stop();
  }
}

describe('NativeBackend: PROXY protocol listeners', { skip }, () => {
  it('opens a v2 connection with the header addresses, its TLVs, and the payload alone', async () => {
    await withBackend(5000, async (b, h, port) => {
      const s = await connect(port);
      try {
        const tlvs = [
          { type: 0x01, value: Uint8Array.from(Buffer.from('h2')) },
          { type: 0xe1, value: Uint8Array.from([1, 2, 3]) },
        ];
        const header = encodeProxyHeaderV2({
          command: 'proxy',
          source: { host: '192.0.2.10', port: 40000 },
          destination: { host: '198.51.100.20', port: 443 },
          tlvs,
        });
        s.write(Buffer.concat([header, Buffer.from('payload')]));
        await until(() => h.opened.size === 1 && h.text(h.only()[0]) === 'payload', 'onOpen and onData');
        const [id, addrs] = h.only();
        assert.equal(addrs.remote.host, '192.0.2.10');
        assert.equal(addrs.remote.port, 40000);
        assert.equal(addrs.local.host, '198.51.100.20');
        assert.equal(addrs.local.port, 443);
        assert.deepEqual(addrs.proxy, { version: 2, command: 'proxy', tlvs });
        b.write(id, Buffer.from('pong'));
        b.flush();
        const got = await new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
        assert.equal(got, 'pong');
        assert.deepEqual(h.refused, []);
      } finally {
        s.destroy();
      }
    });
  });

  it('opens a v1 connection with no TLVs', async () => {
    await withBackend(5000, async (_b, h, port) => {
      const s = await connect(port);
      try {
        s.write('PROXY TCP6 2001:db8::1 2001:db8::2 1111 2222\r\nv1');
        await until(() => h.opened.size === 1 && h.text(h.only()[0]) === 'v1', 'onOpen and onData');
        const [, addrs] = h.only();
        assert.equal(addrs.remote.host, '2001:db8::1');
        assert.equal(addrs.remote.port, 1111);
        assert.equal(addrs.local.host, '2001:db8::2');
        assert.equal(addrs.local.port, 2222);
        assert.deepEqual(addrs.proxy, { version: 1, command: 'proxy', tlvs: [] });
      } finally {
        s.destroy();
      }
    });
  });

  it("keeps the socket's addresses for a LOCAL header", async () => {
    await withBackend(5000, async (_b, h, port) => {
      const s = await connect(port);
      try {
        s.write(encodeProxyHeaderV2({ command: 'local' }));
        await until(() => h.opened.size === 1, 'onOpen');
        const [, addrs] = h.only();
        assert.equal(addrs.remote.host, '127.0.0.1');
        assert.equal(addrs.remote.port, s.localPort);
        assert.equal(addrs.local.host, '127.0.0.1');
        assert.equal(addrs.local.port, port);
        assert.deepEqual(addrs.proxy, { version: 2, command: 'local', tlvs: [] });
      } finally {
        s.destroy();
      }
    });
  });

  it("refuses garbage with 'signature', naming the balancer, and never opens it", async () => {
    await withBackend(5000, async (_b, h, port) => {
      const s = await connect(port);
      const clientPort = s.localPort;
      try {
        const closed = closedByServer(s);
        s.write('GET / HTTP/1.1\r\n\r\n');
        await until(() => h.refused.length === 1, 'onProxyRefused');
        await closed;
        const [r] = h.refused;
        assert.equal(r!.listener, 2);
        assert.equal(r!.reason, 'signature');
        assert.equal(r!.peer.host, '127.0.0.1');
        assert.equal(r!.peer.port, clientPort);
        assert.equal(h.opened.size, 0);
      } finally {
        s.destroy();
      }
    });
  });

  it("refuses a silent client with 'timeout' after proxyHeaderTimeoutMs", async () => {
    await withBackend(50, async (_b, h, port) => {
      const s = await connect(port);
      try {
        const started = Date.now();
        const closed = closedByServer(s);
        await until(() => h.refused.length === 1, 'onProxyRefused');
        await closed;
        assert.ok(Date.now() - started >= 40, 'not before the deadline');
        assert.equal(h.refused[0]!.reason, 'timeout');
        assert.equal(h.opened.size, 0);
      } finally {
        s.destroy();
      }
    });
  });

  it("reports a client that leaves mid-header as 'closed'", async () => {
    await withBackend(5000, async (_b, h, port) => {
      const s = await connect(port);
      s.end('PROXY TCP4 1.2');
      await until(() => h.refused.length === 1, 'onProxyRefused');
      assert.equal(h.refused[0]!.reason, 'closed');
      s.destroy();
    });
  });

  it('hands a PROXY connection off unread; the adopting backend reads its header', async () => {
    const acceptor = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
    const worker = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
    const h = new Recorder(worker);
    const handed: boolean[] = [];
    const none = (what: string) => (): never => assert.fail(`the acceptor has no ${what}`);
    const acceptorHandler: NativeBackendHandler = {
      onOpen: none('onOpen'),
      onData: none('onData'),
      onEnd: none('onEnd'),
      onClose: none('onClose'),
      onDatagram: none('onDatagram'),
      onQueued: none('onQueued'),
      onAcceptError: none('onAcceptError'),
      onProxyRefused: none('onProxyRefused'),
      onBatchEnd: () => {},
      onAccepted(fd, origin, _remote, proxyProtocol) {
        handed.push(proxyProtocol);
        worker.adopt(fd, origin, proxyProtocol);
      },
    };
    let s: net.Socket | undefined;
    try {
      acceptor.start(acceptorHandler);
      worker.start(h);
      const addr = await acceptor.listen(spec(0), { handOff: true });
      worker.declareListeners([addr]);
      s = await connect(addr.port);
      s.write(Buffer.from('PROXY TCP4 10.0.0.1 10.0.0.2 1000 2000\r\nhi'));
      await until(() => h.opened.size === 1 && h.text(h.only()[0]) === 'hi', 'onOpen on the adopting backend');
      assert.deepEqual(handed, [true]);
      const [, addrs] = h.only();
      assert.equal(addrs.remote.host, '10.0.0.1');
      assert.equal(addrs.local.port, 2000);
    } finally {
      s?.destroy();
      await acceptor.stop();
      await worker.stop();
    }
  });

  it("reports a unix listener's connection with the header's TCP addresses", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gevent-proxy-unix-'));
    const path = join(dir, 's.sock');
    const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
    const h = new Recorder(b);
    let s: net.Socket | undefined;
    try {
      b.start(h);
      await b.listen({ ...spec(1), text: `unix://${path}?proxy=true`, network: 'unix', family: 0, host: '', path });
      s = net.connect(path);
      s.on('error', () => {});
      s.write('PROXY TCP4 192.0.2.5 192.0.2.6 5 6\r\nu');
      await until(() => h.opened.size === 1 && h.text(h.only()[0]) === 'u', 'onOpen and onData');
      const [, addrs] = h.only();
      assert.equal(addrs.remote.toString(), 'tcp://192.0.2.5:5');
      assert.equal(addrs.local.toString(), 'tcp://192.0.2.6:6');
    } finally {
      s?.destroy();
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stop() closes a connection whose header is pending, with no callback', async () => {
    let s: net.Socket | undefined;
    const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
    const h = new Recorder(b);
    try {
      b.start(h);
      const addr = await b.listen(spec(0));
      s = await connect(addr.port);
      const closed = closedByServer(s);
      await until(() => b.stats().connections === 1, 'the pending connection');
      await b.stop();
      await closed;
      assert.equal(h.opened.size, 0);
      assert.deepEqual(h.refused, []);
    } finally {
      s?.destroy();
      await b.stop();
    }
  });
});
