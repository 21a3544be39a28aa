/**
 * onQueued from the native backend: a peer that does not read makes the queue grow past several
 * MiB and then drain to 0, byte for byte; a pingpong whose writes the kernel takes at once reports
 * nothing at all; watchQueue asks for one report; reports never come from inside a backend call
 * and never after the connection's onClose. The cases that need a queue write until the backend
 * reports one, so they hold whatever the machine's TCP buffers take.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { parseAddress } from '../src/addr.js';
import type { BackendHandler } from '../src/backend/backend.js';
import { NativeBackend, nativeAvailable } from '../src/backend/native.js';
import { within } from './helpers.js';

const skip = nativeAvailable() ? false : 'native addon not built';

/** Echoes unless told not to; keeps every onQueued report per connection. */
class Tracker implements BackendHandler {
  onProxyRefused(): void {}
  readonly opened: number[] = [];
  readonly closed = new Set<number>();
  readonly reports = new Map<number, number[]>();
  queuedCalls = 0;
  echo = true;
  bytesIn = 0;
  constructor(readonly b: NativeBackend) {}
  onOpen(id: number): void {
    this.opened.push(id);
  }
  onData(id: number, bytes: Uint8Array): void {
    this.bytesIn += bytes.length;
    if (this.echo) this.b.write(id, bytes);
  }
  onEnd(id: number): void {
    this.b.close(id, true);
  }
  onClose(id: number): void {
    this.closed.add(id);
  }
  onDatagram(): void {
    assert.fail('no datagrams');
  }
  onBatchEnd(): void {
    this.b.flush();
  }
  onQueued(id: number, bytes: number): void {
    assert.ok(this.opened.includes(id) && !this.closed.has(id), `onQueued(${id}) for an open connection`);
    assert.ok(Number.isInteger(bytes) && bytes >= 0);
    this.queuedCalls++;
    const list = this.reports.get(id) ?? [];
    list.push(bytes);
    this.reports.set(id, list);
  }
  onAcceptError(_listener: number, errno: string): void {
    assert.fail(`unexpected accept error ${errno}`);
  }
}

async function until(cond: () => boolean, what: string, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const open = { backends: new Set<NativeBackend>(), sockets: new Set<net.Socket>() };

async function server(): Promise<{ b: NativeBackend; h: Tracker; port: number }> {
  const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
  open.backends.add(b);
  const h = new Tracker(b);
  b.start(h);
  const addr = await b.listen(parseAddress('tcp://127.0.0.1:0'));
  return { b, h, port: addr.port };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
    open.sockets.add(s);
    s.once('error', reject);
  });
}

/**
 * Writes 1 MiB pieces of random bytes to connection `id` (keeping them in `sent`) until the backend
 * reports more than `minBytes` queued and that figure holds for 200 ms: how much a TCP connection
 * takes depends on the machine's tuning (tcp_wmem, tcp_rmem) and grows for a while as the peer's
 * window opens, so the test fills until output is queued instead of assuming a size. Each piece
 * goes out in a flush of its own, so the queue grows by at most 1 MiB between two reports.
 */
async function writeUntilQueued(
  b: NativeBackend,
  id: number,
  latest: () => number,
  minBytes: number,
  sent: Buffer[],
): Promise<void> {
  let last = -1;
  let since = Date.now();
  for (let total = 0; ;) {
    await new Promise((r) => setTimeout(r, 5));
    const q = latest();
    if (q !== last) {
      last = q;
      since = Date.now();
    }
    if (q > minBytes) {
      if (Date.now() - since >= 200) return;
      continue;
    }
    if (total >= 2 ** 30) throw new Error(`${total} bytes written and only ${q} queued`);
    const piece = randomBytes(1024 * 1024);
    b.write(id, piece);
    b.flush();
    sent.push(piece);
    total += piece.length;
  }
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

/** Every report differs from the one before it (starting from 0): nothing unchanged is sent. */
function assertChanges(list: readonly number[]): void {
  let prev = 0;
  for (const q of list) {
    assert.notEqual(q, prev, `report ${q} repeats the previous figure`);
    prev = q;
  }
}

describe('native backend: onQueued', { skip }, () => {
  let fdsBefore = 0;
  before(() => {
    fdsBefore = readdirSync('/proc/self/fd').length;
  });
  afterEach(async () => {
    for (const s of open.sockets) s.destroy();
    open.sockets.clear();
    await Promise.all([...open.backends].map((b) => b.stop()));
    open.backends.clear();
  });
  after(async () => {
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(readdirSync('/proc/self/fd').length, fdsBefore, 'no fd left open');
  });

  it('reports a queue growing past 4 MiB behind a peer that does not read, then 0 once it reads', async () => {
    const { b, h, port } = await server();
    h.echo = false;
    const c = await connect(port);
    c.pause();
    await until(() => h.opened.length === 1, 'open');
    const id = h.opened[0]!;
    const burst = randomBytes(1024 * 1024);
    let at = 0;
    let size = 1;
    while (at < burst.length) {
      const n = Math.min(size, burst.length - at);
      b.write(id, burst.subarray(at, at + n));
      at += n;
      size = size >= 256 * 1024 ? 1 : size * 4;
    }
    const calls = h.queuedCalls;
    b.flush();
    assert.equal(h.queuedCalls, calls, 'onQueued is never called from inside flush()');
    const sent = [burst];
    await within(
      writeUntilQueued(b, id, () => h.reports.get(id)?.at(-1) ?? 0, 4 * 1024 * 1024, sent),
      30_000,
      'a report above 4 MiB',
    );
    const payload = Buffer.concat(sent);
    const reply = readExactly(c, payload.length);
    const peak = Math.max(...h.reports.get(id)!);
    assert.ok(peak <= payload.length, `no more queued (${peak}) than was written`);
    c.resume();
    const got = await reply;
    assert.ok(got.equals(payload), 'every byte arrives once, in order');
    await until(() => h.reports.get(id)!.at(-1) === 0, 'a final report of 0');
    const list = h.reports.get(id)!;
    assertChanges(list);
    assert.ok(list.length >= 3, `reports as the queue grew and drained (${list.length})`);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.reports.get(id)!.length, list.length, 'nothing after the queue drained');
  });

  it('sends no QUEUED record during a 1,000-message pingpong', async () => {
    const { h, port } = await server();
    const c = await connect(port);
    for (let i = 0; i < 1000; i++) {
      const reply = readExactly(c, 6);
      c.write(`m${String(i).padStart(4, '0')}\n`);
      assert.equal((await reply).toString(), `m${String(i).padStart(4, '0')}\n`);
    }
    assert.equal(h.queuedCalls, 0);
  });

  it('sends no QUEUED record for 100 connections exchanging 6-byte messages', async () => {
    const { h, port } = await server();
    const clients = await Promise.all(Array.from({ length: 100 }, () => connect(port)));
    for (let round = 0; round < 20; round++) {
      const replies = clients.map((c) => readExactly(c, 6));
      clients.forEach((c) => c.write('ping!\n'));
      for (const r of await Promise.all(replies)) assert.equal(r.toString(), 'ping!\n');
    }
    assert.equal(h.bytesIn, 100 * 20 * 6);
    assert.equal(h.queuedCalls, 0);
  });

  it('watchQueue() gets exactly one report after the next flush, even of 0; stale ids get none', async () => {
    const { b, h, port } = await server();
    const c = await connect(port);
    await until(() => h.opened.length === 1, 'open');
    const id = h.opened[0]!;
    b.watchQueue(id);
    b.flush();
    assert.equal(h.queuedCalls, 0, 'not from inside flush()');
    await until(() => h.queuedCalls === 1, 'the watched report');
    assert.deepEqual(h.reports.get(id), [0]);
    c.destroy();
    await until(() => h.closed.has(id), 'close');
    b.watchQueue(id);
    b.flush();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(h.queuedCalls, 1, 'a stale id is ignored');
  });

  it('reports nothing after onClose for a connection closed with output queued', async () => {
    const { b, h, port } = await server();
    h.echo = false;
    const c = await connect(port);
    c.pause();
    await until(() => h.opened.length === 1, 'open');
    const id = h.opened[0]!;
    await within(
      writeUntilQueued(b, id, () => h.reports.get(id)?.at(-1) ?? 0, 0, []),
      30_000,
      'a report',
    );
    b.close(id, false);
    b.flush();
    await until(() => h.closed.has(id), 'close');
    const n = h.queuedCalls;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(h.queuedCalls, n);
  });
});
