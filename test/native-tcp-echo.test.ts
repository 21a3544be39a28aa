/**
 * The native backend over loopback TCP, driven directly with a small handler: echo on many
 * connections, several MiB byte for byte, close-with-flush, peer reset, stale ids, bind errors.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { type Addr, parseAddress } from '../src/addr.js';
import type { AddrPair, BackendHandler, DatagramPeer } from '../src/backend/backend.js';
import { NativeBackend, nativeAvailable } from '../src/backend/native.js';
import { ConnectionError, ListenError } from '../src/errors.js';

const skip = nativeAvailable() ? false : 'native addon not built';

/** Counts every callback; echoes data unless told otherwise; closes (flushing) on FIN. */
class Recorder implements BackendHandler {
  onProxyRefused(): void {}
  readonly opened: number[] = [];
  readonly addrs: AddrPair[] = [];
  readonly closed = new Map<number, Error | null>();
  ends = 0;
  bytesIn = 0;
  batches = 0;
  echo = true;
  onDataHook: ((id: number, bytes: Uint8Array) => void) | null = null;
  constructor(readonly backend: NativeBackend) {}
  onOpen(id: number, _listener: number, addrs: AddrPair): void {
    this.opened.push(id);
    this.addrs.push(addrs);
  }
  onData(id: number, bytes: Uint8Array): void {
    this.bytesIn += bytes.length;
    if (this.onDataHook) this.onDataHook(id, bytes);
    if (this.echo) this.backend.write(id, bytes);
  }
  onEnd(id: number): void {
    this.ends++;
    this.backend.close(id, true);
  }
  onClose(id: number, err: Error | null): void {
    assert.ok(!this.closed.has(id), `onClose fired twice for ${id}`);
    assert.ok(this.opened.includes(id), `onClose for unopened ${id}`);
    this.closed.set(id, err);
  }
  onDatagram(_listener: number, _bytes: Uint8Array, _peer: DatagramPeer): void {
    assert.fail('no datagrams on TCP');
  }
  onBatchEnd(): void {
    this.batches++;
    this.backend.flush();
  }
  onQueued(): void {}
  onAcceptError(_listener: number, errno: string): void {
    assert.fail(`unexpected accept error ${errno}`);
  }
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Everything a test opened, released even when it fails. */
const open = { backends: new Set<NativeBackend>(), sockets: new Set<net.Socket>() };

async function cleanup(): Promise<void> {
  for (const s of open.sockets) s.destroy();
  open.sockets.clear();
  await Promise.all([...open.backends].map((b) => b.stop()));
  open.backends.clear();
}

function backend(): NativeBackend {
  const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
  open.backends.add(b);
  return b;
}

async function server(address = 'tcp://127.0.0.1:0'): Promise<{ b: NativeBackend; rec: Recorder; addr: Addr }> {
  const b = backend();
  const rec = new Recorder(b);
  b.start(rec);
  const addr = await b.listen(parseAddress(address));
  return { b, rec, addr };
}

function connect(port: number, host = '127.0.0.1', allowHalfOpen = false): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, allowHalfOpen }, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
    open.sockets.add(s);
    s.once('error', reject);
  });
}

function readExactly(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onClose = (): void => reject(new Error(`socket closed after ${got} of ${n} bytes`));
    const onData = (d: Buffer): void => {
      parts.push(d);
      got += d.length;
      if (got >= n) {
        s.off('data', onData);
        s.off('close', onClose);
        resolve(Buffer.concat(parts));
      }
    };
    s.on('data', onData);
    s.once('close', onClose);
  });
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('native backend: TCP', { skip }, () => {
  let fdsBefore = 0;
  before(() => {
    fdsBefore = fdCount();
  });
  afterEach(cleanup);
  after(async () => {
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(fdCount(), fdsBefore, 'every fd opened by the tests is closed');
  });

  it('echoes on 50 connections, then one onClose per onOpen', async () => {
    const { b, rec, addr } = await server();
    assert.equal(addr.host, '127.0.0.1');
    assert.ok(addr.port > 0);
    const clients = await Promise.all(Array.from({ length: 50 }, () => connect(addr.port)));
    for (let round = 0; round < 20; round++) {
      const replies = clients.map((c) => readExactly(c, 6));
      clients.forEach((c, i) => c.write(`p${String(i).padStart(2, '0')}r${round % 10}\n`.slice(0, 6)));
      const got = await Promise.all(replies);
      got.forEach((g, i) => assert.equal(g.toString(), `p${String(i).padStart(2, '0')}r${round % 10}\n`.slice(0, 6)));
    }
    await Promise.all(clients.map((c) => new Promise((r) => c.end(() => c.once('close', r)))));
    await until(() => rec.closed.size === 50, '50 closes');
    assert.equal(rec.opened.length, 50);
    assert.equal(rec.ends, 50);
    assert.equal(new Set(rec.opened).size, 50);
    for (const err of rec.closed.values()) assert.equal(err, null);
    assert.equal(rec.bytesIn, 50 * 20 * 6);
    assert.ok(rec.batches < 50 * 20 * 2, `batched dispatch (${rec.batches} batches)`);
    const remote = rec.addrs[0]!.remote;
    assert.equal(remote.host, '127.0.0.1');
    assert.equal(rec.addrs[0]!.local.port, addr.port);
    assert.equal(b.stats().connections, 0);
    await b.stop();
  });

  it('echoes 8 MiB byte for byte through partial writes and EPOLLOUT', async () => {
    const { b, rec, addr } = await server();
    const payload = randomBytes(8 * 1024 * 1024);
    const c = await connect(addr.port);
    c.pause();
    const reply = readExactly(c, payload.length);
    c.write(payload);
    await until(() => rec.bytesIn > 2 * 1024 * 1024, 'server to read 2 MiB while the client is not reading');
    c.resume();
    const got = await reply;
    assert.equal(got.length, payload.length);
    assert.ok(got.equals(payload), 'echo matches');
    c.destroy();
    await until(() => rec.closed.size === 1, 'close');
    await b.stop();
  });

  it('close with flush delivers everything queued, then EOF', async () => {
    const { b, rec, addr } = await server();
    const payload = randomBytes(4 * 1024 * 1024);
    rec.echo = false;
    rec.onDataHook = (id) => {
      b.write(id, payload.subarray(0, 10));
      b.write(id, payload.subarray(10));
      b.close(id, true);
      b.write(id, Buffer.from('after close is dropped'));
    };
    const c = await connect(addr.port);
    const parts: Buffer[] = [];
    c.on('data', (d: Buffer) => parts.push(d));
    const ended = new Promise((r) => c.once('end', r));
    c.write('go');
    await ended;
    const got = Buffer.concat(parts);
    assert.equal(got.length, payload.length);
    assert.ok(got.equals(payload));
    await until(() => rec.closed.size === 1, 'close');
    assert.equal(rec.closed.get(rec.opened[0]!), null);
    c.destroy();
    await b.stop();
  });

  it('a peer reset gives exactly one onClose with ConnectionError ECONNRESET', async () => {
    const { b, rec, addr } = await server();
    rec.echo = false;
    const c = await connect(addr.port);
    c.write('x');
    await until(() => rec.bytesIn === 1, 'data');
    c.resetAndDestroy();
    await until(() => rec.closed.size === 1, 'close');
    const err = rec.closed.get(rec.opened[0]!);
    assert.ok(err instanceof ConnectionError);
    assert.equal(err.errno, 'ECONNRESET');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rec.closed.size, 1);
    await b.stop();
  });

  it('ignores write/close/end/setKeepAlive naming a stale id', async () => {
    const { b, rec, addr } = await server();
    const c1 = await connect(addr.port);
    await until(() => rec.opened.length === 1, 'open 1');
    const stale = rec.opened[0]!;
    b.close(stale, false);
    b.flush();
    assert.equal(rec.closed.size, 0, 'onClose never runs synchronously inside close()/flush()');
    await until(() => rec.closed.size === 1, 'close 1');
    const c2 = await connect(addr.port);
    await until(() => rec.opened.length === 2, 'open 2');
    const fresh = rec.opened[1]!;
    assert.notEqual(fresh, stale);
    assert.equal(fresh & 0xfffff, stale & 0xfffff, 'the slot is reused with a new generation');
    b.write(stale, Buffer.from('never'));
    b.setKeepAlive(stale, 1000);
    b.end(stale);
    b.close(stale, false);
    b.flush();
    b.setKeepAlive(fresh, 1500);
    const reply = readExactly(c2, 4);
    c2.write('ping');
    assert.equal((await reply).toString(), 'ping');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rec.closed.size, 1);
    c1.destroy();
    c2.destroy();
    await until(() => rec.closed.size === 2, 'close 2');
    await b.stop();
  });

  it('end() half-closes after the queue drains and keeps reading', async () => {
    const { b, rec, addr } = await server();
    rec.echo = false;
    rec.onDataHook = (id, bytes) => {
      if (bytes[0] === 0x71) {
        b.write(id, Buffer.from('bye'));
        b.end(id);
      }
    };
    const c = await connect(addr.port, '127.0.0.1', true);
    const parts: Buffer[] = [];
    c.on('data', (d: Buffer) => parts.push(d));
    const ended = new Promise((r) => c.once('end', r));
    c.write('q');
    await ended;
    assert.equal(Buffer.concat(parts).toString(), 'bye');
    c.write('more');
    await until(() => rec.bytesIn === 5, 'reads after end()');
    c.end();
    await until(() => rec.closed.size === 1, 'close');
    await b.stop();
  });

  it('stop() closes every connection with onClose(null) and frees the port', async () => {
    const { b, rec, addr } = await server();
    const clients = await Promise.all(Array.from({ length: 5 }, () => connect(addr.port)));
    await until(() => rec.opened.length === 5, 'opens');
    const closedByPeer = clients.map((c) => new Promise((r) => c.once('close', r)));
    clients.forEach((c) => c.on('error', () => undefined));
    await b.stop();
    assert.equal(rec.closed.size, 5);
    for (const err of rec.closed.values()) assert.equal(err, null);
    await Promise.all(closedByPeer);
    const again = await server(`tcp://127.0.0.1:${addr.port}`);
    await again.b.stop();
  });

  it('rejects a busy port with ListenError EADDRINUSE naming the address', async () => {
    const { b, addr } = await server();
    const text = `tcp://127.0.0.1:${addr.port}`;
    const b2 = backend();
    b2.start(new Recorder(b2));
    await assert.rejects(b2.listen(parseAddress(text)), (err: unknown) => {
      assert.ok(err instanceof ListenError);
      assert.equal(err.errno, 'EADDRINUSE');
      assert.equal(err.address, text);
      assert.ok(err.message.includes(text));
      return true;
    });
    await b2.stop();
    await b.stop();
  });

  it('reuseport lets two backends bind one port', async () => {
    const one = await server('tcp://127.0.0.1:0?reuseport=true');
    const two = backend();
    two.start(new Recorder(two));
    const addr = await two.listen(parseAddress(`tcp://127.0.0.1:${one.addr.port}?reuseport=1`));
    assert.equal(addr.port, one.addr.port);
    await two.stop();
    await one.b.stop();
  });

  it('dual-stack tcp:// accepts IPv4 clients and reports plain IPv4 peers; tcp6 binds ::1', async (t) => {
    const dual = await server('tcp://:0');
    const c = await connect(dual.addr.port, '127.0.0.1');
    await until(() => dual.rec.opened.length === 1, 'open');
    assert.equal(dual.rec.addrs[0]!.remote.host, '127.0.0.1');
    c.destroy();
    await until(() => dual.rec.closed.size === 1, 'close');
    await dual.b.stop();

    let v6: Awaited<ReturnType<typeof server>> | undefined;
    try {
      v6 = await server('tcp6://[::1]:0');
    } catch (err) {
      if (err instanceof ListenError && err.errno === 'EADDRNOTAVAIL') {
        t.skip('this machine has no IPv6 loopback (::1): the tcp6 half was not run');
        return;
      }
      throw err;
    }
    assert.equal(v6.addr.host, '::1');
    assert.equal(v6.addr.toString(), `tcp://[::1]:${v6.addr.port}`);
    const c6 = await connect(v6.addr.port, '::1');
    const reply = readExactly(c6, 2);
    c6.write('v6');
    assert.equal((await reply).toString(), 'v6');
    assert.equal(v6.rec.addrs[0]!.remote.host, '::1');
    c6.destroy();
    await until(() => v6!.rec.closed.size === 1, 'close v6');
    await v6.b.stop();
  });

  it('resolves host names such as localhost before binding', async () => {
    const { b, addr } = await server('tcp4://localhost:0');
    assert.equal(addr.host, '127.0.0.1');
    await b.stop();
  });
});
