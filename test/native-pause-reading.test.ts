/**
 * pauseReading on the native backend: no onData while paused, and what the peer sent meanwhile
 * arrives after resuming, byte for byte; a FIN sent while paused is seen once resumed, after the
 * data; writes and the output queue go on while paused; a reset still closes a paused
 * connection; stale ids are ignored. The queued-output case fills until the backend reports a
 * queue, so it holds whatever the machine's TCP buffers take.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { parseAddress } from '../src/addr.js';
import type { BackendHandler } from '../src/backend/backend.js';
import { NativeBackend, nativeAvailable } from '../src/backend/native.js';
import { ConnectionError } from '../src/errors.js';

const skip = nativeAvailable() ? false : 'native addon not built';

/** Keeps what arrives per connection; optionally pauses a connection on its first bytes. */
class Reader implements BackendHandler {
  onProxyRefused(): void {}
  readonly opened: number[] = [];
  readonly closed = new Map<number, Error | null>();
  readonly input: Buffer[] = [];
  readonly events: string[] = [];
  readonly reports: number[] = [];
  pauseOnFirstData = false;
  paused = false;
  constructor(readonly b: NativeBackend) {}
  get bytesIn(): number {
    return this.input.reduce((n, p) => n + p.length, 0);
  }
  onOpen(id: number): void {
    this.opened.push(id);
  }
  onData(id: number, bytes: Uint8Array): void {
    assert.ok(!this.paused || this.events.at(-1) === 'data', 'no onData in a later batch while paused');
    this.input.push(Buffer.from(bytes));
    this.events.push('data');
    if (this.pauseOnFirstData && !this.paused) {
      this.paused = true;
      this.b.pauseReading(id, true);
    }
  }
  onEnd(id: number): void {
    assert.ok(!this.paused, 'no onEnd while paused');
    this.events.push('end');
    this.b.close(id, true);
  }
  onClose(id: number, err: Error | null): void {
    this.closed.set(id, err);
  }
  onDatagram(): void {
    assert.fail('no datagrams');
  }
  onBatchEnd(): void {
    if (this.events.at(-1) !== 'batch') this.events.push('batch');
    this.b.flush();
  }
  onQueued(_id: number, bytes: number): void {
    this.reports.push(bytes);
  }
  onAcceptError(_listener: number, errno: string): void {
    assert.fail(`unexpected accept error ${errno}`);
  }
  resume(id: number): void {
    this.pauseOnFirstData = false;
    this.paused = false;
    this.b.pauseReading(id, false);
    this.b.flush();
  }
}

async function until(cond: () => boolean, what: string, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Writes 1 MiB pieces of random bytes to connection `id` (keeping them in `sent`) until the backend
 * reports at least `minBytes` queued and that figure holds for 200 ms: how much a TCP connection
 * takes depends on the machine's tuning (tcp_wmem, tcp_rmem) and grows for a while as the peer's
 * window opens, so the test fills until output is queued instead of assuming a size.
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
    await sleep(5);
    const q = latest();
    if (q !== last) {
      last = q;
      since = Date.now();
    }
    if (q >= minBytes) {
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
const open = { backends: new Set<NativeBackend>(), sockets: new Set<net.Socket>() };

async function server(): Promise<{ b: NativeBackend; h: Reader; port: number }> {
  const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
  open.backends.add(b);
  const h = new Reader(b);
  b.start(h);
  const addr = await b.listen(parseAddress('tcp://127.0.0.1:0'));
  return { b, h, port: addr.port };
}

function connect(port: number, allowHalfOpen = false): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen }, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
    open.sockets.add(s);
    s.once('error', reject);
  });
}

describe('native backend: pauseReading', { skip }, () => {
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
    await sleep(20);
    assert.equal(readdirSync('/proc/self/fd').length, fdsBefore, 'no fd left open');
  });

  it('stops onData until resumed; 2 MiB sent meanwhile arrives afterwards, byte for byte', async () => {
    const { h, port } = await server();
    h.pauseOnFirstData = true;
    const c = await connect(port);
    c.write('a');
    await until(() => h.paused, 'the first byte, which pauses');
    const payload = randomBytes(2 * 1024 * 1024);
    c.write(payload);
    await sleep(150);
    assert.equal(h.bytesIn, 1, 'nothing read while paused');
    h.resume(h.opened[0]!);
    await until(() => h.bytesIn === 1 + payload.length, 'the rest after resuming');
    assert.ok(Buffer.concat(h.input).subarray(1).equals(payload));
  });

  it('sees a FIN sent while paused once resumed, after the data before it', async () => {
    const { h, port } = await server();
    h.pauseOnFirstData = true;
    const c = await connect(port, true);
    c.write('a');
    await until(() => h.paused, 'pause');
    c.end('xyz');
    await sleep(100);
    assert.ok(!h.events.includes('end'), 'no onEnd while paused');
    assert.equal(h.closed.size, 0, 'a FIN alone does not close a paused connection');
    h.resume(h.opened[0]!);
    await until(() => h.closed.size === 1, 'close after the FIN');
    assert.equal(Buffer.concat(h.input).toString(), 'axyz');
    assert.deepEqual(
      h.events.filter((e) => e !== 'batch'),
      ['data', 'data', 'end'],
    );
  });

  it('keeps writing while paused: output queued behind a peer that does not read drains once it reads, and reports 0', async () => {
    const { b, h, port } = await server();
    const c = await connect(port);
    c.pause();
    await until(() => h.opened.length === 1, 'open');
    const id = h.opened[0]!;
    b.pauseReading(id, true);
    const sent: Buffer[] = [];
    await writeUntilQueued(b, id, () => h.reports.at(-1) ?? 0, 1, sent);
    const payload = Buffer.concat(sent);
    const parts: Buffer[] = [];
    let got = 0;
    c.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
    });
    c.resume();
    await until(() => got === payload.length, 'everything written while paused');
    assert.ok(Buffer.concat(parts).equals(payload));
    await until(() => h.reports.at(-1) === 0, 'the drained report');
    c.write('late');
    await sleep(50);
    assert.equal(h.bytesIn, 0, 'still paused');
    h.resume(id);
    await until(() => h.bytesIn === 4, 'read after resuming');
  });

  it('closes a paused connection that the peer resets, with ECONNRESET', async () => {
    const { h, port } = await server();
    h.pauseOnFirstData = true;
    const c = await connect(port);
    c.write('a');
    await until(() => h.paused, 'pause');
    c.write('unread');
    await sleep(20);
    c.resetAndDestroy();
    await until(() => h.closed.size === 1, 'close while paused');
    const err = h.closed.get(h.opened[0]!);
    assert.ok(err instanceof ConnectionError);
    assert.equal(err.errno, 'ECONNRESET');
  });

  it('ignores pauseReading for a stale id; a new connection in the reused slot reads', async () => {
    const { b, h, port } = await server();
    const c1 = await connect(port);
    await until(() => h.opened.length === 1, 'open 1');
    const stale = h.opened[0]!;
    c1.destroy();
    await until(() => h.closed.size === 1, 'close 1');
    const c2 = await connect(port);
    await until(() => h.opened.length === 2, 'open 2');
    b.pauseReading(stale, true);
    b.flush();
    c2.write('fresh');
    await until(() => h.bytesIn === 5, 'the new connection still reads');
  });
});
