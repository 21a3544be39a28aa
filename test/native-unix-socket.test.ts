/**
 * The native backend on unix sockets: echo, a stale socket file is replaced, a live one is
 * EADDRINUSE, a regular file is refused, and stop() removes the file it created.
 */
import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAddress } from '../src/addr.js';
import type { AddrPair, BackendHandler } from '../src/backend/backend.js';
import { NativeBackend, nativeAvailable } from '../src/backend/native.js';
import { ListenError } from '../src/errors.js';

const skip = nativeAvailable() ? false : 'native addon not built';

class Echo implements BackendHandler {
  onProxyRefused(): void {}
  opened = 0;
  closed = 0;
  addrs: AddrPair[] = [];
  constructor(readonly b: NativeBackend) {}
  onOpen(_id: number, _l: number, addrs: AddrPair): void {
    this.opened++;
    this.addrs.push(addrs);
  }
  onData(id: number, bytes: Uint8Array): void {
    this.b.write(id, bytes);
  }
  onEnd(id: number): void {
    this.b.close(id, true);
  }
  onClose(_id: number, err: Error | null): void {
    assert.equal(err, null);
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

function start(): { b: NativeBackend; h: Echo } {
  const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
  const h = new Echo(b);
  b.start(h);
  return { b, h };
}

/** Leaves a socket file at `path` with nobody listening: a hard link to a socket that then closes. */
async function staleSocket(path: string): Promise<void> {
  const srv = net.createServer();
  const live = `${path}.live`;
  await new Promise<void>((r) => srv.listen(live, r));
  linkSync(live, path);
  await new Promise((r) => srv.close(r));
}

describe('native backend: unix sockets', { skip }, () => {
  let dir = '';
  let fdsBefore = 0;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gevent-native-'));
    fdsBefore = readdirSync('/proc/self/fd').length;
  });
  after(() => {
    assert.equal(readdirSync('/proc/self/fd').length, fdsBefore, 'no fd left open');
    rmSync(dir, { recursive: true, force: true });
  });

  it('echoes over a unix socket and unlinks the file on stop', async () => {
    const path = join(dir, 'echo.sock');
    const { b, h } = start();
    const addr = await b.listen(parseAddress(`unix://${path}`));
    assert.equal(addr.toString(), `unix://${path}`);
    assert.ok(existsSync(path));
    const c = net.connect(path);
    const reply = new Promise<string>((r) => c.once('data', (d) => r(d.toString())));
    c.write('over unix');
    assert.equal(await reply, 'over unix');
    assert.equal(h.addrs[0]!.local.path, path);
    assert.equal(h.addrs[0]!.remote.network, 'unix');
    c.end();
    await until(() => h.closed === 1, 'close');
    await b.stop();
    assert.equal(h.opened, 1);
    assert.ok(!existsSync(path), 'socket file removed on stop');
    c.destroy();
  });

  it('removes a stale socket file before binding', async () => {
    const path = join(dir, 'stale.sock');
    await staleSocket(path);
    assert.ok(existsSync(path));
    const { b } = start();
    await b.listen(parseAddress(`unix://${path}`));
    const c = net.connect(path);
    await new Promise((r) => c.once('connect', r));
    c.destroy();
    await b.stop();
    assert.ok(!existsSync(path));
  });

  it('refuses a live socket with EADDRINUSE and a regular file', async () => {
    const path = join(dir, 'live.sock');
    const one = start();
    await one.b.listen(parseAddress(`unix://${path}`));
    const two = start();
    await assert.rejects(two.b.listen(parseAddress(`unix://${path}`)), (err: unknown) => {
      assert.ok(err instanceof ListenError);
      assert.equal(err.errno, 'EADDRINUSE');
      assert.ok(err.message.includes(path));
      return true;
    });
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'not a socket');
    await assert.rejects(two.b.listen(parseAddress(`unix://${file}`)), (err: unknown) => {
      assert.ok(err instanceof ListenError);
      assert.ok(err.message.includes('not a socket'));
      return true;
    });
    assert.ok(existsSync(file), 'a regular file is left alone');
    await two.b.stop();
    assert.ok(existsSync(path), "the failed backend does not unlink the live server's file");
    await until(() => one.h.closed === one.h.opened, 'probe connection closed');
    await one.b.stop();
    assert.ok(!existsSync(path));
  });
});
