/**
 * closeListeners on the native backend: new TCP connects are refused and the unix socket file is
 * gone, while connections already open keep echoing and report their local address; it may be
 * called from inside a batch and twice; stop() afterwards still closes what is open.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { parseAddress } from '../src/addr.js';
import type { AddrPair, BackendHandler } from '../src/backend/backend.js';
import { NativeBackend, nativeAvailable } from '../src/backend/native.js';

const skip = nativeAvailable() ? false : 'native addon not built';

class Echo implements BackendHandler {
  onProxyRefused(): void {}
  readonly opened: number[] = [];
  readonly addrs: AddrPair[] = [];
  closed = 0;
  onFirstData: (() => void) | null = null;
  constructor(readonly b: NativeBackend) {}
  onOpen(id: number, _listener: number, addrs: AddrPair): void {
    this.opened.push(id);
    this.addrs.push(addrs);
  }
  onData(id: number, bytes: Uint8Array): void {
    const hook = this.onFirstData;
    this.onFirstData = null;
    hook?.();
    this.b.write(id, bytes);
  }
  onEnd(id: number): void {
    this.b.close(id, true);
  }
  onClose(): void {
    this.closed++;
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
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const open = { backends: new Set<NativeBackend>(), sockets: new Set<net.Socket>() };

function start(): { b: NativeBackend; h: Echo } {
  const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
  open.backends.add(b);
  const h = new Echo(b);
  b.start(h);
  return { b, h };
}

function connect(options: net.NetConnectOpts): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(options, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
    open.sockets.add(s);
    s.once('error', reject);
  });
}

function echo(s: net.Socket, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.length >= text.length) {
        s.off('data', onData);
        resolve(got);
      }
    };
    s.on('data', onData);
    s.write(text);
  });
}

describe('native backend: closeListeners', { skip }, () => {
  let fdsBefore = 0;
  let dir = '';
  before(() => {
    fdsBefore = readdirSync('/proc/self/fd').length;
    dir = mkdtempSync(join(tmpdir(), 'gevent-close-listeners-'));
  });
  afterEach(async () => {
    for (const s of open.sockets) s.destroy();
    open.sockets.clear();
    await Promise.all([...open.backends].map((b) => b.stop()));
    open.backends.clear();
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(readdirSync('/proc/self/fd').length, fdsBefore, 'no fd left open');
  });

  it('refuses new TCP and unix connects while open connections keep echoing', async () => {
    const { b, h } = start();
    const tcp = await b.listen(parseAddress('tcp://127.0.0.1:0'));
    const path = join(dir, 'a.sock');
    await b.listen(parseAddress(`unix://${path}`, 1));
    const c1 = await connect({ port: tcp.port, host: '127.0.0.1' });
    const c2 = await connect({ path });
    assert.equal(await echo(c1, 'before'), 'before');
    await b.closeListeners();
    assert.equal(existsSync(path), false, 'the unix socket file is removed');
    await assert.rejects(connect({ port: tcp.port, host: '127.0.0.1' }), /ECONNREFUSED/);
    await assert.rejects(connect({ path }), /ENOENT|ECONNREFUSED/);
    assert.equal(await echo(c1, 'after, tcp'), 'after, tcp');
    assert.equal(await echo(c2, 'after, unix'), 'after, unix');
    assert.equal(h.addrs[0]!.local.port, tcp.port, 'local address of an open connection');
    await b.closeListeners();
    assert.equal(h.opened.length, 2);
    assert.equal(h.closed, 0);
    await b.stop();
    assert.equal(h.closed, 2, 'stop() still closes the open connections');
  });

  it('may be called from inside a batch', async () => {
    const { b, h } = start();
    const tcp = await b.listen(parseAddress('tcp://127.0.0.1:0'));
    let closing: Promise<void> | null = null;
    h.onFirstData = () => {
      closing = b.closeListeners();
    };
    const c = await connect({ port: tcp.port, host: '127.0.0.1' });
    assert.equal(await echo(c, 'x'), 'x');
    assert.ok(closing !== null);
    await closing;
    await assert.rejects(connect({ port: tcp.port, host: '127.0.0.1' }), /ECONNREFUSED/);
    assert.equal(await echo(c, 'still'), 'still');
    c.end();
    await until(() => h.closed === 1, 'close');
  });
});
