/**
 * NativeBackend.dial against the Backend contract (src/backend/backend.ts), driven directly with a
 * recording handler: a dial to a node:net server opens with kOriginDial and the address dialled,
 * and echoes bytes (over IPv4 and, where the host has it, IPv6); a dial to a port nobody listens on ends in onClose with ECONNREFUSED and no
 * onOpen; a unix dial to a missing path is an Error with code ENOENT at once; a unix dial opens with
 * the path as its peer; close(id, false) before onOpen cancels (one onClose); stop() closes a dial
 * still connecting; a spec the contract rules out throws.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { kOriginDial, type AddrPair, type BackendHandler, type DialSpec } from '../src/backend/backend.js';
import { NativeBackend, nativeAvailable } from '../src/backend/native.js';
import { InvalidArgumentError } from '../src/errors.js';

const skip = nativeAvailable() ? false : 'native addon not built';

interface Opened {
  readonly origin: number;
  readonly addrs: AddrPair;
}

/** Records every callback by id; flushes at the end of each batch, as the loop does. */
class Recorder implements BackendHandler {
  onProxyRefused(): void {}
  readonly opened = new Map<number, Opened>();
  readonly closed = new Map<number, (Error | null)[]>();
  readonly input = new Map<number, Buffer[]>();
  constructor(readonly b: NativeBackend) {}
  onOpen(id: number, origin: number, addrs: AddrPair): void {
    assert.ok(!this.opened.has(id), `one onOpen for ${id}`);
    this.opened.set(id, { origin, addrs });
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
    const list = this.closed.get(id) ?? [];
    list.push(err);
    this.closed.set(id, list);
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
  text(id: number): string {
    return Buffer.concat(this.input.get(id) ?? []).toString();
  }
}

async function until(cond: () => boolean, what: string, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function tcp(host: string, port: number, localHost = '', localPort = 0): DialSpec {
  return { network: 'tcp', family: net.isIP(host) === 6 ? 6 : 4, host, port, path: '', localHost, localPort };
}

function unix(path: string): DialSpec {
  return { network: 'unix', family: 0, host: '', port: 0, path, localHost: '', localPort: 0 };
}

/** A node:net echo server; its sockets are destroyed on close. */
async function echoServer(listenOn: number | string): Promise<{ server: net.Server; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (typeof listenOn === 'string') server.listen(listenOn, resolve);
    else server.listen(listenOn, '127.0.0.1', resolve);
  });
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { server, close };
}

/** A loopback port that was just bound and released: nobody listens on it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function startBackend(): { b: NativeBackend; h: Recorder } {
  const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
  const h = new Recorder(b);
  b.start(h);
  return { b, h };
}

describe('NativeBackend.dial', { skip }, () => {
  it('dials a TCP server: onOpen with kOriginDial and the address dialled, then an echo', async () => {
    const srv = await echoServer(0);
    const { b, h } = startBackend();
    try {
      const port = (srv.server.address() as net.AddressInfo).port;
      const id = b.dial(tcp('127.0.0.1', port, '127.0.0.1'));
      assert.equal(typeof id, 'number', String(id));
      const cid = id as number;
      await until(() => h.opened.has(cid) || h.closed.has(cid), 'onOpen');
      const open = h.opened.get(cid);
      assert.ok(open, `opened, not closed with ${String(h.closed.get(cid))}`);
      assert.equal(open.origin, kOriginDial);
      assert.equal(open.addrs.remote.network, 'tcp');
      assert.equal(open.addrs.remote.host, '127.0.0.1');
      assert.equal(open.addrs.remote.port, port);
      assert.equal(open.addrs.local.host, '127.0.0.1');
      assert.ok(open.addrs.local.port > 0 && open.addrs.local.port !== port, 'a local port of its own');
      b.write(cid, Buffer.from('hello, '));
      b.write(cid, Buffer.from('dial'));
      b.flush();
      await until(() => h.text(cid) === 'hello, dial', 'the echo');
      b.close(cid, true);
      b.flush();
      await until(() => h.closed.has(cid), 'onClose');
      assert.deepEqual(h.closed.get(cid), [null]);
    } finally {
      await b.stop();
      await srv.close();
    }
  });

  it('binds the source port it is given', async () => {
    const srv = await echoServer(0);
    const { b, h } = startBackend();
    try {
      const port = (srv.server.address() as net.AddressInfo).port;
      const localPort = await closedPort();
      const id = b.dial(tcp('127.0.0.1', port, '', localPort));
      assert.equal(typeof id, 'number', String(id));
      const cid = id as number;
      await until(() => h.opened.has(cid) || h.closed.has(cid), 'onOpen');
      const open = h.opened.get(cid);
      assert.ok(open, `opened, not closed with ${String(h.closed.get(cid))}`);
      assert.equal(open.addrs.local.port, localPort);
    } finally {
      await b.stop();
      await srv.close();
    }
  });

  it('dials an IPv6 server on ::1 with the v6 address as its peer', async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.pipe(s);
    });
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(0, '::1', () => resolve(true));
    });
    if (!listening) return;
    const { b, h } = startBackend();
    try {
      const port = (server.address() as net.AddressInfo).port;
      const id = b.dial(tcp('::1', port)) as number;
      assert.equal(typeof id, 'number', String(id));
      await until(() => h.opened.has(id) || h.closed.has(id), 'onOpen');
      const open = h.opened.get(id);
      assert.ok(open, `opened, not closed with ${String(h.closed.get(id))}`);
      assert.equal(open.addrs.remote.host, '::1');
      assert.equal(open.addrs.remote.port, port);
      assert.equal(open.addrs.local.host, '::1');
      b.write(id, Buffer.from('six'));
      b.flush();
      await until(() => h.text(id) === 'six', 'the echo');
    } finally {
      await b.stop();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a refused TCP dial ends in onClose with ECONNREFUSED and no onOpen', async () => {
    const port = await closedPort();
    const { b, h } = startBackend();
    try {
      const id = b.dial(tcp('127.0.0.1', port));
      let err: Error | null | undefined;
      if (id instanceof Error) {
        err = id;
      } else {
        await until(() => h.closed.has(id), 'onClose');
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(h.closed.get(id)?.length, 1, 'one onClose');
        assert.ok(!h.opened.has(id), 'no onOpen');
        err = h.closed.get(id)?.[0];
      }
      assert.ok(err instanceof Error);
      assert.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
      assert.equal((err as NodeJS.ErrnoException).syscall, 'connect');
      assert.equal(err.message, `connect ECONNREFUSED 127.0.0.1:${port}`);
    } finally {
      await b.stop();
    }
  });

  it('a unix dial to a missing path is an Error with code ENOENT at once', async () => {
    const { b, h } = startBackend();
    try {
      const path = join(tmpdir(), `gevent-dial-missing-${process.pid}.sock`);
      const r = b.dial(unix(path));
      assert.ok(r instanceof Error, `an Error, not ${String(r)}`);
      assert.equal((r as NodeJS.ErrnoException).code, 'ENOENT');
      assert.equal(r.message, `connect ENOENT ${path}`);
      assert.equal(b.stats().connections, 0);
      assert.equal(h.opened.size + h.closed.size, 0);
    } finally {
      await b.stop();
    }
  });

  it('a unix dial opens with the path as its peer and echoes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gevent-dial-'));
    const path = join(dir, 'echo.sock');
    const srv = await echoServer(path);
    const { b, h } = startBackend();
    try {
      const id = b.dial(unix(path));
      assert.equal(typeof id, 'number', String(id));
      const cid = id as number;
      await until(() => h.opened.has(cid), 'onOpen');
      const open = h.opened.get(cid)!;
      assert.equal(open.origin, kOriginDial);
      assert.equal(open.addrs.remote.network, 'unix');
      assert.equal(open.addrs.remote.path, path);
      assert.equal(open.addrs.local.network, 'unix');
      b.write(cid, Buffer.from('ping'));
      b.flush();
      await until(() => h.text(cid) === 'ping', 'the echo');
    } finally {
      await b.stop();
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close(id, false) before onOpen cancels the dial: one onClose, no onOpen', async () => {
    const srv = await echoServer(0);
    const { b, h } = startBackend();
    try {
      const port = (srv.server.address() as net.AddressInfo).port;
      const id = b.dial(tcp('127.0.0.1', port));
      assert.equal(typeof id, 'number', String(id));
      const cid = id as number;
      b.close(cid, false);
      b.flush();
      await until(() => h.closed.has(cid), 'onClose');
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(h.closed.get(cid), [null]);
      assert.ok(!h.opened.has(cid), 'no onOpen');
      assert.equal(b.stats().connections, 0);
    } finally {
      await b.stop();
      await srv.close();
    }
  });

  it('stop() closes a dial still connecting, once', async () => {
    const srv = await echoServer(0);
    const { b, h } = startBackend();
    let stopped = false;
    try {
      const port = (srv.server.address() as net.AddressInfo).port;
      const id = b.dial(tcp('127.0.0.1', port)) as number;
      assert.equal(typeof id, 'number');
      await b.stop();
      stopped = true;
      assert.deepEqual(h.closed.get(id), [null]);
      assert.ok(!h.opened.has(id));
      const after = b.dial(tcp('127.0.0.1', port));
      assert.ok(after instanceof Error && (after as NodeJS.ErrnoException).code === 'ECANCELED');
    } finally {
      if (!stopped) await b.stop();
      await srv.close();
    }
  });

  it('throws for a spec the contract rules out', async () => {
    const { b } = startBackend();
    try {
      assert.throws(() => b.dial(tcp('localhost', 80)), InvalidArgumentError);
      assert.throws(() => b.dial({ ...tcp('127.0.0.1', 80), family: 6 }), InvalidArgumentError);
      assert.throws(() => b.dial(tcp('127.0.0.1', 0)), InvalidArgumentError);
      assert.throws(() => b.dial(tcp('127.0.0.1', 80, '::1')), InvalidArgumentError);
      assert.throws(() => b.dial(unix('')), InvalidArgumentError);
    } finally {
      await b.stop();
    }
  });
});
